"""learnit_tf: meta-learned initializations for coordinate-based networks.

The shipped inits (`zoo/`) and the experiment configs (`gin/`) live at the top of the
repository; a wheel carries copies of them inside the package
(`learnit_tf/_shipped/zoo`, `learnit_tf/_shipped/gin`), so `zoo.load(name)` and
`--gin_file=image/text_maml_cpu.gin` work from any directory after `pip install .`.
"""
import os
import shutil

import setuptools
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))
SHIPPED = ("zoo", "gin")


class BuildPyWithShippedData(build_py):
    """build_py that also copies zoo/ and gin/ into the built package."""

    def run(self):
        super().run()
        for name in SHIPPED:
            source = os.path.join(HERE, name)
            target = os.path.join(self.build_lib, "learnit_tf", "_shipped", name)
            if os.path.isdir(target):
                shutil.rmtree(target)
            shutil.copytree(source, target,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".*"))


CONSOLE_SCRIPTS = [
    "learnit-meta-train=learnit_tf.commands.meta_train:run",
    "learnit-evaluate=learnit_tf.commands.evaluate:run",
    "learnit-fit=learnit_tf.commands.fit:run",
    "learnit-render=learnit_tf.kinds.nerf.render:run",
    "learnit-cross-class=learnit_tf.commands.cross_class:run",
    "learnit-zoo=learnit_tf.commands.zoo:run",
    "learnit-publish=learnit_tf.commands.publish:run",
    "learnit-convert=learnit_tf.commands.convert_learnit_checkpoint:run",
    "learnit-launch-workers=learnit_tf.commands.launch_workers:run",
]

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
        "filelock",  # locked read-merge-replace of shared files (zoo index, pins)
        "gin-config",
        "numpy",
        "pillow",
        "tifffile",  # 16/32-bit and float TIFFs (Pillow wraps or cuts them)
        "soundfile",  # WAV decoding (PCM, float, WAVE_FORMAT_EXTENSIBLE), prefix reads
        "matplotlib",
        "importlib_resources",  # needed by tensorflow-datasets, not declared by it
        "phantominator",  # Shepp-Logan ellipse parameters (CT phantoms)
        "trimesh",  # 3D shapes: reading OBJ/STL/PLY/OFF meshes, signed distances, PLY output
        "rtree",  # trimesh's closest-point queries (its signed distance) need it
        "scikit-image",  # 3D shapes: marching cubes of fitted signed distance functions
    ],
    extras_require={
        "test": ["pytest", "pytest-xdist", "scikit-image",
                 "pydicom==3.0.2"],  # the real CT slices bundled with pydicom's test files
    },
    package_data={"learnit_tf": ["py.typed", "zoo/site_assets/*.css"]},  # the zoo site's style
    include_package_data=True,
    cmdclass={"build_py": BuildPyWithShippedData},
    entry_points={"console_scripts": CONSOLE_SCRIPTS},
)
