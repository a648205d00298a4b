"""The CT kind: parallel-beam computed tomography (PAPER.md, "CT reconstruction").

A Fourier-feature MLP maps pixel coordinates to attenuation; the measurement is a
differentiable parallel-beam projection (`task.project`). Modules: `task`
(`CtTask`, projector, sinogram examples), `shepp_logan` (randomized phantoms),
`evaluation` (PSNR against number of views), `kind` (registration).
"""

from learnit_tf.kinds.ct.shepp_logan import SheppLogan, shepp_logan_examples
from learnit_tf.kinds.ct.task import (CtTask, evenly_spaced_angles, make_eval_example, project,
                                      sinogram_example)

__all__ = ["CtTask", "evenly_spaced_angles", "make_eval_example", "project", "sinogram_example",
           "SheppLogan", "shepp_logan_examples"]
