"""Pictures of waveforms: a raster for image grids (fit.py) and matplotlib figures."""

import numpy as np

from learnit_tf.evaluation import plots


def waveform_picture(waveform, height=64, width=256):
    """A waveform drawn as a picture, float32 (height, width) in [0, 1]: white background,
    black where the waveform passes (column j spans samples [j·N/width, (j+1)·N/width) and
    is inked between their minimum and maximum). Row 0 is amplitude +1, the last row -1.

    >>> picture = waveform_picture(np.linspace(-1, 1, 8), height=4, width=2)
    >>> picture.tolist()
    [[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]]
    """
    waveform = np.clip(np.asarray(waveform, np.float64).reshape(-1), -1.0, 1.0)
    width = min(int(width), waveform.size)
    edges = np.linspace(0, waveform.size, width + 1).astype(int)
    # Amplitude -> row, +1 at the top; each column inks the rows of its sample range.
    rows = np.round((1.0 - waveform) / 2.0 * (height - 1)).astype(int)
    picture = np.ones((int(height), width), np.float32)
    for j in range(width):
        segment = rows[edges[j]:edges[j + 1]]
        picture[segment.min():segment.max() + 1, j] = 0.0
    return picture


def loudest_window(waveform, count):
    """Start of the `count`-sample window of `waveform` with the most energy (clips may
    begin with silence before a note's onset)."""
    waveform = np.asarray(waveform, np.float64).reshape(-1)
    count = min(int(count), waveform.size)
    energy = np.convolve(np.square(waveform), np.ones(count), mode="valid")
    return int(np.argmax(energy))


def plot_waveforms(rows, path, sample_rate, title=None, window_seconds=None):
    """Rows of waveform panels: each row is (label, [(panel title, waveform), ...]).

    Args:
        rows: list of (row label, list of (panel title, float (N,) array)).
        path: output PNG (written atomically).
        sample_rate: samples per second (the time axis is in seconds).
        title: optional figure title.
        window_seconds: show only this long a window of each row, the loudest one of the
            row's first waveform (a zoom on a few periods); None shows whole clips.
    """
    plt = plots.pyplot()
    num_cols = max(len(cols) for _, cols in rows)
    fig, axes = plt.subplots(len(rows), num_cols, figsize=(2.4 * num_cols, 1.5 * len(rows)),
                             squeeze=False, sharey=True)
    for r, (label, cols) in enumerate(rows):
        reference = np.asarray(cols[0][1]).reshape(-1)
        count = reference.size if window_seconds is None else min(
            reference.size, max(2, int(window_seconds * sample_rate)))
        start = loudest_window(reference, count)
        for c in range(num_cols):
            ax = axes[r][c]
            if c >= len(cols):
                ax.axis("off")
                continue
            panel_title, waveform = cols[c]
            waveform = np.asarray(waveform).reshape(-1)[start:start + count]
            ax.plot((start + np.arange(waveform.size)) / sample_rate, waveform, linewidth=0.6)
            ax.set_ylim(-1.05, 1.05)
            ax.set_title(panel_title, fontsize=7)
            ax.tick_params(labelsize=6)
            if c == 0:
                ax.set_ylabel(label, fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return plots.save_figure_atomic(fig, path)
