"""`procedural_audio`: notes and chords with harmonics and ADSR envelopes (no download).

An offline audio class for meta-learning, in the spirit of the image kind's
procedural Text class. Each clip holds one to three note events; an event is a
single note or a chord (a major/minor triad or a dyad) of harmonic tones: a
fundamental between MIDI 43 and 79 (98–784 Hz) with overtones whose amplitudes decay
geometrically, random phases, and no partial above 0.9 × Nyquist (no aliasing).
Every event has an attack–decay–sustain–release envelope. The clip is scaled to a
random peak in [0.5, 0.95], so waveforms lie in [-1, 1].

Example `i` of a split is drawn from `numpy.random.RandomState((seed, split_index, i))`,
so the dataset is deterministic by seed, independent of generation order, and the
splits (different `split_index`) never share a random stream.
"""

import dataclasses

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from learnit_tf.data.procedural_builders import (SPLIT_NAMES, ProceduralBuilder,
                                                 ProceduralConfig, prepare_procedural_builder)

#: Chord shapes in semitones above the root (single note, dyads, triads).
CHORDS = ((0,), (0,), (0, 7), (0, 4, 7), (0, 3, 7), (0, 5), (0, 4))
MIDI_RANGE = (43, 79)
#: The top note (MIDI 79, 784 Hz) must lie below 0.9 × Nyquist.
MIN_SAMPLE_RATE = 2000


def midi_to_hz(note):
    return 440.0 * 2.0 ** ((np.asarray(note, np.float64) - 69.0) / 12.0)


def adsr_envelope(num_samples, sample_rate, onset, length, attack, decay, sustain, release):
    """Piecewise-linear ADSR envelope (float64 (num_samples,)); times in seconds.

    0 before `onset`; rises to 1 over `attack`, falls to `sustain` over `decay`, holds
    until `onset + length`, then falls to 0 over `release`.
    """
    t = np.arange(num_samples) / sample_rate - onset
    rise = np.clip(t / attack, 0.0, 1.0)
    fall = 1.0 - (1.0 - sustain) * np.clip((t - attack) / decay, 0.0, 1.0)
    held = np.where(t < attack, rise, fall)
    release_gain = 1.0 - np.clip((t - length) / release, 0.0, 1.0)
    return np.where(t < 0.0, 0.0, held * release_gain)


def harmonic_tone(rng, frequency, num_samples, sample_rate):
    """A tone at `frequency` Hz with geometrically decaying overtones below 0.9 × Nyquist."""
    t = np.arange(num_samples) / sample_rate
    decay = rng.uniform(0.25, 0.75)
    max_harmonic = max(1, int(0.45 * sample_rate / frequency))
    num_harmonics = min(max_harmonic, rng.randint(1, 9))
    tone = np.zeros(num_samples)
    for k in range(1, num_harmonics + 1):
        tone += decay ** (k - 1) * np.sin(2.0 * np.pi * k * frequency * t + rng.uniform(0, 2 * np.pi))
    return tone


def render_clip(rng, num_samples, sample_rate):
    """One random clip of note events as float32 (num_samples,) in [-1, 1]."""
    if sample_rate < MIN_SAMPLE_RATE:
        raise ValueError(f"procedural_audio needs a sample rate of at least {MIN_SAMPLE_RATE} "
                         f"Hz (notes up to 784 Hz without aliasing), got {sample_rate}.")
    duration = num_samples / sample_rate
    clip = np.zeros(num_samples)
    for _ in range(rng.randint(1, 4)):
        root = rng.randint(MIDI_RANGE[0], MIDI_RANGE[1] - 7 + 1)
        chord = CHORDS[rng.randint(len(CHORDS))]
        onset = rng.uniform(0.0, 0.6) * duration
        envelope = adsr_envelope(
            num_samples, sample_rate, onset=onset,
            length=rng.uniform(0.2, 1.0) * duration,
            attack=rng.uniform(0.005, 0.05), decay=rng.uniform(0.02, 0.15),
            sustain=rng.uniform(0.3, 0.9), release=rng.uniform(0.03, 0.2))
        event = sum(harmonic_tone(rng, float(midi_to_hz(root + interval)), num_samples,
                                  sample_rate) for interval in chord)
        clip += rng.uniform(0.4, 1.0) * envelope * event
    peak = np.max(np.abs(clip))
    clip *= rng.uniform(0.5, 0.95) / peak
    return clip.astype(np.float32)


@dataclasses.dataclass
class ProceduralAudioConfig(ProceduralConfig):
    """Clip length and sample rate of a `procedural_audio` config (and its split sizes)."""

    num_samples: int = 4096
    sample_rate: int = 8000


class ProceduralAudio(ProceduralBuilder):
    """Procedural notes and chords with harmonics and ADSR envelopes."""

    BUILDER_CONFIGS = [
        ProceduralAudioConfig(name="paper", description="16384 samples at 16 kHz (1.02 s), "
                              "10,000 clips, for an accelerator.", num_samples=16384,
                              sample_rate=16000, num_train=9000, num_validation=500,
                              num_test=500),
        ProceduralAudioConfig(name="cpu", description="4096 samples at 8 kHz (0.51 s), for "
                              "CPU meta-training (the cost of a 64×64 image).",
                              num_samples=4096, sample_rate=8000, num_train=2000,
                              num_validation=100, num_test=100),
        ProceduralAudioConfig(name="small", description="512 samples at 2 kHz, a few clips, "
                              "for tests.", num_samples=512, sample_rate=2000, num_train=64,
                              num_validation=16, num_test=16),
    ]
    DEFAULT_CONFIG_NAME = "cpu"

    def _features(self):
        return {"waveform": tfds.features.Tensor(shape=(self.builder_config.num_samples,),
                                                 dtype=np.float32)}

    def _metadata(self):
        return tfds.core.MetadataDict(sample_rate=self.builder_config.sample_rate)

    def _example(self, split, index):
        cfg = self.builder_config
        rng = np.random.RandomState(list(self.example_seed(split, index)))
        return {"waveform": render_clip(rng, cfg.num_samples, cfg.sample_rate)}


def procedural_audio_examples(split, config="cpu", data_dir=None):
    """The `procedural_audio` split as unbatched examples {"waveform": float32 (N,)}.

    Generated on this machine on first use (`prepare_procedural_builder`).

    Example:

    >>> ds = procedural_audio_examples("test", config="small")  # doctest: +SKIP
    >>> next(iter(ds))["waveform"].shape  # doctest: +SKIP
    TensorShape([512])
    """
    builder = prepare_procedural_builder(ProceduralAudio, config, data_dir, split=split)
    if split not in builder.info.splits:
        raise ValueError(f"Unknown split {split!r} for dataset {builder.name!r}; "
                         f"expected one of {sorted(builder.info.splits)}.")
    ds = builder.as_dataset(split=split, shuffle_files=False)
    return ds.map(lambda ex: {"waveform": tf.cast(ex["waveform"], tf.float32)},
                  num_parallel_calls=tf.data.AUTOTUNE)
