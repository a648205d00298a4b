"""The pictures of a model card (learnit_tf/zoo/card.py): the recorded curve, drawn from
the metadata's numbers, and a small copy of the evaluation's reconstructions."""

from learnit_tf.core import atomic

# Reconstruction pictures are copied at this width at most (the evaluation's own are
# ~500 KB each; the wheel carries every card).
THUMBNAIL_WIDTH = 720


def draw_curve(metadata, header, rows, metric, path):
    """Draws the recorded mean curve(s) of an init into a small PNG: the dense per-step
    means when the evaluation kept them, else the held-out table (`header`, `rows` of
    `card.held_out_table`).

    Returns False (nothing written) when the evaluation records no curve.
    """
    evaluation = metadata.get("evaluation") if isinstance(metadata.get("evaluation"), dict) \
        else {}
    dense = (evaluation.get("summary") or {}).get("mean_psnr_by_step")
    series = []
    if isinstance(dense, dict) and dense.get("meta"):
        for init, values in dense.items():
            series.append((init, list(range(len(values))), values))
        xlabel = "test-time steps"
    elif header:
        points = [int(p) for p in header[3:]]
        for row in rows:
            values = [(p, float(v)) for p, v in zip(points, row[2:]) if v != ""]
            series.append((f"{row[0]} ({row[1]})", [p for p, _ in values],
                           [v for _, v in values]))
        xlabel = header[0]
    if not series:
        return False
    import matplotlib  # pylint: disable=import-outside-toplevel
    matplotlib.use("Agg")
    from matplotlib import pyplot  # pylint: disable=import-outside-toplevel
    figure, axes = pyplot.subplots(figsize=(4.8, 3.2), dpi=100)
    for label, xs, ys in series:
        axes.plot(xs, ys, marker="" if len(xs) > 40 else "o", markersize=3, label=label)
    if all(x >= 0 for _, xs, _ in series for x in xs) and max(
            x for _, xs, _ in series for x in xs) > 20:
        axes.set_xscale("symlog", linthresh=1)
    axes.set_xlabel(xlabel)
    axes.set_ylabel(f"{metric.label} ({metric.unit})" if metric.unit else metric.label)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=7)
    figure.tight_layout()
    atomic.atomic_save(path, lambda tmp: figure.savefig(tmp, format="png"), suffix=".png")
    pyplot.close(figure)
    return True


def copy_small(source, path, width=THUMBNAIL_WIDTH):
    """Copies a picture as a PNG at most `width` pixels wide (palette colours)."""
    from PIL import Image  # pylint: disable=import-outside-toplevel
    with Image.open(source) as image:
        image = image.convert("RGB")
        if image.width > width:
            image = image.resize((width, round(image.height * width / image.width)),
                                 Image.LANCZOS)
        image = image.quantize(colors=128)
        atomic.atomic_save(path, lambda tmp: image.save(tmp, format="PNG", optimize=True),
                           suffix=".png")
    return path
