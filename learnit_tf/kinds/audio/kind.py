"""Registers the audio kind."""

from learnit_tf.kinds.audio import folder, procedural, task
from learnit_tf.core.registry import SignalKind, register_kind

KIND = register_kind(SignalKind(
    name="audio",
    description="Audio: time -> mono waveform in [-1, 1] (identity measurement)",
    tasks={"AudioTask": task.AudioTask},
    datasets={
        "procedural_audio_examples": procedural.procedural_audio_examples,
        "audio_folder_examples": folder.audio_folder_examples,
    },
    folder_dataset="audio_folder_examples",
    protocol="learnit_tf.kinds.audio.evaluation:AudioProtocol",
    fit_input="learnit_tf.kinds.audio.folder:fit_example",
    default_init="procedural_audio_siren",
))
