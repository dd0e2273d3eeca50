"""One frame → everything asked of it: detections, classifications, a class map and 3D objects, ROS-free.

3D is computed after 2D and fails on its own: a bad depth frame or missing intrinsics cost that frame's
objects (with the reason in `objects_error`), never its detections. With a tracker, detections get their
tracking ids before 3D, and each object carries its detection's id. Detections of segmentation models carry
their masks, which the objects' clouds use. A segmenter's class map, with depth, gives per-class points
(`segmentation_points`: the classes the `classes` filter keeps).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..reading import masks
from ..reading.results import Segmentation
from ..reading.vision import Classification, Detection, VisionModel
from . import pointcloud
from .tracking import Tracker


@dataclass
class Depth:
    """A depth frame for 3D: callables giving metres (H, W) and the intrinsics, run only when 3D is computed
    (their errors become the frame's `objects_error`)."""

    metres: Callable[[], np.ndarray]
    intrinsics: Callable[[], pointcloud.Intrinsics]

    def at(self, rgb: np.ndarray) -> tuple[np.ndarray, pointcloud.Intrinsics]:
        """The depth in metres aligned to the colour image's size, and the intrinsics scaled to it."""
        height, width = rgb.shape[:2]
        intrinsics = self.intrinsics().scaled(width, height)
        return pointcloud.align_depth(self.metres(), width, height), intrinsics


#: A frame's model results from a batched call: detections, classifications, class map (None: not computed).
Given = tuple[list[Detection] | None, list[Classification] | None, Segmentation | None]


@dataclass
class Results:
    rgb: np.ndarray
    detections: list[Detection] = field(default_factory=list)
    classifications: list[Classification] = field(default_factory=list)
    objects: list | None = None  # None: not computed (no depth, or it failed: see objects_error)
    objects_error: str = ""
    objects_frame: str = ""  # the frame the objects are in ("": the image's)
    #: Pose models with depth: per detection its keypoints (K, 3) in the camera frame, metres (NaN: no depth).
    keypoints_3d: list[np.ndarray | None] | None = None
    segmentation: Segmentation | None = None  # segmenters: the class of every pixel
    #: Segmenters with depth: the depth pixels' points (in `objects_frame`, like the objects) and their classes.
    segmentation_points: pointcloud.ClassCloud | None = None

    @property
    def has_masks(self) -> bool:
        return any(d.mask is not None for d in self.detections)

    def instance_image(self):
        """uint16 (H, W): index + 1 of the detection owning each pixel, 0 = background."""
        return masks.instance_image([d.mask for d in self.detections], *self.rgb.shape[:2])


def run(
    vision: VisionModel | None,
    rgb: np.ndarray,
    *,
    detections: bool = True,
    classifications: bool = True,
    top_n: int = 5,
    depth: Depth | None = None,
    cloud: pointcloud.CloudConfig | None = None,
    obstacles: bool = False,
    tracker: Tracker | None = None,
    given: Given = (None, None, None),
) -> Results:
    """Run what is asked on one RGB frame. `vision` may be None only in obstacle mode; `tracker` (consecutive
    frames of one stream only) gives the detections their ids. `given`: the frame's detections, classifications
    and class map when a batched call already ran the model on it (`reading.batch`)."""
    results = Results(rgb)
    if vision is not None:
        if vision.detections_supported and (detections or depth is not None):
            results.detections = given[0] if given[0] is not None else vision.detect(rgb)
            if tracker is not None:
                tracker.update(results.detections)
        if vision.classifications_supported and classifications:
            results.classifications = given[1] if given[1] is not None else vision.classify(rgb, top_n)
        if vision.segmentation_supported:
            results.segmentation = given[2] if given[2] is not None else vision.segment(rgb)
    if depth is not None and results.segmentation is not None and vision is not None:
        try:
            results.segmentation_points = class_points(rgb, results.segmentation, depth, cloud, vision)
        except (pointcloud.DepthError, ValueError) as exc:
            results.objects_error = str(exc)
        return results
    if depth is not None:
        try:
            results.objects = objects(rgb, results.detections, depth, cloud or pointcloud.CloudConfig(), obstacles)
            if any(d.keypoints is not None for d in results.detections):
                results.keypoints_3d = keypoints_3d(rgb, results.detections, depth)
        except (pointcloud.DepthError, ValueError) as exc:
            results.objects_error = str(exc)
    return results


def class_points(
    rgb: np.ndarray, seg: Segmentation, depth: Depth, cloud: pointcloud.CloudConfig | None, vision: VisionModel
) -> pointcloud.ClassCloud:
    """The depth pixels' points with their classes (those the `classes` filter keeps; all when it is empty)."""
    metres, intrinsics = depth.at(rgb)
    wanted = vision.config.filters.classes
    keep = None
    if wanted:
        present = np.flatnonzero(seg.counts())
        keep = np.array([i for i in present if vision.class_name(int(i)) in wanted], np.int64)
    return pointcloud.class_cloud(metres, seg.classes, rgb, intrinsics, cloud or pointcloud.CloudConfig(), keep)


def keypoints_3d(rgb: np.ndarray, detections: list[Detection], depth: Depth) -> list[np.ndarray | None]:
    """Each detection's keypoints lifted with the depth (camera frame, metres; None: no keypoints)."""
    metres, intrinsics = depth.at(rgb)
    return [
        None if d.keypoints is None else pointcloud.lift_points(metres, intrinsics, d.keypoints[:, :2])
        for d in detections
    ]


def objects(
    rgb: np.ndarray, detections: list[Detection], depth: Depth, cloud: pointcloud.CloudConfig, obstacles: bool
) -> list:
    """3D objects of one frame: from detections, or obstacles from the depth cloud alone."""
    metres, intrinsics = depth.at(rgb)
    if obstacles:
        return pointcloud.obstacles_from_depth(metres, rgb, intrinsics, cloud)
    return pointcloud.objects_from_detections(metres, rgb, intrinsics, detections, cloud)
