"""WAV folders and files: reading policy, splits, and bad input named by file."""

import os
import struct
import wave

import numpy as np

from learnit_tf import testing
from learnit_tf.kinds.audio import AudioTask
from learnit_tf.kinds.audio.folder import (audio_folder_examples, fit_example,
                                           list_wav_files, load_waveform, read_wav,
                                           split_files)


def write_wav(path, samples, rate=8000, width=2):
    """Writes float samples in [-1, 1] ((frames,) or (frames, channels)) as PCM."""
    samples = np.asarray(samples, np.float64)
    if samples.ndim == 1:
        samples = samples[:, None]
    scale = {1: 127, 2: 32767, 4: 2**31 - 1}[width]
    ints = np.round(samples * scale).astype({1: np.int16, 2: "<i2", 4: "<i4"}[width])
    data = (ints + 128).astype(np.uint8).tobytes() if width == 1 else ints.tobytes()
    with wave.open(path, "wb") as f:
        f.setnchannels(samples.shape[1])
        f.setsampwidth(width)
        f.setframerate(rate)
        f.writeframes(data)
    return path


def tone(n, rate=8000, frequency=440.0, amplitude=0.5):
    return amplitude * np.sin(2 * np.pi * frequency * np.arange(n) / rate)


class AudioFolderTest(testing.TestCase):

    def setUp(self):
        super().setUp()
        self.dir = self.get_temp_dir()

    def test_pcm_widths_scale_to_full_range(self):
        samples = np.array([0.0, 0.5, -0.5, 0.25])
        for width, atol in ((1, 1 / 127), (2, 1 / 32767), (4, 1e-9)):
            path = write_wav(os.path.join(self.dir, f"w{width}.wav"), samples, width=width)
            rate, data = read_wav(path)
            self.assertEqual(rate, 8000)
            self.assertEqual(data.shape, (4, 1))
            self.assertAllClose(data[:, 0], samples, atol=atol)

    def test_24_bit_samples_are_sign_extended(self):
        path = os.path.join(self.dir, "w3.wav")
        values = np.array([0, 2**22, -(2**22), -1], np.int64)  # 0, 0.5, -0.5, -2^-23
        raw = b"".join(int(v % 2**24).to_bytes(3, "little") for v in values)
        with wave.open(path, "wb") as f:
            f.setnchannels(1)
            f.setsampwidth(3)
            f.setframerate(8000)
            f.writeframes(raw)
        self.assertAllClose(read_wav(path)[1][:, 0], [0.0, 0.5, -0.5, -2.0**-23], atol=0)

    def test_stereo_is_averaged_and_long_files_keep_their_first_samples(self):
        left, right = tone(300), tone(300, frequency=1000.0, amplitude=0.25)
        path = write_wav(os.path.join(self.dir, "stereo.wav"), np.stack([left, right], -1))
        waveform = load_waveform(path, 256, 8000)
        self.assertEqual(waveform.shape, (256,))
        self.assertEqual(waveform.dtype, np.float32)
        self.assertAllClose(waveform, ((left + right) / 2)[:256], atol=2 / 32767)

    def test_other_sample_rates_are_resampled_or_refused(self):
        # A 16 kHz 440 Hz tone read at 8 kHz is the 8 kHz 440 Hz tone (away from the edges).
        path = write_wav(os.path.join(self.dir, "fast.wav"), tone(4000, rate=16000), rate=16000)
        waveform = load_waveform(path, 1024, 8000)
        self.assertAllClose(waveform[100:900], tone(1024)[100:900], atol=0.01)
        with self.assertRaisesRegex(ValueError, r"fast\.wav' is sampled at 16000 Hz; expected "
                                                "8000 Hz"):
            load_waveform(path, 1024, 8000, resample=False)

    def test_bad_files_are_refused_naming_the_file(self):
        short = write_wav(os.path.join(self.dir, "short.wav"), tone(100))
        with self.assertRaisesRegex(ValueError, r"short\.wav' holds 100 samples at 8000 Hz "
                                                r"\(0\.013 s\); expected at least 256"):
            load_waveform(short, 256, 8000)
        empty = write_wav(os.path.join(self.dir, "empty.wav"), np.zeros((0, 1)))
        with self.assertRaisesRegex(ValueError, r"empty\.wav' holds 0 samples"):
            load_waveform(empty, 256, 8000)
        surround = write_wav(os.path.join(self.dir, "surround.wav"), np.zeros((300, 3)))
        with self.assertRaisesRegex(ValueError, r"surround\.wav' has 3 channels; expected mono "
                                                "or stereo"):
            load_waveform(surround, 256, 8000)
        text = os.path.join(self.dir, "notes.wav")
        with open(text, "w") as f:
            f.write("not audio")
        with self.assertRaisesRegex(ValueError, r"Cannot read '.*notes\.wav' as a WAV file"):
            load_waveform(text, 256, 8000)

    def test_float_wavs_with_nan_or_overshoot_are_refused(self):
        from scipy.io import wavfile  # pylint: disable=import-outside-toplevel
        good = os.path.join(self.dir, "float.wav")
        wavfile.write(good, 8000, tone(300).astype(np.float32))
        self.assertAllClose(load_waveform(good, 300, 8000), tone(300), atol=1e-7)
        nan = os.path.join(self.dir, "nan.wav")
        wavfile.write(nan, 8000, np.where(np.arange(300) == 7, np.nan, 0.1).astype(np.float32))
        with self.assertRaisesRegex(ValueError, r"nan\.wav' contains NaN or infinite samples"):
            load_waveform(nan, 256, 8000)
        loud = os.path.join(self.dir, "loud.wav")
        wavfile.write(loud, 8000, np.full(300, 1.5, np.float32))
        with self.assertRaisesRegex(ValueError, r"loud\.wav' has float samples reaching 1\.5"):
            load_waveform(loud, 256, 8000)

    def test_hash_split_is_deterministic_disjoint_and_never_empty(self):
        for i in range(5):
            write_wav(os.path.join(self.dir, f"clip{i}.wav"), tone(300, frequency=200.0 + 50 * i))
        train, test = split_files(self.dir, "train"), split_files(self.dir, "test")
        self.assertTrue(train and test)
        self.assertFalse(set(train) & set(test))
        self.assertEqual(len(train) + len(test), 5)
        self.assertEqual(split_files(self.dir, "validation"), test)
        ds = audio_folder_examples(self.dir, "test", num_samples=256, sample_rate=8000)
        waveforms = [ex["waveform"].numpy() for ex in ds]
        self.assertEqual(len(waveforms), len(test))
        self.assertAllClose(waveforms[0], load_waveform(test[0], 256, 8000))

    def test_train_and_test_subfolders_are_the_splits(self):
        for split, count in (("train", 3), ("test", 2)):
            os.makedirs(os.path.join(self.dir, split))
            for i in range(count):
                write_wav(os.path.join(self.dir, split, f"{split}{i}.wav"), tone(300))
        self.assertEqual([os.path.basename(f) for f in split_files(self.dir, "test")],
                         ["test0.wav", "test1.wav"])
        ds = audio_folder_examples(directory=self.dir, split="train", num_samples=256)
        self.assertEqual(len(list(ds)), 3)

    def test_empty_folder_and_bad_member_are_named(self):
        with self.assertRaisesRegex(ValueError, r"holds no WAV files"):
            audio_folder_examples(self.dir, "train", num_samples=256)
        with self.assertRaisesRegex(ValueError, "does not exist"):
            audio_folder_examples(os.path.join(self.dir, "missing"), "train")
        for i in range(3):
            write_wav(os.path.join(self.dir, f"ok{i}.wav"), tone(300))
        write_wav(os.path.join(self.dir, "tiny.wav"), tone(10))
        with self.assertRaisesRegex(ValueError, r"tiny\.wav' holds 10 samples"):
            # Whichever split holds tiny.wav refuses it, naming it.
            for split in ("train", "test"):
                list(audio_folder_examples(self.dir, split, num_samples=256))

    def test_fit_example_reads_at_the_task_rate_and_length(self):
        path = write_wav(os.path.join(self.dir, "mine.wav"), tone(600))
        task = AudioTask(num_samples=512, sample_rate=8000)
        fit_input = fit_example(path, task)
        self.assertIs(fit_input.task, task)
        self.assertEqual(fit_input.example["waveform"].shape, (512,))
        task.validate_example(fit_input.example)
        self.assertEqual(fit_input.observed[0][0], "target")
        self.assertIn("512 samples at 8000 Hz", fit_input.description)
        with self.assertRaisesRegex(ValueError, "directory"):
            fit_example(self.dir, task)


def write_extensible_pcm(path, ints, rate=8000, bits=16):
    """A WAVE_FORMAT_EXTENSIBLE PCM file written byte by byte (not by the library that
    reads it): the plain PCM samples behind a 40-byte fmt chunk with the PCM SubFormat."""
    ints = np.asarray(ints)
    ints = ints[:, None] if ints.ndim == 1 else ints
    channels, width = ints.shape[1], bits // 8
    if width == 3:
        raw = ints.astype("<i4").view(np.uint8).reshape(-1, 4)[:, :3].tobytes()
    else:
        raw = ints.astype({2: "<i2", 4: "<i4"}[width]).tobytes()
    pcm_guid = struct.pack("<IHH", 1, 0x0000, 0x0010) + bytes.fromhex("800000aa00389b71")
    fmt = struct.pack("<HHIIHHHHI", 0xFFFE, channels, rate, rate * channels * width,
                      channels * width, bits, 22, bits, (1 << channels) - 1) + pcm_guid
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack(
        "<I", len(raw)) + raw
    with open(path, "wb") as f:
        f.write(b"RIFF" + struct.pack("<I", len(body)) + body)
    return path


class AudioInputsTest(testing.TestCase):
    """Issue 26: folder listing, WAVE_FORMAT_EXTENSIBLE, truncation, long files."""

    def setUp(self):
        super().setUp()
        self.dir = self.get_temp_dir()

    def test_only_regular_visible_wav_files_are_signals(self):
        for name in ("a.wav", "b.wav"):
            write_wav(os.path.join(self.dir, name), tone(300))
        with open(os.path.join(self.dir, "._a.wav"), "wb") as f:
            f.write(b"\x00\x05\x16\x07" + b"\x00" * 200)  # An AppleDouble resource fork.
        write_wav(os.path.join(self.dir, ".hidden.wav"), tone(300))
        os.makedirs(os.path.join(self.dir, "sub.wav"))
        write_wav(os.path.join(self.dir, "sub.wav", "inner.wav"), tone(300))
        os.symlink(os.path.join(self.dir, "gone.wav"), os.path.join(self.dir, "dangling.wav"))
        os.symlink(os.path.join(self.dir, "b.wav"), os.path.join(self.dir, "link.wav"))
        self.assertEqual([os.path.basename(f) for f in list_wav_files(self.dir)],
                         ["a.wav", "b.wav", "link.wav"])
        signals = sum(len(list(audio_folder_examples(self.dir, s, num_samples=256)))
                      for s in ("train", "test"))
        self.assertEqual(signals, 3)
        junk = os.path.join(self.dir, "junk")
        os.makedirs(os.path.join(junk, "dir.wav"))
        os.symlink(os.path.join(junk, "nothing.wav"), os.path.join(junk, "broken.wav"))
        with open(os.path.join(junk, "._x.wav"), "wb") as f:
            f.write(b"\x00" * 10)
        with self.assertRaisesRegex(ValueError, r"junk' holds no WAV files \(regular, "
                                                "readable, not hidden"):
            audio_folder_examples(junk, "train", num_samples=256)

    def test_wave_format_extensible_pcm_is_plain_pcm(self):
        rng = np.random.RandomState(0)
        for bits in (16, 24, 32):
            with self.subTest(bits=bits):
                full = 2 ** (bits - 1)
                ints = rng.randint(-full, full, size=(400, 2), dtype=np.int64)
                path = write_extensible_pcm(os.path.join(self.dir, f"ext{bits}.wav"), ints,
                                            bits=bits)
                rate, data = read_wav(path)
                self.assertEqual(rate, 8000)
                self.assertAllEqual(data, ints / float(full))  # The file's own integers.
                self.assertAllClose(load_waveform(path, 400, 8000),
                                    (ints / float(full)).mean(axis=1), atol=1e-7)

    def test_truncated_wav_names_the_file_and_the_missing_bytes(self):
        path = write_wav(os.path.join(self.dir, "cut.wav"), tone(1000))
        with open(path, "rb") as f:
            data = f.read()
        with open(path, "wb") as f:
            f.write(data[:44 + 600])  # Header + 300 of the 1000 samples.
        with self.assertRaisesRegex(ValueError, r"cut\.wav' is truncated: its header declares "
                                                r"2000 bytes of samples but only 600 follow "
                                                r"\(1400 bytes missing"):
            load_waveform(path, 256, 8000)
        with open(path, "wb") as f:
            f.write(data[:30])  # Inside the fmt chunk.
        with self.assertRaisesRegex(ValueError, r"cut\.wav' is truncated: it ends before its "
                                                "'data' chunk"):
            read_wav(path)

    def test_long_files_decode_only_what_is_used_and_the_bound_is_checked_first(self):
        import tracemalloc  # pylint: disable=import-outside-toplevel
        hour = os.path.join(self.dir, "hour.wav")
        frames = 3600 * 8000
        ints = (np.arange(frames, dtype=np.int64) * 7919 % 65536 - 32768).astype("<i2")
        with wave.open(hour, "wb") as f:  # 57.6 MB: one hour of 8 kHz mono 16-bit.
            f.setnchannels(1)
            f.setsampwidth(2)
            f.setframerate(8000)
            f.writeframes(ints.tobytes())
        del ints
        tracemalloc.start()
        try:
            waveform = load_waveform(hour, 4096, 8000)
            used = tracemalloc.get_traced_memory()[1]
            tracemalloc.reset_peak()
            with self.assertRaisesRegex(ValueError, r"hour\.wav' would decode to 220 MiB "
                                                    r"\(28800000 frames × 1 channels as float64, "
                                                    r"3600 s at 8000 Hz\), over the 100 MiB "
                                                    r"bound; pass max_decoded_bytes="):
                read_wav(hour, max_decoded_bytes=100 * 2**20)
            refused = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        expected = (np.arange(4096) * 7919 % 65536 - 32768) / 32768.0
        self.assertAllEqual(waveform, expected.astype(np.float32))
        self.assertLess(used, 4 * 2**20)  # The whole file as float64 would be 220 MiB.
        self.assertLess(refused, 2**20)  # Refused from the header, nothing decoded.
        with self.assertRaisesRegex(ValueError, "over the 1 MiB bound"):
            load_waveform(hour, 8000 * 20, 8000, max_decoded_bytes=2**20)

    def test_resampling_a_prefix_equals_resampling_the_whole_file(self):
        from scipy.signal import resample_poly  # pylint: disable=import-outside-toplevel
        for rate in (11025, 44100, 6000):
            with self.subTest(rate=rate):
                samples = 0.4 * np.sin(np.arange(3 * rate) * 0.37) + 0.3 * np.sin(
                    np.arange(3 * rate) * 0.011)
                path = write_wav(os.path.join(self.dir, f"r{rate}.wav"), samples, rate=rate)
                _, whole = read_wav(path)
                divisor = np.gcd(rate, 8000)
                reference = resample_poly(whole[:, 0], 8000 // divisor, rate // divisor)
                self.assertAllClose(load_waveform(path, 4000, 8000), reference[:4000],
                                    atol=1e-6)
