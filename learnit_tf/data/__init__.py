"""Signal classes as TFDS datasets, and pipelines to meta-batches."""

from learnit_tf.data.image_folder import image_folder_examples, load_image
from learnit_tf.data.pipeline import add_example_seeds, meta_batches, take_examples
from learnit_tf.data.text_images import TextImages, text_images_examples

__all__ = ["image_folder_examples", "load_image", "add_example_seeds", "meta_batches",
           "take_examples", "TextImages", "text_images_examples"]
