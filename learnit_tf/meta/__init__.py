"""Meta-learning (MAML, first-order MAML, Reptile, Meta-SGD rates) and test-time fitting.

Pure functions of weights and batches; no I/O.
"""

from learnit_tf.meta.algorithms import ALGORITHMS, MetaConfig, meta_gradients
from learnit_tf.meta.fit import FitPhase, FitRecipe, FitResult, FitState, Fitter, fit
from learnit_tf.meta.inner import InnerOptimizer, adapt
from learnit_tf.meta.trainer import MetaTrainer, outer_schedule

__all__ = ["ALGORITHMS", "MetaConfig", "meta_gradients", "FitPhase", "FitRecipe", "FitResult",
           "FitState", "Fitter", "fit", "InnerOptimizer", "adapt", "MetaTrainer", "outer_schedule"]
