"""scripts/meta_train.py on your own files, one gin binding each: image, CT and posed-view folders.

Tiny settings (8–16 px signals, small networks, 2 outer steps) so each run takes seconds
of compute; the gin files are the documented ones (gin/*/folder_*.gin), only sizes are
overridden.
"""

import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from learnit_tf.meta import init_io

REPO = os.path.abspath(os.path.dirname(os.path.dirname(__file__)))
SCRIPT = os.path.join(REPO, "scripts", "meta_train.py")

_COMMON = ["meta_train.num_steps = 2", "meta_train.checkpoint_every = 2",
           "meta_train.eval_every = 2", "meta_train.show_progress = False"]


def _image_folder(directory):
    rng = np.random.default_rng(0)
    for i in range(6):
        array = (rng.random((20, 24, 3)) * 255).astype(np.uint8)
        Image.fromarray(array).save(os.path.join(directory, f"img{i}.png"))
    return ["RESOLUTION = 16", "Siren.width = 16", "Siren.depth = 2",
            "meta_train.meta_batch_size = 2"]


def _ct_folder(directory):
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray((rng.random((18, 18)) * 65535).astype(np.uint16)).save(
            os.path.join(directory, f"slice{i}.png"))
        np.save(os.path.join(directory, f"slice{i}.npy"), rng.normal(size=(16, 16)) * 100)
    return ["RESOLUTION = 16", "FourierFeatureMLP.num_features = 16",
            "FourierFeatureMLP.width = 16", "FourierFeatureMLP.hidden_layers = 1",
            "CtTask.num_angles = 4", "meta_train.inner_steps = 2"]


def _nerf_folder(directory):
    from learnit_tf.kinds.nerf import procedural  # pylint: disable=import-outside-toplevel
    objects = {f"object{i}": procedural.generate_object(0, 0, i, 8, num_views=4)
               for i in range(3)}
    procedural.write_shapenet_format(directory, "", objects, {"train": list(objects)})
    return ["NerfMLP.width = 32", "NerfMLP.hidden_layers = 2", "NerfTask.num_samples = 8",
            "NerfTask.rays_per_step = 32", "NerfTask.metric_rays = 64",
            "nerf_folder_examples.num_held_out_views = 1", "meta_train.inner_steps = 2"]


CASES = {
    "image": ("gin/image/folder_maml_cpu.gin", "image_folder_examples", _image_folder),
    "ct": ("gin/ct/folder_reptile_cpu.gin", "ct_folder_examples", _ct_folder),
    "nerf": ("gin/nerf/folder_reptile_cpu.gin", "nerf_folder_examples", _nerf_folder),
}


def _run(gin_file, model_dir, bindings):
    command = [sys.executable, SCRIPT, f"--gin_file={os.path.join(REPO, gin_file)}",
               f"--model_dir={model_dir}", *[f"--gin_bindings={b}" for b in bindings]]
    return subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=REPO,
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))


@pytest.mark.parametrize("kind", sorted(CASES))
def test_meta_train_on_a_folder(kind, tmp_path):
    gin_file, function, make_folder = CASES[kind]
    data = tmp_path / "data"
    data.mkdir()
    sizes = make_folder(str(data))
    model_dir = tmp_path / "run"
    result = _run(gin_file, model_dir, [f"{function}.directory = '{data}'", *sizes, *_COMMON])
    assert result.returncode == 0, result.stderr[-3000:]
    init_dir = model_dir / "init"
    metadata = init_io.read_metadata(str(init_dir))
    assert metadata["steps"] == 2
    assert metadata["dataset"]["function"] == function
    recorded = metadata["dataset"]
    assert (recorded.get("bindings") or recorded.get("gin_bindings"))["directory"] == str(data)
    assert np.isfinite(metadata["final_train_metrics"]["loss"])
    model = init_io.load_init(str(init_dir))
    assert all(np.all(np.isfinite(v.numpy())) for v in model.trainable_variables)


def test_the_directory_binding_is_required(tmp_path):
    result = _run("gin/image/folder_maml_cpu.gin", tmp_path / "run", [])
    assert result.returncode != 0
    assert "image_folder_examples.directory" in result.stderr
    assert "REQUIRED" in result.stderr
    assert not (tmp_path / "run" / "init").exists()
