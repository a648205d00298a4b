"""Registers the image kind."""

from learnit_tf.kinds.image import (catalog, emoji, folder, sdf_2d, subset_task, task,
                                   text_images)
from learnit_tf.core.registry import ReaderOption, SignalKind, register_kind

KIND = register_kind(SignalKind(
    name="image",
    description="2D images: pixel coordinates -> RGB (identity measurement)",
    tasks={"ImageTask": task.ImageTask,
           "PixelSubsetImageTask": subset_task.PixelSubsetImageTask},
    datasets={
        "text_images_examples": text_images.text_images_examples,
        "sdf_2d_examples": sdf_2d.sdf_2d_examples,
        "emoji_images_examples": emoji.emoji_images_examples,
        "celeb_a_examples": catalog.celeb_a_examples,
        "imagenette_examples": catalog.imagenette_examples,
        "image_folder_examples": folder.image_folder_examples,
    },
    folder_dataset="image_folder_examples",
    protocol="learnit_tf.kinds.image.evaluation:ImageProtocol",
    fit_input="learnit_tf.kinds.image.folder:fit_example",
    default_init="text_siren",
    reader_options=(
        ReaderOption("resolution", "integer", None,
                     "Fit on the full R×R grid (default: the init's training "
                     "resolution). The network takes any coordinates, but an init is only as "
                     "good as where it was evaluated: inits meta-trained at 64×64 lose most "
                     "of their 2-step advantage at 128 and 256 (docs/image/resolution.md). A "
                     "bare zoo name picks the version with the best 2-step PSNR measured "
                     "at R; a warning with the measured numbers says when none was. "
                     "Not given: an image larger than the init's grid is fitted at its own "
                     "size (its shorter side) up to 256, larger ones resized to 256×256",
                     from_input="learnit_tf.kinds.image.folder:resolution_of_input"),
    ),
))
