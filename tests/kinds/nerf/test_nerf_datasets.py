"""NeRF datasets: procedural_objects, shapenet_views and phototourism on fake data."""

import json
import os
import shutil

import numpy as np
import tensorflow_datasets as tfds
from PIL import Image

from learnit_tf import testing
from learnit_tf.kinds.nerf import cameras, phototourism, procedural, shapenet, views

tfds.disable_progress_bar()

TINY = procedural.ProceduralObjectsConfig(
    name="test_tiny", resolution=12, num_views=6, num_support_views=3, num_train=2,
    num_validation=1, num_test=2)


def write_fake_shapenet(root, resolution=8, num_views=4, ids=("a", "b", "c", "d")):
    """Writes small procedural objects in the authors' ShapeNet layout; returns their data."""
    objects = {object_id: procedural.generate_object(7, 0, k, resolution, num_views)
               for k, object_id in enumerate(ids)}
    splits = {"train": list(ids[:2]), "val": [ids[2]], "test": [ids[3]]}
    procedural.write_shapenet_format(root, "chairs", objects, splits)
    return objects


class ProceduralObjectsTest(testing.TestCase):

    def test_generation_is_deterministic_by_seed(self):
        a = procedural.generate_object(0, 2, 5, 16, num_views=3)
        b = procedural.generate_object(0, 2, 5, 16, num_views=3)
        c = procedural.generate_object(0, 2, 6, 16, num_views=3)
        self.assertAllEqual(a["images"], b["images"])
        self.assertAllEqual(a["poses"], b["poses"])
        self.assertFalse(np.array_equal(a["images"], c["images"]))
        # Objects are visible but do not fill the frame.
        coverage = a["images"][..., 3].mean() / 255.0
        self.assertBetween(coverage, 0.05, 0.6)

    def test_renders_agree_with_geometry(self):
        data = procedural.generate_object(3, 0, 1, 24, num_views=2)
        obj, poses = data["object"], data["poses"]
        angle = data["camera_angle_x"]
        alpha = data["images"][..., 3] > 0
        rays_o, rays_d = views.view_rays(poses, angle, 24, 24)
        rays_o, rays_d = rays_o.numpy().reshape(2, -1, 3), rays_d.numpy().reshape(2, -1, 3)
        # Silhouette pixel <=> its ray hits a box: march every ray through [2, 6] densely.
        t = np.linspace(2.0, 6.0, 4001)
        for v in range(2):
            points = rays_o[v][:, None] + t[None, :, None] * rays_d[v][:, None]
            hit = obj.contains(points.reshape(-1, 3)).reshape(points.shape[:2]).any(-1)
            mismatch = np.mean(hit != alpha[v].reshape(-1))
            self.assertLessEqual(mismatch, 0.005)  # only grazing rays may differ
            self.assertGreater(hit.sum(), 20)
        # Hit distances: the hit point is on a box, just before it is empty space.
        out = procedural.cast_rays(rays_o[0], rays_d[0], obj)
        hits = np.isfinite(out["t"])
        self.assertAllEqual(hits, alpha[0].reshape(-1))
        surface = rays_o[0][hits] + out["t"][hits, None] * rays_d[0][hits]
        before = rays_o[0][hits] + (out["t"][hits, None] - 1e-3) * rays_d[0][hits]
        self.assertTrue(np.all(obj.contains(surface, margin=1e-6)))
        self.assertFalse(np.any(obj.contains(before)))
        # Silhouettes of two views agree: surface points seen in view 0 project into
        # view 1's silhouette (within one pixel).
        pixels, depth = cameras.project_points(surface, 24, 24, angle, poses[1])
        ij = np.round(pixels.numpy()).astype(int)
        self.assertTrue(np.all(depth.numpy() > 0))
        padded = np.pad(alpha[1], 1)
        near_silhouette = np.zeros_like(padded)
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                near_silhouette |= np.roll(np.roll(padded, dy, 0), dx, 1)
        inside = (ij >= 0).all(-1) & (ij < 24).all(-1)
        self.assertGreater(inside.mean(), 0.95)
        self.assertTrue(np.all(near_silhouette[ij[inside, 1] + 1, ij[inside, 0] + 1]))

    def test_builder_is_deterministic_and_matches_generator(self):
        root = self.get_temp_dir()
        first = procedural.procedural_objects_examples(
            "test", config=TINY, data_dir=os.path.join(root, "one"))
        second = procedural.procedural_objects_examples(
            "test", config=TINY, data_dir=os.path.join(root, "two"))
        a, b = list(first), list(second)
        self.assertLen(a, 2)
        for x, y in zip(a, b):
            for key in x:
                self.assertAllEqual(x[key], y[key])
        # Example layout: 3 support views of 12×12, 3 held-out views.
        ex = a[0]
        self.assertEqual(ex["rays_o"].shape, (3 * 144, 3))
        self.assertEqual(ex["test_rgb"].shape, (3 * 144, 3))
        self.assertAllEqual(ex["test_shape"], [3, 12, 12])
        # Support colours are the generator's renders composited on white.
        records = list(procedural.load_builder(TINY, os.path.join(root, "one")).as_dataset(
            split="test", shuffle_files=False))
        index = int(records[0]["object_id"].numpy().decode().split("_")[1])
        data = procedural.generate_object(TINY.seed, 2, index, 12, 6)
        rgba = data["images"].astype(np.float32) / 255.0
        rgb = rgba[..., :3] * rgba[..., 3:] + 1.0 - rgba[..., 3:]
        self.assertAllClose(ex["rgb"].numpy().reshape(3, 12, 12, 3), rgb[:3], atol=1e-6)
        self.assertAllClose(ex["test_rgb"].numpy().reshape(3, 12, 12, 3), rgb[3:], atol=1e-6)
        # Single view: one support view; train split has no held-out rays by default.
        single = next(iter(procedural.procedural_objects_examples(
            "train", config=TINY, views="single", data_dir=os.path.join(root, "one"))))
        self.assertEqual(single["rays_o"].shape, (144, 3))
        self.assertNotIn("test_rays_o", single)
        with self.assertRaisesRegex(ValueError, "views must be one of"):
            procedural.procedural_objects_examples("test", config=TINY, views="two",
                                                   data_dir=os.path.join(root, "one"))
        with self.assertRaisesRegex(ValueError, "Unknown split"):
            procedural.procedural_objects_examples("dev", config=TINY,
                                                   data_dir=os.path.join(root, "one"))


class ShapenetViewsTest(testing.TestCase):

    def config(self, name="fake8"):
        return shapenet.ShapenetViewsConfig(name=name, class_name="chairs", resolution=8,
                                            num_views=4, num_support_views=2)

    def test_reads_fake_renders(self):
        root = self.get_temp_dir()
        manual = os.path.join(root, "manual")
        objects = write_fake_shapenet(manual)
        ds = shapenet.shapenet_examples("test", manual_dir=manual, views="single",
                                        single_view=1, data_dir=os.path.join(root, "tfds"),
                                        config=self.config())
        (example,) = list(ds)
        data = objects["d"]
        rgba = data["images"].astype(np.float32) / 255.0
        rgb = rgba[..., :3] * rgba[..., 3:] + 1.0 - rgba[..., 3:]
        self.assertAllClose(example["rgb"].numpy().reshape(8, 8, 3), rgb[1], atol=1e-6)
        self.assertAllClose(example["test_rgb"].numpy().reshape(2, 8, 8, 3), rgb[2:], atol=1e-6)
        rays_o, rays_d = cameras.nerf_synthetic_rays(8, 8, data["camera_angle_x"],
                                                     data["poses"][1])
        self.assertAllClose(example["rays_o"], rays_o.numpy().reshape(-1, 3), atol=1e-5)
        self.assertAllClose(example["rays_d"], rays_d.numpy().reshape(-1, 3), atol=1e-5)
        train = list(shapenet.shapenet_examples("train", data_dir=os.path.join(root, "tfds"),
                                                config=self.config()))
        self.assertLen(train, 2)
        self.assertEqual(train[0]["rays_o"].shape, (2 * 64, 3))

    def test_missing_objects_are_skipped(self):
        root = self.get_temp_dir()
        manual = os.path.join(root, "manual")
        write_fake_shapenet(manual)
        shutil.rmtree(os.path.join(manual, "chairs", "b"))
        builder = shapenet.load_builder(manual_dir=manual, data_dir=os.path.join(root, "tfds"),
                                        config=self.config("fake8_skip"))
        self.assertEqual(builder.info.splits["train"].num_examples, 1)

    def test_bad_inputs_raise_clear_errors(self):
        root = self.get_temp_dir()
        with self.assertRaisesRegex(FileNotFoundError, "(?s)does not exist.*Download the ShapeNet"):
            shapenet.shapenet_examples("train", manual_dir=os.path.join(root, "nowhere"),
                                       data_dir=os.path.join(root, "tfds0"),
                                       config=self.config("fake8_missing"))
        manual = os.path.join(root, "manual")
        write_fake_shapenet(manual)
        folder = os.path.join(manual, "chairs", "a")
        path = os.path.join(folder, "transforms.json")
        with open(path) as f:
            original = json.load(f)

        def write(meta):
            with open(path, "w") as f:
                json.dump(meta, f)

        write({"frames": original["frames"]})
        with self.assertRaisesRegex(ValueError, f"{path}.*camera_angle_x"):
            views.read_transforms(folder)
        # Through the builder too: the error names the file.
        with self.assertRaisesRegex(ValueError, "chairs/a/transforms.json.*camera_angle_x"):
            shapenet.shapenet_examples("train", manual_dir=manual,
                                       data_dir=os.path.join(root, "tfds1"),
                                       config=self.config("fake8_bad"))
        bad = json.loads(json.dumps(original))
        bad["frames"][2]["transform_matrix"] = bad["frames"][2]["transform_matrix"][:2]
        write(bad)  # 3×4 is completed with [0, 0, 0, 1]; 2×4 is no pose.
        with self.assertRaisesRegex(ValueError, f"{path}: frame 2 'transform_matrix' has shape "
                                                r"\(2, 4\); expected a 4×4 \(or 3×4\)"):
            views.read_transforms(folder)
        write(original)
        os.remove(os.path.join(folder, "r_3.png"))
        with self.assertRaisesRegex(FileNotFoundError, "disagree in count.*r_3.png"):
            views.read_transforms(folder)


class PhototourismTest(testing.TestCase):

    def write_fake(self, manual, num_images=27, height=6, width=8):
        rng = np.random.default_rng(0)
        folder = os.path.join(manual, "fake", "dense", "images")
        os.makedirs(folder)
        images = rng.integers(0, 256, (num_images, height, width, 3), dtype=np.uint8)
        for i, image in enumerate(images):
            Image.fromarray(image).save(os.path.join(folder, f"img_{i:03d}.png"))
        c2w = np.stack([cameras.look_at_pose(rng.normal(size=3) * 10.0 + [0, 0, 40.0])
                        for _ in range(num_images)])[:, :3, :]
        f = 10.0
        kinv = np.tile(np.linalg.inv([[f, 0, width / 2], [0, f, height / 2], [0, 0, 1]]),
                       (num_images, 1, 1))
        bds = np.stack([rng.uniform(10, 20, num_images), rng.uniform(40, 60, num_images)], -1)
        res = np.tile([width, height], (num_images, 1))
        landmark = os.path.join(manual, "fake")
        for name, array in (("c2w_mats", c2w), ("kinv_mats", kinv), ("bds", bds),
                            ("res_mats", res)):
            np.save(os.path.join(landmark, name + ".npy"), array)
        return images, c2w, kinv, bds

    def test_reads_fake_landmark(self):
        root = self.get_temp_dir()
        manual = os.path.join(root, "manual")
        images, c2w, kinv, bds = self.write_fake(manual)
        config = phototourism.PhototourismConfig(name="fake", landmark="fake")
        data_dir = os.path.join(root, "tfds")
        test = list(phototourism.phototourism_examples("test", manual_dir=manual,
                                                       data_dir=data_dir, config=config))
        self.assertLen(test, 20)
        builder = phototourism.load_builder(data_dir=data_dir, config=config)
        self.assertEqual(builder.info.splits["validation"].num_examples, 5)
        self.assertEqual(builder.info.splits["train"].num_examples, 2)
        records = {int(r["index"]): r for r in builder.as_dataset(split="test")}
        # Find example of image 3 via its colours (left half = support, right = held out).
        i = 3
        left, right = images[i][:, :4] / 255.0, images[i][:, 4:] / 255.0
        (example,) = [e for e in test if np.allclose(e["rgb"].numpy(), left.reshape(-1, 3),
                                                    atol=1e-6)]
        self.assertAllClose(example["test_rgb"], right.reshape(-1, 3), atol=1e-6)
        self.assertAllEqual(example["test_shape"], [1, 6, 4])
        self.assertAllClose(records[i]["c2w"].numpy()[:3], c2w[i], atol=1e-6)
        # Rays: origin = scaled camera centre; direction = R kinv (col, row, 1).
        self.assertAllClose(example["rays_o"][0], c2w[i][:, 3] * 0.05, atol=1e-5)
        col, row = 2, 5
        d = c2w[i][:, :3] @ kinv[i] @ np.array([col, row, 1.0])
        self.assertAllClose(example["rays_d"][row * 4 + col], d, atol=1e-5)
        d = c2w[i][:, :3] @ kinv[i] @ np.array([4 + col, row, 1.0])
        self.assertAllClose(example["test_rays_d"][row * 4 + col], d, atol=1e-5)
        self.assertAllClose(example["near"], np.full(24, bds[i, 0] * 0.9 * 0.05), rtol=1e-5)
        self.assertAllClose(example["test_far"], np.full(24, bds[i, 1] * 1.2 * 0.05), rtol=1e-5)
        # Training examples: whole photos, fixed ray count -> static shapes for meta-batches.
        train = phototourism.phototourism_examples("train", data_dir=data_dir, config=config,
                                                   rays_per_image=10)
        self.assertEqual(train.element_spec["rays_o"].shape, (10, 3))
        self.assertEqual(train.element_spec["near"].shape, (10,))
        self.assertNotIn("test_rays_o", train.element_spec)

    def test_bad_inputs_raise_clear_errors(self):
        root = self.get_temp_dir()
        config = phototourism.PhototourismConfig(name="fake_bad", landmark="fake")
        with self.assertRaisesRegex(FileNotFoundError, "(?s)does not exist.*Phototourism data"):
            phototourism.phototourism_examples("test", manual_dir=os.path.join(root, "none"),
                                               data_dir=os.path.join(root, "t0"), config=config)
        manual = os.path.join(root, "manual")
        _, c2w, _, bds = self.write_fake(manual)
        landmark = os.path.join(manual, "fake")
        np.save(os.path.join(landmark, "c2w_mats.npy"), c2w[:-1])
        with self.assertRaisesRegex(ValueError, "disagree in count.*c2w_mats.npy has 26"):
            phototourism.phototourism_examples("test", manual_dir=manual,
                                               data_dir=os.path.join(root, "t1"), config=config)
        np.save(os.path.join(landmark, "c2w_mats.npy"), c2w)
        bad = bds.copy()
        bad[4] = [50.0, 20.0]
        np.save(os.path.join(landmark, "bds.npy"), bad)
        with self.assertRaisesRegex(ValueError, "bds.npy: image 4 .* near=50.0 >= far=20.0"):
            phototourism.read_cameras(landmark)
        np.save(os.path.join(landmark, "bds.npy"), bds)
        np.save(os.path.join(landmark, "kinv_mats.npy"), np.zeros((27, 3, 4)))
        with self.assertRaisesRegex(ValueError, r"kinv_mats.npy has shape \(27, 3, 4\)"):
            phototourism.read_cameras(landmark)
