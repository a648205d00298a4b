"""Alias of scripts/evaluate.py, which dispatches on the init's kind (--init, --output_dir)."""
import os, runpy  # noqa: E401
runpy.run_path(os.path.join(os.path.dirname(os.path.abspath(__file__)), "evaluate.py"),
               run_name="__main__")
