"""Shared pieces of the absl scripts: resolving an init and showing progress."""

import os

import keras

from learnit_tf import init_io


def resolve_init(init):
    """(model, metadata, directory or None) for an init directory or a zoo name[@version]."""
    if os.path.isdir(init):
        return init_io.load_init(init), init_io.read_metadata(init), init
    if os.path.sep in init or init.startswith("."):
        raise ValueError(f"--init={init!r} is not an init directory (expected a directory with "
                         f"{', '.join(init_io.INIT_FILES)}, or a zoo name).")
    from learnit_tf import zoo  # pylint: disable=import-outside-toplevel
    return zoo.load(init), zoo.describe(init), None


class StepProgress:
    """A Keras progress bar (with ETA) over a known total number of optimization steps."""

    def __init__(self, total_steps, verbose=1):
        self.bar = keras.utils.Progbar(max(1, int(total_steps)), verbose=verbose,
                                       unit_name="step")
        self.done = 0

    def add(self, steps, **values):
        self.done += int(steps)
        self.bar.update(self.done, values=list(values.items()) or None)
