"""`phototourism`: a landmark's photos with cameras, read from a manual download directory.

PAPER.md, "View synthesis: Phototourism": per-image camera-to-world matrices,
inverse intrinsics, near/far bounds and resolutions (`c2w_mats.npy`,
`kinv_mats.npy`, `bds.npy`, `res_mats.npy`); scene scale 0.05; near/far = bounds ×
[0.9, 1.2] × scale; images 0–19 are test, 20–24 validation, the rest train (images
sorted by file name, as in the authors' notebook). Test protocol: fit the left half
of a photo, PSNR on its right half.

Layout of the manual directory, per landmark:

    <manual_dir>/<landmark>/c2w_mats.npy   (N, 4, 4) or (N, 3, 4)
    <manual_dir>/<landmark>/kinv_mats.npy  (N, 3, 3)
    <manual_dir>/<landmark>/bds.npy        (N, 2)    near, far (unscaled)
    <manual_dir>/<landmark>/res_mats.npy   (N, 2)    image width, height
    <manual_dir>/<landmark>/images/*.jpg   (or dense/images/, as in the IMC release)
"""

import dataclasses
import os

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds
from PIL import Image

from learnit_tf.data.procedural_builders import PAPER_CITATION, PAPER_HOMEPAGE
from learnit_tf.data import files as image_decoder
from learnit_tf.kinds.nerf.poses import check_pose
from learnit_tf.kinds.nerf import cameras

LANDMARKS = ("sacre", "trevi", "brandenburg")
POSE_FILES = ("c2w_mats.npy", "kinv_mats.npy", "bds.npy", "res_mats.npy")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")
NUM_TEST, NUM_VALIDATION = 20, 5
SCALE = 0.05
BOUNDS_FACTORS = (0.9, 1.2)
PROTOCOLS = ("full", "half")

MANUAL_DOWNLOAD_INSTRUCTIONS = """\
Phototourism data of Tancik et al. (CVPR 2021), "Learned Initializations for
Optimizing Coordinate-Based Neural Representations" (see https://github.com/tancik/learnit):
for each landmark (sacre, trevi, brandenburg) put the authors' camera files and the
landmark's photos (from the Image Matching Challenge 2020 Phototourism release,
e.g. sacre_coeur/dense/images) into

  <manual_dir>/<landmark>/c2w_mats.npy, kinv_mats.npy, bds.npy, res_mats.npy
  <manual_dir>/<landmark>/images/*.jpg      (or <manual_dir>/<landmark>/dense/images/)

The i-th row of each .npy file belongs to the i-th image in file-name order. Then pass
manual_dir=<manual_dir> to phototourism_examples(...).
"""


@dataclasses.dataclass
class PhototourismConfig(tfds.core.BuilderConfig):
    """One landmark. `landmark` is the folder name in the manual directory."""

    landmark: str = "sacre"


def image_files(landmark_dir):
    """Sorted image files of a landmark (images/ or dense/images/)."""
    for sub in ("images", os.path.join("dense", "images")):
        folder = os.path.join(landmark_dir, sub)
        if os.path.isdir(folder):
            files = sorted(f for f in os.listdir(folder) if f.lower().endswith(IMAGE_EXTENSIONS))
            if files:
                return [os.path.join(folder, f) for f in files]
    raise FileNotFoundError(f"No images found in {landmark_dir}/images or "
                            f"{landmark_dir}/dense/images.\n{MANUAL_DOWNLOAD_INSTRUCTIONS}")


def read_cameras(landmark_dir):
    """Loads and validates the camera files of a landmark.

    Returns:
        dict "c2w" float32 (N, 4, 4), "kinv" (N, 3, 3), "bounds" (N, 2), "resolution"
        int (N, 2) (width, height), "image_files" list of N paths.

    Raises:
        FileNotFoundError: a missing file (message with the download instructions).
        ValueError: wrong shapes, counts that disagree between images and poses, or
            bounds with near >= far — naming the file.
    """
    if not os.path.isdir(landmark_dir):
        raise FileNotFoundError(f"Phototourism landmark directory {landmark_dir} does not "
                                f"exist.\n{MANUAL_DOWNLOAD_INSTRUCTIONS}")
    arrays = {}
    for name in POSE_FILES:
        path = os.path.join(landmark_dir, name)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{path} not found.\n{MANUAL_DOWNLOAD_INSTRUCTIONS}")
        try:
            arrays[name] = np.load(path)
        except (OSError, ValueError) as e:
            raise ValueError(f"Cannot read {path} as a .npy array: {e}") from e
    files = image_files(landmark_dir)
    expected = {"c2w_mats.npy": [(3, 4), (4, 4)], "kinv_mats.npy": [(3, 3)],
                "bds.npy": [(2,)], "res_mats.npy": [(2,)]}
    for name, shapes in expected.items():
        a = arrays[name]
        if a.ndim < 1 or tuple(a.shape[1:]) not in shapes:
            raise ValueError(f"{os.path.join(landmark_dir, name)} has shape {a.shape}; expected "
                             f"(N, {' or '.join(str(s) for s in shapes)}).")
        if len(a) != len(files):
            raise ValueError(
                f"Images and poses disagree in count: {os.path.join(landmark_dir, name)} has "
                f"{len(a)} entries but {len(files)} images were found "
                f"(in {os.path.dirname(files[0])}).")
        if not np.all(np.isfinite(a)):
            raise ValueError(f"{os.path.join(landmark_dir, name)} contains NaN or inf.")
    # Rotations checked (finite, det +1, not scaled); no distance rule: bds.npy gives
    # each image its own near/far.
    c2w_path = os.path.join(landmark_dir, "c2w_mats.npy")
    c2w = np.stack([check_pose(m, f"{c2w_path}: image {i} ({os.path.basename(files[i])})")
                    for i, m in enumerate(arrays["c2w_mats.npy"])])
    bounds = arrays["bds.npy"].astype(np.float32)
    bad = np.flatnonzero(~((bounds[:, 0] > 0) & (bounds[:, 0] < bounds[:, 1])))
    if bad.size:
        raise ValueError(f"{os.path.join(landmark_dir, 'bds.npy')}: image {bad[0]} "
                         f"({os.path.basename(files[bad[0]])}) has near={bounds[bad[0], 0]} >= "
                         f"far={bounds[bad[0], 1]} (or near <= 0); need 0 < near < far.")
    return {"c2w": c2w.astype(np.float32), "kinv": arrays["kinv_mats.npy"].astype(np.float32),
            "bounds": bounds, "resolution": arrays["res_mats.npy"].astype(np.int64),
            "image_files": files}


def split_indices(num_images):
    """Image indices per split: 0–19 test, 20–24 validation, the rest train."""
    if num_images <= NUM_TEST + NUM_VALIDATION:
        raise ValueError(f"Phototourism needs more than {NUM_TEST + NUM_VALIDATION} images "
                         f"(20 test, 5 validation, rest train), got {num_images}.")
    return {"test": list(range(NUM_TEST)),
            "validation": list(range(NUM_TEST, NUM_TEST + NUM_VALIDATION)),
            "train": list(range(NUM_TEST + NUM_VALIDATION, num_images))}


def _landmark_dir(manual_dir, landmark):
    if manual_dir is None or not os.path.isdir(manual_dir):
        raise FileNotFoundError(f"Phototourism manual directory {manual_dir!r} does not exist."
                                f"\n{MANUAL_DOWNLOAD_INSTRUCTIONS}")
    return os.path.join(manual_dir, landmark)


class Phototourism(tfds.core.GeneratorBasedBuilder):
    """Photos of one landmark with camera-to-world, inverse intrinsics and bounds."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = MANUAL_DOWNLOAD_INSTRUCTIONS
    BUILDER_CONFIGS = [PhototourismConfig(name=name, landmark=name,
                                          description=f"Phototourism {name}.")
                       for name in LANDMARKS]
    DEFAULT_CONFIG_NAME = "sacre"

    def _info(self):
        return self.dataset_info_from_configs(
            description=__doc__,
            features=tfds.features.FeaturesDict({
                "image": tfds.features.Image(shape=(None, None, 3)),
                "file_name": tfds.features.Text(),
                "index": tfds.features.Scalar(dtype=np.int32),
                "c2w": tfds.features.Tensor(shape=(4, 4), dtype=np.float32),
                "kinv": tfds.features.Tensor(shape=(3, 3), dtype=np.float32),
                "bounds": tfds.features.Tensor(shape=(2,), dtype=np.float32),
            }),
            supervised_keys=None,
            homepage=PAPER_HOMEPAGE,
            citation=PAPER_CITATION,
        )

    def _split_generators(self, dl_manager):
        landmark_dir = _landmark_dir(os.fspath(dl_manager.manual_dir),
                                     self.builder_config.landmark)
        data = read_cameras(landmark_dir)
        return {split: self._generate_examples(data, indices)
                for split, indices in split_indices(len(data["image_files"])).items()}

    def _generate_examples(self, data, indices):
        for i in indices:
            path = data["image_files"][i]
            try:
                with Image.open(path) as img:  # Reads the header only.
                    size, mode = img.size, img.mode
            except OSError as e:
                raise ValueError(f"Cannot read image {path}: {e}") from e
            # RGB files are stored as they are (no JPEG re-encoding); others are decoded by
            # the one image decoder (any mode and bit depth) and stored as 8-bit RGB. Both
            # keep the stored pixel grid (no EXIF orientation): the COLMAP poses refer to it.
            image = path if mode == "RGB" else np.round(image_decoder.to_rgb(
                image_decoder.read_image(path, orient=False)) * 255.0).astype(np.uint8)
            w, h = (int(v) for v in data["resolution"][i])
            if size not in ((w, h), (h, w)):
                raise ValueError(f"{path} is {size[0]}×{size[1]} but res_mats.npy row {i} says "
                                 f"{w}×{h}; the intrinsics would not match the image.")
            yield i, {"image": image, "file_name": os.path.basename(path), "index": i,
                      "c2w": data["c2w"][i], "kinv": data["kinv"][i],
                      "bounds": data["bounds"][i]}


def load_builder(landmark="sacre", manual_dir=None, data_dir=None, config=None):
    """The prepared `phototourism` builder (prepared from `manual_dir` if needed)."""
    if config is None:
        if landmark not in LANDMARKS:
            config = PhototourismConfig(name=landmark, landmark=landmark)
        else:
            config = landmark
    builder = Phototourism(config=config, data_dir=data_dir)
    if not builder.is_prepared():
        read_cameras(_landmark_dir(manual_dir, builder.builder_config.landmark))
        builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
            manual_dir=manual_dir))
    return builder


def photo_rays(record, downsample=1, scale=SCALE, bounds_factors=BOUNDS_FACTORS):
    """Rays, colours and per-ray bounds of one photo record, each (H', W', ...).

    The camera translation and bounds are scaled by `scale` and the bounds widened
    by `bounds_factors` (the authors' notebook). With `downsample` = s every s-th row
    and column is kept, shooting rays through those full-resolution pixels.
    """
    s = int(downsample)
    image = tf.cast(record["image"][::s, ::s], tf.float32) / 255.0
    full = tf.shape(record["image"])
    c2w = tf.concat([record["c2w"][:3, :3], record["c2w"][:3, 3:] * scale], axis=-1)
    rays_o, rays_d = cameras.inverse_intrinsics_rays(full[0], full[1], record["kinv"], c2w,
                                                     stride=s)
    bounds = record["bounds"] * tf.constant(bounds_factors, tf.float32) * scale
    near = tf.fill(tf.shape(rays_o)[:2], bounds[0])
    far = tf.fill(tf.shape(rays_o)[:2], bounds[1])
    return {"rays_o": rays_o, "rays_d": rays_d, "rgb": image, "near": near, "far": far}


def _subsample(rays, count, seed):
    flat = {k: tf.reshape(v, (-1, 3) if k in ("rays_o", "rays_d", "rgb") else (-1,))
            for k, v in rays.items()}
    if count is None:
        return flat
    n = tf.shape(flat["rgb"])[0]
    idx = tf.random.stateless_uniform((count,), seed, 0, n, dtype=tf.int32)
    return {k: tf.gather(v, idx) for k, v in flat.items()}


def record_to_example(record, protocol, downsample=1, rays_per_image=None, scale=SCALE,
                      bounds_factors=BOUNDS_FACTORS, subsample_seed=0):
    """One photo -> a `NerfTask` example (see `phototourism_examples`)."""
    rays = photo_rays(record, downsample, scale, bounds_factors)
    seed = tf.stack([tf.constant(int(subsample_seed), tf.int32), record["index"]])
    if protocol == "full":
        support = _subsample(rays, rays_per_image, seed)
        return support
    width = tf.shape(rays["rgb"])[1]
    half = width // 2
    left = {k: v[:, :half] for k, v in rays.items()}
    right = {k: v[:, half:] for k, v in rays.items()}
    example = _subsample(left, rays_per_image, seed)
    test = _subsample(right, rays_per_image, seed + [0, 1_000_003])
    example.update({"test_" + k: v for k, v in test.items()})
    if rays_per_image is None:
        height = tf.shape(rays["rgb"])[0]
        example["test_shape"] = tf.stack([1, height, width - half])
    else:
        example["test_shape"] = tf.constant([1, 1, int(rays_per_image)], tf.int32)
    return example


def phototourism_examples(split, landmark="sacre", manual_dir=None, protocol=None,
                          downsample=1, rays_per_image=None, scale=SCALE,
                          bounds_factors=BOUNDS_FACTORS, subsample_seed=0, data_dir=None,
                          config=None):
    """A landmark's photos as unbatched `NerfTask` examples (one photo per example).

    Args:
        split: "train" (images 25+), "validation" (20–24) or "test" (0–19).
        landmark: "sacre", "trevi" or "brandenburg" (folder in `manual_dir`).
        manual_dir: see MANUAL_DOWNLOAD_INSTRUCTIONS; needed only the first time.
        protocol: "full" (support = the whole photo; meta-training) or "half" (support =
            left half, "test_*" = right half; the paper's test). Default: "full" for
            train, "half" otherwise.
        downsample: keep every s-th pixel row/column.
        rays_per_image: if set, support (and held-out) rays are a fixed random subset of
            this many pixels (drawn with replacement, deterministic per image), so that
            all examples have the same static shape (needed for meta-batches); None
            keeps every pixel (shapes then vary per photo).
        scale: scene scale (paper: 0.05).
        bounds_factors: near/far multipliers of bds.npy (paper: 0.9, 1.2).
        subsample_seed: seed of the ray subsets.
        data_dir: TFDS data directory.
        config: a custom `PhototourismConfig`.

    Every example carries per-ray "near"/"far" (and "test_near"/"test_far").
    """
    protocol = protocol or ("full" if split == "train" else "half")
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}.")
    if int(downsample) < 1:
        raise ValueError(f"downsample must be >= 1, got {downsample}.")
    if rays_per_image is not None and int(rays_per_image) < 1:
        raise ValueError(f"rays_per_image must be >= 1, got {rays_per_image}.")
    if not 0 < bounds_factors[0] < bounds_factors[1]:
        raise ValueError(f"bounds_factors must satisfy 0 < near factor < far factor, got "
                         f"{bounds_factors}.")
    builder = load_builder(landmark, manual_dir, data_dir, config)
    name = {"val": "validation", "valid": "validation"}.get(split, split)
    if name not in builder.info.splits:
        raise ValueError(f"Unknown split {split!r} for phototourism; expected one of "
                         f"{sorted(builder.info.splits)}.")
    records = builder.as_dataset(split=name, shuffle_files=False)
    rays_per_image = None if rays_per_image is None else int(rays_per_image)
    return records.map(
        lambda r: record_to_example(r, protocol, int(downsample), rays_per_image, scale,
                                    tuple(bounds_factors), subsample_seed),
        num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
