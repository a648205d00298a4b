"""`CtImageOuterTask`: sparse-view CT whose MAML query loss is the whole image (issue 24, item 1).

`CtTask` fits the views (inner loss: projection MSE at the example's angles) and, as
the paper, also scores the adapted weights on those views (outer loss). Meta-trained
that way (or with Reptile, which has no outer loss) an init learns nothing about what
lies in the few views' null space: at 2–4 views the fit is not pinned down by the
data and everything else is the init's prior. Here the outer (query) loss is the MSE
of the rendered image against the training slice, so MAML/first-order MAML learn an
init (and Meta-SGD rates) whose few-view fit gives the right *image*, not only the
right projections. Fitting a user's sinogram is unchanged (inner loss = `CtTask`'s):
the image is only needed at meta-training time, where the procedural class has it.
"""

import tensorflow as tf

from learnit_tf.kinds.ct.task import CtTask


class CtImageOuterTask(CtTask):
    """`CtTask` whose `outer_loss` is the image MSE (training examples need "image").

    Example:

    >>> from learnit_tf.models import FourierFeatureMLP, FunctionalModel
    >>> task = CtImageOuterTask(resolution=8, num_angles=2)
    >>> fmodel = FunctionalModel(FourierFeatureMLP(num_features=8, width=16, hidden_layers=1,
    ...                                            output_activation="sigmoid", seed=0))
    >>> w = fmodel.initial_weights()
    >>> ex = {"image": tf.zeros((8, 8, 1)), "seed": tf.constant([0, 1])}
    >>> image_mse = float(tf.reduce_mean(tf.square(task.render(fmodel, w))))
    >>> abs(float(task.outer_loss(fmodel, w, ex)) - image_mse) < 1e-7
    True
    """

    def for_fitting(self):
        """A plain `CtTask` of the same settings: a user's fit has only the views."""
        return CtTask(self.resolution, num_angles=self.num_angles,
                      interpolation=self.interpolation)

    def outer_loss(self, fmodel, weights, example):
        image = tf.cast(example["image"], tf.float32)
        return tf.reduce_mean(tf.square(self.render(fmodel, weights) - image))
