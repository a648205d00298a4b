"""Registers the CT kind."""

from learnit_tf.kinds.ct import shepp_logan, task
from learnit_tf.kinds.registry import SignalKind, register_kind

KIND = register_kind(SignalKind(
    name="ct",
    description="CT: pixel coordinates -> attenuation, parallel-beam projections",
    tasks={"CtTask": task.CtTask},
    datasets={"shepp_logan_examples": shepp_logan.shepp_logan_examples},
    folder_dataset=None,
    protocol="learnit_tf.kinds.ct.evaluation:CtProtocol",
    fit_input="learnit_tf.kinds.ct.task:fit_example",
    default_init="shepp_logan_ct",
))
