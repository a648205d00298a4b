"""Keras callbacks for fitting a coordinate network with `model.fit`.

A zoo init is a plain Keras model, so Keras-native fine-tuning works:
`model.compile(keras.optimizers.Adam(1e-4), "mse")` then `model.fit(coords, target)`
with the whole signal as one batch (`batch_size=len(coords)`, or one image of shape
(H, W, 2) wrapped in a batch of 1). `PsnrCallback` reports the PSNR of the full
signal after each epoch, in the logs Keras prints and, with `log_dir`, as
TensorBoard scalars.
"""

import keras
import numpy as np
import tensorflow as tf


def psnr(prediction, target, max_value=1.0):
    """PSNR in dB of `prediction` against `target` (signals in [0, max_value])."""
    mse = float(np.mean((np.asarray(prediction, np.float64) - np.asarray(target, np.float64))**2))
    return float("inf") if mse == 0.0 else 10.0 * np.log10(max_value**2 / mse)


class PsnrCallback(keras.callbacks.Callback):
    """Adds `psnr` (full-signal PSNR, dB) to the epoch logs; optional TensorBoard scalars.

    Args:
        coords: the network's inputs for the whole signal (e.g. `image_grid(64)[None]`).
        target: the signal, same leading shape as the network's output.
        log_dir: if set, writes `psnr` as a TensorBoard scalar per epoch there.
        max_value: peak signal value (1.0 for images in [0, 1]).

    Example:

    >>> import learnit_tf
    >>> from learnit_tf.kinds.image import image_grid
    >>> from learnit_tf.models import Siren
    >>> model = Siren(width=16, depth=3, seed=0)
    >>> coords, target = image_grid(8)[None], np.full((1, 8, 8, 3), 0.25, np.float32)
    >>> model.compile(keras.optimizers.Adam(1e-3), "mse")
    >>> callback = PsnrCallback(coords, target)
    >>> history = model.fit(coords, target, epochs=3, verbose=0, callbacks=[callback])
    >>> len(history.history["psnr"])
    3
    """

    def __init__(self, coords, target, log_dir=None, max_value=1.0):
        super().__init__()
        self.coords = np.asarray(coords, np.float32)
        self.target = np.asarray(target, np.float32)
        self.max_value = float(max_value)
        self._writer = tf.summary.create_file_writer(log_dir) if log_dir else None

    def on_epoch_end(self, epoch, logs=None):
        value = psnr(self.model(self.coords, training=False), self.target, self.max_value)
        if logs is not None:
            logs["psnr"] = value
        if self._writer is not None:
            with self._writer.as_default(step=epoch + 1):
                tf.summary.scalar("psnr", value)
            self._writer.flush()
