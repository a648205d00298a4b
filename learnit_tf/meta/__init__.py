"""Meta-learning (MAML, first-order MAML, Reptile) and test-time fitting.

Pure functions of weights and batches; no I/O.
"""

from learnit_tf.meta.algorithms import ALGORITHMS, MetaConfig, meta_gradients
from learnit_tf.meta.fit import FitResult, Fitter, fit
from learnit_tf.meta.inner import InnerOptimizer, adapt
from learnit_tf.meta.trainer import MetaTrainer

__all__ = ["ALGORITHMS", "MetaConfig", "meta_gradients", "FitResult", "Fitter", "fit",
           "InnerOptimizer", "adapt", "MetaTrainer"]
