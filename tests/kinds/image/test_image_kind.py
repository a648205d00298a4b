"""The image kind through the shared kind checks (`learnit_tf.testing.KindTestCase`)."""

import numpy as np

from learnit_tf import testing
from learnit_tf.kinds.image import ImageTask
from learnit_tf.meta import InnerOptimizer, MetaConfig
from learnit_tf.models import Siren


def _siren():
    return Siren(out_features=3, width=32, depth=3, w0=30.0, seed=0)


class ImageKindTest(testing.KindTestCase):

    def test_image_kind(self):
        # Independent smooth random images: the meta init cannot just memorize a mean
        # image (step-0 PSNRs are about equal); it has to learn to adapt in 2 steps.
        images = self.random_images(12, 8, seed=4)
        sgd = InnerOptimizer("sgd", 0.1)
        self.run_kind_test(
            "image", ImageTask(8), _siren,
            train_examples=[{"image": im} for im in images[:8]],
            held_out_examples=[{"image": im} for im in images[8:]],
            meta_config=MetaConfig("maml", 2, sgd), outer_learning_rate=1e-3, meta_steps=60,
            meta_batch_size=2, fit_steps=2, fit_optimizer=sgd, min_psnr_gain=5.0)

    def test_image_kind_with_pixel_subsets(self):
        # Random pixel subsets per inner step: no shared prediction, the inner loss needs
        # the example's seed, and XLA and graph mode must draw the same pixels.
        images = self.random_images(2, 8, seed=5)
        task = ImageTask(8, pixels_per_step=16)
        examples = [{"image": im, "seed": np.array([0, i], np.int32)}
                    for i, im in enumerate(images)]
        self.run_task_config_test(task)
        self.run_finite_losses_test(task, _siren, examples[0])
        self.run_bad_input_test(task, examples[0], fields=["image"])
        meta_batch = {k: np.stack([ex[k] for ex in examples]) for k in examples[0]}
        self.run_xla_graph_test(task, _siren, meta_batch, MetaConfig("maml", 1),
                                outer_learning_rate=1e-3)
