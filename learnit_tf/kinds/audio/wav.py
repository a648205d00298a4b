"""Decoding WAV files: every PCM / float layout, truncation found, memory bounded.

- Decoded by soundfile (libsndfile): 8-bit (unsigned), 16-, 24-, 32-bit PCM scaled to
  [-1, 1] by the format's full scale (8-bit: (x - 128) / 128, else x / 2**(bits - 1)),
  IEEE float as stored (must be finite and within [-1, 1]), in the plain or the
  WAVE_FORMAT_EXTENSIBLE layout (which is the same PCM with a longer header).
- Truncation: libsndfile quietly reads what is there, so the RIFF chunks are walked
  first; a `data` chunk declaring more bytes than the file holds is refused, naming
  the file and how much is missing.
- Memory: the samples to decode are counted from the header before anything is
  decoded; more than `max_decoded_bytes` (default `MAX_DECODED_BYTES`, 256 MiB of
  float64 samples: 9 minutes of 44.1 kHz stereo, 70 minutes of 8 kHz mono) is refused
  with the number and the option to raise. `read_wav(path, max_frames=N)` decodes
  only the first N frames, so a one-hour file costs no more than the part used.
"""

import os
import struct

import numpy as np

#: Default bound on the float64 samples one read may decode (bytes).
MAX_DECODED_BYTES = 256 * 2**20
_STREAMING_SIZES = (0, 0xFFFFFFFF)  # Writers that did not know the length write these.


def check_riff(path):
    """Refuses a WAV file whose `data` chunk is cut short (ValueError naming the file).

    Non-RIFF files are left to the decoder (its error names the format problem).
    """
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return
        offset = 12
        while offset + 8 <= size:
            f.seek(offset)
            chunk_id, chunk_size = struct.unpack("<4sI", f.read(8))
            if chunk_id == b"data":
                available = size - offset - 8
                if chunk_size not in _STREAMING_SIZES and chunk_size > available:
                    raise ValueError(
                        f"WAV file {path!r} is truncated: its header declares {chunk_size} "
                        f"bytes of samples but only {available} follow ({chunk_size - available}"
                        " bytes missing; was the copy or the recording interrupted?).")
                return
            offset += 8 + chunk_size + (chunk_size & 1)  # Chunks are padded to even sizes.
    raise ValueError(f"WAV file {path!r} is truncated: it ends before its 'data' chunk "
                     "(no samples).")


def read_wav(path, max_frames=None, max_decoded_bytes=MAX_DECODED_BYTES):
    """(sample_rate, float64 (frames, channels) in [-1, 1]) of a WAV file.

    Args:
        path: WAV file (PCM or float, plain or WAVE_FORMAT_EXTENSIBLE).
        max_frames: decode only the first `max_frames` frames (None: all).
        max_decoded_bytes: refuse (from the header, before decoding) a read of more
            float64 samples than this many bytes.

    Raises:
        ValueError naming the file: unreadable or not a WAV file, truncated, over the
        memory bound, NaN/infinite or out-of-range float samples.
    """
    import soundfile  # pylint: disable=import-outside-toplevel
    path = os.fspath(path)
    try:
        check_riff(path)
        info = soundfile.info(path)
    except (OSError, RuntimeError, struct.error) as e:  # LibsndfileError is a RuntimeError.
        raise ValueError(f"Cannot read {path!r} as a WAV file (expected PCM or float WAV): "
                         f"{_reason(e)}") from e
    if info.format not in ("WAV", "WAVEX"):
        raise ValueError(f"Cannot read {path!r} as a WAV file: it is {info.format_info} "
                         "audio; expected a WAV file.")
    frames = info.frames if max_frames is None else min(info.frames, int(max_frames))
    needed = frames * info.channels * 8
    if needed > max_decoded_bytes:
        raise ValueError(
            f"WAV file {path!r} would decode to {needed / 2**20:.0f} MiB ({frames} frames × "
            f"{info.channels} channels as float64, {info.frames / info.samplerate:.0f} s at "
            f"{info.samplerate} Hz), over the {max_decoded_bytes / 2**20:.0f} MiB bound; "
            "pass max_decoded_bytes=... to allow it, or cut the file.")
    try:
        data, rate = soundfile.read(path, frames=frames, dtype="float64", always_2d=True)
    except (OSError, RuntimeError) as e:
        raise ValueError(f"Cannot read {path!r} as a WAV file: {_reason(e)}") from e
    if not np.all(np.isfinite(data)):
        raise ValueError(f"WAV file {path!r} contains NaN or infinite samples.")
    peak = float(np.max(np.abs(data))) if data.size else 0.0
    if peak > 1.0:
        raise ValueError(f"WAV file {path!r} has float samples reaching {peak:.4g}; expected "
                         "full scale [-1, 1].")
    return int(rate), data


def _reason(error):
    return str(error) or type(error).__name__
