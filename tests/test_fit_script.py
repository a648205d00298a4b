"""scripts/fit.py end to end for every kind, its refusals, and `init_args.resolve_init`."""

import csv
import json
import os
import shutil
import stat
import subprocess
import sys

import numpy as np
import tensorflow as tf
from PIL import Image

from learnit_tf import zoo
from learnit_tf.meta import init_io
from learnit_tf.commands import init_args
from learnit_tf.core import cli, registry
from learnit_tf.kinds.ct.task import evenly_spaced_angles, make_eval_example
from learnit_tf.kinds.image import ImageTask, load_image
from learnit_tf.testing import TestCase

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
SCRIPT = os.path.join(REPO, "scripts", "fit.py")


def run_fit(*args, cwd=None):
    return subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True,
                          timeout=600, cwd=cwd or REPO,
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))


def l_shape(n):
    image = np.zeros((n, n), np.float32)
    image[n // 5:3 * n // 4, n // 4:n // 4 + n // 6] = 1.0
    image[3 * n // 4 - n // 6:3 * n // 4, n // 4:3 * n // 4] = 1.0
    return image


def _read_curve(path):
    with open(path) as f:
        reader = csv.reader(f)
        header = next(reader)
        return header, [dict(zip(header, map(float, row))) for row in reader]


class FitImageTest(TestCase):

    def test_fits_an_image(self):
        tmp = self.get_temp_dir()
        png = os.path.join(tmp, "photo.png")
        Image.fromarray((self.random_images(1, 40)[0] * 255).astype(np.uint8)).save(png)
        out = os.path.join(tmp, "out")
        result = run_fit("--init=text_siren", f"--input={png}", "--steps=3", "--resolution=24",
                         f"--output_dir={out}")
        self.assertEqual(result.returncode, 0, result.stderr[-3000:])
        for name in ("reconstruction.png", "psnr_curve.png", "curve.csv", "fitted/config.json"):
            self.assertTrue(os.path.exists(os.path.join(out, name)), name)
        self.assertEqual(sorted(os.listdir(tmp)), ["out", "photo.png"])  # No staging left.
        self.assertEqual(np.load(os.path.join(out, "reconstruction.npy")).shape, (24, 24, 3))
        header, rows = _read_curve(os.path.join(out, "curve.csv"))
        self.assertEqual(header, ["step", "loss", "psnr"])  # Once each (was step,loss,loss,psnr).
        self.assertEqual([r["step"] for r in rows], [0, 1, 2, 3])
        self.assertGreater(rows[-1]["psnr"], rows[0]["psnr"] + 0.5)
        self.assertAllClose(-10 * np.log10(rows[0]["loss"]), rows[0]["psnr"], atol=1e-3)
        # The fitted weights reproduce the last curve entry.
        fitted = init_io.load_init(os.path.join(out, "fitted"))
        image = load_image(png, 24)
        mse = float(tf.reduce_mean(tf.square(fitted(ImageTask(24).coords) - image)))
        self.assertAllClose(-10 * np.log10(mse), rows[-1]["psnr"], atol=1e-2)
        self.assertEqual(init_io.read_metadata(os.path.join(out, "fitted"))["fitted"]["steps"], 3)
        self.assertTrue(os.stat(os.path.join(out, "fitted")).st_mode & stat.S_IROTH)

    def test_refusals_write_nothing(self):
        tmp = self.get_temp_dir()
        png = os.path.join(tmp, "photo.png")
        Image.fromarray((self.random_images(1, 16)[0] * 255).astype(np.uint8)).save(png)
        a_file = os.path.join(tmp, "a_file")
        open(a_file, "w").close()
        out = os.path.join(tmp, "out")
        cases = [
            (["--learning_rate=0"], "--learning_rate must be > 0, got 0"),
            (["--learning_rate=-1"], "--learning_rate must be > 0"),
            (["--steps=-1"], "--steps must be >= 0, got -1"),
            ([f"--output_dir={a_file}"], "a_file' exists and is not a directory"),
            ([f"--output_dir={a_file}/sub"], "is inside .*a_file', not a directory"),
            ([f"--input={tmp}/missing.png"], "missing.png' does not exist"),
        ]
        for extra, message in cases:
            with self.subTest(extra=extra):
                result = run_fit("--init=text_siren", f"--input={png}", f"--output_dir={out}",
                                 *extra)
                self.assertNotEqual(result.returncode, 0)
                self.assertRegex(result.stderr, message)
                self.assertNotIn("Traceback", result.stderr)
                self.assertFalse(os.path.exists(out))

    def test_divergence_exits_nonzero_and_writes_nothing(self):
        # It saved NaN weights (and exit 0) before.
        tmp = self.get_temp_dir()
        png = os.path.join(tmp, "photo.png")
        Image.fromarray((self.random_images(1, 16)[0] * 255).astype(np.uint8)).save(png)
        out = os.path.join(tmp, "out")
        result = run_fit("--init=text_siren", f"--input={png}", "--resolution=8", "--steps=3",
                         "--learning_rate=1e30", f"--output_dir={out}")
        self.assertEqual(result.returncode, 1, result.stderr[-2000:])
        self.assertIn("The fit diverged", result.stderr)
        self.assertNotIn("Traceback", result.stderr)
        self.assertEqual(sorted(os.listdir(tmp)), ["photo.png"])
        # An init with NaN weights (it crashed in matplotlib, leaving a partial folder).
        model = init_io.load_init(os.path.join(REPO, "zoo", "text_siren", "1"))
        variable = model.trainable_variables[0]
        variable.assign(np.full(variable.shape, np.nan, np.float32))
        init_io.save_init(model, os.path.join(tmp, "nan_init"),
                          init_io.read_metadata(os.path.join(REPO, "zoo", "text_siren", "1")))
        result = run_fit(f"--init={tmp}/nan_init", f"--input={png}", "--resolution=8",
                         "--steps=0", f"--output_dir={out}")
        self.assertEqual(result.returncode, 1, result.stderr[-2000:])
        self.assertIn("NaN/infinite after 0 steps", result.stderr)
        self.assertFalse(os.path.exists(out))


class FitOptionsTest(TestCase):
    """Which flags reach which kind's reader, and the default optimizer (in-process)."""

    def test_reader_options(self):
        image, ct = registry.get_kind("image"), registry.get_kind("ct")
        flag_values = {"resolution": None, "num_angles": 4, "convention": None}
        self.assertEqual(cli.reader_options(ct, flag_values), {"num_angles": 4})
        with self.assertRaisesRegex(ValueError, r"--num_angles do\(es\) not apply to image "
                                                r"inits \(options for image: resolution\)"):
            cli.reader_options(image, flag_values)

    def test_fit_optimizer(self):
        metadata = {"hyperparameters": {"inner_optimizer": "sgd", "inner_learning_rate": 10.0}}
        default = init_args.fit_optimizer(metadata)
        self.assertEqual((default.name, default.learning_rate), ("sgd", 10.0))
        adam = init_args.fit_optimizer(metadata, "adam", 1e-3)
        self.assertEqual((adam.name, adam.learning_rate), ("adam", 1e-3))
        with self.assertRaisesRegex(ValueError, "--optimizer=adam needs --learning_rate"):
            init_args.fit_optimizer(metadata, "adam")
        for bad in (0.0, -1.0):
            with self.assertRaisesRegex(ValueError, "--learning_rate must be > 0"):
                init_args.fit_optimizer(metadata, None, bad)


class FitCtTest(TestCase):
    """Both sinogram conventions reconstruct a non-symmetric image the right way up."""

    def test_both_conventions(self):
        from skimage.transform import radon  # pylint: disable=import-outside-toplevel
        n, views = 25, 12
        image = l_shape(n)
        tmp = self.get_temp_dir()
        theta = np.linspace(0.0, 180.0, views, endpoint=False)
        np.save(os.path.join(tmp, "radon.npy"), radon(image.astype(np.float64), theta=theta))
        np.save(os.path.join(tmp, "learnit.npy"), make_eval_example(image, views)["sinogram"])
        np.save(os.path.join(tmp, "angles.npy"), evenly_spaced_angles(views))
        np.save(os.path.join(tmp, "truth.npy"), image)
        runs = {
            # The silent wrong result of the old fit_ct.py: skimage with --num_angles.
            "skimage": ["--input=" + os.path.join(tmp, "radon.npy"), "--convention=skimage",
                        f"--num_angles={views}"],
            "learnit": ["--input=" + os.path.join(tmp, "learnit.npy"),
                        "--angles=" + os.path.join(tmp, "angles.npy")],
        }
        for convention, flags in runs.items():
            with self.subTest(convention=convention):
                out = os.path.join(tmp, convention)
                result = run_fit("--init=shepp_logan_ct", *flags, "--steps=60",
                                 "--ground_truth=" + os.path.join(tmp, "truth.npy"),
                                 f"--output_dir={out}")
                self.assertEqual(result.returncode, 0, result.stderr[-3000:])
                recon = np.load(os.path.join(out, "reconstruction.npy"))[..., 0]
                self.assertEqual(recon.shape, (n, n))
                mse = np.mean((recon - image) ** 2)
                for name, flipped in {"upside down": image[::-1], "mirrored": image[:, ::-1],
                                      "rotated": image[::-1, ::-1],
                                      "transposed": image.T}.items():
                    self.assertLess(mse, 0.5 * np.mean((recon - flipped) ** 2), name)
                header, rows = _read_curve(os.path.join(out, "curve.csv"))
                self.assertEqual(header, ["step", "loss", "psnr", "sinogram_psnr"])
                self.assertAllClose(rows[-1]["psnr"], -10 * np.log10(mse), atol=0.05)
                self.assertTrue(os.path.exists(os.path.join(out, "reconstruction.png")))


class FitViewsTest(TestCase):

    def test_posed_views_directory(self):
        from learnit_tf.kinds.nerf import procedural  # pylint: disable=import-outside-toplevel
        tmp = self.get_temp_dir()
        objects = {"chair": procedural.generate_object(0, 0, 0, 8, num_views=4)}
        procedural.write_shapenet_format(tmp, "objects", objects, {"train": ["chair"]})
        out = os.path.join(tmp, "out")
        result = run_fit("--init=procedural_chairs_nerf",
                         "--input=" + os.path.join(tmp, "objects", "chair"),
                         "--num_support_views=3", "--steps=10", f"--output_dir={out}")
        self.assertEqual(result.returncode, 0, result.stderr[-3000:])
        self.assertIn("3 of 4 8×8 views, PSNR on 1 held-out", result.stdout)
        self.assertEqual(np.load(os.path.join(out, "reconstruction.npy")).shape, (8, 8, 3))
        header, rows = _read_curve(os.path.join(out, "curve.csv"))
        self.assertEqual(header, ["step", "loss", "psnr"])
        self.assertLen(rows, 11)
        # The fit improves the held-out view: +1.1 dB after 10 steps, +0.7 dB on average
        # over steps 6-10 (measured; the curve is noisy, each step draws its rays).
        psnr = [r["psnr"] for r in rows]
        self.assertTrue(all(np.isfinite(psnr)))
        self.assertGreater(psnr[-1], psnr[0] + 0.5)
        self.assertGreater(np.mean(psnr[6:]), psnr[0] + 0.3)
        self.assertTrue(os.path.exists(os.path.join(out, "fitted", "model.weights.h5")))


# scripts/fit.py with the zoo's file hashing counted (by real path), written to OUT at exit.
_COUNTING_FIT = """
import atexit, collections, json, os, sys
sys.path.insert(0, {repo!r})
from learnit_tf.zoo import transport
counts = collections.Counter()
real = transport.file_digest
def counted(path):
    counts[os.path.realpath(path)] += 1
    return real(path)
transport.file_digest = counted
atexit.register(lambda: json.dump(counts, open({out!r}, "w")))
sys.argv = [{script!r}, *{args!r}]
from learnit_tf.commands import fit
fit.run()
"""


class ZooVerificationTest(TestCase):
    """A zoo init's files are hashed once per process, and a changed file is hashed
    (and refused) again."""

    def test_learnit_fit_hashes_each_file_once(self):
        # The resolution pick reads every version's metadata, then the chosen version's
        # metadata decides the kind, then its model is loaded: each file hashed once.
        tmp = self.get_temp_dir()
        png = os.path.join(tmp, "photo.png")
        Image.fromarray((self.random_images(1, 16)[0] * 255).astype(np.uint8)).save(png)
        out, counts = os.path.join(tmp, "out"), os.path.join(tmp, "counts.json")
        args = ["--init=text_siren", f"--input={png}", "--steps=1", "--resolution=16",
                f"--output_dir={out}"]
        result = subprocess.run(
            [sys.executable, "-c", _COUNTING_FIT.format(repo=REPO, out=counts, script=SCRIPT,
                                                        args=args)],
            capture_output=True, text=True, timeout=600, cwd=REPO,
            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
        self.assertEqual(result.returncode, 0, result.stderr[-3000:])
        with open(counts) as f:
            counts = json.load(f)
        source = init_io.read_metadata(os.path.join(out, "fitted"))["fitted"]["source_init"]
        name, _, version = source.partition("@")
        loaded = os.path.join(REPO, "zoo", name, version)
        for filename in ("config.json", "model.weights.h5", "metadata.json"):
            self.assertEqual(counts.get(os.path.realpath(os.path.join(loaded, filename))), 1,
                             filename)
        self.assertEqual(set(counts.values()), {1}, counts)

    def test_a_file_changed_after_its_check_is_hashed_and_refused(self):
        import time  # pylint: disable=import-outside-toplevel
        from unittest import mock  # pylint: disable=import-outside-toplevel
        from learnit_tf.models import Siren  # pylint: disable=import-outside-toplevel
        from learnit_tf.zoo import transport  # pylint: disable=import-outside-toplevel
        root = self.get_temp_dir()
        init = init_io.save_init(Siren(width=8, depth=2, seed=1), os.path.join(root, "init"), {
            "signal_class": "text",
            "task": {"class_name": "ImageTask", "config": {"resolution": 8}}})
        zoo_dir = os.path.join(root, "zoo")
        zoo.publish(init, "tiny", "1", zoo_dir)
        weights = os.path.join(zoo_dir, "tiny", "1", "model.weights.h5")
        with open(os.path.join(zoo_dir, "index.json")) as f:
            expected = json.load(f)["entries"]["tiny"]["versions"]["1"]["files"]
        hashed = mock.patch.object(transport, "file_digest", wraps=transport.file_digest)
        with mock.patch.dict(os.environ, {zoo.ENV_INDEX: zoo_dir}), hashed as digest:
            # Files just written are never remembered: hashed at every check.
            for _ in range(2):
                init_args.resolve_init("tiny")
            self.assertEqual(digest.call_count, 2 * len(expected))
            # Older files (here: older than 0.05 s) are hashed once.
            with mock.patch.object(transport, "VERIFIED_MIN_AGE_NS", 5 * 10**7):
                time.sleep(0.1)
                digest.reset_mock()
                for _ in range(3):
                    init_args.resolve_init("tiny", load_model=False)
                    init_args.resolve_init("tiny")
                self.assertEqual(digest.call_count, len(expected))
                # One byte changed in place, same size: hashed again and refused.
                with open(weights, "rb") as f:
                    good = f.read()
                with open(weights, "r+b") as f:
                    f.seek(len(good) // 2)
                    f.write(bytes([good[len(good) // 2] ^ 0xFF]))
                digest.reset_mock()
                with self.assertRaisesRegex(ValueError, "could not be loaded and verified.*"
                                                        "tampered"):
                    init_args.resolve_init("tiny")
                self.assertEqual(digest.call_count, 1)
                with self.assertRaisesRegex(ValueError, "tampered"):  # Still refused.
                    init_args.resolve_init("tiny", load_model=False)


class ResolveInitTest(TestCase):
    """A local folder never shadows a zoo init; directories are given as paths."""

    def setUp(self):
        super().setUp()
        self.cwd = self.get_temp_dir()
        # A folder named like the zoo's text_siren holding another init (sdf_siren).
        shutil.copytree(os.path.join(REPO, "zoo", "sdf_siren", "1"),
                        os.path.join(self.cwd, "text_siren"))
        shutil.copytree(os.path.join(REPO, "zoo", "sdf_siren", "1"),
                        os.path.join(self.cwd, "my_init"))
        previous = os.getcwd()
        os.chdir(self.cwd)
        self.addCleanup(os.chdir, previous)

    @staticmethod
    def _weights(model):
        return [v.numpy() for v in model.trainable_variables]

    def test_bare_name_is_the_zoo(self):
        notes = []
        model, metadata, directory = init_args.resolve_init("text_siren", log=notes.append)
        self.assertIsNone(directory)
        self.assertEqual(metadata["dataset"]["function"], "text_images_examples")
        zoo_model = zoo.load("text_siren")  # Its latest version, not ./text_siren (sdf).
        self.assertWeightsClose(self._weights(model), self._weights(zoo_model), atol=0)
        self.assertLen(notes, 1)
        self.assertIn("pass --init=./text_siren", notes[0])

    def test_path_is_the_directory(self):
        notes = []
        _, metadata, directory = init_args.resolve_init("./text_siren", log=notes.append)
        self.assertEqual(directory, "./text_siren")
        self.assertEqual(metadata["dataset"]["function"], "sdf_2d_examples")
        self.assertEqual(notes, [])
        _, metadata, _ = init_args.resolve_init(os.path.join(self.cwd, "my_init"))
        self.assertEqual(metadata["dataset"]["function"], "sdf_2d_examples")

    def test_errors(self):
        with self.assertRaisesRegex(ValueError, r"'my_init' is not a zoo init .*pass "
                                                r"--init=\./my_init"):
            init_args.resolve_init("my_init")
        with self.assertRaisesRegex(ValueError, "'./missing' is not a directory"):
            init_args.resolve_init("./missing")
        os.makedirs("not_an_init")
        with self.assertRaisesRegex(ValueError, "'./not_an_init' is not a readable init"):
            init_args.resolve_init("./not_an_init")
        with self.assertRaisesRegex(ValueError, "--init is empty"):
            init_args.resolve_init("")


class FitReaderFlagsTest(TestCase):
    """Reader flags built from the kinds' ReaderOptions reach the reader (audio's has no
    hand-written flag in fit.py)."""

    def test_audio_resample_flag(self):
        import wave  # pylint: disable=import-outside-toplevel
        tmp = self.get_temp_dir()
        path = os.path.join(tmp, "tone.wav")
        t = np.arange(16000) / 16000.0
        with wave.open(path, "wb") as f:  # 16 kHz; the init's task is 8 kHz.
            f.setnchannels(1)
            f.setsampwidth(2)
            f.setframerate(16000)
            f.writeframes((0.5 * np.sin(2 * np.pi * 440 * t) * 32767).astype("<i2").tobytes())
        out = os.path.join(tmp, "out")
        refused = run_fit("--init=procedural_audio_siren", f"--input={path}", "--noresample",
                          "--steps=1", f"--output_dir={out}")
        self.assertEqual(refused.returncode, 2, refused.stderr[-2000:])
        self.assertRegex(refused.stderr, r"16000 Hz.*8000 Hz|8000 Hz.*16000 Hz")
        self.assertFalse(os.path.exists(out))
        wrong = run_fit("--init=procedural_audio_siren", f"--input={path}", "--num_angles=4",
                        "--steps=1", f"--output_dir={out}")
        self.assertEqual(wrong.returncode, 2, wrong.stderr[-2000:])
        self.assertIn("--num_angles do(es) not apply to audio inits (options for audio: "
                      "max_decoded_bytes, resample)", wrong.stderr)
        fitted = run_fit("--init=procedural_audio_siren", f"--input={path}", "--steps=1",
                         f"--output_dir={out}")
        self.assertEqual(fitted.returncode, 0, fitted.stderr[-2000:])
        _, rows = _read_curve(os.path.join(out, "curve.csv"))  # Resampled, then fitted.
        self.assertEqual([r["step"] for r in rows], [0, 1])
        self.assertTrue(os.path.exists(os.path.join(out, "fitted", "model.weights.h5")))
