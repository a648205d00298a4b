"""The image kind: 2D image regression (PAPER.md, "2D image regression").

A SIREN maps pixel coordinates (a regular grid in [0, 1), 'ij' indexing, see
`image_grid`) to RGB in [0, 1]; the measurement is the identity. Modules: `task`
(`ImageTask`), `text_images` and `sdf_2d` (procedural TFDS builders), `emoji`
(real emoji artwork from the Debian package libjs-emojify, a TFDS builder), `catalog`
(CelebA, Imagenette from the TFDS catalog), `folder` (a folder of your own images),
`kind` (registration).
"""

from learnit_tf.kinds.image.emoji import EmojiImages, emoji_images_examples
from learnit_tf.kinds.image.folder import image_folder_examples, list_image_files, load_image
from learnit_tf.kinds.image.sdf_2d import Sdf2d, sdf_2d_examples
from learnit_tf.kinds.image.task import ImageTask, image_grid
from learnit_tf.kinds.image.text_images import TextImages, text_images_examples

__all__ = ["ImageTask", "image_grid", "EmojiImages", "emoji_images_examples",
           "image_folder_examples", "list_image_files", "load_image",
           "Sdf2d", "sdf_2d_examples", "TextImages", "text_images_examples"]
