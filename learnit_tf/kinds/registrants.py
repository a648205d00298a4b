"""Imports every signal kind's registration module (one line per kind)."""

# pylint: disable=unused-import
from learnit_tf.kinds.image import kind as _image_kind  # noqa: F401
from learnit_tf.kinds.ct import kind as _ct_kind  # noqa: F401
from learnit_tf.kinds.nerf import kind as _nerf_kind  # noqa: F401
from learnit_tf.kinds.audio import kind as _audio_kind  # noqa: F401
from learnit_tf.kinds.shape3d import kind as _shape3d_kind  # noqa: F401
