"""One camera frame through the pipeline, shared by the worker thread (the stream) and the vision services
(request/response calls): the frame's messages (`Frame`), the pipeline run with the node's settings
(`compute`) and its 3D objects put in `target_frame` (`to_target_frame`)."""

from __future__ import annotations

import numpy as np
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Header

from ...core.frames import pipeline, pointcloud
from ...core.frames.imaging import DecodeBudget
from ...core.frames.tracking import Tracker
from ...core.reading.vision import VisionModel
from ...core.settings.configs import cloud_config
from ...core.settings.typed import ObjectMode, VisionSettings
from .. import conversions
from ..tf import FrameError, TargetFrame

NO_CAMERA_INFO = "no camera_info received yet"


class Frame:
    """One colour message (Image or CompressedImage), optionally with its depth message and camera_info."""

    def __init__(
        self,
        colour: Image | CompressedImage,
        depth: Image | None = None,
        info: CameraInfo | None = None,
        budget: DecodeBudget | None = None,
    ) -> None:
        self.colour, self.depth, self.info, self.budget = colour, depth, info, budget
        self._rgb: np.ndarray | None = None  # decoded once (a batched call decodes it before the pipeline runs)

    @property
    def header(self) -> Header:
        return self.colour.header

    def rgb(self, max_pixels: int):
        if self._rgb is None:
            if isinstance(self.colour, CompressedImage):
                self._rgb = conversions.compressed_to_rgb(self.colour, max_pixels, self.budget)
            else:
                self._rgb = conversions.image_to_rgb(self.colour, max_pixels)
        return self._rgb

    def depth_input(self, s: VisionSettings) -> pipeline.Depth | None:
        """The frame's depth for the pipeline (None when it has no depth message)."""
        if self.depth is None:
            return None
        depth, info = self.depth, self.info

        def intrinsics() -> pointcloud.Intrinsics:
            if info is None:
                raise pointcloud.DepthError(f"{NO_CAMERA_INFO} (3D needs the colour camera's calibration)")
            return pointcloud.Intrinsics.from_k(info.k, info.width, info.height)

        return pipeline.Depth(
            lambda: conversions.depth_to_metres(depth, s.depth_unit_scale, s.max_image_pixels),
            intrinsics,
        )


def compute(
    frame: Frame,
    vision: VisionModel | None,
    s: VisionSettings,
    *,
    detections: bool = True,
    classifications: bool = True,
    objects: bool = False,
    top_n: int | None = None,
    tracker: Tracker | None = None,
    given: pipeline.Given = (None, None, None),
) -> pipeline.Results:
    """The pipeline on one frame with the node's settings (shared by the worker and the services)."""
    obstacles = s.object_mode is ObjectMode.OBSTACLES
    return pipeline.run(
        vision,
        frame.rgb(s.max_image_pixels),
        detections=detections,
        classifications=classifications,
        top_n=s.top_n if top_n is None else top_n,
        depth=frame.depth_input(s) if objects else None,
        cloud=cloud_config(s),
        obstacles=obstacles,
        tracker=tracker,
        given=given,
    )


def to_target_frame(r: pipeline.Results, header: Header, s: VisionSettings, transforms: TargetFrame | None) -> bool:
    """Put the frame's 3D objects (or class points) in `target_frame` (tf2 at the image's stamp); False when its
    transform is missing (they are then dropped, with the reason in `objects_error`)."""
    target = s.target_frame
    points = r.segmentation_points
    if transforms is None or not target or (r.objects is None and points is None) or target == header.frame_id:
        return True
    try:
        tf = transforms.lookup(target, header, s.tf_timeout)
    except FrameError as exc:
        r.objects, r.segmentation_points, r.objects_error = None, None, str(exc)
        return False
    if r.objects is not None:
        r.objects = pointcloud.transform_objects(r.objects, tf)
    if points is not None:
        r.segmentation_points = points.moved(tf)
    r.objects_frame = target
    return True
