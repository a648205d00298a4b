"""Rendering fitted NeRF MLPs along camera paths: turntables and appearance interpolation.

PAPER.md, "View synthesis": results are shown as renders from new viewpoints; for
Phototourism, weights fitted to two photos are blended linearly along a camera path
(appearance interpolation: the appearance lives in the optimised weights).
"""

import os

import numpy as np
from PIL import Image

from learnit_tf.core.atomic import atomic_save
from learnit_tf.kinds.nerf import cameras


def to_uint8(image):
    """float image in [0, 1] -> uint8."""
    return np.round(np.clip(np.asarray(image, np.float32), 0.0, 1.0) * 255.0).astype(np.uint8)


def render_object_path(renderer, weights, poses, resolution, camera_angle_x, near, far,
                       weights_along_path=None, progress=None):
    """Renders NeRF-synthetic cameras `poses` (F, 4, 4) at resolution×resolution.

    Args:
        renderer: a `RayRenderer`.
        weights: network weights (or None if `weights_along_path` is given).
        poses: camera-to-world matrices.
        resolution: output size in pixels.
        camera_angle_x: horizontal field of view.
        near, far: bounds.
        weights_along_path: optional callable(frame index) -> weights.
        progress: optional callable(frames done, total).

    Returns:
        dict "rgb" (F, H, W, 3), "depth" (F, H, W), "opacity" (F, H, W) float arrays.
    """
    frames = {"rgb": [], "depth": [], "opacity": []}
    for k, pose in enumerate(poses):
        rays_o, rays_d = cameras.nerf_synthetic_rays(resolution, resolution, camera_angle_x, pose)
        w = weights_along_path(k) if weights_along_path is not None else weights
        out = renderer(w, rays_o.numpy(), rays_d.numpy(), near, far)
        for key in frames:
            frames[key].append(out[key])
        if progress is not None:
            progress(k + 1, len(poses))
    return {k: np.stack(v) for k, v in frames.items()}


def blend_weights(weights_a, weights_b, s):
    """Linear blend (1 − s)·a + s·b of two weight lists (appearance interpolation)."""
    return [(1.0 - s) * np.asarray(a) + s * np.asarray(b) for a, b in zip(weights_a, weights_b)]


def render_photo_path(renderer, weights_a, weights_b, c2w_a, c2w_b, kinv, height, width,
                      bounds_a, bounds_b, num_frames, stride=1, progress=None):
    """Appearance interpolation along a camera path between two photos.

    Frame k of `num_frames` uses s = k / (num_frames − 1): the camera interpolated
    from `c2w_a` to `c2w_b` (slerp + linear), the weights (1 − s)·a + s·b and the
    bounds (1 − s)·bounds_a + s·bounds_b, with intrinsics `kinv` of a
    (height × width image, every `stride`-th pixel).

    Returns:
        float (F, H', W', 3) frames.
    """
    poses = cameras.interpolate_poses(c2w_a, c2w_b, num_frames)
    frames = []
    for k, pose in enumerate(poses):
        s = k / max(num_frames - 1, 1)
        rays_o, rays_d = cameras.inverse_intrinsics_rays(height, width, kinv, pose,
                                                         stride=stride)
        bounds = (1.0 - s) * np.asarray(bounds_a) + s * np.asarray(bounds_b)
        out = renderer(blend_weights(weights_a, weights_b, s), rays_o.numpy(), rays_d.numpy(),
                       bounds[0], bounds[1])
        frames.append(out["rgb"])
        if progress is not None:
            progress(k + 1, num_frames)
    return np.stack(frames)


def write_gif(path, frames, fps=12, scale=1):
    """Writes float (F, H, W, 3) frames in [0, 1] as a looping GIF, atomically.

    Args:
        path: output file.
        frames: frames in [0, 1].
        fps: frames per second.
        scale: integer nearest-neighbour upscaling (small renders stay crisp).
    """
    images = [Image.fromarray(to_uint8(f)) for f in frames]
    if scale > 1:
        images = [im.resize((im.width * scale, im.height * scale), Image.NEAREST)
                  for im in images]
    return atomic_save(path, lambda tmp: images[0].save(
        tmp, format="GIF", save_all=True, append_images=images[1:],
        duration=int(round(1000 / fps)), loop=0), ".gif")


def write_png(path, image, scale=1):
    """Writes a float image in [0, 1] (H, W, 3) or (H, W) as PNG, atomically."""
    im = Image.fromarray(to_uint8(image))
    if scale > 1:
        im = im.resize((im.width * scale, im.height * scale), Image.NEAREST)
    return atomic_save(path, lambda tmp: im.save(tmp, format="PNG"), ".png")


def contact_sheet(frames, columns=None):
    """Tiles frames (F, H, W, C) into one image, row-major."""
    frames = np.asarray(frames)
    n = len(frames)
    columns = columns or n
    rows = -(-n // columns)
    pad = rows * columns - n
    if pad:
        frames = np.concatenate([frames, np.ones((pad,) + frames.shape[1:], frames.dtype)])
    h, w = frames.shape[1:3]
    grid = frames.reshape(rows, columns, h, w, -1).transpose(0, 2, 1, 3, 4)
    return grid.reshape(rows * h, columns * w, -1).squeeze(-1) if frames.shape[-1] == 1 else \
        grid.reshape(rows * h, columns * w, frames.shape[-1])


def _progress(label, verbose):
    if not verbose:
        return None
    import keras  # pylint: disable=import-outside-toplevel
    bar = {}

    def update(done, total):
        if "bar" not in bar:
            print(label)
            bar["bar"] = keras.utils.Progbar(total)
        bar["bar"].update(done)

    return update


def fit_example(fmodel, task, example, steps, optimizer, seed=0, verbose=0):
    """The model's weights after `steps` test-time steps on `example` (0: unchanged);
    `optimizer`: an `InnerOptimizer` or a `FitRecipe` (with the model's learned rates)."""
    # pylint: disable=import-outside-toplevel
    import tensorflow as tf

    from learnit_tf.meta.fit import Fitter
    weights = fmodel.initial_weights()
    if steps <= 0:
        return weights
    example = dict(example)
    example.setdefault("seed", tf.constant([seed, 0], tf.int32))
    progress = _progress(f"Fitting {steps} steps", verbose)
    # The model's learned inner rates serve a recipe phase that steps with them.
    fitter = Fitter(fmodel.model, task, optimizer, steps_per_call=min(100, steps),
                    record_metrics=False)
    return fitter.fit(example, steps, weights=weights, progress=progress).weights


def render_object_turntable(init_dir, out_dir, dataset="procedural_objects", split="test",
                            index=0, single_view=None, fit_steps=0, optimizer=None,
                            rays_per_step=64, num_samples=None, frames=36, resolution=None,
                            elevation=None, radius=None, fps=12, scale=1, chunk=4096, seed=0,
                            verbose=1, config="small", class_name="chairs", manual_dir=None,
                            data_dir=None):
    """Fits an init to one view of an object and renders a turntable GIF and stills.

    Writes to `out_dir`: turntable.gif, turntable_depth.gif, frame_*.png (4 stills),
    contact_sheet.png and input_view.png (the fitted view).

    Args:
        init_dir: init directory.
        out_dir: output directory.
        dataset: "procedural_objects" or "shapenet".
        split, index: which object (TFDS order within the split).
        single_view: support view to fit (None: the object's hash-chosen view).
        fit_steps: test-time steps (0 renders the init itself: the class prior).
        optimizer: `InnerOptimizer` (default SGD 0.5, the paper's from a meta init).
        rays_per_step, num_samples: task settings (num_samples defaults to the init's).
        frames, resolution, elevation, radius: the camera path (defaults: the
            dataset's resolution, the views' mean elevation and radius).
        fps, scale: GIF speed and integer pixel upscaling.
        chunk: rays per rendering call.
        seed: seed of the test-time ray batches.
        verbose: progress bars.
        config, class_name, manual_dir, data_dir: dataset options.

    Returns:
        dict of the rendered "rgb", "depth", "opacity" frames.
    """
    # pylint: disable=import-outside-toplevel
    from learnit_tf.meta import init_io
    from learnit_tf.meta.inner import InnerOptimizer
    from learnit_tf.models import FunctionalModel
    from learnit_tf.kinds.nerf import sources
    from learnit_tf.kinds.nerf import views as views_lib
    from learnit_tf.kinds.nerf.rendering import RayRenderer

    optimizer = optimizer or InnerOptimizer("sgd", 0.5)
    task = sources.task_from_init(init_dir, rays_per_step=rays_per_step,
                                  num_samples=num_samples, chunk=chunk)
    fmodel = FunctionalModel(init_io.load_init(init_dir))
    builder = sources.object_builder(dataset, config, class_name, manual_dir, data_dir)
    record = sources.object_record(builder, split, index)
    example = views_lib.record_to_example(record, builder.builder_config.num_support_views,
                                          "single", single_view, held_out=False)
    weights = fit_example(fmodel, task, example, fit_steps, optimizer, seed, verbose)

    up, mean_radius, mean_elevation = cameras.estimate_orbit(record["poses"].numpy())
    side = int(record["images"].shape[1])
    path = cameras.turntable_poses(frames, radius or mean_radius,
                                   mean_elevation if elevation is None else elevation, up=up)
    renderer = RayRenderer(fmodel, task.eval_num_samples, task.white_background, chunk)
    out = render_object_path(renderer, weights, path, resolution or side,
                             float(record["camera_angle_x"]), task.near, task.far,
                             progress=_progress(f"Rendering {frames} frames", verbose))
    write_gif(os.path.join(out_dir, "turntable.gif"), out["rgb"], fps, scale)
    depth = np.clip((out["depth"] - task.near) / (task.far - task.near), 0.0, 1.0)
    write_gif(os.path.join(out_dir, "turntable_depth.gif"),
              np.repeat(1.0 - depth[..., None], 3, -1), fps, scale)
    stills = list(range(0, frames, max(1, frames // 4)))[:4]
    for k in stills:
        write_png(os.path.join(out_dir, f"frame_{k:03d}.png"), out["rgb"][k], scale)
    write_png(os.path.join(out_dir, "contact_sheet.png"), contact_sheet(out["rgb"][stills]),
              scale)
    write_png(os.path.join(out_dir, "input_view.png"),
              example["rgb"].numpy().reshape(side, side, 3), scale)
    return out


def render_appearance_interpolation(init_dir, out_dir, image_indices, landmark="sacre",
                                    manual_dir=None, data_dir=None, fit_steps=64,
                                    optimizer=None, rays_per_step=64, num_samples=None,
                                    frames=30, downsample=4, fps=12, scale=1, chunk=4096, seed=0,
                                    verbose=1, config=None):
    """Phototourism appearance interpolation (PAPER.md): two fitted weight sets blended.

    Fits the init to all pixels of photos A and B (`image_indices`, indices in the
    landmark) and renders `frames` frames moving from A's camera to B's while
    blending the weights linearly. Writes appearance.gif and appearance_*.png stills.

    Returns:
        float (frames, H, W, 3) frames.
    """
    # pylint: disable=import-outside-toplevel
    import tensorflow as tf

    from learnit_tf.meta import init_io
    from learnit_tf.meta.inner import InnerOptimizer
    from learnit_tf.models import FunctionalModel
    from learnit_tf.kinds.nerf import phototourism, sources
    from learnit_tf.kinds.nerf.rendering import RayRenderer

    if len(image_indices) != 2:
        raise ValueError(f"Appearance interpolation needs two image indices, got "
                         f"{image_indices!r}.")
    optimizer = optimizer or InnerOptimizer("sgd", 1.0)
    task = sources.task_from_init(init_dir, rays_per_step=rays_per_step,
                                  num_samples=num_samples, chunk=chunk)
    fmodel = FunctionalModel(init_io.load_init(init_dir))
    builder = phototourism.load_builder(landmark, manual_dir, data_dir, config)
    fitted, c2ws, bounds, records = [], [], [], []
    for index in image_indices:
        record = sources.photo_record(builder, int(index))
        example = phototourism.record_to_example(record, "full")
        fitted.append([w.numpy() for w in fit_example(fmodel, task, example, fit_steps,
                                                      optimizer, seed, verbose)])
        c2w = record["c2w"].numpy().copy()
        c2w[:3, 3] *= phototourism.SCALE
        c2ws.append(c2w)
        bounds.append(record["bounds"].numpy() * np.array(phototourism.BOUNDS_FACTORS)
                      * phototourism.SCALE)
        records.append(record)
    height, width = (int(d) for d in tf.shape(records[0]["image"])[:2])
    renderer = RayRenderer(fmodel, task.eval_num_samples, task.white_background, chunk)
    out = render_photo_path(renderer, fitted[0], fitted[1], c2ws[0], c2ws[1],
                            records[0]["kinv"].numpy(), height, width, bounds[0], bounds[1],
                            frames, stride=downsample,
                            progress=_progress(f"Rendering {frames} frames", verbose))
    write_gif(os.path.join(out_dir, "appearance.gif"), out, fps, scale)
    for k in sorted({0, len(out) // 2, len(out) - 1}):
        write_png(os.path.join(out_dir, f"appearance_{k:03d}.png"), out[k], scale)
    return out
