"""A user's own folder of WAV files as a signal class, and one WAV file for `fit.py`.

Reading policy (every rule is tested in tests/kinds/audio/test_audio_folder.py):
- Formats: PCM WAV with 8-bit (unsigned), 16-, 24- or 32-bit (signed) samples, scaled
  to [-1, 1] by the format's full scale, and IEEE-float WAVs (values must be finite
  and within [-1, 1]), plain or WAVE_FORMAT_EXTENSIBLE (`learnit_tf.kinds.audio.wav`,
  soundfile). A truncated file is refused, naming it.
- Long files: only the samples used (the first `num_samples` at the task rate, plus
  the resampling filter's reach) are decoded, so an hour-long file costs no more than
  a short one; any read over `max_decoded_bytes` (default 256 MiB of float64) is
  refused from the header before decoding.
- Folders: the regular, readable `.wav` files directly in the folder are the signals;
  hidden files (names starting with ".", e.g. macOS `._*` resource forks),
  sub-directories and dangling symlinks are skipped.
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

import numpy as np
import tensorflow as tf

# The folder-split policy is shared by every kind's folder reader (CT, NeRF too).
from learnit_tf.data import files as image_files
from learnit_tf.kinds.audio.wav import MAX_DECODED_BYTES, read_wav  # noqa: F401

WAV_EXTENSIONS = (".wav",)


def load_waveform(path, num_samples, sample_rate, resample=True,
                  max_decoded_bytes=MAX_DECODED_BYTES):
    """A WAV file as float32 (num_samples,) in [-1, 1]: mono, at `sample_rate`, first samples.

    Args:
        path: WAV file.
        num_samples: samples to return (the file must hold at least this many at
            `sample_rate`).
        sample_rate: the rate the samples must be at (the init's task rate).
        resample: resample files at another rate (needs scipy); if False they are refused.
        max_decoded_bytes: bound on the float64 samples decoded (see `wav.read_wav`).

    Raises:
        ValueError: unreadable or truncated file, more than 2 channels, wrong rate with
            `resample=False`, too few samples, NaN, over the memory bound (see `read_wav`).
    """
    import soundfile  # pylint: disable=import-outside-toplevel
    try:
        rate = soundfile.info(os.fspath(path)).samplerate
    except (OSError, RuntimeError):
        rate = None  # read_wav gives the error naming the file.
    frames = None if rate is None else _frames_needed(num_samples, rate, sample_rate)
    rate, data = read_wav(path, max_frames=frames, max_decoded_bytes=max_decoded_bytes)
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


def _frames_needed(num_samples, rate, target_rate):
    """Frames at `rate` whose resampling gives the first `num_samples` at `target_rate`
    exactly as resampling the whole file would: scipy's resample_poly filter reaches
    10·max(up, down) upsampled samples to each side, i.e. 10·max(up, down)/up input frames."""
    if rate == target_rate:
        return int(num_samples)
    divisor = math.gcd(int(rate), int(target_rate))
    up, down = target_rate // divisor, rate // divisor
    reach = -(-10 * max(up, down) // up) + 2
    return -(-int(num_samples) * down // up) + reach + 1


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
    """Sorted regular, readable WAV files directly inside `directory` (hidden files such as
    `._x.wav` resource forks, sub-directories and dangling symlinks are skipped)."""
    if not os.path.isdir(directory):
        raise ValueError(f"Audio folder {directory!r} does not exist or is not a directory.")
    files = sorted(os.path.join(directory, f) for f in os.listdir(directory)
                   if f.lower().endswith(WAV_EXTENSIONS) and not f.startswith(".")
                   and os.path.isfile(os.path.join(directory, f))  # Follows symlinks.
                   and os.access(os.path.join(directory, f), os.R_OK))
    if not files:
        raise ValueError(f"Audio folder {directory!r} holds no WAV files (regular, readable, "
                         f"not hidden files with extensions {WAV_EXTENSIONS}).")
    return files


def split_files(directory, split, test_fraction=0.1):
    """The WAV files of `split` of an audio folder, by the policy every kind's folder uses
    (`learnit_tf.data.files.split_entries`: train/ and test/ subfolders, else a
    name-hash split with at least one file in each split when there are two or more)."""
    return image_files.split_entries(directory, split, list_wav_files, test_fraction,
                                     "WAV files")


def audio_folder_examples(directory, split="train", num_samples=4096, sample_rate=8000,
                          test_fraction=0.1, resample=True, max_decoded_bytes=MAX_DECODED_BYTES):
    """Unbatched examples {"waveform": float32 (num_samples,)} from a folder of WAV files.

    Args:
        directory: folder of WAV files, or with `train/` and `test/` subfolders of them.
        split: "train", "validation" or "test" ("validation" is the test split).
        num_samples: samples per clip (the first ones of each file).
        sample_rate: rate of the returned samples (files at other rates are resampled).
        test_fraction: share of files (by name hash) in the test split, without subfolders.
        resample: see `load_waveform`.
        max_decoded_bytes: bound on the samples decoded per file (see `wav.read_wav`).

    Example:

    >>> ds = audio_folder_examples("my_wavs", "train", num_samples=4096)  # doctest: +SKIP
    """
    files = split_files(directory, split, test_fraction)
    waveforms = np.stack([load_waveform(f, num_samples, sample_rate, resample, max_decoded_bytes)
                          for f in files])
    return tf.data.Dataset.from_tensor_slices({"waveform": waveforms})


def fit_example(path, task, resample=True, max_decoded_bytes=MAX_DECODED_BYTES):
    """`scripts/fit.py --input=FILE.wav` for an audio init: a `FitInput` of {"waveform"}.

    The file is read at the init's task rate and length (`load_waveform`). fit.py draws
    pictures, so `observed` and `render` give the waveform as a picture
    (`waveform_picture`); the fitted waveform itself is `task.render`.
    """
    # pylint: disable=import-outside-toplevel
    from learnit_tf.kinds.audio.plots import waveform_picture
    from learnit_tf.kinds.audio.task import AudioTask
    from learnit_tf.core.fit_input import FitInput
    if not isinstance(task, AudioTask):
        raise ValueError(f"WAV inputs need an AudioTask init, got {type(task).__name__}.")
    if os.path.isdir(path):
        raise ValueError(f"--input={path!r} is a directory; an audio init fits one WAV file.")
    waveform = load_waveform(path, task.num_samples, task.sample_rate, resample,
                             max_decoded_bytes)
    example = {"waveform": waveform}
    if task.samples_per_step is not None:
        example["seed"] = np.zeros(2, np.int32)  # The random sample subsets of the fit.
    return FitInput(task, example, observed=[("target", waveform_picture(waveform))],
                    render=lambda fmodel, weights: waveform_picture(
                        task.render(fmodel, weights).numpy()),
                    description=f"{task.num_samples} samples at {task.sample_rate} Hz "
                                f"({task.duration_seconds:.3f} s) of {os.path.basename(path)}")
