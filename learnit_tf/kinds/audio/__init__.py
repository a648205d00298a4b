"""The audio kind: 1D waveform regression (time -> amplitude), as in SIREN's audio fits.

A SIREN maps time (the grid t_i = i / N in [0, 1), see `time_grid`) to a mono
waveform in [-1, 1]; the measurement is the identity and PSNR is on the [-1, 1]
range (peak-to-peak 2). Modules: `task` (`AudioTask`), `procedural` (the
`procedural_audio` TFDS builder: notes and chords), `folder` (a folder of your own
WAV files), `evaluation` (the image-style protocol), `kind` (registration).
"""

from learnit_tf.kinds.audio.procedural import ProceduralAudio, procedural_audio_examples
from learnit_tf.kinds.audio.task import AudioTask, time_grid, waveform_psnr

__all__ = ["AudioTask", "time_grid", "waveform_psnr", "ProceduralAudio",
           "procedural_audio_examples"]
