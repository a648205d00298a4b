"""Zoo entry names and versions: "name@version" specs and the natural version order.

Kept apart from `zoo` so modules that `zoo` itself uses (e.g. `zoo_resolution`) can
read specs without importing it back (no import cycle).
"""

import re

def version_key(version):
    """Sort key that orders versions naturally ("2" < "10", "1.2" < "1.10")."""
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p)
                 for p in re.split(r"[._-]", str(version)))


def split_name(name_or_spec, version=None):
    """Splits "name@version" (the explicit `version` argument must agree).

    "name@" (an empty version) and "@version" (an empty name) are errors, not "latest".
    """
    name, at, spec_version = str(name_or_spec).partition("@")
    if at and not (name and spec_version):
        raise ValueError(f"{name_or_spec!r} has an empty {'version' if name else 'name'} "
                         "around '@'; expected NAME@VERSION (e.g. text_images_maml@1), or "
                         "just NAME for its latest version.")
    if spec_version and version is not None and str(version) != spec_version:
        raise ValueError(f"Conflicting versions: {name_or_spec!r} and version={version!r}.")
    return name, (spec_version or (None if version is None else str(version)))
