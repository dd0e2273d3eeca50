"""One camera of the vision node, from its subscriptions to its publications.

A `CameraPipeline` owns what is the camera's: its subscriptions (`subscriptions.py`: colour, depth,
camera_info, subscribed while someone listens), colour/depth pairing (`core/frames/pairing.py`), decode budget,
tracker, counters, health and publishers (`outputs.py`). The driver thread (`driver.py`) hands it what its
subscriptions hold (`receive`) and runs its frames (`process`): the pipeline (`frame.py`, `core/frames/pipeline.py`),
3D in `target_frame`, the publication, the counters. Frames that arrive while one is running are replaced by
newer ones and counted as skipped, never queued. With `tracking` on, the camera's tracker gives detections their
ids (a new tracker when its settings or the model change; service calls never touch it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rclpy.node import Node
from sensor_msgs.msg import CameraInfo
from std_msgs.msg import Header

from ...core.frames.health import StreamHealth, TopicState
from ...core.frames.imaging import DecodeBudget, DecodeBudgetError, ImageError
from ...core.frames.pairing import Next, Pairer
from ...core.frames.pipeline import Given
from ...core.frames.tracking import Tracker
from ...core.reading.vision import VisionModel
from ...core.runtimes.oip_backend import InferenceServerError
from ...core.runtimes.threads import CallerPinning, pool_pinned
from ...core.settings.configs import tracker_config
from ...core.settings.typed import ImageQos, ObjectMode, VisionSettings
from ..remote_model import RemoteError
from ..status import WARN, Status, Stopwatch
from ..tf import TargetFrame
from .frame import NO_CAMERA_INFO, Frame, compute, to_target_frame
from .model_source import ModelSource
from .outputs import Outputs
from .services import ServiceCamera
from .subscriptions import CameraInput, Taken

#: a frame's latency is timed only when its stamp is within this many seconds of the node's clock (a replayed
#: or simulated stamp on another clock would give a meaningless figure)
SAME_CLOCK_S = 60.0


def stamp_s(header: Header) -> float:
    return header.stamp.sec + header.stamp.nanosec * 1e-9


class CameraPipeline:
    """One camera: `name` "" is a node's only camera (topics `image`, `detections`...), another name is one of
    its `cameras` (topics `<name>/image`, `<name>/detections`...). `settings()`: the camera's settings."""

    def __init__(self, node: Node, name: str, settings: Callable[[], VisionSettings]) -> None:
        self.node, self.name, self.settings = node, name, settings
        self.status: Status  # the node's for its only camera, else the camera's own (`cameras.py`)
        self.prefix = f"{name}/" if name else ""
        s = settings()
        self.image_topic = node.resolve_topic_name(f"{self.prefix}image") + ("/compressed" if s.use_compressed else "")
        self.pairer = Pairer(s.sync_slop, capacity=8 if s.use_depth else 1)
        self.log = node.get_logger()
        self.outputs: Outputs | None = None
        self.input: CameraInput | None = None
        self.source: ModelSource | None = None
        self.transforms: TargetFrame | None = None
        self.pinning: CallerPinning | None = None
        self.demand_until = 0.0
        self._reset()

    def _reset(self) -> None:
        """A fresh stream (each activation): health, decode budget, calibration, 3D state, tracker."""
        self.health = StreamHealth()
        self.budget = DecodeBudget(self.settings().max_decode_pixels_per_s)  # compressed frames of the topic
        self.info: CameraInfo | None = None
        self.depth_state = ""  # why the last frame had no 3D ("" = fine)
        self.tracker: Tracker | None = None
        self._tracking: tuple = ()  # (settings, model) the tracker was made for
        self.class_shares = ""  # segmenters: the last frame's classes and their shares of the image
        self._subscribed = False
        self._warned_distortion = False

    # --- lifecycle --------------------------------------------------------------------------------
    def configure(self, on_listeners_changed: Callable[[], None]) -> None:
        """Its publishers (label_info is the node's, published once)."""
        self.outputs = Outputs(self.node, on_listeners_changed, prefix=self.prefix, label_info=False)

    def activate(self, source: ModelSource, transforms: TargetFrame | None, pinning: CallerPinning) -> None:
        """Its subscriptions (made by the driver thread while someone listens) and a fresh stream."""
        s = self.settings()
        self.source, self.transforms, self.pinning = source, transforms, pinning
        self.input = CameraInput(
            self.node,
            self.image_topic,
            s.use_compressed,
            s.use_depth,
            s.image_qos is ImageQos.RELIABLE,
            prefix=self.prefix,
        )
        self._reset()

    def stop(self) -> None:
        """After the driver stopped: no subscriptions, no frames kept."""
        self.input = None
        self.pairer.clear()

    def destroy_outputs(self) -> None:
        outputs, self.outputs = self.outputs, None
        if outputs is not None:
            outputs.destroy()

    @property
    def subscribed(self) -> bool:
        return bool(self.input and self.input.subscribed)

    # --- demand -----------------------------------------------------------------------------------
    def update_demand(self, now: float) -> None:
        """Subscribed while its results are listened to, `always_on`, or a call asked for its frames."""
        if self.input is None or self.outputs is None:
            return
        wanted = bool(self.settings().always_on or self.outputs.listened() or now < self.demand_until)
        if wanted != self.input.wanted:
            self.input.wanted = wanted
            if not wanted:
                self.pairer.clear()
            self.input.wake()

    def service_camera(self, demand: Callable[[], None]) -> ServiceCamera:
        """What the node's calls use of this camera."""
        return ServiceCamera(
            self.pairer, lambda: self.info if self.input is not None else None, self.image_topic, demand, self.settings
        )

    # --- frames in --------------------------------------------------------------------------------
    def note_subscription(self) -> None:
        """Tell its health when it (un)subscribed (the driver calls it after each (un)subscribing, before it
        waits: a camera nobody publishes on is judged from then on)."""
        if self.subscribed != self._subscribed:
            self._subscribed = self.subscribed
            self.health.subscribed(self._subscribed)

    def receive(self, taken: Taken) -> Frame | None:
        """Store what its subscriptions held; the frame to run now, if any."""
        for reason in taken.malformed:
            self.drop("malformed", reason)
        if taken.info is not None:
            self._check_rectified(taken.info)
            self.info = taken.info
        for depth in taken.depths:
            self.status.count("depth_received")
            self._time_jump(self.pairer.add_depth(stamp_s(depth.header), depth), "depth")
        if taken.colour is not None:
            self.status.count("received", taken.colour_count)
            self.status.count("skipped", taken.colour_replaced)
            self.health.received(taken.colour_count)
            self._time_jump(self.pairer.add_colour(stamp_s(taken.colour.header), taken.colour), "colour")
        if self.input is None or not self.input.use_depth:
            return Frame(taken.colour, budget=self.budget) if taken.colour is not None else None
        nxt: Next | None = self.pairer.next_frame()
        if nxt is None:
            return None
        self.status.count("skipped", nxt.skipped)
        if nxt.depth is None:
            self.status.count("unpaired")
            self._no_3d(nxt.reason)
        return Frame(nxt.colour.item, nxt.depth.item if nxt.depth else None, self.info, self.budget)

    def deadline(self) -> float | None:
        """When a colour frame waiting for its depth is to be run without it (monotonic seconds), if any."""
        return self.pairer.deadline() if self.input is not None and self.input.use_depth else None

    def drop(self, counter: str, reason: str) -> None:
        """A frame or message dropped: counted, remembered for status, logged (throttled)."""
        self.status.error(counter, reason)
        self.health.failed(reason)
        self.log.error(f"frame dropped: {reason}", throttle_duration_sec=2.0)

    def _check_rectified(self, info: CameraInfo) -> None:
        """Inputs are taken as rectified (only K is used): say so once when a camera with lens distortion feeds
        an unrectified topic (image_raw) to the node."""
        if self._warned_distortion or not any(abs(float(d)) > 1e-9 for d in info.d):
            return
        if "image_raw" in self.image_topic:
            self._warned_distortion = True
            self.log.warning(
                f"{self.image_topic} is unrectified and its camera_info has lens distortion "
                f"({info.distortion_model}): 3D assumes rectified images (K only); run "
                "image_proc's rectify node and subscribe to image_rect"
            )

    def _time_jump(self, seconds: float, stream: str) -> None:
        """The stamps of `stream` went back `seconds` (0: they did not): go on with the new timeline."""
        if not seconds:
            return
        self.status.count("time_jumps")
        if stream == "colour":
            self.tracker, self._tracking = None, ()  # tracks belong to the old timeline
        self.log.warning(
            f"{stream} stamps went back {seconds:.2f} s (bag loop, simulation reset or camera clock "
            f"reset): {stream} buffers{' and tracking' if stream == 'colour' else ''} restarted",
            throttle_duration_sec=1.0,
        )

    def restart_timeline(self) -> None:
        """The node's clock jumped back (sim time reset): everything tied to the old timeline is dropped."""
        self.pairer.clear()
        self.tracker, self._tracking = None, ()

    # --- a frame through the pipeline and out -----------------------------------------------------
    def process(self, frame: Frame, given: Given = (None, None, None)) -> None:
        """One frame through the pipeline and out (`given`: its model results from a batched call), on the
        calling thread; every failure is counted and reported, none raised."""
        try:
            self._process(frame, given)
        except Exception as exc:  # keep the camera served whatever a frame holds
            self.drop("errors", f"{type(exc).__name__}: {exc}")

    def _process(self, frame: Frame, given: Given) -> None:
        assert self.source is not None and self.outputs is not None and self.pinning is not None
        s = self.settings()
        obstacles = s.object_mode is ObjectMode.OBSTACLES
        vision = None if obstacles else self.source.vision
        if vision is None and not obstacles:  # none yet, or lost: built here when a retry is due
            vision = self.pinning.unpinned(self.source.current, s)
        if vision is None and not obstacles:
            self.status.count("no_model")
            self.health.failed(f"no model: {self.source.state}")
            return
        self.pinning.want(s.pin_worker and vision is not None and pool_pinned(getattr(vision.runner, "backend", None)))
        if obstacles and frame.depth is None:
            return
        watch = Stopwatch()
        tracker = self._tracker(s, vision)
        try:
            r = compute(frame, vision, s, objects=frame.depth is not None, tracker=tracker, given=given)
        except ImageError as exc:
            self.drop("decode_budget" if isinstance(exc, DecodeBudgetError) else "errors", str(exc))
            return
        except (RemoteError, InferenceServerError) as exc:
            self.status.error("errors", str(exc))
            self.health.failed(str(exc))
            self.pinning.unpinned(self.source.failed, exc, s)
            return
        if r.segmentation is not None:
            self.class_shares = ", ".join(f"{name} {share:.2f}" for _, name, _, share in r.segmentation.shares()[:10])
        if frame.depth is not None:
            if not to_target_frame(r, frame.header, s, self.transforms):
                self.status.count("tf_errors")
            self._judge_3d(r, obstacles)
        self.outputs.publish(
            frame.header,
            r,
            vision,
            s.publish_class_names,
            s.publish_debug_image,
            s.publish_masks,
            s.publish_markers,
        )
        self.source.healthy()
        self.status.count("processed")
        self.health.processed()
        self.status.timing("processing", watch.ms())
        age = self.node.get_clock().now().nanoseconds * 1e-9 - stamp_s(frame.header)
        if stamp_s(frame.header) > 0 and -1.0 < age < SAME_CLOCK_S:
            self.status.timing("latency", age * 1000.0)

    def _judge_3d(self, r: Any, obstacles: bool) -> None:
        """The frame had depth: whether it gave 3D, and why not."""
        if r.objects_error:
            self.status.error("depth_errors", r.objects_error)
            self._no_3d(r.objects_error)
        elif r.detections and not r.objects and not obstacles:
            # 2D found objects and 3D none: the depth in their boxes is missing (0, NaN) or out of range
            self.status.count("frames_without_3d")
            self._no_3d(
                f"none of the {len(r.detections)} detections has enough valid depth for 3D (depth 0 or NaN "
                "in their boxes, or outside min_depth..max_depth: is the depth aligned to the colour image "
                "and in the encoding's unit?)"
            )
        else:
            self.depth_state = ""

    def _tracker(self, s: VisionSettings, vision: VisionModel | None) -> Tracker | None:
        """The camera's tracker (None when tracking is off); a fresh one for new settings or a new model."""
        config = tracker_config(s)
        if config is None:
            self.tracker, self._tracking = None, ()
            return None
        key = (config, id(vision))
        if self.tracker is None or key != self._tracking:
            try:
                self.tracker = Tracker(config)
            except ValueError as exc:
                self.status.error("errors", str(exc))
                self.tracker, self._tracking = None, ()
                return None
            self._tracking = key
        return self.tracker

    def _no_3d(self, reason: str) -> None:
        if reason != self.depth_state and reason.startswith(NO_CAMERA_INFO) and not self.depth_state:
            self.log.info(f"2D only until camera_info arrives: {reason}")  # a camera's first frames
        elif reason != self.depth_state:
            self.log.error(f"2D only, no 3D objects: {reason}", throttle_duration_sec=2.0)
        self.depth_state = reason

    # --- health -----------------------------------------------------------------------------------
    def states(self) -> list[tuple[bytes, str]]:
        """Its stream's states while active: 3D, and the stream judged from its facts (`core/frames/health.py`)."""
        if self.input is None:
            return []
        states = [(WARN, f"3D failing: {self.depth_state}")] if self.depth_state else []
        topic = TopicState(
            subscribed=self.input.subscribed,
            publishers=self.node.count_publishers(self.image_topic),
            qos_problem=self.input.qos_problem,
        )
        return states + [(bytes([level]), text) for level, text in self.health.assess(self.image_topic, topic)]

    def fields(self) -> dict[str, str]:
        """Its status fields."""
        return {
            **({"camera": self.name} if self.name else {}),
            "subscribed": str(self.subscribed).lower(),
            **({"class_shares": self.class_shares} if self.class_shares else {}),
        }
