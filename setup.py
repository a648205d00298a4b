"""learnit_tf: meta-learned initializations for coordinate-based networks."""
import setuptools

setuptools.setup(
    name="learnit_tf",
    version="0.1.0",
    description=("Keras/TensorFlow model zoo of meta-learned initializations for "
                 "coordinate-based neural representations (Tancik et al., CVPR 2021)."),
    packages=setuptools.find_packages(include=["learnit_tf", "learnit_tf.*"]),
    python_requires=">=3.10",
    install_requires=[
        "tensorflow>=2.16",
        "keras>=3.0",
        "tensorflow-datasets>=4.9",
        "tensorboard",  # tf.summary needs it; tensorflow no longer pulls it in
        "tensorflow-graphics",
        "absl-py",
        "gin-config",
        "numpy",
        "pillow",
        "matplotlib",
        "importlib_resources",  # needed by tensorflow-datasets, not declared by it
        "phantominator",  # Shepp-Logan ellipse parameters (CT phantoms)
    ],
    extras_require={
        "test": ["pytest", "pytest-xdist", "scikit-image"],
    },
    package_data={"learnit_tf": ["py.typed"]},
    include_package_data=True,
)
