"""The zoo's errors (`learnit_tf.zoo` re-exports them: catch `zoo.ZooError` etc.).

In a module of their own so that every module of the zoo package (the downloads in
`learnit_tf.zoo.transport`, the index, publishing) raises the same classes without
importing the package's `__init__`.
"""


class ZooError(Exception):
    """Base class of zoo errors."""


class UnknownEntryError(ZooError, LookupError):
    """A name or version that the index does not list."""


class IntegrityError(ZooError):
    """A file whose size or sha256 differs from the index (tampered, damaged or replaced)."""


class UnsafePathError(ZooError):
    """An index path or file name that would escape the zoo or cache directory."""


class IndexFormatError(ZooError, ValueError):
    """A malformed index.json."""


class VersionExistsError(ZooError, FileExistsError):
    """Publishing a version that already exists (published versions are immutable)."""


class DownloadTimeoutError(ZooError, TimeoutError):
    """A download that did not finish within its total deadline (`learnit_tf.zoo.transport`)."""


class PinnedVersionChangedError(IntegrityError):
    """The index lists other bytes for a version already verified and pinned in the cache."""


class NonFiniteWeightsError(ZooError, ValueError):
    """An init whose weights hold NaN or infinite values (`verify`, `publish`)."""
