"""The vision service node: camera topics in, vision_msgs out; request/response calls for any image.

Threads: subscription callbacks only store the latest frame (a newer frame replaces an unprocessed one,
counted as skipped); one worker thread runs the model on the latest frame; services run in their own
reentrant callback group, so they and parameter calls stay responsive while a frame is processed.
Nothing is subscribed, and no work is done, while nobody listens to any output (unless `always_on`).
"""
from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np
from diagnostic_msgs.msg import DiagnosticStatus, KeyValue
from rcl_interfaces.msg import SetParametersResult
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.node import Node
from rclpy.qos import (
    DurabilityPolicy,
    HistoryPolicy,
    QoSProfile,
    ReliabilityPolicy,
    qos_profile_system_default,
)
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2
from std_msgs.msg import Header
from vision_msgs.msg import Classification, Detection2DArray, Detection3DArray, LabelInfo

from ml_model_service_interfaces.srv import (
    CaptureAll,
    GetClassifications,
    GetDetections,
    GetObjectPointClouds,
    GetProperties,
)

from ..core import pointcloud
from ..core.decoders import DecoderConfig
from ..core.imaging import ImageError
from ..core.labels import Labels, load_labels
from ..core.preprocess import PreprocessConfig
from ..core.vision import FilterConfig, VisionConfig, VisionModel
from ..core.visualize import draw
from . import conversions
from .common import load_model, spin_node
from .parameters import VISION_PARAMS, declare, parse_pairs
from .remote_model import RemoteError, RemoteModel

_READ_ONLY = {p.name for p in VISION_PARAMS if p.read_only}


def vision_config(p: dict) -> VisionConfig:
    """VisionConfig from node parameters (raises ValueError on malformed entries)."""
    confidences = {k: float(v) for k, v in parse_pairs(p["label_confidences"], "label_confidences").items()}
    if len(p["input_mean"]) != 3 or len(p["input_std"]) != 3 or any(s == 0 for s in p["input_std"]):
        raise ValueError("input_mean and input_std need 3 values each, std non-zero")
    if sorted(p["box_order"]) != [0, 1, 2, 3]:
        raise ValueError(f"box_order {p['box_order']} is not a permutation of 0..3")
    return VisionConfig(
        preprocess=PreprocessConfig(mean=tuple(p["input_mean"]), std=tuple(p["input_std"]), bgr=p["input_bgr"]),
        decoder=DecoderConfig(model_type=p["model_type"], remap_output_names=parse_pairs(
            p["remap_output_names"], "remap_output_names"), box_order=tuple(p["box_order"]),
            box_units=p["box_units"], yolo_format=p["yolo_format"], iou_threshold=p["iou_threshold"],
            max_detections=p["max_detections"], agnostic_nms=p["agnostic_nms"]),
        filters=FilterConfig(confidence_threshold=p["confidence_threshold"], label_confidences=confidences,
                             classes=list(p["classes"])),
        resize_mode=p["resize_mode"],
        remap_input_names=parse_pairs(p["remap_input_names"], "remap_input_names"),
    )


def cloud_config(p: dict) -> pointcloud.CloudConfig:
    return pointcloud.CloudConfig(
        min_depth=p["min_depth"], max_depth=p["max_depth"], depth_band=p["depth_band"], mean_k=p["mean_k"],
        sigma=p["sigma"], min_points=p["min_points"], max_points_per_object=p["max_points_per_object"],
        voxel_size=p["voxel_size"],
        plane_min_points=p["plane_min_points"], plane_max_distance=p["plane_max_distance"],
        ground_normal=tuple(p["ground_normal"]), ground_angle_tolerance_deg=p["ground_angle_tolerance_deg"],
        cluster_radius=p["cluster_radius"], cluster_min_points=p["cluster_min_points"])


def _stamp(header: Header) -> float:
    return header.stamp.sec + header.stamp.nanosec * 1e-9


@dataclass
class Frame:
    """One colour frame as received."""

    header: Header
    image: Image | None = None
    compressed: CompressedImage | None = None
    depth: Image | None = None  # the depth image paired with it, when use_depth
    arrived: float = field(default_factory=time.monotonic)

    def rgb(self) -> np.ndarray:
        if self.image is not None:
            return conversions.image_to_rgb(self.image)
        return conversions.compressed_to_rgb(self.compressed)


@dataclass
class Results:
    detections: list
    classifications: list
    objects: list | None  # None: not computed
    rgb: np.ndarray


class VisionNode(Node):
    """Detections, classifications and object point clouds from a model and camera topics."""

    def __init__(self, **kwargs) -> None:
        super().__init__("vision_service", **kwargs)
        p = self.params = declare(self, VISION_PARAMS)
        self.counters = {"received": 0, "processed": 0, "skipped": 0, "errors": 0, "depth_received": 0,
                         "unpaired": 0, "service_calls": 0}
        self.obstacles_only = p["object_mode"] == "obstacles"
        self.vision: VisionModel | None = None
        self.model_state = "model not loaded yet"
        self._remote: RemoteModel | None = None
        self._rebuild = True
        self._next_attempt = 0.0
        self._model_lock = threading.Lock()
        self._cond = threading.Condition()
        self._pending: Frame | None = None  # without depth: the newest frame the worker has not taken
        self._frames: deque[Frame] = deque(maxlen=15)  # recent colour frames (for pairing and services)
        self._done_stamp = -1.0  # with depth: stamp of the newest frame processed
        self._depths: deque[Image] = deque(maxlen=15)
        self._info: CameraInfo | None = None
        self._demand_until = 0.0
        self._running = True

        self._image_group = MutuallyExclusiveCallbackGroup()
        self._service_group = ReentrantCallbackGroup()
        pub_qos = qos_profile_system_default
        latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL,
                             reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST)
        self.pub_detections = self.create_publisher(Detection2DArray, "detections", pub_qos)
        self.pub_classifications = self.create_publisher(Classification, "classifications", pub_qos)
        self.pub_label_info = self.create_publisher(LabelInfo, "label_info", latched)
        self.pub_debug = self.create_publisher(Image, "debug_image", pub_qos)
        self.pub_objects = self.create_publisher(Detection3DArray, "objects", pub_qos)
        self.pub_points = self.create_publisher(PointCloud2, "object_points", pub_qos)
        self.pub_status = self.create_publisher(DiagnosticStatus, "~/status", latched)
        self._outputs = [self.pub_detections, self.pub_classifications, self.pub_debug, self.pub_objects,
                         self.pub_points]

        if p["image_qos"] == "reliable":
            self._sub_qos = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE)
        else:  # REP-2003: sensor data, best effort; depth 1 = only the latest frame
            self._sub_qos = QoSProfile(depth=1, reliability=ReliabilityPolicy.BEST_EFFORT)
        self.image_topic = self.resolve_topic_name("image")
        if p["use_compressed"]:
            self.image_topic += "/compressed"
        self._subs: list = []

        sg = self._service_group
        self.create_service(GetDetections, "~/get_detections", self._on_get_detections, callback_group=sg)
        self.create_service(GetClassifications, "~/get_classifications", self._on_get_classifications,
                            callback_group=sg)
        self.create_service(GetProperties, "~/get_properties", self._on_get_properties, callback_group=sg)
        self.create_service(CaptureAll, "~/capture_all", self._on_capture_all, callback_group=sg)
        self.create_service(GetObjectPointClouds, "~/get_object_point_clouds", self._on_get_object_point_clouds,
                            callback_group=sg)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.create_timer(0.25, self._update_subscriptions, callback_group=self._image_group)
        self.create_timer(1.0, self._publish_status, callback_group=sg)
        self._worker = threading.Thread(target=self._work, name="vision_worker", daemon=True)
        self._worker.start()
        self.get_logger().info(
            f"listening on {self.image_topic}" + (" with depth" if p["use_depth"] else "") +
            f"; model: {p['model_service'] or p['model_path'] or 'bundled detector'}" +
            (" (obstacle mode, no model)" if self.obstacles_only else ""))

    # --- model -----------------------------------------------------------------------------------
    def ensure_model(self) -> VisionModel | None:
        """The current VisionModel, (re)built when needed; None while none can be had (see model_state)."""
        if self.obstacles_only:
            return None
        with self._model_lock:
            if self.vision is not None and not self._rebuild:
                return self.vision
            if time.monotonic() < self._next_attempt:
                return self.vision
            p = self.params
            try:
                config = vision_config(p)
                if p["model_service"]:
                    if self._remote is None:
                        self._remote = RemoteModel(self, p["model_service"], p["service_timeout"], fetch=False)
                    self._remote.timeout = p["service_timeout"]
                    meta = self._remote.fetch_metadata()
                    runner, labels = self._remote, self._remote_labels(meta)
                else:
                    model = load_model(p)
                    for warning in model.warnings:
                        self.get_logger().warning(warning)
                    runner, labels = model, model.labels
                vision = VisionModel(runner, labels, config)
            except Exception as exc:  # a model that cannot be used: say why, keep the node up, retry later
                remote = bool(p["model_service"])
                self._next_attempt = time.monotonic() + (1.0 if remote else 5.0)
                self._set_model_state(f"{'model service ' + p['model_service'] if remote else 'model'} "
                                      f"unavailable: {exc}", error=True)
                return self.vision if not remote else None
            was_down = self.vision is None and self.model_state != "model not loaded yet"
            self.vision, self._rebuild = vision, False
            for warning in vision.warnings:
                self.get_logger().warning(warning)
            self._set_model_state(f"{'recovered: ' if was_down else ''}{vision.role} ready "
                                  f"({runner.metadata.name}, {len(labels) if labels else 0} labels)")
            self.pub_label_info.publish(conversions.label_info_msg(
                labels, Header(stamp=self.get_clock().now().to_msg()), p["confidence_threshold"]))
            return vision

    def _remote_labels(self, meta) -> Labels | None:
        if self.params["label_path"]:
            return load_labels(self.params["label_path"])
        path = meta.outputs[0].extra.get("labels", "") if meta.outputs else ""
        if not path:
            return None
        try:
            return load_labels(path)
        except (OSError, ValueError):
            self.get_logger().warning(f"the model service's label file {path} is not readable here; set "
                                      "label_path (class names are indices until then)", once=True)
            return None

    def _set_model_state(self, state: str, error: bool = False) -> None:
        if state != self.model_state:
            if error:  # rclpy wants one severity per call site
                self.get_logger().error(state)
            else:
                self.get_logger().info(state)
        self.model_state = state

    def _model_lost(self, exc: Exception) -> None:
        with self._model_lock:
            if self.params["model_service"]:
                self.vision = None
                self._next_attempt = time.monotonic() + 1.0
            self._set_model_state(f"model service {self.params['model_service']} unavailable: {exc}", error=True)

    def _on_set_parameters(self, params) -> SetParametersResult:
        candidate = dict(self.params)
        for param in params:
            if param.name in _READ_ONLY:
                return SetParametersResult(successful=False, reason=f"{param.name} is read-only")
            if param.name in candidate:
                value = param.value
                candidate[param.name] = list(value) if isinstance(value, (list, tuple)) else value
        try:
            vision_config(candidate)
        except ValueError as exc:
            return SetParametersResult(successful=False, reason=str(exc))
        with self._model_lock:
            self.params = candidate
            self._rebuild, self._next_attempt = True, 0.0
        return SetParametersResult(successful=True)

    # --- subscriptions ---------------------------------------------------------------------------
    def _listened(self) -> bool:
        return self.params["always_on"] or any(pub.get_subscription_count() > 0 for pub in self._outputs)

    def _update_subscriptions(self) -> None:
        wanted = self._listened() or time.monotonic() < self._demand_until
        if wanted and not self._subs:
            group, qos = self._image_group, self._sub_qos
            if self.params["use_compressed"]:
                self._subs.append(self.create_subscription(CompressedImage, self.image_topic, self._on_compressed,
                                                           qos, callback_group=group))
            else:
                self._subs.append(self.create_subscription(Image, self.image_topic, self._on_image, qos,
                                                           callback_group=group))
            if self.params["use_depth"]:
                self._subs.append(self.create_subscription(Image, "depth", self._on_depth, qos,
                                                           callback_group=group))
                self._subs.append(self.create_subscription(CameraInfo, "camera_info", self._on_info, qos,
                                                           callback_group=group))
            self.get_logger().info(f"subscribed to {self.image_topic}")
        elif not wanted and self._subs:
            for sub in self._subs:
                self.destroy_subscription(sub)
            self._subs = []
            self.get_logger().info("nobody listens: unsubscribed from the camera")

    def _on_image(self, msg: Image) -> None:
        self._store(Frame(msg.header, image=msg))

    def _on_compressed(self, msg: CompressedImage) -> None:
        self._store(Frame(msg.header, compressed=msg))

    def _on_depth(self, msg: Image) -> None:
        self.counters["depth_received"] += 1
        with self._cond:
            self._depths.append(msg)
            self._cond.notify()

    def _on_info(self, msg: CameraInfo) -> None:
        self._info = msg

    def _store(self, frame: Frame) -> None:
        self.counters["received"] += 1
        with self._cond:
            self._frames.append(frame)
            if not self._listened():
                return
            if not self.params["use_depth"]:
                if self._pending is not None:
                    self.counters["skipped"] += 1  # a newer frame replaces one the worker had not reached
                self._pending = frame
            self._cond.notify()

    def _match_depth(self, frame: Frame) -> Image:
        """The depth image taken with `frame` (approximate time, within sync_slop); DepthError says why not."""
        depths = list(self._depths)
        if not depths:
            raise pointcloud.DepthError(f"no depth image received on {self.resolve_topic_name('depth')}")
        t = _stamp(frame.header)
        best = min(depths, key=lambda d: abs(_stamp(d.header) - t))
        if abs(_stamp(best.header) - t) <= self.params["sync_slop"]:
            return best
        if t == 0.0 or _stamp(best.header) == 0.0:
            raise pointcloud.DepthError("colour or depth images carry no timestamp (stamp 0): they cannot be "
                                        "paired; set header.stamp in the camera driver")
        raise pointcloud.DepthError(
            f"no depth image within sync_slop={self.params['sync_slop']} s of the colour frame (colour stamp "
            f"{t:.3f}, nearest depth {_stamp(best.header):.3f}; {len(depths)} buffered): check rates and clocks")

    def _newest_paired(self, newer_than: float = -1.0) -> Frame | None:
        """The newest colour frame (after `newer_than`) that has its depth image, with it attached."""
        for frame in reversed(self._frames):
            if _stamp(frame.header) <= newer_than:
                break
            try:
                return Frame(frame.header, frame.image, frame.compressed, self._match_depth(frame), frame.arrived)
            except pointcloud.DepthError:
                continue
        return None

    def latest_frame(self, timeout: float, with_depth: bool = False) -> Frame:
        """The latest camera frame (with its depth, if asked); subscribes on demand (for 10 s) when nobody
        else listens."""
        self._demand_until = time.monotonic() + 10.0
        if not self._subs:
            self._update_subscriptions()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._cond:
                frame = self._newest_paired() if with_depth else (self._frames[-1] if self._frames else None)
            if frame is not None:
                return frame
            time.sleep(0.02)
        if not self._frames:
            raise ImageError(f"no camera frame received on {self.image_topic} within {timeout:.1f} s")
        self._match_depth(self._frames[-1])  # raises the reason
        raise pointcloud.DepthError("no colour frame with a matching depth image")

    # --- processing ------------------------------------------------------------------------------
    def _next_frame(self) -> tuple[Frame | None, bool]:
        """The frame to process next, and whether its 3D objects can be computed (it has its depth).
        With depth, a colour frame still unpaired after max(0.2 s, 2 x sync_slop) is processed in 2D only,
        and the reason its depth is missing is logged."""
        with self._cond:
            if not self.params["use_depth"]:
                if self._pending is None:
                    self._cond.wait(0.5)
                frame, self._pending = self._pending, None
                return frame, False
            self._cond.wait(0.1)
            frame = self._newest_paired(self._done_stamp)
            unseen = [f for f in self._frames if _stamp(f.header) > self._done_stamp]
            if frame is not None:
                self.counters["skipped"] += sum(1 for f in unseen if _stamp(f.header) < _stamp(frame.header))
                self._done_stamp = _stamp(frame.header)
                return frame, True
            patience = max(0.2, 2 * self.params["sync_slop"])
            stale = [f for f in unseen if time.monotonic() - f.arrived > patience]
            if not stale:
                return None, False
            self._done_stamp = _stamp(stale[-1].header)
            self.counters["unpaired"] += len(stale)
            self.counters["skipped"] += len(stale) - 1
        try:
            self._match_depth(stale[-1])
        except pointcloud.DepthError as exc:
            self.get_logger().error(f"2D only, no 3D objects: {exc}", throttle_duration_sec=2.0)
        return stale[-1], False

    def _work(self) -> None:
        while self._running:
            try:
                frame, with_depth = self._next_frame()
                if not self.obstacles_only and self.ensure_model() is None:
                    continue
                if frame is None or (self.obstacles_only and not with_depth):
                    continue
                results = self.compute(frame, detections=True, classifications=True, objects=with_depth)
                self._publish(frame.header, results)
                self.counters["processed"] += 1
            except (ImageError, pointcloud.DepthError) as exc:
                self.counters["errors"] += 1
                self.get_logger().error(f"frame dropped: {exc}", throttle_duration_sec=2.0)
            except RemoteError as exc:
                self.counters["errors"] += 1
                self._model_lost(exc)
            except Exception as exc:  # keep the node alive whatever a frame holds
                self.counters["errors"] += 1
                self.get_logger().error(f"frame dropped: {type(exc).__name__}: {exc}", throttle_duration_sec=2.0)

    def compute(self, frame: Frame, detections: bool, classifications: bool, objects: bool) -> Results:
        """Everything asked for, from one frame."""
        rgb = frame.rgb()
        vision = None if self.obstacles_only else self.ensure_model()
        if vision is None and not self.obstacles_only:
            raise RuntimeError(self.model_state)
        dets, cls, objs = [], [], None
        if vision is not None and vision.detections_supported and (detections or objects):
            dets = vision.detect(rgb)
        if vision is not None and vision.classifications_supported and classifications:
            cls = vision.classify(rgb, self.params["top_n"])
        if objects:
            objs = self._objects(frame, rgb, dets)
        return Results(dets, cls, objs, rgb)

    def _objects(self, frame: Frame, rgb: np.ndarray, dets: list) -> list:
        if not self.params["use_depth"]:
            raise pointcloud.DepthError("use_depth is false: no depth or camera_info is subscribed")
        info = self._info
        if info is None:
            raise pointcloud.DepthError(f"no camera_info received on {self.resolve_topic_name('camera_info')}")
        height, width = rgb.shape[:2]
        intrinsics = pointcloud.Intrinsics.from_k(info.k, info.width, info.height).scaled(width, height)
        depth_msg = frame.depth if frame.depth is not None else self._match_depth(frame)
        depth = pointcloud.align_depth(conversions.depth_to_metres(depth_msg, self.params["depth_unit_scale"]),
                                       width, height)
        config = cloud_config(self.params)
        if self.obstacles_only:
            return pointcloud.obstacles_from_depth(depth, rgb, intrinsics, config)
        return pointcloud.objects_from_detections(depth, rgb, intrinsics, dets, config)

    def _publish(self, header: Header, r: Results) -> None:
        names = self.params["publish_class_names"]
        vision = self.vision
        if vision is not None and vision.detections_supported:
            self.pub_detections.publish(conversions.detections_to_msg(r.detections, header, names))
        if vision is not None and vision.classifications_supported:
            self.pub_classifications.publish(conversions.classifications_to_msg(r.classifications, header, names))
        if r.objects is not None:  # computed: this frame had its depth
            self.pub_objects.publish(conversions.detections3d_to_msg(r.objects, header, names))
            self.pub_points.publish(self._combined_cloud(r.objects, header))
        if self.params["publish_debug_image"] and self.pub_debug.get_subscription_count() > 0:
            self.pub_debug.publish(conversions.rgb_to_image(draw(r.rgb, r.detections, r.classifications), header))

    @staticmethod
    def _combined_cloud(objects: list, header: Header) -> PointCloud2:
        if not objects:
            return conversions.cloud_to_msg(np.zeros((0, 3), np.float32), None, None, header)
        points = np.concatenate([o.points for o in objects])
        colours = np.concatenate([o.colours for o in objects])
        ids = np.concatenate([np.full(len(o.points), o.index, np.uint32) for o in objects])
        return conversions.cloud_to_msg(points, colours, ids, header)

    # --- services --------------------------------------------------------------------------------
    def _request_frame(self, image: Image, compressed: CompressedImage) -> Frame:
        if not conversions.is_empty_image(image):
            return Frame(image.header, image=image)
        if len(compressed.data):
            return Frame(compressed.header, compressed=compressed)
        return self.latest_frame(self.params["service_timeout"])

    def _answer(self, response, fill) -> object:
        self.counters["service_calls"] += 1
        try:
            fill()
            response.success, response.message = True, ""
        except RemoteError as exc:
            self._model_lost(exc)
            response.success, response.message = False, str(exc)
        except Exception as exc:  # every failure becomes an answer, never a dead node
            expected = isinstance(exc, (ImageError, pointcloud.DepthError, RuntimeError, ValueError))
            response.success, response.message = False, str(exc) if expected else f"{type(exc).__name__}: {exc}"
            self.get_logger().warning(f"service call failed: {response.message}", throttle_duration_sec=1.0)
        return response

    def _on_get_detections(self, request, response):
        def fill():
            frame = self._request_frame(request.image, request.compressed_image)
            vision = self._require_model()
            if not vision.detections_supported:
                raise RuntimeError(f"the model is a {vision.role}: detections are not supported")
            r = self.compute(frame, detections=True, classifications=False, objects=False)
            response.detections = conversions.detections_to_msg(r.detections, frame.header,
                                                                self.params["publish_class_names"])
        return self._answer(response, fill)

    def _on_get_classifications(self, request, response):
        def fill():
            frame = self._request_frame(request.image, request.compressed_image)
            vision = self._require_model()
            if not vision.classifications_supported:
                raise RuntimeError(f"the model is a {vision.role}: classifications are not supported")
            rgb = frame.rgb()
            results = vision.classify(rgb, request.n)
            response.classifications = conversions.classifications_to_msg(results, frame.header,
                                                                          self.params["publish_class_names"])
        return self._answer(response, fill)

    def _require_model(self) -> VisionModel:
        vision = self.ensure_model()
        if vision is None:
            raise RuntimeError(self.model_state)
        return vision

    def _on_get_properties(self, _request, response):
        vision = None if self.obstacles_only else self.ensure_model()
        response.detections_supported = bool(vision and vision.detections_supported)
        response.classifications_supported = bool(vision and vision.classifications_supported)
        response.object_point_clouds_supported = bool(
            self.params["use_depth"] and (self.obstacles_only or response.detections_supported))
        response.camera_topic = self.image_topic
        return response

    def _on_capture_all(self, request, response):
        def fill():
            want_objects = request.return_object_point_clouds
            if want_objects and not self.params["use_depth"]:
                raise pointcloud.DepthError("object point clouds need use_depth: true")
            frame = self.latest_frame(self.params["service_timeout"], with_depth=want_objects)
            r = self.compute(frame, request.return_detections, request.return_classifications, want_objects)
            names = self.params["publish_class_names"]
            if request.return_image:
                response.image = frame.image if frame.image is not None else conversions.rgb_to_image(
                    r.rgb, frame.header)
            if request.return_detections:
                response.detections = conversions.detections_to_msg(r.detections, frame.header, names)
            if request.return_classifications:
                response.classifications = conversions.classifications_to_msg(r.classifications, frame.header,
                                                                              names)
            if want_objects:
                self._fill_objects(response, r.objects, frame.header)
        return self._answer(response, fill)

    def _on_get_object_point_clouds(self, _request, response):
        def fill():
            if not self.params["use_depth"]:
                raise pointcloud.DepthError("object point clouds need use_depth: true (depth and camera_info)")
            frame = self.latest_frame(self.params["service_timeout"], with_depth=True)
            r = self.compute(frame, detections=False, classifications=False, objects=True)
            self._fill_objects(response, r.objects, frame.header)
        return self._answer(response, fill)

    def _fill_objects(self, response, objects: list, header: Header) -> None:
        """3D detections and one cloud per object (same order) into a service response."""
        response.objects = conversions.detections3d_to_msg(objects, header, self.params["publish_class_names"])
        response.clouds = [conversions.cloud_to_msg(o.points, o.colours, None, header) for o in objects]

    # --- status ----------------------------------------------------------------------------------
    def _publish_status(self) -> None:
        ok = self.obstacles_only or self.vision is not None
        level = DiagnosticStatus.OK if ok and self.counters["errors"] == 0 else (
            DiagnosticStatus.WARN if ok else DiagnosticStatus.ERROR)
        values = [KeyValue(key=k, value=str(v)) for k, v in self.counters.items()]
        values.append(KeyValue(key="subscribed", value=str(bool(self._subs)).lower()))
        self.pub_status.publish(DiagnosticStatus(level=level, name=self.get_fully_qualified_name(),
                                                 message=self.model_state, values=values))

    def destroy_node(self) -> None:
        self._running = False
        with self._cond:
            self._cond.notify_all()
        super().destroy_node()


def main(args=None) -> None:
    spin_node(VisionNode, args)


if __name__ == "__main__":
    main()
