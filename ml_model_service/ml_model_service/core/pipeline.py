"""One frame → everything asked of it: detections, classifications and 3D objects, ROS-free.

3D is computed after 2D and fails on its own: a bad depth frame or missing intrinsics cost that frame's
objects (with the reason in `objects_error`), never its detections.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from . import pointcloud
from .vision import Classification, Detection, VisionModel


@dataclass
class Depth:
    """A depth frame for 3D: callables giving metres (H, W) and the intrinsics, run only when 3D is computed
    (their errors become the frame's `objects_error`)."""

    metres: Callable[[], np.ndarray]
    intrinsics: Callable[[], pointcloud.Intrinsics]


@dataclass
class Results:
    rgb: np.ndarray
    detections: list[Detection] = field(default_factory=list)
    classifications: list[Classification] = field(default_factory=list)
    objects: list | None = None  # None: not computed (no depth, or it failed: see objects_error)
    objects_error: str = ""


def run(vision: VisionModel | None, rgb: np.ndarray, *, detections: bool = True, classifications: bool = True,
        top_n: int = 5, depth: Depth | None = None, cloud: pointcloud.CloudConfig | None = None,
        obstacles: bool = False) -> Results:
    """Run what is asked on one RGB frame. `vision` may be None only in obstacle mode."""
    results = Results(rgb)
    if vision is not None:
        if vision.detections_supported and (detections or depth is not None):
            results.detections = vision.detect(rgb)
        if vision.classifications_supported and classifications:
            results.classifications = vision.classify(rgb, top_n)
    if depth is not None:
        try:
            results.objects = objects(rgb, results.detections, depth, cloud or pointcloud.CloudConfig(), obstacles)
        except (pointcloud.DepthError, ValueError) as exc:
            results.objects_error = str(exc)
    return results


def objects(rgb: np.ndarray, detections: list[Detection], depth: Depth, cloud: pointcloud.CloudConfig,
            obstacles: bool) -> list:
    """3D objects of one frame: from detections, or obstacles from the depth cloud alone."""
    height, width = rgb.shape[:2]
    intrinsics = depth.intrinsics().scaled(width, height)
    metres = pointcloud.align_depth(depth.metres(), width, height)
    if obstacles:
        return pointcloud.obstacles_from_depth(metres, rgb, intrinsics, cloud)
    return pointcloud.objects_from_detections(metres, rgb, intrinsics, detections, cloud)
