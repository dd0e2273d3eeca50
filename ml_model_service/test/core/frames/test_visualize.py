"""core/frames/visualize.py: stable class colours and the class-map overlay."""

from __future__ import annotations

import numpy as np

from ml_model_service.core.frames.visualize import colour_for, overlay_classes, palette


def test_palette_is_colour_for_of_every_class_and_distinct():
    colours = palette(20)
    assert colours.shape == (20, 3) and colours.dtype == np.uint8
    assert [tuple(int(c) for c in row) for row in colours] == [colour_for(i) for i in range(20)]
    assert len({tuple(row) for row in colours.tolist()}) == 20


def test_overlay_blends_each_pixel_with_its_class_colour():
    rgb = np.zeros((4, 6, 3), np.uint8)
    classes = np.zeros((4, 6), np.int64)
    classes[:, 3:] = 5
    out = overlay_classes(rgb, classes, alpha=1.0)
    assert out.shape == rgb.shape
    assert tuple(out[0, 0]) == colour_for(0) and tuple(out[0, 5]) == colour_for(5)
    half = overlay_classes(np.full_like(rgb, 200), classes, alpha=0.0)
    assert np.all(half == 200)  # alpha 0: the image unchanged
