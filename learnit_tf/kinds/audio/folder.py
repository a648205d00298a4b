"""A user's own folder of WAV files as a signal class, and one WAV file for `fit.py`.

Reading policy (every rule is tested in tests/kinds/audio/test_audio_folder.py):
- Formats: PCM WAV with 8-bit (unsigned), 16-, 24- or 32-bit (signed) samples, read
  with Python's `wave` module and scaled to [-1, 1] by the format's full scale;
  IEEE-float WAVs are read with scipy when it is installed (values must be finite
  and within [-1, 1]).
- Channels: mono, or stereo averaged to mono; more channels are refused.
- Sample rate: a file at another rate is resampled to the task's rate (polyphase,
  `scipy.signal.resample_poly`) with `resample=True` (the default, needs scipy), or
  refused with `resample=False`.
- Length: the first `num_samples` samples (after resampling) are used; a file with
  fewer samples is refused — padding with silence would fit a different signal.
- Splits: `train/` and `test/` subfolders are the splits when both exist; otherwise a
  deterministic hash of each file name puts ~`test_fraction` of the files in the test
  split, and at least one in each split when the folder has two or more files, so a
  small folder never has an empty test split (the policy of every kind's folders).
  "validation" is the `validation/` subfolder if present, else the test split.
Every refusal is a ValueError naming the file and what was expected.
"""

import math
import os
import wave

import numpy as np
import tensorflow as tf

# The folder-split policy is shared by every kind's folder reader (CT, NeRF too).
from learnit_tf.data import files as image_files

WAV_EXTENSIONS = (".wav",)


def _pcm_to_float(frames, sample_width, path):
    """Interleaved PCM bytes -> float64 in [-1, 1] by the format's full scale."""
    if sample_width == 1:  # 8-bit WAV is unsigned, centred on 128.
        return (np.frombuffer(frames, np.uint8).astype(np.float64) - 128.0) / 128.0
    if sample_width == 2:
        return np.frombuffer(frames, "<i2").astype(np.float64) / 2.0**15
    if sample_width == 3:  # Little-endian 24-bit: widen to int32 with sign extension.
        raw = np.frombuffer(frames, np.uint8).reshape(-1, 3).astype(np.int32)
        values = raw[:, 0] | (raw[:, 1] << 8) | (raw[:, 2] << 16)
        values = np.where(values >= 2**23, values - 2**24, values)
        return values.astype(np.float64) / 2.0**23
    if sample_width == 4:
        return np.frombuffer(frames, "<i4").astype(np.float64) / 2.0**31
    raise ValueError(f"WAV file {path!r} has {8 * sample_width}-bit samples; expected 8-, 16-, "
                     "24- or 32-bit PCM.")


def _read_float_wav(path, error):
    """An IEEE-float WAV through scipy (the `wave` module reads PCM only)."""
    try:
        from scipy.io import wavfile  # pylint: disable=import-outside-toplevel
    except ImportError:
        raise ValueError(f"Cannot read {path!r} as a PCM WAV file ({error}); float WAVs need "
                         "scipy (pip install scipy) or conversion to 16-bit PCM.") from error
    try:
        rate, data = wavfile.read(path)
    except (ValueError, OSError) as e:
        raise ValueError(f"Cannot read {path!r} as a WAV file: {e}") from e
    if not np.issubdtype(data.dtype, np.floating):
        raise ValueError(f"Cannot read {path!r} as a WAV file: {error}") from error
    data = data.astype(np.float64)
    return rate, data.reshape(data.shape[0], -1)


def read_wav(path):
    """(sample_rate, float64 (frames, channels) in [-1, 1]) of a WAV file, unchanged otherwise.

    Raises:
        ValueError: unreadable or non-WAV file, unsupported sample width, NaN/infinite
            or out-of-range float samples.
    """
    try:
        with wave.open(path, "rb") as f:
            channels, width, rate = f.getnchannels(), f.getsampwidth(), f.getframerate()
            frames = f.readframes(f.getnframes())
    except wave.Error as e:
        if "unknown format: 3" in str(e):  # WAVE_FORMAT_IEEE_FLOAT
            rate, data = _read_float_wav(path, e)
        else:
            raise ValueError(f"Cannot read {path!r} as a WAV file (expected PCM WAV): {e}") from e
    except (OSError, EOFError) as e:
        raise ValueError(f"Cannot read {path!r} as a WAV file (expected PCM WAV): {e}") from e
    else:
        data = _pcm_to_float(frames, width, path)
        if data.size % channels:
            raise ValueError(f"WAV file {path!r} is truncated: {data.size} samples do not fill "
                             f"whole frames of {channels} channels.")
        data = data.reshape(-1, channels)
    if not np.all(np.isfinite(data)):
        raise ValueError(f"WAV file {path!r} contains NaN or infinite samples.")
    peak = float(np.max(np.abs(data))) if data.size else 0.0
    if peak > 1.0:
        raise ValueError(f"WAV file {path!r} has float samples reaching {peak:.4g}; expected "
                         "full scale [-1, 1].")
    return int(rate), data


def load_waveform(path, num_samples, sample_rate, resample=True):
    """A WAV file as float32 (num_samples,) in [-1, 1]: mono, at `sample_rate`, first samples.

    Args:
        path: WAV file.
        num_samples: samples to return (the file must hold at least this many at
            `sample_rate`).
        sample_rate: the rate the samples must be at (the init's task rate).
        resample: resample files at another rate (needs scipy); if False they are refused.

    Raises:
        ValueError: unreadable file, more than 2 channels, wrong rate with
            `resample=False`, too few samples, NaN (see `read_wav`).
    """
    rate, data = read_wav(path)
    if data.shape[1] not in (1, 2):
        raise ValueError(f"WAV file {path!r} has {data.shape[1]} channels; expected mono or "
                         "stereo (stereo is averaged to mono).")
    mono = data.mean(axis=1)
    if rate != sample_rate:
        if not resample:
            raise ValueError(f"WAV file {path!r} is sampled at {rate} Hz; expected "
                             f"{sample_rate} Hz (or pass resample=True).")
        mono = _resample(mono, rate, sample_rate, path)
    if mono.shape[0] < num_samples:
        raise ValueError(f"WAV file {path!r} holds {mono.shape[0]} samples at {sample_rate} Hz "
                         f"({mono.shape[0] / sample_rate:.3f} s); expected at least "
                         f"{num_samples} ({num_samples / sample_rate:.3f} s).")
    # Polyphase filtering can overshoot full scale by a hair on clipped input.
    return np.clip(mono[:num_samples], -1.0, 1.0).astype(np.float32)


def _resample(mono, rate, target_rate, path):
    try:
        from scipy.signal import resample_poly  # pylint: disable=import-outside-toplevel
    except ImportError as e:
        raise ValueError(f"WAV file {path!r} is sampled at {rate} Hz, not {target_rate} Hz; "
                         "resampling needs scipy (pip install scipy), or convert the file."
                         ) from e
    divisor = math.gcd(int(rate), int(target_rate))
    return resample_poly(mono, target_rate // divisor, rate // divisor)


def list_wav_files(directory):
    """Sorted WAV files directly inside `directory`."""
    if not os.path.isdir(directory):
        raise ValueError(f"Audio folder {directory!r} does not exist or is not a directory.")
    files = sorted(os.path.join(directory, f) for f in os.listdir(directory)
                   if f.lower().endswith(WAV_EXTENSIONS))
    if not files:
        raise ValueError(f"Audio folder {directory!r} holds no WAV files (extensions "
                         f"{WAV_EXTENSIONS}).")
    return files


def split_files(directory, split, test_fraction=0.1):
    """The WAV files of `split` of an audio folder, by the policy every kind's folder uses
    (`learnit_tf.data.files.split_entries`: train/ and test/ subfolders, else a
    name-hash split with at least one file in each split when there are two or more)."""
    return image_files.split_entries(directory, split, list_wav_files, test_fraction,
                                     "WAV files")


def audio_folder_examples(directory, split="train", num_samples=4096, sample_rate=8000,
                          test_fraction=0.1, resample=True):
    """Unbatched examples {"waveform": float32 (num_samples,)} from a folder of WAV files.

    Args:
        directory: folder of WAV files, or with `train/` and `test/` subfolders of them.
        split: "train", "validation" or "test" ("validation" is the test split).
        num_samples: samples per clip (the first ones of each file).
        sample_rate: rate of the returned samples (files at other rates are resampled).
        test_fraction: share of files (by name hash) in the test split, without subfolders.
        resample: see `load_waveform`.

    Example:

    >>> ds = audio_folder_examples("my_wavs", "train", num_samples=4096)  # doctest: +SKIP
    """
    files = split_files(directory, split, test_fraction)
    waveforms = np.stack([load_waveform(f, num_samples, sample_rate, resample) for f in files])
    return tf.data.Dataset.from_tensor_slices({"waveform": waveforms})


def fit_example(path, task, resample=True):
    """`scripts/fit.py --input=FILE.wav` for an audio init: a `FitInput` of {"waveform"}.

    The file is read at the init's task rate and length (`load_waveform`). fit.py draws
    pictures, so `observed` and `render` give the waveform as a picture
    (`waveform_picture`); the fitted waveform itself is `task.render`.
    """
    # pylint: disable=import-outside-toplevel
    from learnit_tf.kinds.audio.plots import waveform_picture
    from learnit_tf.kinds.audio.task import AudioTask
    from learnit_tf.kinds.fit_input import FitInput
    if not isinstance(task, AudioTask):
        raise ValueError(f"WAV inputs need an AudioTask init, got {type(task).__name__}.")
    if os.path.isdir(path):
        raise ValueError(f"--input={path!r} is a directory; an audio init fits one WAV file.")
    waveform = load_waveform(path, task.num_samples, task.sample_rate, resample)
    example = {"waveform": waveform}
    if task.samples_per_step is not None:
        example["seed"] = np.zeros(2, np.int32)  # The random sample subsets of the fit.
    return FitInput(task, example, observed=[("target", waveform_picture(waveform))],
                    render=lambda fmodel, weights: waveform_picture(
                        task.render(fmodel, weights).numpy()),
                    description=f"{task.num_samples} samples at {task.sample_rate} Hz "
                                f"({task.duration_seconds:.3f} s) of {os.path.basename(path)}")
