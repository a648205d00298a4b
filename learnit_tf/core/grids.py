"""Coordinate grids shared by kinds (images and CT slices are fitted on the same grid)."""

import numpy as np


def image_grid(height, width=None):
    """The paper's coordinate grid, shape (height, width, 2), float32, 'ij' indexing.

    Coordinates are `linspace(0, 1, n + 1)[:-1]` per axis: the top-left corner of each
    pixel, rows first.

    >>> grid = image_grid(2, 4)
    >>> grid.shape, grid[1, 3].tolist()
    ((2, 4, 2), [0.5, 0.75])
    """
    width = height if width is None else width
    ys = np.linspace(0.0, 1.0, height + 1)[:-1]
    xs = np.linspace(0.0, 1.0, width + 1)[:-1]
    return np.stack(np.meshgrid(ys, xs, indexing="ij"), axis=-1).astype(np.float32)
