"""The audio protocol: the image protocol (PSNR against test-time steps) on waveforms.

Held-out clips are fitted from the meta init with its inner optimizer and from a
standard init of the same SIREN with Adam; the report is the PSNR (on the [-1, 1]
range, peak-to-peak 2: `learnit_tf.kinds.audio.task.waveform_psnr`) after k steps and
how many standard-init steps reach the meta init's 2-step PSNR. `AudioProtocol` is the
shared `StepsProtocol` plus a figure of the fitted waveforms (reconstructions.png:
target and fits at the kept steps, zoomed on the loudest `zoom_seconds` of each clip).

The standard init's Adam learning rate matters more for audio than for images: the
project's SIREN scales every layer by one w0, so Adam's per-weight step moves the
frequency-scaled weights w0·W by w0·lr; the CPU init's metadata records the rate it
was evaluated with (see gin/audio/procedural_maml_cpu.gin).
"""

import dataclasses

import numpy as np

from learnit_tf.evaluation import META, STANDARD, StepsOptions, StepsProtocol
from learnit_tf.kinds.audio.plots import plot_waveforms


@dataclasses.dataclass
class AudioOptions(StepsOptions):
    """`StepsOptions` plus the zoom of the waveform figure."""

    zoom_seconds: float = dataclasses.field(default=0.05, metadata={
        "help": "Audio: seconds of each clip shown in reconstructions.png (its loudest "
                "window; 0 shows whole clips)."})


class AudioProtocol(StepsProtocol):
    """PSNR vs steps on held-out clips, steps to match at 2 steps, waveform figures.

    Example:

    >>> protocol = AudioProtocol(num_examples=2, meta_steps=2, standard_steps=50)
    >>> protocol.name, protocol.options.match_step
    ('audio_psnr_vs_steps', 2)

    `protocol.evaluate(model, metadata, "procedural_audio_siren")` returns the report.
    """

    name = "audio_psnr_vs_steps"
    Options = AudioOptions

    def folder_options(self, task):
        return {"num_samples": int(task.num_samples), "sample_rate": int(task.sample_rate)}

    def draws_reconstructions(self):
        return True

    def extend_report(self, report, model, metadata, task, examples, results):
        if results[META]["snapshots"]:
            zoom = self.options.zoom_seconds or None
            report.figures["reconstructions.png"] = (
                lambda path: plot_reconstructions(results, examples, task, path, zoom))


def plot_reconstructions(results, examples, task, path, zoom_seconds=None):
    """Per held-out clip and init: the target and the fitted waveform at each kept step."""
    grid = []
    for i, example in enumerate(examples[:len(results[META]["snapshots"])]):
        for label in (META, STANDARD):
            fitter = results[label]["fitter"]
            psnr = results[label]["psnr"][i]
            cols = [("target", np.asarray(example["waveform"]))]
            cols += [(f"{label} step {s}: {psnr[s]:.1f} dB",
                      task.render(fitter.fmodel, w).numpy())
                     for s, w in sorted(results[label]["snapshots"][i].items())]
            grid.append((f"#{i} {label}", cols))
    return plot_waveforms(grid, path, task.sample_rate, window_seconds=zoom_seconds,
                          title=f"held-out clips, the loudest {zoom_seconds:g} s of each"
                          if zoom_seconds else "held-out clips")
