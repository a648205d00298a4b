"""The mean of several inits of one run (weights and learned inner rates): checkpoint averaging.

    python docs/image/resolution/average_inits.py \
        --inits=/work/runs/emoji_mr/g_probe_1800/init,/work/runs/emoji_mr/g/init \
        --output_dir=/work/runs/emoji_mr/g_avg

Why (docs/image/resolution.md): the 2-step PSNR of the subset-trained emoji init at 128²
and 256² follows the outer learning rate more than the number of steps (a restart at a
higher rate falls back to what the first run had at that rate), so the outer steps'
noise, not the training's progress, limits it. The mean of checkpoints a few hundred
steps apart averages that noise out (Polyak averaging, taken after the fact). Every
variable of the model (weights, learned rates) is averaged; the inits must be one
architecture. The metadata is the last init's (its command, steps and wall time: the
run that produced all of them), with `averaged_from` listing the inits.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))))

from absl import app, flags  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_list("inits", None, "Init directories (of one run; the last one's metadata is kept).")
flags.DEFINE_string("output_dir", None, "Where the averaged init is written (new folder).")
flags.mark_flags_as_required(["inits", "output_dir"])


def main(argv):
    del argv
    # pylint: disable=import-outside-toplevel
    import numpy as np
    from learnit_tf.meta import init_io
    if len(FLAGS.inits) < 2:
        raise app.UsageError("--inits: name at least two inits to average.")
    models = [init_io.load_init(directory) for directory in FLAGS.inits]
    base = models[-1]
    def architecture(model):  # Keras names a process's second model "siren_1": not compared.
        return ({k: v for k, v in model.get_config().items() if k != "name"},
                [v.path.split("/", 1)[-1] for v in model.weights])
    for directory, model in zip(FLAGS.inits, models):
        if architecture(model) != architecture(base):
            raise app.UsageError(f"{directory} is another architecture than {FLAGS.inits[-1]}.")
    for i, variable in enumerate(base.weights):
        variable.assign(np.mean([np.asarray(m.weights[i].numpy(), np.float64) for m in models],
                                axis=0).astype(variable.dtype))
    metadata = dict(init_io.read_metadata(FLAGS.inits[-1]))
    metadata["averaged_from"] = {
        "inits": [{"init": d, "steps": init_io.read_metadata(d).get("steps")}
                  for d in FLAGS.inits],
        "command": "python docs/image/resolution/average_inits.py --inits="
                   + ",".join(FLAGS.inits) + f" --output_dir={FLAGS.output_dir}"}
    init_io.save_init(base, FLAGS.output_dir, metadata)
    print(f"Wrote {FLAGS.output_dir}: the mean of {len(models)} inits.")


if __name__ == "__main__":
    app.run(main)
