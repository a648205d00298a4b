"""procedural_audio: deterministic by seed, disjoint splits, waveforms in [-1, 1]."""

import numpy as np

from learnit_tf import testing
from learnit_tf.kinds.audio import procedural
from learnit_tf.kinds.audio.procedural import (ProceduralAudio, adsr_envelope, harmonic_tone,
                                               procedural_audio_examples, render_clip)


class ProceduralAudioTest(testing.TestCase):

    def test_clips_are_deterministic_by_seed_and_in_range(self):
        a = render_clip(np.random.RandomState([0, 0, 5]), 512, 2000)
        b = render_clip(np.random.RandomState([0, 0, 5]), 512, 2000)
        c = render_clip(np.random.RandomState([1, 0, 5]), 512, 2000)
        np.testing.assert_array_equal(a, b)
        self.assertGreater(float(np.max(np.abs(a - c))), 0.1)
        self.assertEqual(a.dtype, np.float32)
        for clip in (a, c):
            peak = float(np.max(np.abs(clip)))
            self.assertGreaterEqual(peak, 0.5 - 1e-6)
            self.assertLessEqual(peak, 0.95 + 1e-6)

    def test_adsr_envelope_shape(self):
        rate = 1000
        env = adsr_envelope(1000, rate, onset=0.1, length=0.5, attack=0.1, decay=0.1,
                            sustain=0.5, release=0.2)
        self.assertEqual(float(env[50]), 0.0)          # before the onset
        self.assertAllClose(env[150], 0.5, atol=1e-9)  # half-way up the attack
        self.assertAllClose(env[200], 1.0, atol=1e-9)  # peak
        self.assertAllClose(env[400], 0.5, atol=1e-9)  # sustain
        self.assertAllClose(env[700], 0.25, atol=1e-9)  # half-way through the release
        self.assertEqual(float(env[900]), 0.0)         # released

    def test_tones_have_no_partial_above_nyquist_margin(self):
        rate, n = 2000, 2000
        tone = harmonic_tone(np.random.RandomState(3), 700.0, n, rate)
        spectrum = np.abs(np.fft.rfft(tone))
        freqs = np.fft.rfftfreq(n, 1.0 / rate)
        self.assertGreater(spectrum[freqs == 700.0][0], 100.0)
        self.assertLess(float(spectrum[freqs > 0.9 * rate / 2].max()), 1e-6 * spectrum.max())

    def test_builder_splits_deterministic_and_disjoint(self):
        data_dir = self.get_temp_dir()
        splits = {name: np.stack([ex["waveform"].numpy() for ex in procedural_audio_examples(
            name, config="small", data_dir=data_dir)]) for name in ("train", "validation", "test")}
        self.assertEqual(splits["train"].shape, (64, 512))
        self.assertEqual(splits["test"].shape, (16, 512))
        flat = {name: {clip.tobytes() for clip in arr} for name, arr in splits.items()}
        # Example i of a split is render_clip(RandomState((seed, split_index, i))); TFDS
        # stores the examples in a key-hash order, so compare the sets.
        expected_test = {render_clip(np.random.RandomState([0, 2, i]), 512, 2000).tobytes()
                         for i in range(16)}
        self.assertEqual(flat["test"], expected_test)
        self.assertEqual(len(flat["train"]), 64)  # no duplicate clips
        self.assertFalse(flat["train"] & flat["test"])
        self.assertFalse(flat["train"] & flat["validation"])
        self.assertFalse(flat["validation"] & flat["test"])
        again = np.stack([ex["waveform"].numpy() for ex in procedural_audio_examples(
            "test", config="small", data_dir=data_dir)])
        np.testing.assert_array_equal(again, splits["test"])
        builder = ProceduralAudio(config="small", data_dir=data_dir)
        self.assertEqual(builder.info.metadata["sample_rate"], 2000)

    def test_bad_config_and_split(self):
        with self.assertRaisesRegex(ValueError, "sample rate of at least 2000 Hz"):
            render_clip(np.random.RandomState(0), 256, 1000)
        with self.assertRaisesRegex(ValueError, "Unknown procedural_audio config 'tiny'"):
            procedural_audio_examples("train", config="tiny", data_dir=self.get_temp_dir())
        self.assertEqual([c.name for c in ProceduralAudio.BUILDER_CONFIGS],
                         ["paper", "cpu", "small"])
        self.assertEqual(procedural.SPLIT_NAMES, ("train", "validation", "test"))
