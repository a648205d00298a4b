"""PNG figures people look at: PSNR-vs-steps curves and reconstruction grids.

Matplotlib with the Agg backend (files only); every figure is written atomically.
"""

import numpy as np

from learnit_tf.core.atomic import atomic_save


def pyplot():
    """matplotlib.pyplot on the Agg backend (never needs a display)."""
    import matplotlib  # pylint: disable=import-outside-toplevel
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
    return plt


def save_figure_atomic(fig, path, dpi=100):
    """Saves a matplotlib figure to `path` (PNG) through a temporary file and closes it."""
    plt = pyplot()
    try:
        return atomic_save(path, lambda tmp: fig.savefig(tmp, dpi=dpi, bbox_inches="tight",
                                                         format="png"), ".png")
    finally:
        plt.close(fig)


def plot_psnr_curves(results, path, title="PSNR vs test-time steps", summary=None):
    """Mean ± std PSNR against optimization steps (log x axis), one line per init.

    Args:
        results: dict label -> {"psnr": (num_examples, steps + 1) array}.
        path: output PNG.
        title: figure title.
        summary: optional dict from `evaluation.summarize` to annotate steps-to-match.
    """
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for label, res in results.items():
        psnr = np.asarray(res["psnr"])
        steps = np.arange(psnr.shape[1]) + 1
        mean, std = psnr.mean(0), psnr.std(0)
        ax.plot(steps, mean, label=label)
        ax.fill_between(steps, mean - std, mean + std, alpha=0.2)
    if summary and summary.get("meta_psnr_at_2") is not None:
        ax.axhline(summary["meta_psnr_at_2"], color="gray", linestyle=":", linewidth=1)
        match = summary.get("steps_to_match")
        text = (f"standard needs {match} steps to reach meta's 2-step PSNR" if match else
                f"standard does not reach meta's 2-step PSNR in "
                f"{summary.get('standard_steps_evaluated')} steps")
        ax.set_title(f"{title}\n{text}", fontsize=9)
    else:
        ax.set_title(title, fontsize=9)
    ax.set_xscale("log")
    ax.set_xlabel("optimization step + 1")
    ax.set_ylabel("PSNR (dB)")
    ax.grid(True, alpha=0.3)
    ax.legend()
    return save_figure_atomic(fig, path)


def plot_reconstruction_grid(rows, path, title=None):
    """A grid of images: each row is (label, [(column title, HxWxC image), ...]).

    Args:
        rows: list of (row label, list of (column title, image array in [0, 1])).
        path: output PNG.
        title: optional figure title.
    """
    plt = pyplot()
    num_cols = max(len(cols) for _, cols in rows)
    fig, axes = plt.subplots(len(rows), num_cols, figsize=(1.6 * num_cols, 1.7 * len(rows)),
                             squeeze=False)
    for r, (label, cols) in enumerate(rows):
        for c in range(num_cols):
            ax = axes[r][c]
            ax.axis("off")
            if c >= len(cols):
                continue
            col_title, image = cols[c]
            image = np.clip(np.asarray(image, np.float32), 0.0, 1.0)
            if image.ndim == 3 and image.shape[-1] == 1:
                image = image[..., 0]
            ax.imshow(image, cmap="gray" if image.ndim == 2 else None, vmin=0, vmax=1,
                      interpolation="nearest")
            ax.set_title(col_title, fontsize=7)
            if c == 0:
                ax.text(-0.1, 0.5, label, transform=ax.transAxes, rotation=90,
                        va="center", ha="right", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=9)
    return save_figure_atomic(fig, path)


def plot_grouped_bars(values, path, title="", ylabel="PSNR (dB)"):
    """Grouped bar chart: values is dict group -> dict series -> value."""
    plt = pyplot()
    groups = list(values)
    series = sorted({s for g in groups for s in values[g]})
    fig, ax = plt.subplots(figsize=(1.4 * len(groups) + 2, 3.5))
    width = 0.8 / max(1, len(series))
    for i, name in enumerate(series):
        xs = np.arange(len(groups)) + (i - (len(series) - 1) / 2) * width
        ys = [values[g].get(name, np.nan) for g in groups]
        bars = ax.bar(xs, ys, width, label=name)
        ax.bar_label(bars, fmt="%.1f", fontsize=7)
    ax.set_xticks(np.arange(len(groups)))
    ax.set_xticklabels(groups)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(True, axis="y", alpha=0.3)
    return save_figure_atomic(fig, path)


def plot_heatmap(matrix, row_labels, col_labels, path, title="", fmt="{:.1f}"):
    """Annotated heatmap of a 2D array (e.g. cross-class PSNR)."""
    plt = pyplot()
    matrix = np.asarray(matrix, np.float64)
    fig, ax = plt.subplots(figsize=(1.6 * len(col_labels) + 2, 0.7 * len(row_labels) + 1.5))
    image = ax.imshow(matrix, cmap="viridis")
    ax.set_xticks(range(len(col_labels)))
    ax.set_xticklabels(col_labels)
    ax.set_yticks(range(len(row_labels)))
    ax.set_yticklabels(row_labels)
    ax.set_xlabel("tested on")
    ax.set_ylabel("init learned on")
    finite = matrix[np.isfinite(matrix)]
    middle = finite.mean() if finite.size else 0.0
    for r in range(matrix.shape[0]):
        for c in range(matrix.shape[1]):
            ax.text(c, r, fmt.format(matrix[r, c]), ha="center", va="center",
                    color="black" if matrix[r, c] > middle else "white", fontsize=9)
    fig.colorbar(image, ax=ax, label="PSNR (dB)")
    ax.set_title(title, fontsize=9)
    return save_figure_atomic(fig, path)
