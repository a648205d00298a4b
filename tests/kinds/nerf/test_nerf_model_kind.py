"""NerfMLP is the NeRF kind's own model: declared in the kind, registered with Keras when
the kind loads, still `learnit_tf.models.NerfMLP`, and the zoo's NeRF inits still load."""

import os
import subprocess
import sys
import tempfile

import keras
import numpy as np

from learnit_tf import models
from learnit_tf.meta import init_io
from learnit_tf.core import registry
from learnit_tf.kinds.nerf.model import NerfMLP

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
NERF_INITS = sorted(os.path.join(REPO, "zoo", "procedural_chairs_nerf", v)
                    for v in os.listdir(os.path.join(REPO, "zoo", "procedural_chairs_nerf"))
                    if v.isdigit())


def test_the_kind_declares_it_and_the_old_names_find_it():
    assert registry.get_kind("nerf").models == {"NerfMLP": NerfMLP}
    assert models.NerfMLP is NerfMLP
    from learnit_tf.models import nerf as old_module  # pylint: disable=import-outside-toplevel
    assert old_module.NerfMLP is NerfMLP
    assert "NerfMLP" not in models.MODEL_CLASSES  # The shared models only...
    assert models.model_classes()["NerfMLP"] is NerfMLP  # ...plus the kinds' own.
    assert keras.saving.get_registered_object("learnit_tf>NerfMLP") is NerfMLP
    assert "num_frequencies" in models.config_fields("NerfMLP")


def test_the_zoos_nerf_inits_load_into_the_kinds_class():
    assert NERF_INITS, "expected zoo/procedural_chairs_nerf/<version>/"
    points = np.random.RandomState(0).uniform(-1, 1, (1, 6, 3)).astype(np.float32)
    for directory in NERF_INITS:
        model = init_io.load_init(directory)
        assert type(model) is NerfMLP, directory
        # The weights file's values, not a fresh initialization: a rebuilt model with
        # the same config but another seed predicts something else.
        config = model.get_config()
        fresh = NerfMLP.from_config(dict(config, seed=config["seed"] + 100))
        out, other = np.asarray(model(points)), np.asarray(fresh(points))
        assert np.all(np.isfinite(out)) and np.max(np.abs(out - other)) > 1e-3, directory


_FRESH_LOAD = """
import sys
import keras
import learnit_tf.kinds.nerf.model  # the kind's model registers itself with Keras
model = keras.models.load_model(sys.argv[1])
print(type(model).__name__, float(model(keras.ops.ones((1, 2, 3))).numpy().sum()))
"""


def test_a_keras_file_of_it_loads_in_a_fresh_process():
    model = NerfMLP(width=16, hidden_layers=2, seed=3)
    expected = float(model(keras.ops.ones((1, 2, 3))).numpy().sum())
    path = os.path.join(tempfile.mkdtemp(), "nerf.keras")
    model.save(path)
    result = subprocess.run([sys.executable, "-c", _FRESH_LOAD, path], capture_output=True,
                            text=True, timeout=300, cwd=tempfile.gettempdir())
    assert result.returncode == 0, result.stderr[-2000:]
    name, value = result.stdout.split()[-2:]
    assert name == "NerfMLP"
    np.testing.assert_allclose(float(value), expected, rtol=1e-6)
