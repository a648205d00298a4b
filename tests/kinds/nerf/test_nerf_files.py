"""Posed-view folders (ShapeNet layout): one object for fit.py, a folder of objects to train on."""

import json
import os

import numpy as np

from learnit_tf.kinds.nerf import files, procedural
from learnit_tf.kinds.nerf.task import NerfTask
from learnit_tf.kinds.nerf.views import composite_on_white
from learnit_tf.testing import TestCase


def write_objects(root, count, resolution=8, num_views=4, prefix="obj"):
    """`count` procedural objects as <root>/<prefix>K/{transforms.json, r_*.png}."""
    objects = {f"{prefix}{i}": procedural.generate_object(0, 0, i, resolution, num_views)
               for i in range(count)}
    procedural.write_shapenet_format(root, "", objects, {"train": list(objects)})
    return objects


class ReadObjectTest(TestCase):

    def test_round_trip(self):
        root = self.get_temp_dir()
        objects = write_objects(root, 1)
        record = files.read_object(os.path.join(root, "obj0"))
        self.assertAllEqual(record["images"], objects["obj0"]["images"])
        self.assertAllClose(record["poses"], objects["obj0"]["poses"])
        self.assertEqual(record["object_id"], "obj0")
        same = files.read_object(os.path.join(root, "obj0", "transforms.json"))
        self.assertAllEqual(same["images"], record["images"])

    def test_fit_example_support_and_held_out(self):
        root = self.get_temp_dir()
        objects = write_objects(root, 1)
        task = NerfTask(num_samples=4, rays_per_step=8)
        every = files.fit_example(os.path.join(root, "obj0"), task)
        self.assertEqual(every.example["rays_o"].shape, (4 * 64, 3))
        self.assertNotIn("test_rgb", every.example)
        expected = composite_on_white(objects["obj0"]["images"]).numpy().reshape(-1, 3)
        self.assertAllClose(every.example["rgb"], expected)
        task.validate_example(every.example)
        split = files.fit_example(os.path.join(root, "obj0"), task, num_support_views=3)
        self.assertEqual(split.example["rays_o"].shape, (3 * 64, 3))
        self.assertAllClose(split.example["test_rgb"], expected[3 * 64:])
        self.assertEqual(split.observed[0][1].shape, (8, 8, 3))
        with self.assertRaisesRegex(ValueError, r"num_support_views must be in \[1, 4\]"):
            files.fit_example(os.path.join(root, "obj0"), task, num_support_views=5)

    def test_bad_objects(self):
        root = self.get_temp_dir()
        write_objects(root, 1)
        folder = os.path.join(root, "obj0")
        with self.assertRaisesRegex(ValueError, "does not exist"):
            files.read_object(os.path.join(root, "nothing"))
        empty = os.path.join(root, "empty")
        os.makedirs(empty)
        with self.assertRaisesRegex(ValueError, "empty.*transforms.json not found"):
            files.read_object(empty)
        with self.assertRaisesRegex(ValueError, r"holds object folders \(obj0...\): pass one"):
            files.read_object(root)
        with open(os.path.join(folder, "r_2.png"), "w") as f:
            f.write("garbage")
        with self.assertRaisesRegex(ValueError, "Cannot read .*r_2.png"):
            files.read_object(folder)
        os.remove(os.path.join(folder, "r_2.png"))
        with self.assertRaisesRegex(ValueError, "4 frames but 1 of their images are missing"):
            files.read_object(folder)
        with open(os.path.join(folder, "transforms.json"), "w") as f:
            f.write("{not json")
        with self.assertRaisesRegex(ValueError, "transforms.json is not valid JSON"):
            files.read_object(folder)
        with self.assertRaisesRegex(ValueError, "need a NerfTask"):
            from learnit_tf.kinds.image import ImageTask  # pylint: disable=import-outside-toplevel
            files.fit_example(folder, ImageTask(8))


class FolderOfObjectsTest(TestCase):

    def test_hash_split_and_examples(self):
        root = self.get_temp_dir()
        write_objects(root, 3)
        train = list(files.nerf_folder_examples(root, split="train"))
        test = list(files.nerf_folder_examples(root, split="test", views="single"))
        self.assertEqual(len(train) + len(test), 3)
        self.assertNotEmpty(test)
        self.assertEqual(train[0]["rays_o"].shape, (2 * 64, 3))  # Half the 4 views support.
        self.assertNotIn("test_rgb", train[0])
        self.assertEqual(test[0]["rays_o"].shape, (64, 3))  # One support view.
        self.assertEqual(test[0]["test_rgb"].shape, (2 * 64, 3))

    def test_split_subfolders_and_bad_folders(self):
        root = self.get_temp_dir()
        write_objects(os.path.join(root, "train"), 2)
        write_objects(os.path.join(root, "test"), 1, prefix="t")
        self.assertLen(list(files.nerf_folder_examples(root, split="train")), 2)
        self.assertLen(list(files.nerf_folder_examples(root, split="validation")), 1)
        empty = os.path.join(root, "nothing_here")
        os.makedirs(empty)
        with self.assertRaisesRegex(ValueError, "holds no object folders"):
            files.nerf_folder_examples(empty, split="train")
        mixed = os.path.join(root, "mixed")
        write_objects(os.path.join(mixed, "train"), 1, resolution=8)
        write_objects(os.path.join(mixed, "train"), 1, resolution=6, prefix="small")
        write_objects(os.path.join(mixed, "test"), 1)
        with self.assertRaisesRegex(ValueError, "small0.* same number and size of views"):
            files.nerf_folder_examples(mixed, split="train")
        with self.assertRaisesRegex(ValueError, "r_0.png is 8×8; expected 16×16"):
            files.nerf_folder_examples(root, split="train", resolution=16)
        one_view = os.path.join(root, "one_view")
        write_objects(one_view, 2, num_views=1)
        with self.assertRaisesRegex(ValueError, "1 view; expected at least 2"):
            files.nerf_folder_examples(one_view, split="train")
        with open(os.path.join(root, "train", "obj0", "transforms.json")) as f:
            meta = json.load(f)
        meta["frames"][0]["transform_matrix"] = [[1.0, 0.0], [0.0, 1.0]]
        with open(os.path.join(root, "train", "obj0", "transforms.json"), "w") as f:
            json.dump(meta, f)
        with self.assertRaisesRegex(ValueError, r"obj0.*transforms.json: frame 0 "
                                                r"'transform_matrix' has shape \(2, 2\)"):
            files.nerf_folder_examples(root, split="train")


class PhototourismDecoderTest(TestCase):

    def test_16_bit_photo_goes_through_the_one_decoder(self):
        from PIL import Image  # pylint: disable=import-outside-toplevel
        from learnit_tf.kinds.nerf import phototourism  # pylint: disable=import-outside-toplevel
        path = os.path.join(self.get_temp_dir(), "photo16.png")
        Image.fromarray(np.full((6, 8), 32700, np.uint16)).save(path)
        data = {"image_files": [path], "resolution": np.array([[8, 6]]),
                "c2w": np.zeros((1, 3, 4)), "kinv": np.zeros((1, 3, 3)),
                "bounds": np.ones((1, 2))}
        # pylint: disable=protected-access
        (_, record), = phototourism.Phototourism._generate_examples(None, data, [0])
        self.assertEqual(record["image"].shape, (6, 8, 3))
        self.assertAllClose(record["image"].mean(), round(32700 / 65535 * 255), atol=0)


class PoseValidationTest(TestCase):
    """One validator (`learnit_tf.kinds.nerf.poses`) for every frame's camera-to-world matrix."""

    def _object_with_frame_2(self, matrix):
        root = self.get_temp_dir()
        write_objects(root, 1)
        path = os.path.join(root, "obj0", "transforms.json")
        with open(path) as f:
            meta = json.load(f)
        self.good = np.array(meta["frames"][2]["transform_matrix"])
        meta["frames"][2]["transform_matrix"] = matrix(self.good)
        with open(path, "w") as f:
            json.dump(meta, f)  # NaN is written as the NaN literal json.load accepts.
        return os.path.join(root, "obj0"), path

    def test_bad_poses_name_the_file_and_frame(self):
        mirror = np.diag([1.0, 1.0, -1.0, 1.0])
        cases = {
            "all-zero": (lambda m: np.zeros((4, 4)).tolist(), "all zeros"),
            "scaled": (lambda m: (m @ np.diag([2.0, 2.0, 2.0, 1.0])).tolist(),
                       r"is scaled: .*lengths \[2.0, 2.0, 2.0\]"),
            "mirrored": (lambda m: (m @ mirror).tolist(), r"is mirrored: .*determinant -1.000"),
            "far-away": (lambda m: np.vstack([np.hstack([m[:3, :3], 10 * m[:3, 3:]]),
                                              m[3:]]).tolist(),
                         r"40 from the origin, outside the task's near/far range \[2, 6\]"),
            "nan": (lambda m: np.where(np.eye(4) > 0, np.nan, m).tolist(), "NaN or infinite"),
            "sheared": (lambda m: (m @ np.array([[1, 0.1, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0],
                                                 [0, 0, 0, 1.0]])).tolist(),
                        "scaled|not orthogonal"),
            "last-row": (lambda m: np.vstack([m[:3], [[0, 0, 1, 1]]]).tolist(),
                         r"last row \[0.0, 0.0, 1.0, 1.0\]"),
        }
        for name, (matrix, pattern) in cases.items():
            with self.subTest(name):
                folder, path = self._object_with_frame_2(matrix)
                with self.assertRaisesRegex(
                        ValueError, f"{path}: frame 2 'transform_matrix' .*{pattern}"):
                    files.read_object(folder)
                task = NerfTask(num_samples=4, rays_per_step=8)
                with self.assertRaisesRegex(ValueError, f"{path}: frame 2 "):
                    files.fit_example(folder, task)

    def test_good_poses_pass_and_3x4_is_completed(self):
        folder, _ = self._object_with_frame_2(lambda m: m[:3].tolist())
        record = files.read_object(folder)
        self.assertAllClose(record["poses"][2], self.good)
        # The rotation of the written poses is orthonormal with det +1 (independent check).
        rotations = record["poses"][:, :3, :3].astype(np.float64)
        self.assertAllClose(np.linalg.det(rotations), np.ones(4), atol=1e-6)

    def test_scene_bounds_come_from_the_task(self):
        folder, path = self._object_with_frame_2(lambda m: m.tolist())
        distance = np.linalg.norm(self.good[:3, 3])  # 4: the ShapeNet camera radius.
        self.assertAllClose(distance, 4.0, atol=1e-5)
        with self.assertRaisesRegex(ValueError, f"{path}: frame 0 .*outside the task's near/far "
                                                r"range \[0.5, 3\]"):
            files.fit_example(folder, NerfTask(near=0.5, far=3.0, num_samples=4,
                                               rays_per_step=8))
        files.fit_example(folder, NerfTask(near=3.9, far=4.1, num_samples=4, rays_per_step=8))
        root = os.path.dirname(folder)
        write_objects(root, 2, prefix="more")
        with self.assertRaisesRegex(ValueError, "outside the task's near/far range"):
            files.nerf_folder_examples(root, split="train", near=5.0, far=6.0)

    def test_phototourism_cameras_are_checked(self):
        # pylint: disable-next=import-outside-toplevel
        from learnit_tf.kinds.nerf.poses import check_pose
        rotation = np.eye(3)[:, [1, 0, 2]]  # Swapping two axes: det -1.
        with self.assertRaisesRegex(ValueError, r"c2w_mats.npy: image 3 is mirrored"):
            check_pose(np.hstack([rotation, np.ones((3, 1))]), "c2w_mats.npy: image 3")
        far = np.hstack([np.eye(3), [[100.0], [0.0], [0.0]]])
        self.assertAllClose(check_pose(far, "x")[:3, 3], [100.0, 0.0, 0.0])  # No bounds given.
