"""Zoo entry names and versions: validation, "name@version" specs, the natural version order.

A name or version is one path component of letters, digits, `_`, `.`, `-` (starting
with a letter or digit), so it can never form a path like `..`; index paths are split
into such components before they are joined onto a directory.
"""

import os
import re

from learnit_tf.zoo.errors import UnsafePathError

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


def version_key(version):
    """Sort key that orders versions naturally ("2" < "10", "1.2" < "1.10").

    >>> sorted(["10", "2", "1.10", "1.2"], key=version_key)
    ['1.2', '1.10', '2', '10']
    """
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p)
                 for p in re.split(r"[._-]", str(version)))


def split_name(name_or_spec, version=None):
    """Splits "name@version" (the explicit `version` argument must agree).

    "name@" (an empty version) and "@version" (an empty name) are errors, not "latest".

    >>> split_name("text_siren@2"), split_name("text_siren")
    (('text_siren', '2'), ('text_siren', None))
    """
    name, at, spec_version = str(name_or_spec).partition("@")
    if at and not (name and spec_version):
        raise ValueError(f"{name_or_spec!r} has an empty {'version' if name else 'name'} "
                         "around '@'; expected NAME@VERSION (e.g. text_images_maml@1), or "
                         "just NAME for its latest version.")
    if spec_version and version is not None and str(version) != spec_version:
        raise ValueError(f"Conflicting versions: {name_or_spec!r} and version={version!r}.")
    return name, (spec_version or (None if version is None else str(version)))


def check_name(value, what="name"):
    """Validates a zoo entry name or version string and returns it."""
    if not isinstance(value, str) or not NAME_RE.match(value):
        raise ValueError(
            f"Invalid zoo {what} {value!r}: expected 1-100 characters from [A-Za-z0-9_.-] "
            "starting with a letter or digit.")
    return value


def safe_parts(path, what):
    """Splits an index `path` into safe components or raises UnsafePathError."""
    if not isinstance(path, str) or not path.strip("/"):
        raise UnsafePathError(f"{what}: path {path!r} must be a non-empty relative path.")
    if (path.startswith(("/", "~")) or "\\" in path or ":" in path
            or os.path.isabs(path)):
        raise UnsafePathError(
            f"{what}: path {path!r} is absolute or not a plain relative path; refusing it "
            "because it would escape the zoo/cache directory.")
    parts = [p for p in path.split("/") if p]
    for part in parts:
        if part in (".", "..") or not NAME_RE.match(part):
            raise UnsafePathError(
                f"{what}: path {path!r} has component {part!r}; only plain names from "
                "[A-Za-z0-9_.-] are allowed (no '..'), refusing a path that could escape "
                "the zoo/cache directory.")
    return parts
