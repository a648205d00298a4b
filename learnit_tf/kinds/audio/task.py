"""1D audio regression: the network maps time to the waveform (identity measurement).

The SIREN paper's audio fits (Sitzmann et al. 2020, section 4.1) regress a waveform
from its time coordinate; here the same signal is a learnit task, so meta-learning
and the image-style protocol apply unchanged.

Conventions (each one tested in tests/kinds/audio/test_audio_task.py):
- Time: sample `i` of an `N`-sample clip sits at t = i / N, i.e. the grid
  `linspace(0, 1, N + 1)[:-1]` in [0, 1) — the image kind's per-axis convention.
  [0, 1) rather than SIREN's [-1, 1): the project's SIREN has zero biases at init, so
  on a grid symmetric about 0 every layer is an odd function of t and the init would
  be tied to mirror symmetry about the clip's middle; on [0, 1) it is not.
- Amplitude: waveforms are float in [-1, 1] (a WAV file's full scale).
- PSNR: on the [-1, 1] range, peak-to-peak 2: PSNR = 10 log10(2² / MSE), the image
  definition (peak 1 for [0, 1] images) applied to the signal's full range. A
  silent prediction of a full-scale sine (MSE 0.5) scores 10 log10(8) = 9.03 dB.
"""

import numpy as np
import tensorflow as tf

from learnit_tf.core.task import Task, mse_to_psnr

#: Peak-to-peak range of a waveform in [-1, 1], the "max value" of PSNR.
PEAK_TO_PEAK = 2.0


def time_grid(num_samples):
    """Time coordinates of an `num_samples`-sample clip, float32 (N, 1): t_i = i / N."""
    return (np.arange(int(num_samples), dtype=np.float64) / int(num_samples))[:, None].astype(
        np.float32)


def waveform_psnr(mse):
    """PSNR in dB of a mean squared error between waveforms in [-1, 1] (peak-to-peak 2)."""
    return mse_to_psnr(mse, max_value=PEAK_TO_PEAK)


class AudioTask(Task):
    """Fit a mono waveform with a coordinate network (time -> amplitude).

    An example is `{"waveform": float32 (num_samples,) in [-1, 1]}`; with
    `samples_per_step` it also needs `"seed"` (int32 (2,)) to draw a random subset
    of samples at every inner step (long clips, as `pixels_per_step` for images).
    The network takes (N, 1) time coordinates and returns (N, 1) amplitudes, e.g.
    `Siren(in_features=1, out_features=1, output_offset=0.0)`.

    Args:
        num_samples: samples per clip (static: every example has this length).
        sample_rate: samples per second, for readers (resampling) and WAV/plot
            output only; the loss does not depend on it (time is in clip units).
        samples_per_step: if set, the inner loss uses this many random samples per step.
        dtype: dtype of the coordinates (float64 for gradient checks).

    Example:

    >>> task = AudioTask(num_samples=8, sample_rate=8000)
    >>> task.coords.shape
    TensorShape([8, 1])
    >>> [round(float(t), 3) for t in task.coords[:3, 0]]
    [0.0, 0.125, 0.25]
    """

    def __init__(self, num_samples, sample_rate=8000, samples_per_step=None, dtype="float32"):
        self.num_samples = int(num_samples)
        if self.num_samples < 2:
            raise ValueError(f"AudioTask num_samples must be >= 2, got {num_samples}.")
        self.sample_rate = int(sample_rate)
        if self.sample_rate < 1:
            raise ValueError(f"AudioTask sample_rate must be >= 1, got {sample_rate}.")
        self.samples_per_step = None if samples_per_step is None else int(samples_per_step)
        if self.samples_per_step is not None and not 0 < self.samples_per_step:
            raise ValueError(f"samples_per_step must be >= 1, got {samples_per_step}.")
        self.coords = tf.constant(time_grid(self.num_samples), dtype=dtype)

    def get_config(self):
        return {"num_samples": self.num_samples, "sample_rate": self.sample_rate,
                "samples_per_step": self.samples_per_step}

    @property
    def duration_seconds(self):
        return self.num_samples / self.sample_rate

    def render(self, fmodel, weights):
        """The network's waveform, shape (num_samples,)."""
        return fmodel(weights, self.coords)[:, 0]

    def _mse(self, prediction, waveform):
        return tf.reduce_mean(tf.square(prediction - tf.cast(waveform, prediction.dtype)))

    def inner_loss(self, fmodel, weights, example, step):
        waveform = example["waveform"]
        if self.samples_per_step is None:
            return self._mse(self.render(fmodel, weights), waveform)
        seed = tf.stack([tf.cast(example["seed"][0], tf.int32),
                         tf.cast(example["seed"][1], tf.int32) + tf.cast(step, tf.int32)])
        idx = tf.random.stateless_uniform(
            (self.samples_per_step,), seed, 0, self.num_samples, dtype=tf.int32)
        prediction = fmodel(weights, tf.gather(self.coords, idx))[:, 0]
        return self._mse(prediction, tf.gather(waveform, idx))

    def outer_loss(self, fmodel, weights, example):
        return self._mse(self.render(fmodel, weights), example["waveform"])

    def has_shared_prediction(self):
        # With random sample subsets every example sees different coordinates.
        return self.samples_per_step is None

    def shared_prediction(self, fmodel, weights):
        return self.render(fmodel, weights)

    def inner_loss_from_prediction(self, prediction, example, step):
        del step
        return self._mse(prediction, example["waveform"])

    def metrics(self, fmodel, weights, example):
        mse = self.outer_loss(fmodel, weights, example)
        return {"loss": mse, "psnr": waveform_psnr(mse)}

    def metrics_from_inner_loss(self, loss):
        if self.samples_per_step is not None:
            return None
        return {"loss": loss, "psnr": waveform_psnr(loss)}

    def validate_example(self, example, name="example"):
        waveform = example.get("waveform") if isinstance(example, dict) else None
        if waveform is None:
            raise ValueError(f"{name} must be a dict with a 'waveform' entry (float32 "
                             f"(num_samples,) in [-1, 1]).")
        shape = tuple(waveform.shape)
        if not shape or shape[-1] != self.num_samples:
            raise ValueError(f"{name}['waveform'] has shape {shape}; expected (..., "
                             f"{self.num_samples}) ({self.num_samples} mono samples).")
        values = np.asarray(waveform)
        if not bool(np.all(np.isfinite(values))):
            raise ValueError(f"{name}['waveform'] contains NaN or infinite values.")
        peak = float(np.max(np.abs(values)))
        if peak > 1.0 + 1e-6:
            raise ValueError(f"{name}['waveform'] reaches {peak:.4g}; expected amplitudes in "
                             "[-1, 1] (full scale).")
