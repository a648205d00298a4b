"""The 3D-shape protocol: IoU against test-time steps, meta vs standard init, Chamfer too.

The shared steps protocol (`learnit_tf.evaluation.StepsProtocol`) keyed by the kind's
metric, IoU: held-out shapes are fitted from the meta init (its inner optimizer, as
meta-trained) and from a standard init of the same network (Adam). The primary metric is
the IoU of occupancy on the task's fixed grid (`IOU`, recorded at every step, so steps
to match is exact); the report rows are its mean at the report steps, the headline both
inits' IoU at `match_step` (2) and how many standard-init steps reach the meta init's
2-step IoU (`steps_to_iou`: the steps and seconds each init needs to reach
`iou_targets`). The Chamfer distance between the marching-cubes surface of the fit (on
a `chamfer_resolution`^3 grid) and the true surface points is measured at the report
steps (a secondary column of per_step.csv and the summary), with the floor the true
SDF's own 32^3 grid surface reaches as a reference.

Figures: iou_curves.png (both mean IoU curves) and reconstructions.png (rendered
surfaces of the target and of both fits at the kept steps).
"""

import dataclasses

import numpy as np

from learnit_tf.evaluation import (META, REPORT_STEPS, STANDARD, StepsOptions, StepsProtocol,
                                   task_from_metadata)
from learnit_tf.kinds.shape3d.kind import IOU
from learnit_tf.kinds.shape3d.metrics import network_grid_sdf, surface_chamfer


@dataclasses.dataclass
class ShapeOptions(StepsOptions):
    """`StepsOptions` with the 3D kind's standard-init rate and IoU levels, and the Chamfer
    grid."""

    # 3e-4, not the image protocol's 1e-4: on a procedural test shape (SIREN 128×4, w0 30)
    # Adam from a standard init reached IoU 0.73 / 0.81 at 50 / 300 steps with 3e-4,
    # 0.49 / 0.68 with 1e-4 and 0.66 / 0.70 with 1e-3 (docs/shape3d/README.md).
    standard_learning_rate: float = dataclasses.field(default=3e-4, metadata={
        "help": "Learning rate of the standard init."})
    iou_targets: str = dataclasses.field(default="0.5,0.7,0.8,0.9", metadata={
        "help": "Comma-separated IoUs whose steps (and seconds) to reach are reported."})
    chamfer_resolution: int = dataclasses.field(default=64, metadata={
        "help": "Marching-cubes grid of the fitted surfaces whose Chamfer distance to the "
                "true surface is reported."})


def _kept_steps(steps):
    """The report steps of a fit of `steps` steps (its rows, Chamfer distances, pictures)."""
    return sorted({s for s in REPORT_STEPS if s <= steps} | {steps})


class ShapeProtocol(StepsProtocol):
    """IoU vs steps on held-out shapes, steps to match at 2 steps, Chamfer distances.

    Example:

    >>> protocol = ShapeProtocol(num_examples=2, meta_steps=2, standard_steps=50)
    >>> protocol.name, protocol.metric.key, protocol.options.match_step
    ('shape_iou_vs_steps', 'iou', 2)

    `protocol.evaluate(model, metadata, "procedural_shapes_siren")` returns the report.
    """

    name = "shape_iou_vs_steps"
    metric = IOU
    Options = ShapeOptions

    def folder_options(self, task):
        return {"num_points": task.num_points, "grid_resolution": task.grid_resolution,
                "num_surface": task.num_surface}

    def evaluate(self, model, metadata, init_name="", examples=None):
        if examples is None:
            examples = self.held_out(metadata, task_from_metadata(metadata))
        examples = [{k: np.asarray(v) for k, v in e.items()} for e in examples]
        return super().evaluate(model, metadata, init_name=init_name, examples=examples)

    def snapshot_steps(self):
        """Every report step of either fit: the Chamfer distances are measured there."""
        o = self.options
        return _kept_steps(max(o.meta_steps, o.standard_steps))

    def snapshot_count(self, examples):
        return len(examples)  # Every shape's Chamfer distances; pictures drop the rest.

    def plot_curves(self, results, path, title, summary):
        from learnit_tf.kinds.shape3d import plots  # pylint: disable=import-outside-toplevel
        return plots.plot_iou_curves(results, path, title, summary)

    def extend_report(self, report, model, metadata, task, examples, results):
        """Chamfer distances at the report steps (per_step.csv, summary), the target grids'
        own Chamfer floor, seconds per step and reconstructions.png."""
        o = self.options
        per_step = []
        for label, res in results.items():
            fmodel, snapshots = res["fitter"].fmodel, res["snapshots"]
            res["chamfer"] = {
                step: [surface_chamfer(network_grid_sdf(fmodel, snapshots[i][step],
                                                        o.chamfer_resolution),
                                       o.chamfer_resolution, example["surface"], seed=i)
                       for i, example in enumerate(examples)]
                for step in _kept_steps(res["iou"].shape[1] - 1)}
            res["snapshots"] = [s if i < o.snapshot_examples else {}
                                for i, s in enumerate(snapshots)]
            per_step += [{"init": label, "example": i, "step": step,
                          "iou": float(res["iou"][i, step]), "chamfer": value}
                         for step, values in res["chamfer"].items()
                         for i, value in enumerate(values)]
        report.tables["per_step.csv"] = (("init", "example", "step", "iou", "chamfer"),
                                         per_step)
        report.summary.update(self._chamfer_summary(results, examples, task))
        if o.snapshot_examples > 0:
            report.figures["reconstructions.png"] = lambda path: _plot_reconstructions(
                results, examples, task, path, o.chamfer_resolution)

    def _chamfer_summary(self, results, examples, task):
        match_step = self.options.match_step

        def chamfer_at(label, step):
            values = results[label]["chamfer"].get(step)
            return None if values is None else float(np.nanmean(values))

        floor = [surface_chamfer(e["grid_sdf"], task.grid_resolution, e["surface"], seed=i)
                 for i, e in enumerate(examples)]
        return {
            f"meta_chamfer_at_{match_step}": chamfer_at(META, match_step),
            f"standard_chamfer_at_{match_step}": chamfer_at(STANDARD, match_step),
            "target_grid_chamfer": float(np.nanmean(floor)),
            "chamfer_curve": {label: {str(s): round(float(np.nanmean(v)), 5)
                                      for s, v in res["chamfer"].items()}
                              for label, res in results.items()},
            "seconds_per_step": {label: res["seconds_per_step"]
                                 for label, res in results.items()},
        }

    @classmethod
    def headline(cls, report):
        summary = report.summary
        match_step = int(report.settings.get("match_step", 2))
        steps = summary.get("steps_to_match")
        if steps is None and summary.get("standard_steps_evaluated") is not None:
            steps = f"> {int(summary['standard_steps_evaluated'])}"
        headline = {f"meta_iou_at_{match_step}": summary.get(f"meta_iou_at_{match_step}"),
                    f"standard_iou_at_{match_step}": summary.get(
                        f"standard_iou_at_{match_step}"),
                    "iou_at": f"{match_step} steps", "steps_to_match": steps}
        for label in (META, STANDARD):
            value = summary.get(f"{label}_chamfer_at_{match_step}")
            if value is not None and np.isfinite(value):
                headline[f"{label}_chamfer_at_{match_step}"] = value
        return {k: v for k, v in headline.items() if v is not None}


def _plot_reconstructions(results, examples, task, path, resolution):
    from learnit_tf.kinds.shape3d import plots  # pylint: disable=import-outside-toplevel
    return plots.plot_reconstructions(results, examples, task, path, resolution)
