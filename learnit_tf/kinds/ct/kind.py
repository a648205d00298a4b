"""Registers the CT kind."""

from learnit_tf.kinds.ct import anatomy, anatomy_task, files, shepp_logan, task
from learnit_tf.core.registry import ReaderOption, SignalKind, register_kind

KIND = register_kind(SignalKind(
    name="ct",
    description="CT: pixel coordinates -> attenuation, parallel-beam projections",
    tasks={"CtTask": task.CtTask,
           "CtImageOuterTask": anatomy_task.CtImageOuterTask},
    datasets={"shepp_logan_examples": shepp_logan.shepp_logan_examples,
              "ct_folder_examples": files.ct_folder_examples,
              "anatomy_ct_examples": anatomy.anatomy_ct_examples},
    folder_dataset="ct_folder_examples",
    protocol="learnit_tf.kinds.ct.evaluation:CtProtocol",
    fit_input="learnit_tf.kinds.ct.files:fit_example",
    default_init="shepp_logan_ct",
    reader_options=(
        ReaderOption("angles", "string", None,
                     "Angles .npy (radians; degrees with --convention=skimage)"),
        ReaderOption("num_angles", "integer", None,
                     "Instead of --angles: V evenly spaced views (learnit: k·π/V; "
                     "skimage: radon's linspace(0, 180, V, endpoint=False))"),
        ReaderOption("convention", "string", None,
                     "Sinogram layout: learnit (V, N) ray means (default), or skimage "
                     "radon (N, V) sums", choices=("learnit", "skimage")),
        ReaderOption("ground_truth", "string", None,
                     "Optional true image (.npy or image file) for PSNR"),
        ReaderOption("interpolation", "string", None,
                     "Projector interpolation (default: the init's)",
                     choices=("bilinear", "nearest")),
    ),
))
