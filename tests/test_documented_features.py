"""Documented command features, each run as the docs show it: publishing to a non-local
file system, printing multi-worker TF_CONFIGs for real hosts, `zoo list` formats, and a
successful checkpoint conversion with its flags."""
import json
import os
import subprocess
import sys

import numpy as np

from learnit_tf import zoo
from learnit_tf.meta import init_io
from learnit_tf.models import Siren

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPTS = os.path.join(REPO, "scripts")
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
FIXTURES = os.environ.get("LEARNIT_FIXTURES",
                          os.path.join(os.path.dirname(__file__), "data", "learnit_fixture"))


def _run(*args, code=None):
    command = [sys.executable, *args] if code is None else [sys.executable, "-c", code, *args]
    result = subprocess.run(command, capture_output=True, text=True, cwd=REPO, env=ENV,
                            timeout=600, check=False)
    assert result.returncode == 0, (args, result.stdout[-2000:], result.stderr[-3000:])
    return result.stdout


# The publish command, run in one process with a TF in-memory file system (ram://, a
# stand-in for gs://: both go through tf.io.gfile), then read back in that process.
_PUBLISH_TO_RAM = r"""
import json, sys
from absl import flags
from learnit_tf import zoo
from learnit_tf.commands import publish
init_a, init_b = sys.argv[1], sys.argv[2]
destination = "ram://learnit_zoo_test/zoo"
for init, version in ((init_a, "1"), (init_b, "2")):
    flags.FLAGS.unparse_flags()
    flags.FLAGS(["publish.py", f"--init={init}", "--name=tiny", f"--version={version}",
                 f"--destination={destination}", "--description=tiny ram init"])
    publish.main(["publish.py"])
import tensorflow as tf
with tf.io.gfile.GFile(destination + "/index.json") as f:
    index = json.load(f)
out = {"index": index, "files": sorted(tf.io.gfile.listdir(destination + "/tiny/1")),
       "weights": {}}
for version in ("1", "2"):
    model = zoo.load("tiny", version, index=destination + "/index.json",
                     cache_dir=sys.argv[3])
    out["weights"][version] = [w.tolist() for w in model.get_weights()]
print("RESULT " + json.dumps(out))
"""


def _result(stdout):
    line = [l for l in stdout.splitlines() if l.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT "):])


def _tiny_init(root, seed):
    model = Siren(width=8, depth=2, seed=seed)
    return model, init_io.save_init(model, os.path.join(root, f"init{seed}"), {
        "signal_class": "text", "algorithm": "maml",
        "task": {"class_name": "ImageTask", "config": {"resolution": 8}},
        "dataset": {"name": "text_images", "config": "cpu64", "split": "train"}})


def test_publish_destination_on_a_non_local_file_system(tmp_path):
    """`publish.py --destination=gs://...` goes through tf.io.gfile: two versions
    published to ram:// are both in its index with the files' real hashes, and load
    back (downloaded and verified) with the published weights."""
    model_a, init_a = _tiny_init(str(tmp_path), 1)
    model_b, init_b = _tiny_init(str(tmp_path), 2)
    out = _result(_run(init_a, init_b, str(tmp_path / "cache"), code=_PUBLISH_TO_RAM))
    entry = out["index"]["entries"]["tiny"]
    assert entry["latest"] == "2" and sorted(entry["versions"]) == ["1", "2"]
    assert entry["description"] == "tiny ram init"
    assert out["files"] == sorted([*init_io.INIT_FILES, "README.md"])
    for filename in init_io.INIT_FILES:
        with open(os.path.join(init_a, filename), "rb") as f:
            data = f.read()
        import hashlib  # pylint: disable=import-outside-toplevel
        assert entry["versions"]["1"]["files"][filename] == {
            "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
    for version, model in (("1", model_a), ("2", model_b)):
        for got, want in zip(out["weights"][version], model.get_weights()):
            np.testing.assert_array_equal(np.asarray(got, np.float32), want)


def test_launch_workers_prints_tf_config_for_real_hosts():
    """`launch_workers.py --print_tf_config --hosts=h1:p,h2:p` (docs/distributed.md):
    one TF_CONFIG per host, each with the whole cluster and its own task index."""
    hosts = ["10.0.0.2:12345", "10.0.0.3:12345"]
    stdout = _run(os.path.join(SCRIPTS, "launch_workers.py"), "--print_tf_config",
                  f"--hosts={','.join(hosts)}")
    configs = [json.loads(line[line.index("{"):].strip().strip("'"))
               for line in stdout.splitlines() if "{" in line]
    assert len(configs) == len(hosts), stdout
    for index, config in enumerate(configs):
        assert config["cluster"] == {"worker": hosts}, config
        assert config["task"] == {"type": "worker", "index": index}, config


def test_zoo_list_json_and_markdown_formats():
    """`zoo.py list --format=json` gives the rows `zoo.list` computes (every published
    version, with its index headline), `--format=markdown` the README table of them."""
    rows = zoo.list()
    listed = json.loads(_run(os.path.join(SCRIPTS, "zoo.py"), "list", "--format=json"))
    assert [(r["name"], r["version"]) for r in listed] == [
        (r["name"], r["version"]) for r in rows]
    for got, want in zip(listed, rows):
        assert got["headline"] == json.loads(json.dumps(want["headline"])), got["name"]
        assert got["size"] == want["size"] and got["latest"] == want["latest"]
    markdown = _run(os.path.join(SCRIPTS, "zoo.py"), "list", "--format=markdown")
    # After a first line naming the index it read, exactly the table of those rows.
    assert markdown.splitlines()[0].startswith("Zoo index: ")
    assert "\n".join(markdown.splitlines()[1:]).strip() == \
        zoo.format_table(rows, markdown=True).strip()
    table = [l for l in markdown.splitlines() if l.startswith("| ") and "---" not in l][1:]
    assert len(table) == len(rows)
    for line, row in zip(table, rows):  # each line shows its version's headline numbers
        # The kind's metric: PSNR with 2 decimals, IoU with 3 (the 3D init).
        key, digits = (("psnr", 2) if any(k.startswith("meta_psnr_at_") for k in row["headline"])
                       else ("iou", 3))
        meta = next(v for k, v in row["headline"].items() if k.startswith(f"meta_{key}_at_"))
        assert f"{meta:.{digits}f} vs" in line and line.startswith(f"| {row['name']} |"), line


def test_convert_command_succeeds_with_its_flags(tmp_path):
    """`convert_learnit_checkpoint.py` on the authors' fixture (a copy in tests/data):
    the init it writes reproduces the authors' output (--verify_npz, --tolerance) and
    records --signal_class, --algorithm and --outer_steps."""
    out = str(tmp_path / "celeba_authors")
    _run(os.path.join(SCRIPTS, "convert_learnit_checkpoint.py"),
         f"--input={os.path.join(FIXTURES, 'learnit_siren_params.pkl')}", f"--output_dir={out}",
         "--w0=200", "--signal_class=celeb_a", "--algorithm=maml", "--outer_steps=150000",
         f"--verify_npz={os.path.join(FIXTURES, 'learnit_siren_expected.npz')}",
         "--tolerance=1e-5")
    metadata = init_io.read_metadata(out)
    assert metadata["signal_class"] == "celeb_a"
    assert metadata["verified_against"]["max_abs_error"] <= 1e-5
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    model = init_io.load_init(out)
    with np.load(os.path.join(FIXTURES, "learnit_siren_expected.npz")) as data:
        got = tf.function(model, jit_compile=True)(tf.constant(data["coords"])).numpy()
        np.testing.assert_allclose(got, data["out"], atol=1e-5, rtol=0)
    assert "maml" in json.dumps(metadata) and "150000" in json.dumps(metadata)
