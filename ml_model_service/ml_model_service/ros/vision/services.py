"""The vision node's request/response calls, as adapters over the pipeline and the latest frames.

They are answered by threads of their own (`direct.ServiceThreads`), never by the node's executor: a call that
needs "the latest frame" can wait for one (subscribing on demand for 10 s, up to `service_timeout`) while
parameters, /diagnostics and the other calls go on. The camera is taken by the worker thread, so a waiting
call never blocks frames either. Every failure becomes an answer with `success=false` and the reason; none
takes the node down.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rclpy.node import Node
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

from ml_model_service_interfaces.srv import (
    CaptureAll,
    GetClassifications,
    GetDetections,
    GetObjectPointClouds,
    GetProperties,
    GetSegmentation,
)

from ...core.frames import pointcloud
from ...core.frames.imaging import ImageError
from ...core.frames.pairing import Pairer, PairingError
from ...core.reading.vision import VisionModel
from ...core.settings.typed import ObjectMode, VisionSettings
from .. import conversions
from ..direct import ServiceThreads
from ..remote_model import RemoteError
from ..status import Status
from ..tf import TargetFrame
from .frame import Frame, compute, to_target_frame
from .model_source import ModelSource

SERVICE_THREADS = 3  # calls answered at once (a call waiting for a camera frame holds one)


@dataclass
class ServiceCamera:
    """What a call needs of one camera: its latest frames, calibration, topic, demand and settings."""

    pairer: Pairer
    info: Callable[[], Any]
    topic: str
    demand: Callable[[], None]
    settings: Callable[[], VisionSettings]


class VisionServices:
    """~/get_detections, ~/get_classifications, ~/get_segmentation, ~/get_properties, ~/capture_all,
    ~/get_object_point_clouds.

    Every call that uses "the latest frame" takes `camera_name`: one of `cameras` ("" = the first, for a node
    with one camera the only one, whose name is ""); an unknown name is answered with the names there are."""

    def __init__(
        self,
        node: Node,
        source: ModelSource,
        cameras: dict[str, ServiceCamera],
        status: Status,
        settings: Callable[[], VisionSettings],
        active: Callable[[], bool] = lambda: True,
        transforms: TargetFrame | None = None,
    ) -> None:
        self.node, self.source, self.cameras, self.status = node, source, cameras, status
        self.settings, self.active, self.transforms = settings, active, transforms
        self.threads = ServiceThreads(
            node,
            [
                (GetDetections, "~/get_detections", self._detections),
                (GetClassifications, "~/get_classifications", self._classifications),
                (GetProperties, "~/get_properties", self._properties),
                (CaptureAll, "~/capture_all", self._capture_all),
                (GetObjectPointClouds, "~/get_object_point_clouds", self._object_clouds),
                (GetSegmentation, "~/get_segmentation", self._segmentation),
            ],
            threads=SERVICE_THREADS,
        )

    def stop(self) -> None:
        self.threads.stop()

    # --- frames and models ------------------------------------------------------------------------
    def _obstacles(self) -> bool:
        return self.settings().object_mode is ObjectMode.OBSTACLES

    def _model(self) -> VisionModel | None:
        if self._obstacles():
            return None
        vision = self.source.current(self.settings())
        if vision is None:
            raise RuntimeError(self.source.state)
        return vision

    def camera(self, name: str) -> ServiceCamera:
        """The camera a call names ("" = the first); ValueError with the names there are for another."""
        if not name:
            return next(iter(self.cameras.values()))
        if name in self.cameras:
            return self.cameras[name]
        if list(self.cameras) == [""]:
            raise ValueError(
                f"unknown camera {name!r}: this node serves one camera ({self.cameras[''].topic}); leave camera_name "
                "empty"
            )
        raise ValueError(f"unknown camera {name!r}; this node's cameras: {', '.join(self.cameras)}")

    def latest(self, cam: ServiceCamera, with_depth: bool = False) -> Frame:
        """The latest frame of camera `cam` (with its depth when asked), waiting up to service_timeout for one."""
        cam.demand()
        timeout = cam.settings().service_timeout
        if with_depth:
            if not cam.settings().use_depth:
                raise pointcloud.DepthError("object point clouds need use_depth: true (depth and camera_info)")

            def pair():
                try:
                    return cam.pairer.newest_pair()
                except PairingError:
                    return None

            found = cam.pairer.wait(pair, timeout)
            if not found:
                if cam.pairer.latest_colour() is None:
                    raise ImageError(f"no camera frame received on {cam.topic} within {timeout:.1f} s")
                cam.pairer.newest_pair()  # raises the reason
            colour, depth = found
            return Frame(colour.item, depth.item, cam.info())
        found = cam.pairer.wait(cam.pairer.latest_colour, timeout)
        if not found:
            raise ImageError(f"no camera frame received on {cam.topic} within {timeout:.1f} s")
        return Frame(found.item)

    def _frame(self, cam: ServiceCamera, image: Image, compressed: CompressedImage) -> Frame:
        if not conversions.is_empty_image(image):
            return Frame(image)
        if len(compressed.data):
            return Frame(compressed)
        return self.latest(cam)

    def _answer(self, response, fill: Callable[[], None]):
        self.status.count("service_calls")
        try:
            if not self.active():
                raise RuntimeError("the node is not active (lifecycle): activate it first")
            fill()
            response.success, response.message = True, ""
        except RemoteError as exc:
            self.source.failed(exc, self.settings())
            response.success, response.message = False, str(exc)
        except Exception as exc:  # every failure becomes an answer, never a dead node
            expected = isinstance(exc, (ImageError, pointcloud.DepthError, RuntimeError, ValueError))
            response.success, response.message = False, str(exc) if expected else f"{type(exc).__name__}: {exc}"
            self.node.get_logger().warning(f"service call failed: {response.message}", throttle_duration_sec=1.0)
        return response

    # --- the calls --------------------------------------------------------------------------------
    def _on_image(self, request, role: str, what: str):
        """A call on one image (the request's, or the named camera's latest frame): its camera, the model (which must
        support `role`: detections, classifications, segmentation) and the frame."""
        cam = self.camera(request.camera_name)  # an unknown name first: it is the call's mistake
        vision = self._model()
        if vision is None or not getattr(vision, f"{role}_supported"):
            raise RuntimeError(f"the model is a {vision.role if vision else 'none'}: {what} not supported")
        return cam, vision, self._frame(cam, request.image, request.compressed_image)

    def _detections(self, request, response):
        def fill():
            cam, vision, frame = self._on_image(request, "detections", "detections are")
            r = compute(frame, vision, cam.settings(), classifications=False)
            response.detections = conversions.detections_to_msg(r.detections, frame.header, self._names())

        return self._answer(response, fill)

    def _classifications(self, request, response):
        def fill():
            cam, vision, frame = self._on_image(request, "classifications", "classifications are")
            r = compute(frame, vision, cam.settings(), detections=False, top_n=request.n)
            response.classifications = conversions.classifications_to_msg(
                r.classifications, frame.header, self._names()
            )

        return self._answer(response, fill)

    def _segmentation(self, request, response):
        def fill():
            cam, vision, frame = self._on_image(request, "segmentation", "segmentation is")
            r = compute(frame, vision, cam.settings(), detections=False, classifications=False)
            assert r.segmentation is not None
            response.segmentation = conversions.class_map_to_msg(r.segmentation.classes, frame.header)
            shares = r.segmentation.shares()
            response.class_ids = [i for i, _, _, _ in shares]
            response.class_names = [name for _, name, _, _ in shares]
            response.pixel_counts = [n for _, _, n, _ in shares]

        return self._answer(response, fill)

    def _properties(self, _request, response):
        try:
            vision = self._model()
        except Exception:  # no model now: nothing is supported
            vision = None
        response.detections_supported = bool(vision and vision.detections_supported)
        response.classifications_supported = bool(vision and vision.classifications_supported)
        response.segmentation_supported = bool(vision and vision.segmentation_supported)
        response.object_point_clouds_supported = bool(
            any(c.settings().use_depth for c in self.cameras.values())
            and (self._obstacles() or response.detections_supported)
        )
        first = next(iter(self.cameras.values()))
        response.camera_topic = first.topic
        response.cameras = [name for name in self.cameras if name]
        response.camera_topics = [c.topic for c in self.cameras.values()]
        response.cameras_with_depth = [name for name, c in self.cameras.items() if name and c.settings().use_depth]
        return response

    def _capture_all(self, request, response):
        def fill():
            cam = self.camera(request.camera_name)  # an unknown name first: it is the call's mistake
            want_objects = request.return_object_point_clouds
            want_masks = request.return_instance_masks
            vision = self._model()
            if want_masks and not (vision is not None and vision.detections_supported and vision.segments):
                raise RuntimeError(
                    "instance masks need a segmentation model (mask coefficients and a protos "
                    "output, or per-detection masks); this model gives none"
                )
            frame = self.latest(cam, with_depth=want_objects)
            r = compute(
                frame,
                vision,
                cam.settings(),
                detections=request.return_detections or want_masks,
                classifications=request.return_classifications,
                objects=want_objects,
            )
            if request.return_image:
                response.image = (
                    frame.colour if isinstance(frame.colour, Image) else conversions.rgb_to_image(r.rgb, frame.header)
                )
            if request.return_detections or want_masks:  # the masks' pixel values index these
                response.detections = conversions.detections_to_msg(r.detections, frame.header, self._names())
            if request.return_detections and vision is not None and vision.keypoint_shape is not None:
                response.keypoints = conversions.keypoints_to_msg(
                    r.detections, frame.header, vision.keypoint_names, r.keypoints_3d
                )
            if request.return_classifications:
                response.classifications = conversions.classifications_to_msg(
                    r.classifications, frame.header, self._names()
                )
            if want_masks:
                response.instance_masks = conversions.instance_masks_to_msg(r.instance_image(), frame.header)
            if want_objects:
                to_target_frame(r, frame.header, cam.settings(), self.transforms)
                self._fill_objects(response, r, frame.header)

        return self._answer(response, fill)

    def _object_clouds(self, request, response):
        def fill():
            cam = self.camera(request.camera_name)  # an unknown name first: it is the call's mistake
            vision = self._model()
            frame = self.latest(cam, with_depth=True)
            r = compute(frame, vision, cam.settings(), classifications=False, objects=True)
            to_target_frame(r, frame.header, cam.settings(), self.transforms)
            self._fill_objects(response, r, frame.header)

        return self._answer(response, fill)

    def _fill_objects(self, response, r, header: Header) -> None:
        """3D detections and one cloud per object (same order) into a response."""
        if r.objects is None:
            raise pointcloud.DepthError(r.objects_error or "no 3D objects for this frame")
        header = Header(stamp=header.stamp, frame_id=r.objects_frame or header.frame_id)  # target_frame
        response.objects = conversions.detections3d_to_msg(r.objects, header, self._names())
        response.clouds = [conversions.cloud_to_msg(o.points, o.colours, None, header) for o in r.objects]

    def _names(self) -> bool:
        return self.settings().publish_class_names
