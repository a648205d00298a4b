"""Where the shipped inits (`zoo/`) and experiment configs (`gin/`) are.

In a source checkout (or an editable install) they are the repository's top-level
`zoo/` and `gin/`; a wheel carries copies inside the package (`learnit_tf/_shipped/`,
see setup.py), which are used when present.
"""

import os

# learnit_tf/ (this module is learnit_tf/zoo/shipped.py).
_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def shipped_dir(name):
    """Absolute path of the shipped `name` directory ("zoo" or "gin")."""
    if name not in ("zoo", "gin"):
        raise ValueError(f"No shipped directory {name!r}; expected 'zoo' or 'gin'.")
    installed = os.path.join(_PACKAGE_DIR, "_shipped", name)
    if os.path.isdir(installed):
        return installed
    return os.path.abspath(os.path.join(_PACKAGE_DIR, os.pardir, name))


def resolve_gin_file(path):
    """`path` if it exists, else the shipped config of that name (e.g. "image/text_maml_cpu.gin").

    Raises:
        ValueError: neither exists; the message lists where it looked.
    """
    if os.path.isfile(path):
        return path
    candidate = os.path.join(shipped_dir("gin"), path)
    if not os.path.isabs(path) and os.path.isfile(candidate):
        return candidate
    raise ValueError(f"Cannot read gin file {path!r}: no such file, and no shipped config of "
                     f"that name in {shipped_dir('gin')} (e.g. 'image/text_maml_cpu.gin').")
