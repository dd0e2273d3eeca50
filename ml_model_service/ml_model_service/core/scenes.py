"""A real RGB-D sample for bring-up without a camera (e.g. `fake_camera.py --rgbd` of the ros2-cli tools):
scikit-image's Middlebury 2014 motorcycle, colour with aligned depth in metres and its intrinsics. Needs
scikit-image. The synthetic scenes the tests use live in the development package
(`ml_model_service_dev.harness.scenes`)."""

from __future__ import annotations

import numpy as np

from .frames.pointcloud import Intrinsics


def motorcycle_rgbd() -> tuple[np.ndarray, np.ndarray, Intrinsics]:
    """The left image, depth in metres from the ground-truth disparity (Z = f * B / (d + doffs); NaN where the
    disparity is unknown) and the colour camera's intrinsics."""
    from skimage import data

    rgb, _, disparity = data.stereo_motorcycle()
    f, cx, cy, doffs, baseline_m = 994.978, 311.193, 254.877, 31.086, 0.193001
    with np.errstate(invalid="ignore", divide="ignore"):
        depth = (f * baseline_m / (disparity.astype(np.float64) + doffs)).astype(np.float32)
    depth[~np.isfinite(disparity) | (depth <= 0)] = np.nan
    return rgb, depth, Intrinsics(f, f, cx, cy, rgb.shape[1], rgb.shape[0])
