"""learnit_tf: meta-learned initializations for coordinate-based neural representations.

A Keras/TensorFlow reimplementation and model zoo of Tancik et al., "Learned
Initializations for Optimizing Coordinate-Based Neural Representations" (CVPR 2021).
"""

__version__ = "0.1.0"
