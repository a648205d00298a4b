"""The errors a meta-training run raises (each names what to change; none leaves a
half-written checkpoint or init behind)."""


class MetaTrainConfigError(ValueError):
    """A `meta_train` argument, or the data it names, is unusable (raised before building)."""


class ModelDirLockedError(RuntimeError):
    """Another `meta_train` run holds the model directory."""


class NonFiniteLossError(RuntimeError):
    """Raised when meta-training produces a NaN or infinite loss."""


class NonFiniteWeightsError(RuntimeError):
    """Raised instead of checkpointing or exporting weights that hold NaN or infinity."""


class CheckpointWriteError(RuntimeError):
    """A checkpoint could not be written (e.g. the disk is full); the previous one is intact."""
