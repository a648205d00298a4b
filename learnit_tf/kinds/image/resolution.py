"""Image data and tasks at another resolution than an init was trained at.

Coordinate networks take continuous coordinates, but a meta-learned init is only
*trained* on the grid its task used: `text_siren@3` was meta-trained on the 64×64 grid
and, fitted with its 2 learned steps at 128×128 or 256×256, loses most of its
advantage (docs/image/resolution.md). This module gives the procedural and emoji image
classes at any resolution (`config_at_resolution`, used by the classes' dataset
functions' `resolution=` argument) and the task of a full-grid fit at a resolution
(`task_at_resolution`), so the image protocol (`learnit-evaluate --resolution`) and
`learnit-fit --resolution` measure and fit where users fit.
"""

import dataclasses

from learnit_tf.data.procedural_builders import split_names_in
from learnit_tf.kinds.image.task import ImageTask


def config_at_resolution(builder_cls, config, resolution, split=None):
    """`config` (a name or config object of `builder_cls`) rendered at `resolution`.

    The same images (same seeds, same split sizes, the same source files) at another
    size; a copy named `<config>_<R>px` so TFDS stores it beside the original. The
    config itself when `resolution` is None or already its own.

    With `split` (a TFDS split string the caller will read, e.g. "test[:3]"), the copy
    generates only the splits it names (`<config>_<R>px_test`; same examples in the same
    order, `procedural_builders.split_names_in`): evaluating at 256×256 then renders the
    100 test images, not the 2000 training ones too.

    Raises:
        ValueError: `resolution` is not an integer >= 2, or `config` names no config.
    """
    if resolution is None:
        return config
    if isinstance(resolution, bool) or not isinstance(resolution, int) or resolution < 2:
        raise ValueError(f"resolution must be an integer >= 2 (pixels per side), got "
                         f"{resolution!r}.")
    base = config
    if isinstance(config, str):
        names = [c.name for c in builder_cls.BUILDER_CONFIGS]
        if config not in names:
            raise ValueError(f"Unknown {builder_cls.name} config {config!r}; expected one "
                             f"of {names}.")
        base = next(c for c in builder_cls.BUILDER_CONFIGS if c.name == config)
    if int(base.resolution) == resolution:
        return config
    splits = split_names_in(split) if hasattr(base, "splits") else None
    suffix = "".join(f"_{s}" for s in splits) if splits else ""
    return dataclasses.replace(
        base, name=f"{base.name}_{resolution}px{suffix}", resolution=resolution,
        description=f"{base.description} Rendered at {resolution}×{resolution}.",
        **({"splits": splits} if splits else {}))


def task_at_resolution(task, resolution=None):
    """A full-grid `ImageTask` with `task`'s channels at `resolution` (default: its own).

    Test-time fits use every pixel of the grid (the paper's protocol), also for an init
    meta-trained on random pixel subsets (`PixelSubsetImageTask`).
    """
    if not isinstance(task, ImageTask):
        raise ValueError(f"resolution applies to image inits (an ImageTask), not to "
                         f"{type(task).__name__}.")
    if resolution is None:
        height, width = task.height, task.width
    else:
        if isinstance(resolution, bool) or not isinstance(resolution, int) or resolution < 2:
            raise ValueError(f"resolution must be an integer >= 2 (pixels per side), got "
                             f"{resolution!r}.")
        height = width = resolution
    if (type(task) is ImageTask and task.pixels_per_step is None  # pylint: disable=unidiomatic-typecheck
            and (height, width) == (task.height, task.width)):
        return task
    return ImageTask((height, width), channels=task.channels)


def metadata_at_resolution(metadata, resolution=None):
    """An image init's metadata (a dict) whose task and held-out data are at `resolution`.

    The task becomes a full-grid `ImageTask` (`task_at_resolution`) and the dataset
    bindings gain `resolution=R`, so everything read through the metadata (held-out
    and validation examples, the class mean of the baselines) is rendered at R×R.
    With `resolution=None` only the task becomes full-grid at the init's own size.

    Raises:
        ValueError: the init has no image task, or its dataset function takes no
            `resolution` argument.
    """
    # pylint: disable=import-outside-toplevel
    import inspect

    from learnit_tf import kinds
    from learnit_tf.core.metadata import as_init_metadata

    from learnit_tf.evaluation.held_out import task_from_metadata

    parsed = as_init_metadata(metadata)
    out = parsed.to_dict()
    task = task_from_metadata(parsed) if parsed.task and parsed.task.class_name else None
    full = task_at_resolution(task, resolution)
    out["task"] = {"class_name": "ImageTask", "config": full.get_config()}
    if resolution is not None and parsed.dataset and parsed.dataset.function:
        fn = kinds.dataset_function(parsed.dataset.function)
        if "resolution" not in inspect.signature(fn).parameters:
            raise ValueError(f"resolution={resolution}: the init's dataset "
                             f"{parsed.dataset.function!r} cannot be read at another "
                             "resolution (it takes no resolution argument).")
        out["dataset"]["bindings"] = dict(out["dataset"]["bindings"], resolution=resolution)
    return out


def first_examples_config(builder_cls, config, resolution, count):
    """A procedural config holding only the first `count` validation and test signals
    of `config` at `resolution` (and one training signal, so that it has every split).

    Procedural signal `i` of a split is drawn from (seed, split, i) alone, so these are
    signals 0..count-1 of the full config's split (TFDS reads a split in an order hashed
    from the keys, so not the first `count` it yields), the same at every resolution,
    without generating thousands of training images (at 256×256 the SDF class takes
    hours on a busy 2-core machine).
    """
    scaled = config_at_resolution(builder_cls, config, resolution)
    if isinstance(scaled, str):
        scaled = next(c for c in builder_cls.BUILDER_CONFIGS if c.name == scaled)
    if not hasattr(scaled, "num_test"):
        raise ValueError(f"{builder_cls.name} configs have no split sizes to shorten.")
    return dataclasses.replace(
        scaled, name=f"{scaled.name}_first{int(count)}", num_train=1,
        num_validation=int(count), num_test=int(count),
        description=f"{scaled.description} First {int(count)} validation and test signals.")

