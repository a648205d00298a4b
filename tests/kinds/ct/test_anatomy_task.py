"""Tests of `CtImageOuterTask` (CT with an image query loss, issue 24 item 1)."""

import numpy as np
import tensorflow as tf

from learnit_tf import kinds, testing
from learnit_tf.evaluation.held_out import task_from_metadata
from learnit_tf.kinds.ct.anatomy_task import CtImageOuterTask
from learnit_tf.kinds.ct.task import CtTask, evenly_spaced_angles
from learnit_tf.meta import InnerOptimizer, MetaConfig, meta_gradients
from learnit_tf.models import FourierFeatureMLP, FunctionalModel


def _fmodel():
    return FunctionalModel(FourierFeatureMLP(num_features=8, width=16, hidden_layers=1,
                                             output_activation="sigmoid", seed=0))


def _example(n=8, views=2):
    rng = np.random.default_rng(0)
    image = rng.uniform(0.2, 0.8, (n, n, 1)).astype(np.float32)
    return {"image": tf.constant(image), "angles": tf.constant(evenly_spaced_angles(views))}


class CtImageOuterTaskTest(testing.TestCase):

    def test_outer_loss_is_the_image_mse_and_inner_loss_is_ct_tasks(self):
        fmodel, ex = _fmodel(), _example()
        w = fmodel.initial_weights()
        task, plain = CtImageOuterTask(resolution=8), CtTask(resolution=8)
        rendered = fmodel(w, task.coords).numpy()
        expected = float(np.mean((rendered - ex["image"].numpy()) ** 2))
        self.assertAllClose(float(task.outer_loss(fmodel, w, ex)), expected, rtol=1e-5)
        # Not the projection loss (which CtTask's outer loss is): 2 views miss a lot.
        self.assertGreater(abs(expected - float(plain.outer_loss(fmodel, w, ex))), 1e-4)
        self.assertAllClose(float(task.inner_loss(fmodel, w, ex, 0)),
                            float(plain.inner_loss(fmodel, w, ex, 0)), rtol=1e-6)

    def test_registered_and_rebuilt_from_metadata(self):
        self.assertIs(kinds.task_class("CtImageOuterTask"), CtImageOuterTask)
        metadata = {"task": {"class_name": "CtImageOuterTask",
                             "config": {"resolution": 8, "num_angles": 3,
                                        "interpolation": "nearest"}}}
        trained = task_from_metadata(metadata, as_trained=True)
        self.assertIsInstance(trained, CtImageOuterTask)
        # A fit (held-out or a user's sinogram) uses a plain CtTask of the same settings.
        fitted = task_from_metadata(metadata)
        self.assertIs(type(fitted), CtTask)
        self.assertEqual(fitted.get_config(), trained.get_config())
        self.assertEqual(fitted.get_config(), {"resolution": 8, "num_angles": 3,
                                               "interpolation": "nearest"})

    def test_maml_gradient_follows_the_image_not_the_views(self):
        # Two images with the same 1-view projection (mirror images about the ray axis)
        # give the same CtTask meta-gradient but different image-query gradients.
        fmodel = _fmodel()
        w = fmodel.initial_weights()
        rng = np.random.default_rng(1)
        a = rng.uniform(0.2, 0.8, (8, 8, 1)).astype(np.float32)
        b = a[::-1].copy()  # rows flipped: the column means (θ = 0) are unchanged
        config = MetaConfig("maml", 2, InnerOptimizer("sgd", 1.0))
        angles = tf.constant([[0.0]])

        def grads(task, image):
            batch = {"image": tf.constant(image[None]), "angles": angles}
            return meta_gradients(config, task, fmodel, w, batch)[0]

        plain, image_task = CtTask(resolution=8), CtImageOuterTask(resolution=8)
        for g, h in zip(grads(plain, a), grads(plain, b)):
            self.assertAllClose(g, h, atol=1e-6)
        differ = max(float(tf.reduce_max(tf.abs(g - h)))
                     for g, h in zip(grads(image_task, a), grads(image_task, b)))
        self.assertGreater(differ, 1e-5)
