"""Which init to use at a resolution, and a warning when none was evaluated there.

Kind-agnostic: it applies to inits of any kind whose reader of a user's files can fit
at another grid side (the kind declares a `resolution` reader option, or its reader
takes a `resolution` argument: today images), and to any init that records
`evaluated_resolutions`. Such an init's metadata records, under `evaluated_resolutions`,
its held-out numbers at each grid side R it was evaluated at (`scripts/resolution_table.py`):
``{"128": {"meta_psnr_at_match": ..., "steps_to_match": ..., ...}, ...}``. Inits
published before that record hold only `evaluation` (at their training resolution).
`zoo.load(name, resolution=R)` and `learnit-fit --resolution=R` with a bare zoo name
take the version with the highest 2-step PSNR recorded at R (ties: the newest), so a
version specialised to large grids is not given to a user at 64×64, and warn (with the
numbers that were measured) when the init they load was not evaluated at R.
"""

import inspect
import os
import warnings

from learnit_tf.core import registry
from learnit_tf.zoo.names import split_name, version_key

EVALUATED_RESOLUTIONS = "evaluated_resolutions"
RESOLUTION_OPTION = "resolution"


class ResolutionWarning(UserWarning):
    """An init is used at a resolution it was not evaluated at."""


def _kind_of(metadata):
    """The registered kind of parsed metadata (its `kind`, else its task's), or None."""
    task = metadata.get("task")
    try:
        if isinstance(metadata.get("kind"), str):
            return registry.get_kind(metadata["kind"])
        if isinstance(task, dict) and isinstance(task.get("class_name"), str):
            return registry.kind_of_task(task["class_name"])
    except ValueError:
        pass
    return None


def fits_at_a_resolution(metadata):
    """Whether an init can be fitted on another grid than it was trained on: it records
    `evaluated_resolutions`, or its kind's reader takes a `resolution` option.

    >>> fits_at_a_resolution({"task": {"class_name": "ImageTask", "config": {}}})
    True
    >>> fits_at_a_resolution({"task": {"class_name": "CtTask", "config": {"resolution": 64}}})
    False
    """
    metadata = metadata or {}
    if metadata.get(EVALUATED_RESOLUTIONS):
        return True
    kind = _kind_of(metadata)
    if kind is None:
        return False
    if any(option.name == RESOLUTION_OPTION for option in kind.reader_options):
        return True
    try:
        reader = kind.fit_input_reader()
    except ValueError:  # A kind without a reader of the user's files.
        return False
    return RESOLUTION_OPTION in inspect.signature(reader).parameters


def _trained_side(metadata):
    config = ((metadata or {}).get("task") or {}).get("config") or {}
    res = config.get("resolution")
    if res is None:
        return None
    return int(res[0] if isinstance(res, (list, tuple)) else res)


def evaluated_resolutions(metadata):
    """{R: {"meta_psnr_at_match", "steps_to_match", ...}} an init was evaluated at.

    Inits without the record count as evaluated at their training resolution, with the
    2-step numbers of their recorded `evaluation` (if any).
    """
    metadata = metadata or {}
    recorded = metadata.get(EVALUATED_RESOLUTIONS)
    if recorded:
        return {int(r): dict(v) for r, v in recorded.items()}
    summary = ((metadata.get("evaluation") or {}).get("summary") or {})
    side = _trained_side(metadata)
    if side is None or "meta_psnr_at_2" not in summary:
        return {}
    if summary.get("resolution") not in (None, side):
        return {}
    return {side: {"meta_psnr_at_match": summary["meta_psnr_at_2"],
                   "standard_psnr_at_match": summary.get("standard_psnr_at_2"),
                   "steps_to_match": summary.get("steps_to_match"),
                   "standard_steps_evaluated": summary.get("standard_steps_evaluated")}}


def _numbers(side, row):
    steps = row.get("steps_to_match")
    cap = row.get("standard_steps_evaluated")
    match = (f"{steps} standard steps to match" if steps is not None
             else f"not matched in {cap} standard steps" if cap else "steps to match unknown")
    return f"{side}×{side}: {row['meta_psnr_at_match']:.2f} dB after 2 steps, {match}"


def resolution_warning(label, metadata, resolution):
    """The warning text for fitting init `label` at `resolution`, or None if it was
    evaluated there (or cannot be fitted at a resolution: `fits_at_a_resolution`)."""
    side = _trained_side(metadata)
    if resolution is None or side is None or not fits_at_a_resolution(metadata):
        return None
    measured = evaluated_resolutions(metadata)
    if int(resolution) in measured:
        return None
    where = ("; ".join(_numbers(r, measured[r]) for r in sorted(measured))
             or "no held-out evaluation recorded")
    return (f"{label} was meta-trained at {side}×{side} and not evaluated at "
            f"{resolution}×{resolution} (measured: {where}). An init trained on one grid "
            f"can lose most of its advantage on another (docs/image/resolution.md).")


def version_for_resolution(zoo_obj, name, resolution):
    """The version of zoo entry `name` with the highest recorded 2-step PSNR at
    `resolution` (`meta_psnr_at_match`; ties: the newest), or None if none was evaluated
    there. So an init specialised to 256×256 is chosen at 256 while a 64×64 user keeps the
    version best at 64."""
    # pylint: disable-next=protected-access
    versions = sorted(zoo_obj._entry(name)["versions"], key=version_key, reverse=True)
    best, best_psnr = None, None
    for version in versions:
        row = evaluated_resolutions(zoo_obj.describe(name, version)).get(int(resolution))
        if row is None:
            continue
        psnr = row.get("meta_psnr_at_match")
        psnr = float("-inf") if psnr is None else float(psnr)
        if best is None or psnr > best_psnr:
            best, best_psnr = version, psnr
    return best


def choose_init(zoo_obj, name_or_spec, resolution):
    """(spec to load, note or None): a bare zoo `name` becomes `name@V` for the version
    best at `resolution` (`version_for_resolution`) when that is not its latest; anything
    else (a pinned version, a path, no version evaluated there) is kept."""
    name, version = split_name(name_or_spec)
    if resolution is None or version is not None or name not in zoo_obj.names():
        return name_or_spec, None
    latest = zoo_obj.resolve_version(name)
    chosen = version_for_resolution(zoo_obj, name, resolution)
    if chosen is None or chosen == latest:
        return name_or_spec, None
    row = evaluated_resolutions(zoo_obj.describe(name, chosen))[int(resolution)]
    return f"{name}@{chosen}", (
        f"Using {name}@{chosen}, the version of {name} with the highest 2-step PSNR "
        f"measured at {resolution}×{resolution} ({_numbers(int(resolution), row)}; the "
        f"latest is {name}@{latest}).")


def warn_if_not_evaluated(label, metadata, resolution, stacklevel=3):
    """Issues a `ResolutionWarning` if init `label` was not evaluated at `resolution`."""
    text = resolution_warning(label, metadata, resolution)
    if text:
        warnings.warn(text, ResolutionWarning, stacklevel=stacklevel)
    return text


def load_at_resolution(zoo_obj, name_or_path, version, resolution):
    """`zoo.load(..., resolution=R)`: the model, chosen and warned about as above."""
    # pylint: disable-next=import-outside-toplevel
    from learnit_tf.meta import init_io# TensorFlow: only when an init is loaded.
    spec = name_or_path if version is None else f"{name_or_path}@{version}"
    local = os.path.isdir(os.path.expanduser(str(name_or_path))) and (
        "/" in str(name_or_path) or os.sep in str(name_or_path))
    if local:
        directory = os.path.expanduser(str(name_or_path))
        parsed = init_io.read_init_metadata(directory)  # Read once: for the model and here.
        metadata = parsed.file_dict()
        model = init_io.load_init(directory, parsed)
    else:
        spec, note = choose_init(zoo_obj, spec, resolution)
        if note:
            print(note)
        model = zoo_obj.load(spec)
        metadata = zoo_obj.describe(spec.partition("@")[0], spec.partition("@")[2] or None)
    warn_if_not_evaluated(str(spec), metadata, resolution, stacklevel=4)
    return model
