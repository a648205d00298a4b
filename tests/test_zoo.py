"""Tests of the model zoo: publish, load, download with verification, the shipped index."""

import contextlib
import hashlib
import http.server
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from unittest import mock

import numpy as np
from absl.testing import parameterized

from learnit_tf import testing, zoo
from learnit_tf.meta import init_io
from learnit_tf.models import Siren

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHIPPED_INDEX = os.path.join(REPO, "zoo", "index.json")

EVALUATION = {"psnr_curve": {"meta": {"0": 12.0, "1": 20.0, "2": 24.5},
                             "standard": {"0": 11.0, "1": 11.5, "2": 12.25}},
              "steps_to_match": 40}


def _sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


@contextlib.contextmanager
def _chdir(path):
    previous = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)


class _Server:
    """An http.server on 127.0.0.1 (port 0) serving `directory`, recording GET paths."""

    def __init__(self, directory):
        requests = self.requests = []

        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, directory=directory, **kwargs)

            def do_GET(self):
                requests.append(self.path)
                super().do_GET()

            def log_message(self, *args):  # keep test output clean
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


# ------------------------------------------------------------ shipped-entry checks

# The headline numbers of every published version (not only the latest) are recomputed
# in tests/test_zoo_headlines.py (tolerances in tests/headlines.py); this file checks
# the index, the files and the zoo library.


class _TempDirTestCase(testing.TestCase):
    """Temporary directories that work under pytest (no absl flag parsing needed)."""

    def _new_dir(self, name=None):
        root = tempfile.mkdtemp(prefix="learnit_zoo_test-")
        self.addCleanup(shutil.rmtree, root, ignore_errors=True)
        if name is None:
            return root
        path = os.path.join(root, name)
        os.makedirs(path)
        return path


class ShippedZooTest(_TempDirTestCase):

    def test_every_shipped_entry_loads_offline_and_verifies(self):
        the_zoo = zoo.Zoo(index=SHIPPED_INDEX, cache_dir=self._new_dir())
        rows = the_zoo.list()
        if not rows:
            self.skipTest("zoo/index.json has no entries yet.")
        for row in rows:
            with self.subTest(entry=f"{row['name']}@{row['version']}"):
                self.assertEqual(row["location"], "local",
                                 "shipped entries must load offline from zoo/")
                report = the_zoo.verify(row["name"], row["version"])
                directory = os.path.join(REPO, "zoo", row["name"], row["version"])
                self.assertEqual(os.path.realpath(report["directory"]),
                                 os.path.realpath(directory))
                for filename, sha in report["files"].items():
                    self.assertEqual(_sha256(os.path.join(directory, filename)), sha)
                self.assertGreater(report["parameters"], 0)

    def test_shipped_index_is_valid(self):
        with open(SHIPPED_INDEX) as f:
            data = json.load(f)
        zoo._validate_index(data, SHIPPED_INDEX)  # pylint: disable=protected-access
        self.assertEqual(data["format_version"], zoo.INDEX_FORMAT_VERSION)

    def test_file_names_match_init_io(self):
        self.assertEqual(zoo.ALLOWED_FILES, init_io.INIT_FILES)


# ------------------------------------------------------------------ library tests


class ZooTest(_TempDirTestCase):

    def setUp(self):
        super().setUp()
        self.cache = self._new_dir("cache")
        # Hermetic: no user zoo or cache, and never route 127.0.0.1 through a proxy.
        env = {k: v for k, v in os.environ.items()
               if k not in (zoo.ENV_INDEX, zoo.ENV_CACHE) and "proxy" not in k.lower()}
        env.update(no_proxy="127.0.0.1,localhost", NO_PROXY="127.0.0.1,localhost")
        self.enter_context(mock.patch.dict(os.environ, env, clear=True))
        self.zoo_dir = self._new_dir("zoo")
        self.model = Siren(width=8, depth=2, seed=1)
        self.init = self._init(self.model, "init1")
        zoo.publish(self.init, "tiny", "1", self.zoo_dir, description="tiny test init")

    def _init(self, model, name, evaluation=EVALUATION):
        return init_io.save_init(
            model, os.path.join(self._new_dir(), name),
            {"signal_class": "text", "algorithm": "maml", "evaluation": evaluation,
             "task": {"class_name": "ImageTask", "config": {"resolution": 8}},
             "dataset": {"name": "text_images", "config": "cpu64", "split": "train"}})

    def _remote_index(self, base_url, mutate=None):
        """A local index whose files live only at `base_url` (files are not next to it)."""
        with open(os.path.join(self.zoo_dir, "index.json")) as f:
            data = json.load(f)
        data["base_url"] = base_url
        if mutate:
            mutate(data)
        path = os.path.join(self._new_dir(), "index.json")
        init_io.write_json_atomic(path, data)
        return path

    def _serve(self, directory=None):
        server = _Server(directory or self.zoo_dir)
        self.addCleanup(server.close)
        return server

    def _cached_files(self):
        return sorted(os.path.relpath(os.path.join(d, f), self.cache)
                      for d, _, files in os.walk(self.cache) for f in files)

    # -- publish and local load ------------------------------------------------------

    def test_publish_then_load_round_trips_weights(self):
        with open(os.path.join(self.zoo_dir, "index.json")) as f:
            index = json.load(f)
        record = index["entries"]["tiny"]["versions"]["1"]
        self.assertEqual(index["entries"]["tiny"]["latest"], "1")
        self.assertEqual(record["path"], "tiny/1/")
        for filename in init_io.INIT_FILES:
            copy = os.path.join(self.zoo_dir, "tiny", "1", filename)
            self.assertEqual(record["files"][filename]["sha256"], _sha256(copy))
            self.assertEqual(record["files"][filename]["size"], os.path.getsize(copy))
            self.assertEqual(_sha256(copy), _sha256(os.path.join(self.init, filename)))
        self.assertEqual(record["headline"]["meta_psnr_at_2"], 24.5)
        self.assertEqual(record["headline"]["standard_psnr_at_2"], 12.25)
        self.assertEqual(record["headline"]["parameters"], self.model.count_params())
        self.assertEqual(os.listdir(os.path.join(self.zoo_dir, "tiny")), ["1"])  # no staging

        for spec, version in (("tiny", None), ("tiny", "1"), ("tiny@1", None)):
            loaded = zoo.load(spec, version, index=self.zoo_dir, cache_dir=self.cache)
            self.assertIsInstance(loaded, Siren)
            self.assertEqual(loaded.width, 8)
            self.assertWeightsClose(loaded.get_weights(), self.model.get_weights(), atol=0)
        # A plain init directory loads too.
        self.assertWeightsClose(zoo.load(self.init).get_weights(), self.model.get_weights(),
                                atol=0)
        self.assertEqual(self._cached_files(), [])  # shipped entries are used in place

    def test_list_describe_and_table(self):
        rows = zoo.list(index=self.zoo_dir, cache_dir=self.cache)
        self.assertLen(rows, 1)
        row = rows[0]
        self.assertEqual((row["name"], row["version"], row["latest"], row["location"]),
                         ("tiny", "1", True, "local"))
        self.assertEqual(row["description"], "tiny test init")
        self.assertEqual(row["size"], sum(os.path.getsize(os.path.join(self.init, f))
                                          for f in init_io.INIT_FILES))
        self.assertEqual(row["headline"]["signal_class"], "text")
        self.assertEqual(row["headline"]["algorithm"], "maml")
        self.assertEqual(row["headline"]["model_class"], "Siren")
        self.assertEqual(row["headline"]["steps_to_match"], 40)
        metadata = zoo.describe("tiny", index=self.zoo_dir)
        self.assertEqual(metadata["evaluation"], EVALUATION)
        self.assertIn("library_versions", metadata)
        for markdown in (False, True):
            table = zoo.format_table(rows, markdown=markdown)
            line = [l for l in table.splitlines() if "tiny" in l]
            self.assertLen(line, 1)
            for cell in ("1 (latest)", "text", "Siren", "maml", "24.50 vs 12.25 dB", "40",
                         "local"):
                self.assertIn(cell, line[0])

    def test_publish_existing_version_refused(self):
        index_path = os.path.join(self.zoo_dir, "index.json")
        with open(index_path, "rb") as f:
            before = f.read()
        model2 = Siren(width=8, depth=2, seed=2)
        init2 = self._init(model2, "init2")
        with self.assertRaisesRegex(zoo.VersionExistsError, "already published"):
            zoo.publish(init2, "tiny", "1", self.zoo_dir)
        with open(index_path, "rb") as f:
            self.assertEqual(f.read(), before)
        # The published files are untouched.
        self.assertEqual(_sha256(os.path.join(self.zoo_dir, "tiny", "1", "model.weights.h5")),
                         _sha256(os.path.join(self.init, "model.weights.h5")))
        # A leftover directory of an interrupted publish is not overwritten either.
        os.makedirs(os.path.join(self.zoo_dir, "tiny", "3"))
        with self.assertRaisesRegex(zoo.VersionExistsError, "not in the index"):
            zoo.publish(init2, "tiny", "3", self.zoo_dir)
        # A new version is accepted and becomes the latest ("10" sorts after "9").
        zoo.publish(init2, "tiny", "10", self.zoo_dir)
        the_zoo = zoo.Zoo(self.zoo_dir, self.cache)
        self.assertEqual(the_zoo.resolve_version("tiny"), "10")
        self.assertWeightsClose(the_zoo.load("tiny").get_weights(), model2.get_weights(), atol=0)
        self.assertWeightsClose(the_zoo.load("tiny", "1").get_weights(),
                                self.model.get_weights(), atol=0)

    def test_publish_refuses_broken_init_and_bad_names(self):
        destination = self._new_dir()
        broken = self._init(Siren(width=8, depth=2, seed=3), "broken")
        with open(os.path.join(broken, "model.weights.h5"), "wb") as f:
            f.write(b"not an hdf5 file")
        with self.assertRaisesRegex(ValueError, "does not load"):
            zoo.publish(broken, "broken", "1", destination)
        os.remove(os.path.join(broken, "metadata.json"))
        with self.assertRaisesRegex(FileNotFoundError, "metadata.json is missing"):
            zoo.publish(broken, "broken", "1", destination)
        for name in ("../escape", "a/b", "", ".hidden"):
            with self.assertRaisesRegex(ValueError, "Invalid zoo name"):
                zoo.publish(self.init, name, "1", destination)
        with self.assertRaisesRegex(ValueError, "Invalid zoo version"):
            zoo.publish(self.init, "ok", "..", destination)
        self.assertEqual(os.listdir(destination), [])  # nothing written on refusal

    def test_unknown_name_or_version(self):
        with self.assertRaisesRegex(zoo.UnknownEntryError, r"'nope'.*available: tiny"):
            zoo.load("nope", index=self.zoo_dir)
        with self.assertRaisesRegex(zoo.UnknownEntryError, r"version '7'.*available versions: 1"):
            zoo.load("tiny", "7", index=self.zoo_dir)
        with self.assertRaisesRegex(zoo.UnknownEntryError, "available versions: 1"):
            zoo.describe("tiny@2", index=self.zoo_dir)
        with self.assertRaisesRegex(FileNotFoundError, "neither an init directory"):
            zoo.load("/no/such/init", index=self.zoo_dir)
        # A bare name: zoo entries win over a same-named directory in the cwd, and an
        # unknown bare name falls back to that directory.
        cwd = self._new_dir()
        shutil.copytree(init_io.save_init(Siren(width=8, depth=2, seed=5),
                                          os.path.join(cwd, "tiny")), os.path.join(cwd, "local"))
        self.enter_context(_chdir(cwd))
        self.assertWeightsClose(zoo.load("tiny", index=self.zoo_dir).get_weights(),
                                self.model.get_weights(), atol=0)
        self.assertEqual(zoo.load("local", index=self.zoo_dir).get_config()["seed"], 5)
        with self.assertRaisesRegex(zoo.ZooError, "not the URL"):
            zoo.load("http://example.com/init", index=self.zoo_dir)

    def test_tampered_shipped_file_refused(self):
        weights = os.path.join(self.zoo_dir, "tiny", "1", "model.weights.h5")
        data = bytearray(open(weights, "rb").read())
        data[len(data) // 2] ^= 0xFF
        with open(weights, "wb") as f:
            f.write(data)
        with self.assertRaisesRegex(zoo.IntegrityError, "sha256"):
            zoo.load("tiny", index=self.zoo_dir)
        with open(weights, "ab") as f:
            f.write(b"x")
        with self.assertRaisesRegex(zoo.IntegrityError, r"size mismatch: expected \d+ bytes as "
                                    r"the index records, got \d+ bytes, 1 more"):
            zoo.verify("tiny", index=self.zoo_dir)

    def test_malformed_index_refused(self):
        def bad_hash(data):
            data["entries"]["tiny"]["versions"]["1"]["files"]["config.json"]["sha256"] = "abc"
        with self.assertRaisesRegex(zoo.IndexFormatError, "sha256"):
            zoo.list(index=self._remote_index(None, bad_hash))

        def future(data):
            data["format_version"] = 99
        with self.assertRaisesRegex(zoo.IndexFormatError, "upgrade learnit_tf"):
            zoo.list(index=self._remote_index(None, future))

    # -- downloads -------------------------------------------------------------------

    def test_http_download_then_cache_hit(self):
        server = self._serve()
        index = self._remote_index(server.url)
        self.assertEqual(zoo.list(index=index, cache_dir=self.cache)[0]["location"], "remote")
        loaded = zoo.load("tiny", index=index, cache_dir=self.cache)
        self.assertWeightsClose(loaded.get_weights(), self.model.get_weights(), atol=0)
        self.assertCountEqual(server.requests, ["/tiny/1/" + f for f in init_io.INIT_FILES])
        # The pin's lock file (learnit_tf.locks) is not a cached file.
        cached = [f for f in self._cached_files() if not f.endswith(".lock")]
        pin = os.path.relpath(zoo.Zoo(index, self.cache).pin_path("tiny", "1"), self.cache)
        self.assertIn(pin, cached)  # The verified hashes, pinned (see test_pinned_...).
        cached.remove(pin)
        self.assertLen(cached, 3)
        self.assertFalse([f for f in cached if f.endswith(".part")])
        self.assertEqual(zoo.list(index=index, cache_dir=self.cache)[0]["location"], "cached")

        # Second load: verified cache hit, the server sees no request.
        server.requests.clear()
        loaded = zoo.load("tiny", index=index, cache_dir=self.cache)
        self.assertWeightsClose(loaded.get_weights(), self.model.get_weights(), atol=0)
        self.assertEqual(server.requests, [])
        # The cache dir also comes from $LEARNIT_TF_CACHE.
        with mock.patch.dict(os.environ, {zoo.ENV_CACHE: self.cache}):
            self.assertEqual(zoo.download("tiny", index=index),
                             os.path.dirname(os.path.join(self.cache, cached[0])))
        self.assertEqual(server.requests, [])

    def test_remote_index_over_http(self):
        server = self._serve()
        with mock.patch.dict(os.environ, {zoo.ENV_INDEX: server.url + "index.json"}):
            loaded = zoo.load("tiny", cache_dir=self.cache)
            self.assertEqual(zoo.describe("tiny", cache_dir=self.cache)["signal_class"], "text")
        self.assertWeightsClose(loaded.get_weights(), self.model.get_weights(), atol=0)
        self.assertEqual(server.requests.count("/index.json"), 2)
        self.assertEqual(server.requests.count("/tiny/1/model.weights.h5"), 1)

    def test_tampered_download_refused_and_not_cached(self):
        served = self._new_dir()
        shutil.copytree(self.zoo_dir, served, dirs_exist_ok=True)
        weights = os.path.join(served, "tiny", "1", "model.weights.h5")
        original = open(weights, "rb").read()
        data = bytearray(original)
        data[-10] ^= 0x01  # same size, different content
        with open(weights, "wb") as f:
            f.write(data)
        index = self._remote_index(self._serve(served).url)
        with self.assertRaisesRegex(zoo.IntegrityError, "sha256.*Nothing was cached"):
            zoo.load("tiny", index=index, cache_dir=self.cache)
        cached = self._cached_files()
        self.assertNotIn("model.weights.h5", [os.path.basename(f) for f in cached])
        self.assertFalse([f for f in cached if f.endswith(".part")])
        # Once the server is fixed, the load succeeds (nothing bad was kept).
        with open(weights, "wb") as f:
            f.write(original)
        loaded = zoo.load("tiny", index=index, cache_dir=self.cache)
        self.assertWeightsClose(loaded.get_weights(), self.model.get_weights(), atol=0)

    def test_truncated_download_refused_and_not_cached(self):
        served = self._new_dir()
        shutil.copytree(self.zoo_dir, served, dirs_exist_ok=True)
        weights = os.path.join(served, "tiny", "1", "model.weights.h5")
        size = os.path.getsize(weights)
        with open(weights, "r+b") as f:
            f.truncate(size // 2)
        index = self._remote_index(self._serve(served).url)
        with self.assertRaisesRegex(zoo.IntegrityError, f"size mismatch: expected {size} bytes.*"
                                    f"sends {size // 2} bytes"):
            zoo.load("tiny", index=index, cache_dir=self.cache)
        cached = self._cached_files()
        self.assertNotIn("model.weights.h5", [os.path.basename(f) for f in cached])
        self.assertFalse([f for f in cached if f.endswith(".part")])

    def test_truncated_stream_without_content_length_refused(self):
        # A gfile/local base has no Content-Length: the size check after streaming applies.
        served = self._new_dir()
        shutil.copytree(self.zoo_dir, served, dirs_exist_ok=True)
        with open(os.path.join(served, "tiny", "1", "config.json"), "r+b") as f:
            f.truncate(10)
        size = os.path.getsize(os.path.join(self.zoo_dir, "tiny", "1", "config.json"))
        with self.assertRaisesRegex(zoo.IntegrityError, rf"size mismatch: expected {size} bytes "
                                    rf"as the index records, got 10 bytes, {size - 10} fewer"):
            zoo.download("tiny", index=self._remote_index(served), cache_dir=self.cache)
        self.assertNotIn("config.json", [os.path.basename(f) for f in self._cached_files()])

    def test_local_directory_base_url_copies_into_cache(self):
        index = self._remote_index(None)
        with self.assertRaisesRegex(zoo.ZooError, "no base_url"):
            zoo.load("tiny", index=index, cache_dir=self.cache)
        directory = zoo.download("tiny", index=index, cache_dir=self.cache,
                                 base_url=self.zoo_dir)
        self.assertTrue(directory.startswith(self.cache))
        self.assertCountEqual(os.listdir(directory), init_io.INIT_FILES)

    def test_corrupted_cache_is_refetched(self):
        server = self._serve()
        index = self._remote_index(server.url)
        directory = zoo.download("tiny", index=index, cache_dir=self.cache)
        with open(os.path.join(directory, "model.weights.h5"), "r+b") as f:
            f.seek(100)
            f.write(b"\0\0\0\0")
        server.requests.clear()
        loaded = zoo.load("tiny", index=index, cache_dir=self.cache)
        self.assertWeightsClose(loaded.get_weights(), self.model.get_weights(), atol=0)
        self.assertEqual(server.requests, ["/tiny/1/model.weights.h5"])

    # -- immutable versions, partial downloads, non-finite weights, symlinks (issue 15) --

    def _replace_served_version(self, served, index, seed):
        """The publisher replaces tiny@1: new weights served and a matching new index hash."""
        weights = os.path.join(served, "tiny", "1", "model.weights.h5")
        init = self._init(Siren(width=8, depth=2, seed=seed), f"replacement{seed}")
        shutil.copyfile(os.path.join(init, "model.weights.h5"), weights)
        with open(index) as f:
            data = json.load(f)
        record = data["entries"]["tiny"]["versions"]["1"]["files"]["model.weights.h5"]
        old_sha = record["sha256"]
        record.update(size=os.path.getsize(weights), sha256=_sha256(weights))
        init_io.write_json_atomic(index, data)
        return old_sha, record["sha256"]

    def test_pinned_version_never_changes_under_a_new_index_hash(self):
        served = self._new_dir()
        shutil.copytree(self.zoo_dir, served, dirs_exist_ok=True)
        server = self._serve(served)
        index = self._remote_index(server.url)
        with open(index, "rb") as f:
            original_index = f.read()
        directory = zoo.download("tiny", index=index, cache_dir=self.cache)
        cached_weights = os.path.join(directory, "model.weights.h5")
        good_sha = _sha256(cached_weights)
        old_sha, new_sha = self._replace_served_version(served, index, seed=7)
        self.assertEqual(old_sha, good_sha)
        self.assertNotEqual(new_sha, good_sha)
        server.requests.clear()
        message = (rf"zoo entry 'tiny' version '1' .*model.weights.h5 with sha256 {new_sha} .*"
                   rf"pinned in the cache has sha256 {good_sha} .*immutable, so the cached copy "
                   r"is kept and nothing was downloaded")
        for call in (zoo.load, zoo.download, zoo.verify, zoo.describe):
            with self.subTest(call=call.__name__):
                with self.assertRaisesRegex(zoo.PinnedVersionChangedError, message):
                    call("tiny", index=index, cache_dir=self.cache)
        self.assertEqual(server.requests, [])  # Nothing fetched,
        self.assertEqual(_sha256(cached_weights), good_sha)  # nothing replaced or deleted.
        # Once the index is back, the pinned copy loads (still no download).
        with open(index, "wb") as f:
            f.write(original_index)
        loaded = zoo.load("tiny", index=index, cache_dir=self.cache)
        self.assertWeightsClose(loaded.get_weights(), self.model.get_weights(), atol=0)
        self.assertEqual(server.requests, [])

    def test_unpinned_cached_file_that_fails_verification_is_kept_and_refused(self):
        # A cache written before pins existed: its file no longer matches a changed index.
        served = self._new_dir()
        shutil.copytree(self.zoo_dir, served, dirs_exist_ok=True)
        server = self._serve(served)
        index = self._remote_index(server.url)
        directory = zoo.download("tiny", index=index, cache_dir=self.cache)
        os.remove(zoo.Zoo(index, self.cache).pin_path("tiny", "1"))
        good_sha = _sha256(os.path.join(directory, "model.weights.h5"))
        self._replace_served_version(served, index, seed=8)
        server.requests.clear()
        with self.assertRaisesRegex(zoo.IntegrityError, rf"the cached copy .*sha256 {good_sha}.*"
                                    rf"no pin.*it is kept. Delete {directory}"):
            zoo.load("tiny", index=index, cache_dir=self.cache)
        self.assertEqual(_sha256(os.path.join(directory, "model.weights.h5")), good_sha)
        self.assertEqual(server.requests, [])

    def test_stale_part_file_is_removed_and_never_used(self):
        server = self._serve()
        index = self._remote_index(server.url)
        source = zoo._source_key(server.url)  # pylint: disable=protected-access
        directory = os.path.join(self.cache, "zoo", source, "tiny", "1")
        os.makedirs(directory)
        # Left by a killed download an hour ago: garbage of the right size.
        size = os.path.getsize(os.path.join(self.zoo_dir, "tiny", "1", "model.weights.h5"))
        stale = os.path.join(directory, ".model.weights.h5.k1lled.part")
        with open(stale, "wb") as f:
            f.write(b"\xff" * size)
        an_hour_ago = os.path.getmtime(stale) - 3600
        os.utime(stale, (an_hour_ago, an_hour_ago))
        # One a live download (another process) still writes: locked, so it is kept.
        live = os.path.join(directory, ".model.weights.h5.l1ve.part")
        live_file = open(live, "wb")  # pylint: disable=consider-using-with
        self.addCleanup(live_file.close)
        zoo._lock_part(live_file.fileno())  # pylint: disable=protected-access
        os.utime(live, (an_hour_ago, an_hour_ago))

        loaded = zoo.load("tiny", index=index, cache_dir=self.cache)
        self.assertWeightsClose(loaded.get_weights(), self.model.get_weights(), atol=0)
        self.assertIn("/tiny/1/model.weights.h5", server.requests)  # Downloaded, not the .part.
        self.assertFalse(os.path.exists(stale))
        self.assertTrue(os.path.exists(live))
        live_file.close()
        self.assertEqual(zoo.remove_stale_parts(os.path.join(directory, "model.weights.h5")),
                         [live])  # Released (its process "died"): removed on the next look.
        self.assertEqual(sorted(os.listdir(directory)), sorted(init_io.INIT_FILES))

    def _publish_non_finite(self, name):
        """An entry whose weights hold NaN and +inf, listed with their correct hashes."""
        model = Siren(width=8, depth=2, seed=4)
        zoo.publish(self._init(model, name), name, "1", self.zoo_dir)
        model.weights[0].assign(np.full(model.weights[0].shape, np.nan, np.float32))
        model.weights[3].assign(np.full(model.weights[3].shape, np.inf, np.float32))
        weights = os.path.join(self.zoo_dir, name, "1", "model.weights.h5")
        os.remove(weights)
        model.save_weights(weights)
        index_path = os.path.join(self.zoo_dir, "index.json")
        with open(index_path) as f:
            data = json.load(f)
        data["entries"][name]["versions"]["1"]["files"]["model.weights.h5"] = {
            "size": os.path.getsize(weights), "sha256": _sha256(weights)}
        init_io.write_json_atomic(index_path, data)
        return model

    def test_verify_and_publish_refuse_non_finite_weights(self):
        model = self._publish_non_finite("nan_init")
        with self.assertRaisesRegex(
                zoo.NonFiniteWeightsError,
                r"'nan_init' version '1' .*model.weights.h5\): 2 of 4 weight tensors hold NaN or "
                r"infinite values \(siren\w*/dense_0/kernel, siren\w*/dense_1/bias\); its sha256 "
                r"matches the index"):
            zoo.verify("nan_init", index=self.zoo_dir)
        self.assertEqual(zoo.verify("tiny", index=self.zoo_dir)["version"], "1")
        init = init_io.save_init(model, os.path.join(self._new_dir(), "nan"))
        destination = self._new_dir()
        with self.assertRaisesRegex(zoo.NonFiniteWeightsError, "Cannot publish .*2 of 4 weight"):
            zoo.publish(init, "nan", "1", destination)
        self.assertEqual(os.listdir(destination), [])

    def test_file_symlinked_outside_the_entry_refused(self):
        outside = self._new_dir()
        metadata = os.path.join(self.zoo_dir, "tiny", "1", "metadata.json")
        copy = shutil.copy(metadata, os.path.join(outside, "metadata.json"))  # Same bytes.
        os.remove(metadata)
        os.symlink(copy, metadata)
        with self.assertRaisesRegex(zoo.UnsafePathError, r"file metadata.json: .*resolves "
                                    r"outside"):
            zoo.describe("tiny", index=self.zoo_dir)
        # In the cache too: a cached file swapped for a link to a (matching) outside copy.
        index = self._remote_index(self._serve().url)
        os.remove(metadata)
        shutil.copy(copy, metadata)
        directory = zoo.download("tiny", index=index, cache_dir=self.cache)
        weights = os.path.join(directory, "model.weights.h5")
        os.replace(weights, os.path.join(outside, "w.h5"))
        os.symlink(os.path.join(outside, "w.h5"), weights)
        with self.assertRaisesRegex(zoo.UnsafePathError, "cached file model.weights.h5.*outside"):
            zoo.load("tiny", index=index, cache_dir=self.cache)

    def test_shrunk_metadata_is_a_size_mismatch(self):
        metadata = os.path.join(self.zoo_dir, "tiny", "1", "metadata.json")
        size = os.path.getsize(metadata)
        init_io.write_json_atomic(metadata, {"signal_class": "text"})  # Valid JSON, shorter.
        shrunk = os.path.getsize(metadata)
        with self.assertRaises(zoo.IntegrityError) as caught:
            zoo.describe("tiny", index=self.zoo_dir)
        self.assertIn(f"size mismatch: expected {size} bytes as the index records, got "
                      f"{shrunk} bytes, {size - shrunk} fewer", str(caught.exception))
        self.assertNotIn("truncated", str(caught.exception))

    @parameterized.parameters("../evil/", "tiny/../../evil/", "/tmp/evil/", "~/evil",
                                      "..\\evil", "C:/evil")
    def test_index_path_escaping_the_cache_refused(self, path):
        server = self._serve()

        def escape(data):
            data["entries"]["tiny"]["versions"]["1"]["path"] = path
        index = self._remote_index(server.url, escape)
        with self.assertRaisesRegex(zoo.UnsafePathError, "refusing"):
            zoo.load("tiny", index=index, cache_dir=self.cache)
        self.assertEqual(server.requests, [])
        self.assertEqual(self._cached_files(), [])
        self.assertEqual(zoo.list(index=index, cache_dir=self.cache)[0]["location"], "unsafe")

    def test_index_file_names_restricted(self):
        def pickle_file(data):
            files = data["entries"]["tiny"]["versions"]["1"]["files"]
            files["model.pkl"] = files.pop("model.weights.h5")
        index = self._remote_index(self._serve().url, pickle_file)
        with self.assertRaisesRegex(zoo.UnsafePathError, "model.pkl"):
            zoo.load("tiny", index=index, cache_dir=self.cache)

    def test_symlink_out_of_cache_refused(self):
        server = self._serve()
        index = self._remote_index(server.url)
        outside = self._new_dir()
        root = os.path.join(self.cache, "zoo", zoo._source_key(server.url))  # pylint: disable=protected-access
        os.makedirs(root)
        os.symlink(outside, os.path.join(root, "tiny"))
        with self.assertRaisesRegex(zoo.UnsafePathError, "outside"):
            zoo.download("tiny", index=index, cache_dir=self.cache)
        self.assertEqual(os.listdir(outside), [])

    # -- helpers ---------------------------------------------------------------------

    def test_headline_tolerates_missing_keys(self):
        self.assertEqual(zoo.headline_from_metadata({}), {})
        self.assertEqual(zoo.headline_from_metadata({"evaluation": "n/a", "task": 3}),
                         {"task": 3})
        headline = zoo.headline_from_metadata(
            {"signal_class": "ct", "hyperparameters": {"algorithm": "reptile"},
             "task": {"class_name": "CTTask"}, "dataset": {"name": "shepp_logan"},
             "evaluation": {"psnr_curve": {"meta": {"steps": [0, 1, 2], "psnr": [1, 2, 3.5]},
                                           "standard": [0.5, 0.75, float("nan")]},
                            "meta_psnr_at_2": None}},
            {"class_name": "Siren"}, 42)
        self.assertEqual(headline, {"signal_class": "ct", "algorithm": "reptile",
                                    "task": "CTTask", "dataset": "shepp_logan",
                                    "model_class": "Siren", "meta_psnr_at_2": 3.5,
                                    "parameters": 42})
        # Explicit values win over the curve.
        self.assertEqual(zoo.headline_from_metadata({"evaluation": {
            "meta_psnr_at_2": 30, "psnr_curve": {"meta": [0, 0, 1]}}})["meta_psnr_at_2"], 30.0)

    def test_version_order(self):
        self.assertEqual(sorted(["10", "2", "1.10", "1.2", "1"], key=zoo.version_key),
                         ["1", "1.2", "1.10", "2", "10"])

    def test_cli_publish_list_verify(self):
        destination = self._new_dir()
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
        scripts = os.path.join(REPO, "scripts")

        def run(*args):
            return subprocess.run([sys.executable, *args], env=env, capture_output=True,
                                  text=True, timeout=300, check=False)

        result = run(os.path.join(scripts, "publish.py"), f"--init={self.init}", "--name=cli",
                     "--version=1", f"--destination={destination}")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("Published cli version 1", result.stdout)
        result = run(os.path.join(scripts, "zoo.py"), "list", f"--index={destination}",
                     f"--cache_dir={self.cache}")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("24.50 vs 12.25 dB", result.stdout)
        # `verify` of a tampered entry fails with a non-zero exit status.
        with open(os.path.join(destination, "cli", "1", "config.json"), "a") as f:
            f.write(" ")
        result = run(os.path.join(scripts, "zoo.py"), "verify", f"--index={destination}")
        self.assertEqual(result.returncode, 1, result.stdout + result.stderr)
        self.assertIn("FAILED cli@1", result.stdout)
        # Naming the entry without a version reports the version it resolved to.
        result = run(os.path.join(scripts, "zoo.py"), "verify", "cli", f"--index={destination}")
        self.assertEqual(result.returncode, 1, result.stdout + result.stderr)
        self.assertIn("FAILED cli@1:", result.stdout)
        self.assertNotIn("@None", result.stdout)

