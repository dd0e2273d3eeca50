"""core/scenes.py: the Middlebury motorcycle as an RGB-D frame with its camera's intrinsics."""

from __future__ import annotations

import numpy as np

from ml_model_service.core.scenes import motorcycle_rgbd


def test_motorcycle_depth_is_metric_and_aligned_with_the_image():
    rgb, depth, intrinsics = motorcycle_rgbd()
    assert rgb.shape[:2] == depth.shape and depth.dtype == np.float32
    assert (intrinsics.width, intrinsics.height) == (rgb.shape[1], rgb.shape[0])
    known = depth[np.isfinite(depth)]
    assert known.size > 0.5 * depth.size and known.min() > 0
    assert 0.5 < float(np.median(known)) < 5.0  # a motorcycle a metre or two from the camera
