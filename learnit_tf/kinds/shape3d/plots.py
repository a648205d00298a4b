"""Figures of the 3D-shape protocol: IoU curves and rendered surfaces (matplotlib)."""

import numpy as np

from learnit_tf.core.atomic import atomic_save
from learnit_tf.evaluation import META, STANDARD
from learnit_tf.kinds.shape3d.metrics import network_grid_sdf
from learnit_tf.kinds.shape3d.render import render_grid_sdf


def _figure():
    import matplotlib  # pylint: disable=import-outside-toplevel
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
    return plt


def plot_iou_curves(results, path, title, summary):
    """Mean held-out IoU against test-time steps (log x) of both inits."""
    plt = _figure()
    fig, ax = plt.subplots(figsize=(6, 4))
    for label, res in results.items():
        curve = res["iou"].mean(0)
        steps = np.arange(len(curve))
        ax.plot(steps + 1, curve, label=label)
    match = summary.get("steps_to_match")
    ax.set_xscale("log")
    ax.set_xlabel("test-time steps + 1")
    ax.set_ylabel("IoU of occupancy")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title(f"{title}\nsteps to match the meta init's 2-step IoU: "
                 f"{match if match is not None else '> ' + str(summary.get('standard_steps_evaluated'))}",
                 fontsize=9)
    atomic_save(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100), ".png")
    plt.close(fig)
    return path


def plot_reconstructions(results, examples, task, path, resolution=64):
    """Per drawn shape: the target's surface, then each init's fit at its kept steps."""
    plt = _figure()
    rows = []
    for i, example in enumerate(examples):
        if not results[META]["snapshots"][i]:
            break
        panels = [("target", render_grid_sdf(example["grid_sdf"], task.grid_resolution))]
        for label in (META, STANDARD):
            res = results[label]
            wanted = (0, 2, 20) if label == META else (2, 100, 1000)
            for step in sorted(s for s in res["snapshots"][i] if s in wanted):
                grid = network_grid_sdf(res["fitter"].fmodel, res["snapshots"][i][step],
                                        resolution)
                panels.append((f"{label} step {step}\nIoU {res['iou'][i, step]:.3f}",
                               render_grid_sdf(grid, resolution)))
        rows.append(panels)
    if not rows:
        raise ValueError("No snapshots to draw (snapshot_examples=0).")
    cols = max(len(r) for r in rows)
    fig, axes = plt.subplots(len(rows), cols, figsize=(2 * cols, 2.2 * len(rows)),
                             squeeze=False)
    for r, panels in enumerate(rows):
        for c in range(cols):
            ax = axes[r][c]
            ax.axis("off")
            if c < len(panels):
                ax.imshow(panels[c][1])
                ax.set_title(panels[c][0], fontsize=7)
    fig.tight_layout()
    atomic_save(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100), ".png")
    plt.close(fig)
    return path
