"""Procedural axial CT slices of a body: heads and torsos in Hounsfield units (HU).

The Shepp-Logan class (`shepp_logan`) teaches a prior that real scans do not follow:
real axial slices are heads (a thick bright skull ring, grey brain, dark air outside,
often a head holder) and chests/abdomens (a wide body with a fat layer, black lungs,
a bright spine and ribs, organs of nearly equal grey), and are often cropped so the
body fills the field of view. This module draws such slices from a random generator.

Every slice is painted in HU on a supersampled grid (later layers overwrite earlier
ones), given soft-tissue texture, windowed with the real-CT check's window (HU clipped
to [-1000, 1000], scaled to [0, 1]: `HU_WINDOW`) and area-averaged down to the output
resolution (as the real slices are area-resized).

Typical HU values (textbook ranges, e.g. Hofer, "CT Teaching Manual", and
Radiopaedia's "Hounsfield unit" article): air -1000; lung -900..-700; fat -120..-80;
water/CSF 0..15; white/grey matter 25..45; blood/muscle 35..55; liver 50..70; kidney
cortex 30..50 (150..250 with contrast); contrast-filled aorta 150..350; cancellous
bone 150..400; cortical bone 700..1900 (clipped to 1000 by the window).

Layout follows the radiological convention of the real check slices: anterior at the
top (row 0), the patient's right on the image's left.
"""

import math

import numpy as np

#: The real-CT check's window: HU clipped to this range and scaled to [0, 1].
HU_WINDOW = (-1000.0, 1000.0)
#: Family probabilities: head, chest, abdomen.
FAMILIES = ("head", "chest", "abdomen")
FAMILY_PROBABILITIES = (0.4, 0.35, 0.25)
#: Probability that a slice is a zoomed crop (the body fills the field of view).
ZOOM_PROBABILITY = 0.35
ZOOM_RANGE = (1.3, 2.6)
#: Supersampling factor of the painted grid before area averaging.
SUPERSAMPLE = 4


def window(hu):
    """HU -> [0, 1] with `HU_WINDOW` (float32).

    Example:

    >>> window(np.array([-2000.0, -1000.0, 0.0, 1000.0, 3000.0])).tolist()
    [0.0, 0.0, 0.5, 1.0, 1.0]
    """
    lo, hi = HU_WINDOW
    return ((np.clip(hu, lo, hi) - lo) / (hi - lo)).astype(np.float32)


class _Canvas:
    """An HU image on coordinates x (right), y (up) in [-1, 1]², after a view transform."""

    def __init__(self, size, zoom=1.0, centre=(0.0, 0.0), angle=0.0, flip=False):
        t = (np.arange(size) + 0.5) / size * 2.0 - 1.0
        xs, ys = np.meshgrid(t, -t)  # Row 0 is y = +1 (anterior at the top).
        xs, ys = xs / zoom, ys / zoom
        c, s = math.cos(angle), math.sin(angle)
        x = c * xs - s * ys + centre[0]
        y = s * xs + c * ys + centre[1]
        self.x = -x if flip else x
        self.y = y
        self.hu = np.full((size, size), -1000.0)
        self.pixel = 2.0 / (size * zoom)  # Pixel size in body units.

    def local(self, cx, cy, angle):
        c, s = math.cos(angle), math.sin(angle)
        dx, dy = self.x - cx, self.y - cy
        return c * dx + s * dy, -s * dx + c * dy

    def superellipse(self, cx, cy, a, b, angle=0.0, p=2.0):
        u, v = self.local(cx, cy, angle)
        return (np.abs(u / a) ** p + np.abs(v / b) ** p) <= 1.0

    def ellipse(self, cx, cy, a, b, angle=0.0):
        return self.superellipse(cx, cy, a, b, angle, 2.0)

    def paint(self, mask, hu):
        self.hu[mask] = hu if np.isscalar(hu) else hu[mask]


def _texture(rng, shape, sigma_pixels, amplitude):
    """Smooth Gaussian-like noise (FFT-filtered white noise) with std `amplitude`."""
    n = shape[0]
    f = np.fft.fftfreq(n)
    k2 = f[:, None] ** 2 + f[None, :] ** 2
    kernel = np.exp(-2.0 * (math.pi * sigma_pixels) ** 2 * k2)
    noise = np.real(np.fft.ifft2(np.fft.fft2(rng.standard_normal(shape)) * kernel))
    std = noise.std()
    return noise * (amplitude / std if std > 0 else 0.0)


def _u(rng, lo, hi, size=None):
    return rng.uniform(lo, hi, size)


def _table(rng, c, below):
    """The patient couch: a thin curved slab under the body (HU of plastic/carbon)."""
    if rng.random() < 0.5:
        return
    top = below - _u(rng, 0.02, 0.1)
    thick = _u(rng, 0.02, 0.05)
    curve = _u(rng, 0.0, 0.3)
    yb = top + curve * c.x ** 2
    mask = (c.y <= yb) & (c.y >= yb - thick) & (np.abs(c.x) < _u(rng, 0.7, 1.2))
    c.paint(mask, _u(rng, -300, 300))


def _head(rng, c):
    a = _u(rng, 0.55, 0.8)
    b = a * _u(rng, 1.1, 1.3)
    cy = _u(rng, -0.05, 0.05)
    if rng.random() < 0.5:  # Head holder: a thin bright arc around the back of the head.
        r = _u(rng, 1.05, 1.2)
        outer = c.ellipse(0, cy, a * r + 0.03, b * r + 0.03)
        inner = c.ellipse(0, cy, a * r, b * r)
        c.paint(outer & ~inner & (c.y < cy + _u(rng, -0.2, 0.4) * b), _u(rng, -200, 400))
    scalp = _u(rng, 0.02, 0.06)
    c.paint(c.ellipse(0, cy, a, b), _u(rng, 10, 50))
    skull_out = c.ellipse(0, cy, a - scalp, b - scalp)
    c.paint(skull_out, _u(rng, 900, 1900))
    t = _u(rng, 0.03, 0.08)
    inner = c.ellipse(0, cy, a - scalp - t, b - scalp - t)
    brain_hu = _u(rng, 25, 45)
    c.paint(inner, brain_hu)
    ai, bi = a - scalp - t, b - scalp - t
    if rng.random() < 0.45:  # Skull base: bony ridges, sinuses, orbits, mastoid air.
        for side in (-1, 1):
            ang = side * _u(rng, 0.5, 0.9)
            c.paint(c.ellipse(side * ai * _u(rng, 0.3, 0.5), cy - bi * _u(rng, 0.0, 0.3),
                              ai * _u(rng, 0.25, 0.45), ai * _u(rng, 0.04, 0.09), ang),
                    _u(rng, 600, 1500))
            for _ in range(rng.integers(0, 6)):  # Mastoid air cells.
                c.paint(c.ellipse(side * ai * _u(rng, 0.6, 0.95), cy - bi * _u(rng, 0.2, 0.6),
                                  _u(rng, 0.01, 0.04), _u(rng, 0.01, 0.04)), _u(rng, -1000, -600))
        # Anterior cranial base / sphenoid: bone band with air sinuses.
        band = c.ellipse(0, cy + bi * _u(rng, 0.45, 0.7), ai * _u(rng, 0.5, 0.9),
                         bi * _u(rng, 0.15, 0.3))
        c.paint(band, _u(rng, 300, 1200))
        for _ in range(rng.integers(1, 4)):
            c.paint(c.ellipse(_u(rng, -0.4, 0.4) * ai, cy + bi * _u(rng, 0.4, 0.75),
                              ai * _u(rng, 0.05, 0.18), bi * _u(rng, 0.04, 0.12),
                              _u(rng, -1, 1)), _u(rng, -1000, -700))
        if rng.random() < 0.5:  # Orbits: fat with a globe, in front of the skull.
            for side in (-1, 1):
                ox, oy = side * ai * _u(rng, 0.35, 0.5), cy + b * _u(rng, 0.75, 0.95)
                ra = a * _u(rng, 0.15, 0.22)
                c.paint(c.ellipse(ox, oy, ra, ra * 1.1), _u(rng, -120, -60))
                c.paint(c.ellipse(ox, oy + ra * 0.2, ra * 0.7, ra * 0.7), _u(rng, 0, 20))
    else:  # Supratentorial: ventricles, sulci (CSF), grey/white contrast.
        if rng.random() < 0.7:
            w = _u(rng, 0.03, 0.1) * ai
            for side in (-1, 1):
                c.paint(c.ellipse(side * w * _u(rng, 0.8, 1.6), cy + _u(rng, -0.15, 0.15) * bi,
                                  w, bi * _u(rng, 0.15, 0.4), side * _u(rng, -0.3, 0.3)),
                        _u(rng, 0, 15))
        white = c.ellipse(0, cy, ai * _u(rng, 0.6, 0.85), bi * _u(rng, 0.6, 0.85)) & inner
        c.hu[white & (np.abs(c.hu - brain_hu) < 1e-6)] -= _u(rng, 3, 10)
        n = rng.integers(0, 12)  # Sulci / CSF spaces near the inner table.
        for _ in range(n):
            phi = _u(rng, 0, 2 * math.pi)
            c.paint(c.ellipse(0.9 * ai * math.cos(phi), cy + 0.9 * bi * math.sin(phi),
                              _u(rng, 0.01, 0.04), _u(rng, 0.005, 0.02), phi) & inner,
                    _u(rng, 0, 15))
    for _ in range(rng.integers(0, 3)):  # Lesions / calcifications.
        c.paint(c.ellipse(_u(rng, -0.5, 0.5) * ai, cy + _u(rng, -0.5, 0.5) * bi,
                          _u(rng, 0.01, 0.08), _u(rng, 0.01, 0.08), _u(rng, 0, 3)) & inner,
                _u(rng, -20, 200))
    return cy - b


def _spine(rng, c, cy, scale):
    """Vertebral body, canal, posterior elements; returns (x, y) of the body."""
    r = scale * _u(rng, 0.08, 0.13)
    vy = cy
    c.paint(c.ellipse(0, vy, r * _u(rng, 1.0, 1.25), r), _u(rng, 600, 1200))
    c.paint(c.ellipse(0, vy, r * 0.8, r * 0.78), _u(rng, 150, 400))
    canal_y = vy - r * _u(rng, 1.5, 1.8)
    arch = c.ellipse(0, canal_y, r * 0.9, r * 0.8)
    c.paint(arch, _u(rng, 500, 1200))
    c.paint(c.ellipse(0, canal_y, r * 0.5, r * 0.45), _u(rng, 0, 40))
    c.paint(c.ellipse(0, canal_y - r * 1.3, r * 0.18, r * 0.7), _u(rng, 500, 1200))
    for side in (-1, 1):  # Transverse processes.
        c.paint(c.ellipse(side * r * 1.3, canal_y + r * 0.3, r * 0.8, r * 0.2,
                          -side * _u(rng, 0.1, 0.5)), _u(rng, 400, 1100))
    return vy


def _torso(rng, c, family):
    a = _u(rng, 0.7, 0.95)
    b = a * _u(rng, 0.55, 0.8)
    cy = _u(rng, -0.1, 0.05)
    p = _u(rng, 2.0, 3.2)
    fat = _u(rng, 0.02, 0.12) * a
    muscle = _u(rng, 30, 55)
    c.paint(c.superellipse(0, cy, a, b, p=p), _u(rng, -120, -80))
    c.paint(c.superellipse(0, cy, a - fat, b - fat, p=p), muscle)
    ai, bi = a - fat, b - fat
    vy = cy - bi * _u(rng, 0.45, 0.6)
    if family == "chest":
        # Ribs: short bright arcs just inside the muscle wall.
        for phi in np.linspace(0.15, math.pi - 0.15, rng.integers(6, 12)) + _u(rng, -0.1, 0.1):
            for side in (-1, 1):
                rx, ry = side * ai * 0.88 * math.cos(phi), cy + bi * 0.88 * math.sin(phi - 0.3)
                c.paint(c.ellipse(rx, ry, _u(rng, 0.02, 0.05), _u(rng, 0.015, 0.03), phi),
                        _u(rng, 300, 1000))
        lung_hu = _u(rng, -900, -750)
        for side in (-1, 1):
            la, lb = ai * _u(rng, 0.3, 0.42), bi * _u(rng, 0.6, 0.8)
            lx, ly = side * ai * _u(rng, 0.38, 0.5), cy + _u(rng, -0.1, 0.1) * bi
            lung = c.superellipse(lx, ly, la, lb, side * _u(rng, -0.2, 0.2), _u(rng, 1.8, 2.6))
            c.paint(lung, lung_hu + _texture(rng, c.hu.shape, 2.0, _u(rng, 10, 40)))
            for _ in range(rng.integers(5, 25)):  # Pulmonary vessels.
                c.paint(c.ellipse(lx + _u(rng, -0.8, 0.8) * la, ly + _u(rng, -0.8, 0.8) * lb,
                                  _u(rng, 0.005, 0.02), _u(rng, 0.005, 0.02)) & lung,
                        _u(rng, -500, 50))
        # Heart (anterior, to the patient's left = image right) and aorta.
        c.paint(c.ellipse(ai * _u(rng, 0.0, 0.2), cy + bi * _u(rng, 0.0, 0.35),
                          ai * _u(rng, 0.2, 0.33), bi * _u(rng, 0.3, 0.5), _u(rng, -0.6, 0.2)),
                _u(rng, 30, 60))
        aorta = _u(rng, 35, 350)
        ra = _u(rng, 0.04, 0.07)
        c.paint(c.ellipse(ai * _u(rng, 0.05, 0.15), vy + _u(rng, 0.12, 0.2), ra, ra), aorta)
        if rng.random() < 0.6:
            c.paint(c.ellipse(ai * _u(rng, -0.1, 0.05), cy + bi * _u(rng, 0.3, 0.5), ra, ra),
                    aorta)
        # Sternum.
        c.paint(c.ellipse(0, cy + bi * _u(rng, 0.85, 0.95), ai * _u(rng, 0.05, 0.1),
                          bi * 0.05), _u(rng, 300, 900))
        if rng.random() < 0.5:  # Scapulae: long thin bones at the back.
            for side in (-1, 1):
                c.paint(c.ellipse(side * ai * 0.65, cy - bi * 0.7, ai * _u(rng, 0.2, 0.3),
                                  bi * 0.05, side * _u(rng, 0.2, 0.6)), _u(rng, 400, 1200))
    else:
        # Liver (image left), spleen (image right, back), kidneys, bowel with gas, vessels.
        c.paint(c.superellipse(-ai * _u(rng, 0.3, 0.5), cy + bi * _u(rng, -0.1, 0.2),
                               ai * _u(rng, 0.35, 0.55), bi * _u(rng, 0.45, 0.7),
                               _u(rng, -0.3, 0.3), _u(rng, 1.8, 2.8)), _u(rng, 45, 75))
        if rng.random() < 0.7:
            c.paint(c.ellipse(ai * _u(rng, 0.5, 0.65), cy - bi * _u(rng, 0.0, 0.3),
                              ai * _u(rng, 0.12, 0.22), bi * _u(rng, 0.2, 0.35),
                              _u(rng, -0.5, 0.5)), _u(rng, 40, 60))
        kidney = _u(rng, 25, 220)
        for side in (-1, 1):
            if rng.random() < 0.8:
                kx, ky = side * ai * _u(rng, 0.3, 0.42), vy + bi * _u(rng, 0.0, 0.15)
                c.paint(c.ellipse(kx, ky, ai * _u(rng, 0.08, 0.13), bi * _u(rng, 0.15, 0.25),
                                  side * _u(rng, 0.2, 0.7)), kidney)
        for _ in range(rng.integers(3, 15)):  # Bowel loops and gas.
            hu = _u(rng, -1000, -800) if rng.random() < 0.35 else _u(rng, 0, 60)
            c.paint(c.ellipse(ai * _u(rng, -0.2, 0.6), cy + bi * _u(rng, -0.1, 0.7),
                              _u(rng, 0.03, 0.12), _u(rng, 0.02, 0.08), _u(rng, 0, 3)), hu)
        ra = _u(rng, 0.03, 0.05)
        c.paint(c.ellipse(ai * 0.05, vy + _u(rng, 0.12, 0.18), ra, ra), _u(rng, 35, 300))
        for side in (-1, 1):  # Psoas muscles.
            c.paint(c.ellipse(side * ai * 0.17, vy - 0.01, ai * 0.07, bi * 0.12), muscle)
    _spine(rng, c, vy, min(ai, 1.5 * bi))
    # Back muscles have been painted as `muscle`; paraspinal fat stripes.
    for side in (-1, 1):
        if rng.random() < 0.5:
            c.paint(c.ellipse(side * ai * 0.3, vy - bi * 0.35, ai * 0.15, 0.01,
                              side * 0.2), _u(rng, -120, -60))
    return cy - b


def random_slice_hu(rng, resolution, family=None):
    """A random axial slice in HU on a (R·SUPERSAMPLE)² grid, and its family name."""
    if family is None:
        family = FAMILIES[rng.choice(len(FAMILIES), p=FAMILY_PROBABILITIES)]
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {FAMILIES}, got {family!r}.")
    zoom, centre = 1.0, (0.0, 0.0)
    if rng.random() < ZOOM_PROBABILITY:
        zoom = _u(rng, *ZOOM_RANGE)
        centre = tuple(_u(rng, -0.35, 0.35, 2))
    c = _Canvas(int(resolution) * SUPERSAMPLE, zoom=zoom, centre=centre,
                angle=_u(rng, -0.15, 0.15), flip=bool(rng.random() < 0.5))
    below = _head(rng, c) if family == "head" else _torso(rng, c, family)
    _table(rng, c, below)
    # Soft-tissue texture (anatomy-scale and fine) on everything denser than lung.
    tissue = c.hu > -500
    size = c.hu.shape[0]
    c.hu = c.hu + tissue * (_texture(rng, c.hu.shape, size / 40, _u(rng, 3, 15))
                            + _texture(rng, c.hu.shape, size / 200, _u(rng, 2, 12)))
    return c.hu, family


def area_downsample(image, factor):
    """Mean over factor×factor blocks (area resize by an integer factor)."""
    n = image.shape[0] // factor
    return image[:n * factor, :n * factor].reshape(n, factor, n, factor).mean(axis=(1, 3))


def random_slice(seed, resolution, family=None):
    """The slice drawn from `numpy.random.default_rng(seed)`: float32 (R, R) in [0, 1].

    HU are windowed with `HU_WINDOW` before the area resize, as the real check slices.

    Example:

    >>> a = random_slice((0, 0, 1), 32)
    >>> a.shape, a.dtype.name, bool(np.array_equal(a, random_slice((0, 0, 1), 32)))
    ((32, 32), 'float32', True)
    """
    rng = np.random.default_rng(seed)
    hu, _ = random_slice_hu(rng, resolution, family)
    return area_downsample(window(hu), SUPERSAMPLE).astype(np.float32)
