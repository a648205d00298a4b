"""AudioTask: time grid convention, shapes, loss, PSNR definition, bad examples."""

import json

import keras
import numpy as np
import tensorflow as tf

from learnit_tf import testing
from learnit_tf.kinds.audio import AudioTask, time_grid, waveform_psnr
from learnit_tf.kinds.audio.plots import loudest_window, waveform_picture
from learnit_tf.models import Siren
from learnit_tf.models.functional import FunctionalModel


def _time_identity_model():
    """A network whose output is its input coordinate: f(t) = t."""
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(
        1, kernel_initializer="ones", bias_initializer="zeros")])
    return FunctionalModel(model)


class AudioTaskTest(testing.TestCase):

    def test_time_grid_is_i_over_n_in_zero_one(self):
        grid = time_grid(4)
        self.assertEqual(grid.shape, (4, 1))
        self.assertEqual(grid.dtype, np.float32)
        np.testing.assert_array_equal(grid[:, 0], [0.0, 0.25, 0.5, 0.75])

    def test_sample_i_is_predicted_at_t_i(self):
        # f(t) = t renders the ramp i / N exactly: a reversed grid (1 - t), a [-1, 1) grid
        # or a half-sample offset would each leave a non-zero loss.
        n = 16
        task = AudioTask(num_samples=n, sample_rate=100)
        fmodel = _time_identity_model()
        weights = fmodel.initial_weights()
        ramp = np.arange(n, dtype=np.float32) / n
        np.testing.assert_allclose(task.render(fmodel, weights).numpy(), ramp, atol=1e-7)
        loss = float(task.outer_loss(fmodel, weights, {"waveform": ramp}))
        self.assertLess(loss, 1e-12)
        for wrong in (ramp[::-1], 2.0 * ramp - 1.0, ramp + 0.5 / n):
            self.assertGreater(float(task.outer_loss(fmodel, weights, {"waveform": wrong})),
                               (0.5 / n) ** 2 * 0.99)

    def test_psnr_is_on_the_peak_to_peak_2_range(self):
        # PSNR = 10 log10(2^2 / MSE): silence against a full-scale sine (MSE 1/2) is
        # 10 log10(8) = 9.031 dB; an error of 0.02 everywhere is 10 log10(4 / 4e-4) = 40 dB.
        self.assertAllClose(float(waveform_psnr(0.5)), 10 * np.log10(8.0), atol=1e-5)
        self.assertAllClose(float(waveform_psnr(4e-4)), 40.0, atol=1e-4)
        n = 64
        task = AudioTask(num_samples=n)
        fmodel = _time_identity_model()
        weights = [tf.zeros((1, 1)), tf.zeros((1,))]  # Silence.
        sine = np.sin(2 * np.pi * 4 * np.arange(n) / n).astype(np.float32)
        metrics = task.metrics(fmodel, weights, {"waveform": sine})
        self.assertAllClose(float(metrics["loss"]), 0.5, atol=1e-6)
        self.assertAllClose(float(metrics["psnr"]), 9.0309, atol=1e-3)
        self.assertAllClose(float(task.metrics_from_inner_loss(metrics["loss"])["psnr"]),
                            float(metrics["psnr"]), atol=1e-6)

    def test_shapes_and_losses_with_siren(self):
        task = AudioTask(num_samples=32, sample_rate=1000)
        fmodel = FunctionalModel(Siren(in_features=1, out_features=1, output_offset=0.0,
                                       width=16, depth=3, w0=30.0, seed=0))
        weights = fmodel.initial_weights()
        self.assertEqual(tuple(task.render(fmodel, weights).shape), (32,))
        example = {"waveform": np.linspace(-0.5, 0.5, 32).astype(np.float32)}
        inner = task.inner_loss(fmodel, weights, example, tf.constant(0))
        shared = task.inner_loss_from_prediction(task.shared_prediction(fmodel, weights),
                                                 example, tf.constant(0))
        self.assertTrue(task.has_shared_prediction())
        self.assertAllClose(float(inner), float(shared), rtol=1e-6)
        self.assertAllClose(float(inner), float(task.outer_loss(fmodel, weights, example)))

    def test_sample_subsets_per_step(self):
        task = AudioTask(num_samples=64, samples_per_step=8)
        self.assertFalse(task.has_shared_prediction())
        self.assertIsNone(task.metrics_from_inner_loss(tf.constant(1.0)))
        fmodel = _time_identity_model()
        weights = fmodel.initial_weights()
        ramp = np.arange(64, dtype=np.float32) / 64
        example = {"waveform": ramp, "seed": np.array([0, 3], np.int32)}
        # The subset is drawn from the same grid, so f(t) = t still fits exactly ...
        self.assertLess(float(task.inner_loss(fmodel, weights, example, tf.constant(2))), 1e-12)
        # ... and different steps draw different samples of a non-ramp target.
        noise = dict(example, waveform=np.random.RandomState(0).uniform(-1, 1, 64).astype(
            np.float32))
        losses = {round(float(task.inner_loss(fmodel, weights, noise, tf.constant(k))), 6)
                  for k in range(4)}
        self.assertGreater(len(losses), 1)

    def test_config_round_trip(self):
        task = AudioTask(num_samples=128, sample_rate=4000, samples_per_step=32)
        config = json.loads(json.dumps(task.get_config()))
        self.assertEqual(config, {"num_samples": 128, "sample_rate": 4000,
                                  "samples_per_step": 32})
        self.assertEqual(AudioTask(**config).get_config(), config)
        self.assertAlmostEqual(task.duration_seconds, 0.032)

    def test_bad_arguments_and_examples(self):
        with self.assertRaisesRegex(ValueError, "num_samples must be >= 2"):
            AudioTask(num_samples=1)
        with self.assertRaisesRegex(ValueError, "sample_rate must be >= 1"):
            AudioTask(num_samples=8, sample_rate=0)
        task = AudioTask(num_samples=8)
        good = np.zeros(8, np.float32)
        task.validate_example({"waveform": good})
        with self.assertRaisesRegex(ValueError, "clip 3 must be a dict with a 'waveform'"):
            task.validate_example({"image": good}, name="clip 3")
        with self.assertRaisesRegex(ValueError, r"clip\['waveform'\] has shape \(9,\); "
                                                r"expected \(\.\.\., 8\)"):
            task.validate_example({"waveform": np.zeros(9, np.float32)}, name="clip")
        with self.assertRaisesRegex(ValueError, "NaN or infinite"):
            task.validate_example({"waveform": np.where(np.arange(8) == 2, np.nan, 0.0)})
        with self.assertRaisesRegex(ValueError, "reaches 1.5; expected amplitudes in"):
            task.validate_example({"waveform": np.full(8, -1.5)})

    def test_waveform_picture_puts_positive_amplitudes_on_top(self):
        picture = waveform_picture(np.full(100, 0.9), height=21, width=10)
        self.assertEqual(picture.shape, (21, 10))
        inked_rows = np.nonzero(picture.min(axis=1) == 0.0)[0]
        np.testing.assert_array_equal(inked_rows, [1])  # Row 0 is +1, row 20 is -1.
        self.assertEqual(float(picture.min()), 0.0)
        self.assertEqual(float(picture.max()), 1.0)

    def test_loudest_window_skips_leading_silence(self):
        clip = np.zeros(100)
        clip[60:70] = 0.5
        self.assertEqual(loudest_window(clip, 10), 60)
        self.assertEqual(loudest_window(clip, 500), 0)  # longer than the clip: all of it
