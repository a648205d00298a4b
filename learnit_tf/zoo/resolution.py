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
version specialised to large grids is not given to a user at 64×64; at an R no version
was evaluated at, among the versions evaluated at several grids, the version best at the
smallest evaluated R above it (else the largest: `stand_in_side`), with a warning (and
the numbers that were measured) that the init they load was not evaluated at R.
"""

import inspect
import os
import warnings

from learnit_tf.core import registry
from learnit_tf.zoo import index as zoo_index
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


def _same_init(record):
    """What makes two versions the same init: the hashes of their config and weights
    files (`REQUIRED_FILES`) in the index (None when the index does not list them)."""
    files = (record or {}).get("files") or {}
    hashes = tuple((files.get(f) or {}).get("sha256") for f in zoo_index.REQUIRED_FILES)
    return hashes if all(hashes) else None


def _measured_by_version(zoo_obj, name, latest):
    """{version: evaluated_resolutions}, newest first (each version's metadata read once).

    Versions with the same weights (a later one that only adds a fit recipe, e.g.
    sdf_siren@4 of @3) are one init: only one of them is a candidate, the entry's latest
    if it is among them, else the newest, holding the measurements of all of them (its
    own where several measured a grid). Their 2-step numbers differ only by how they were
    evaluated (sdf@3 39.25 vs @4 39.06 dB at 64², other examples), which must not pass
    over the version with the newer recipe. `latest`: the entry's.
    """
    # pylint: disable-next=protected-access
    records = zoo_obj._entry(name)["versions"]
    versions = sorted(records, key=version_key, reverse=True)
    groups = {}
    for version in versions:
        groups.setdefault(_same_init(records[version]) or ("version", version), []).append(
            version)
    measured = {}
    for members in groups.values():
        chosen = latest if latest in members else members[0]
        rows = {}
        for version in [chosen] + [v for v in members if v != chosen]:
            for side, row in evaluated_resolutions(zoo_obj.describe(name, version)).items():
                rows.setdefault(side, row)
        measured[chosen] = rows
    return dict(sorted(measured.items(), key=lambda item: version_key(item[0]),
                       reverse=True))


def _best_at(measured, side):
    """(version, row) with the highest 2-step PSNR recorded at `side` (ties: the newest,
    `measured` being newest first), or (None, None)."""
    best, best_row, best_psnr = None, None, None
    for version, rows in measured.items():
        row = rows.get(int(side))
        if row is None:
            continue
        psnr = row.get("meta_psnr_at_match")
        psnr = float("-inf") if psnr is None else float(psnr)
        if best is None or psnr > best_psnr:
            best, best_row, best_psnr = version, row, psnr
    return best, best_row


def stand_in_side(sides, resolution):
    """The evaluated side that stands in for `resolution`: the smallest side at or above
    it, else the largest (a finer grid's init was trained on the function between a
    coarser grid's points).

    >>> [stand_in_side([64, 128, 256], r) for r in (48, 64, 72, 100, 200, 320)]
    [64, 64, 128, 128, 256, 256]
    """
    above = [side for side in sides if side >= resolution]
    return min(above) if above else max(sides)


def version_for_resolution(zoo_obj, name, resolution, stand_in=False):
    """The version of zoo entry `name` with the highest recorded 2-step PSNR at
    `resolution` (`meta_psnr_at_match`; ties: the newest), or None if none was evaluated
    there. So an init specialised to 256×256 is chosen at 256 while a 64×64 user keeps the
    version best at 64. With `stand_in=True`, a resolution no version was evaluated at
    takes, among the versions evaluated at several grids, the version best at the side that
    stands in for it (`stand_in_side`)."""
    measured = _measured_by_version(zoo_obj, name, zoo_obj.resolve_version(name))
    return _choose(measured, resolution, stand_in)[0]


def _choose(measured, resolution, stand_in):
    """(version, side it was measured at, its row) or (None, None, None)."""
    version, row = _best_at(measured, resolution)
    if version is not None:
        return version, int(resolution), row
    if not stand_in:
        return None, None, None
    # Only versions evaluated at several grids stand in: a number measured on an init's
    # training grid alone says nothing of another grid (emoji_siren@3: 37.09 dB after 2
    # steps at 64², 25.91 at 48², 24.48 at 72²; emoji_siren@6, evaluated at 64, 128 and
    # 256: 32.62, 30.00; docs/image/resolution.md, "Between the evaluated grids").
    several = {v: rows for v, rows in measured.items() if len(rows) > 1}
    sides = {side for rows in several.values() for side in rows}
    if not sides:
        return None, None, None
    side = stand_in_side(sides, int(resolution))
    version, row = _best_at(several, side)
    return version, side, row


def choose_init(zoo_obj, name_or_spec, resolution):
    """(spec to load, note or None): a bare zoo `name` becomes `name@V` for the version
    best at `resolution` (`version_for_resolution`) or, when no version was evaluated
    there, at the side that stands in for it (`_choose`, `stand_in_side`; the warning about
    the unevaluated resolution is still given: `resolution_warning`), when that is not
    its latest; anything else (a pinned version, a path) is kept."""
    name, version = split_name(name_or_spec)
    if resolution is None or version is not None or name not in zoo_obj.names():
        return name_or_spec, None
    latest = zoo_obj.resolve_version(name)
    chosen, side, row = _choose(_measured_by_version(zoo_obj, name, latest), resolution,
                                stand_in=True)
    if chosen is None or chosen == latest:
        return name_or_spec, None
    where = (f"measured at {resolution}×{resolution}" if side == int(resolution) else
             f"measured at {side}×{side}, the evaluated grid that stands in for "
             f"{resolution}×{resolution}")
    return f"{name}@{chosen}", (
        f"Using {name}@{chosen}, the version of {name} with the highest 2-step PSNR "
        f"{where} ({_numbers(side, row)}; the latest is {name}@{latest}).")


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
