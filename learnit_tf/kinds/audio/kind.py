"""Registers the audio kind."""

from learnit_tf.kinds.audio import folder, procedural, task
from learnit_tf.core.registry import ReaderOption, SignalKind, register_kind

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
    reader_options=(
        ReaderOption("resample", "boolean", None,
                     "Resample a WAV file recorded at another rate to the init's rate "
                     "(default true; --noresample refuses such files)"),
        ReaderOption("max_decoded_bytes", "integer", None,
                     "Refuse WAV files whose decoded samples would take more bytes "
                     "(default 256 MiB; guards against huge or forged headers)"),
    ),
))
