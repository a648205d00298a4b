"""The absl programs behind the console commands (`learnit-*`) and `scripts/*.py`.

Each module defines its flags and `main(argv)`, and `run()` is its console entry point
(see setup.py). The files in `scripts/` are thin shells over these modules.
"""
