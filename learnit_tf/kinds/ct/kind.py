"""Registers the CT kind."""

from learnit_tf.kinds.ct import anatomy, files, shepp_logan, task
from learnit_tf.core.registry import SignalKind, register_kind

KIND = register_kind(SignalKind(
    name="ct",
    description="CT: pixel coordinates -> attenuation, parallel-beam projections",
    tasks={"CtTask": task.CtTask},
    datasets={"shepp_logan_examples": shepp_logan.shepp_logan_examples,
              "ct_folder_examples": files.ct_folder_examples,
              "anatomy_ct_examples": anatomy.anatomy_ct_examples},
    folder_dataset="ct_folder_examples",
    protocol="learnit_tf.kinds.ct.evaluation:CtProtocol",
    fit_input="learnit_tf.kinds.ct.files:fit_example",
    default_init="shepp_logan_ct",
))
