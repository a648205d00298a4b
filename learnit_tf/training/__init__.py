"""Meta-training (layer 6 of the package layout, issue 25).

- `config`: `RunConfig`, the typed run arguments, gin-configurable as `meta_train`.
- `runner`: `MetaTrainRunner` (phases: check data, build, restore, train, evaluate,
  checkpoint, export) and `meta_train(model_dir, **overrides)`.
- `lock` (one run per model_dir), `logs` (CSV log, TensorBoard, config.gin),
  `held_out` (periodic evaluation), `warm_start`, `export`, `interrupt`, `errors`.
- `distribute` (tf.distribute strategies, preemption), `gin_config` (gin registration),
  `callbacks` (Keras `model.fit` callbacks), `profiling` (matmul FLOPs).
"""

from learnit_tf.training.config import RunConfig
from learnit_tf.training.errors import (CheckpointWriteError, MetaTrainConfigError,
                                        ModelDirLockedError, NonFiniteLossError,
                                        NonFiniteWeightsError)
from learnit_tf.training.held_out import evaluate_init
from learnit_tf.training.lock import LOCK_FILE, ModelDirLock
from learnit_tf.training.logs import LOG_COLUMNS, LOG_FILE, TENSORBOARD_DIR, purge_events_after
from learnit_tf.training.runner import MetaTrainRunner, meta_train
from learnit_tf.training.warm_start import WARM_START_FILE

__all__ = ["CheckpointWriteError", "LOCK_FILE", "LOG_COLUMNS", "LOG_FILE", "MetaTrainConfigError",
           "MetaTrainRunner", "ModelDirLock", "ModelDirLockedError", "NonFiniteLossError",
           "NonFiniteWeightsError", "RunConfig", "TENSORBOARD_DIR", "WARM_START_FILE",
           "evaluate_init", "meta_train", "purge_events_after"]
