r"""Meta-trains an initialization for a signal class.

    python scripts/meta_train.py --gin_file=gin/image/text_maml_cpu.gin \
        --model_dir=/tmp/learnit/text_maml_cpu

Re-running the same command resumes from the last checkpoint (Ctrl-C or SIGTERM
checkpoints and exits 0). The final init is exported to MODEL_DIR/init/ (config.json +
metadata.json + model.weights.h5). Bad settings, a model_dir in use by another run
(meta_train.lock) or a diverged run exit non-zero with a message.

Distributed (docs/distributed.md): the same gin experiment on several GPUs, workers
or a Cloud TPU, by flags only:

    python scripts/meta_train.py --gin_file=gin/image/text_maml.gin \
        --model_dir=gs://BUCKET/learnit/text_maml --strategy=tpu --tpu=local
    python scripts/meta_train.py ... --strategy=mirrored            # all local GPUs
    python scripts/meta_train.py ... --strategy=mirrored --cpu_devices=2   # CPU test
"""

import sys

from absl import app, flags  # noqa: E402

from learnit_tf.core import cli as core_cli  # noqa: E402

from learnit_tf import commands  # noqa: E402
from learnit_tf.core.metadata import MetadataError  # noqa: E402
from learnit_tf.training import distribute, gin_config  # noqa: E402
from learnit_tf.training.errors import (CheckpointWriteError, MetaTrainConfigError,  # noqa: E402
                                        ModelDirLockedError, NonFiniteLossError,
                                        NonFiniteWeightsError)
from learnit_tf.training.runner import meta_train  # noqa: E402
from learnit_tf.core import shipped# noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_multi_string("gin_file", [], "Gin config files (experiments live in gin/).")
flags.DEFINE_multi_string("gin_bindings", [], "Extra gin bindings, e.g. 'meta_train.num_steps=10'.")
flags.DEFINE_string("model_dir", None, "Directory for checkpoints, logs and the exported init.")
flags.DEFINE_string("strategy", "default",
                    "tf.distribute strategy: default|one_device|mirrored|multi_worker_mirrored|tpu.")
flags.DEFINE_string("tpu", None, "With --strategy=tpu: 'local' on a TPU VM (default), a TPU "
                    "name, or grpc://host:8470.")
flags.DEFINE_integer("num_gpus", None, "GPUs for --strategy=mirrored/one_device (default: all).")
flags.DEFINE_string("all_reduce_alg", None, "mirrored: nccl|hierarchical_copy; "
                    "multi_worker_mirrored: ring|nccl (default: TensorFlow's choice).")
flags.DEFINE_integer("cpu_devices", None, "Split the CPU into this many logical devices, so "
                     "--strategy=mirrored runs several replicas without accelerators (testing).")
flags.DEFINE_float("collective_timeout", None, "multi_worker_mirrored: seconds after which a "
                   "collective that a stalled worker never joins fails (default: none; a killed "
                   "worker is detected by heartbeats within seconds). See docs/distributed.md.")


def main(argv):
    commands.configure_logging()
    core_cli.require_flags("model_dir")
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    if FLAGS.cpu_devices:
        distribute.configure_cpu_devices(FLAGS.cpu_devices)  # Before any TensorFlow op.
    try:
        # A path, or the name of a shipped config ("image/text_maml_cpu.gin").
        gin_files = [shipped.resolve_gin_file(path) for path in FLAGS.gin_file]
        gin_config.parse_config(gin_files, FLAGS.gin_bindings)
    except ValueError as e:
        raise app.UsageError(str(e)) from e
    strategy = None
    if FLAGS.strategy != "default" or FLAGS.tpu or FLAGS.num_gpus is not None:
        try:
            strategy = distribute.get_distribution_strategy(
                FLAGS.strategy, tpu_address=FLAGS.tpu, num_gpus=FLAGS.num_gpus,
                all_reduce_alg=FLAGS.all_reduce_alg, collective_timeout=FLAGS.collective_timeout)
        except ValueError as e:
            raise app.UsageError(str(e)) from e
    try:
        result = meta_train(FLAGS.model_dir, strategy=strategy)
    except MetaTrainConfigError as e:  # Bad arguments or data: nothing was built or written.
        raise app.UsageError(str(e)) from e
    except (ModelDirLockedError, NonFiniteLossError, NonFiniteWeightsError,
            CheckpointWriteError, MetadataError) as e:
        print(f"meta_train: error: {e}", file=sys.stderr)
        return 1
    except Exception as e:  # pylint: disable=broad-except
        if str(e).startswith("Required bindings for `meta_train`"):  # E.g. no --gin_file.
            raise app.UsageError(f"{e}; pass --gin_file (experiments live in gin/) or "
                                 "--gin_bindings.") from e
        message = distribute.cluster_failure_message(e, strategy, FLAGS.model_dir)
        if message is None:
            raise
        print(f"meta_train: error: {message}", file=sys.stderr)  # Not a traceback.
        return 1
    return 0 if result["init_dir"] or result["step"] else 1


def run():
    """Console entry point (same flags as scripts/meta_train.py)."""
    sys.exit(app.run(main))


if __name__ == "__main__":
    run()
