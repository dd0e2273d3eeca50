"""The worker thread: waits for camera frames (woken by their arrival), pairs colour with depth, runs the
pipeline on the newest frame and publishes. Never a backlog: frames that arrive while it works are replaced
by newer ones and counted as skipped. With `tracking` on, the stream's tracker gives detections their ids
(a new tracker when its settings or the model change; service calls never touch it).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from sensor_msgs.msg import CameraInfo
from std_msgs.msg import Header

from ..core.frames.health import StreamHealth
from ..core.frames.imaging import DecodeBudget, DecodeBudgetError, ImageError
from ..core.frames.pairing import Next, Pairer
from ..core.frames.pipeline import Given
from ..core.frames.tracking import Tracker
from ..core.reading.vision import VisionModel
from ..core.runtimes.oip_backend import InferenceServerError
from ..core.runtimes.threads import pin_caller, pool_pinned
from ..core.settings.configs import tracker_config
from ..core.settings.tables import value_of
from .camera_input import CameraInput
from .frames import TargetFrame
from .model_source import ModelSource
from .outputs import Outputs
from .processing import NO_CAMERA_INFO, Frame, compute, to_target_frame
from .remote_model import RemoteError
from .status import Status, Stopwatch


def stamp_s(header: Header) -> float:
    return header.stamp.sec + header.stamp.nanosec * 1e-9


#: a frame's latency is timed only when its stamp is within this many seconds of the node's clock (a replayed
#: or simulated stamp on another clock would give a meaningless figure)
SAME_CLOCK_S = 60.0


class Worker(threading.Thread):
    """Takes frames from `camera`, pairs them (`pairer`), processes the newest, publishes to `outputs`."""

    def __init__(
        self,
        camera: CameraInput,
        pairer: Pairer,
        source: ModelSource,
        outputs: Outputs,
        status: Status,
        values: Callable[[], dict[str, Any]],
        log,
        frames: TargetFrame | None = None,
    ) -> None:
        super().__init__(name="vision_worker", daemon=True)
        self.camera, self.pairer, self.source, self.outputs, self.status = camera, pairer, source, outputs, status
        self.values, self.log = values, log
        self.health = StreamHealth()
        self.frames = frames
        self._warned_distortion = False
        self.budget = DecodeBudget(values()["max_decode_pixels_per_s"])  # compressed frames of the topic
        self.info: CameraInfo | None = None
        self.depth_state = ""  # why the last frame had no 3D ("" = fine)
        self.tracker: Tracker | None = None
        self._tracking: tuple = ()  # (settings, model) the tracker was made for
        self._pinned = False
        self.class_shares = ""  # segmenters: the last frame's classes and their shares of the image

    def stop(self) -> None:
        self.camera.stopping = True
        self.camera.wake()
        if self.is_alive():
            self.join(5.0)

    def run(self) -> None:
        subscribed = False
        while not self.camera.stopping:
            try:
                deadline = self.pairer.deadline() if self.camera.use_depth else None
                taken = self.camera.wait(None if deadline is None else max(0.0, deadline - time.monotonic()))
                if self.camera.subscribed != subscribed:
                    subscribed = self.camera.subscribed
                    self.health.subscribed(subscribed)
                for reason in taken.malformed:
                    self._drop("malformed", reason)
                frame = self._receive(taken)
                if frame is not None:
                    self._process(frame)
            except Exception as exc:  # keep the worker alive whatever a frame holds
                self._drop("errors", f"{type(exc).__name__}: {exc}")
                time.sleep(0.01)  # a wait that keeps failing must not spin a core
        self.camera.close()

    def _drop(self, counter: str, reason: str) -> None:
        """A frame or message dropped: counted, remembered for status, logged (throttled)."""
        self.status.error(counter, reason)
        self.health.failed(reason)
        self.log.error(f"frame dropped: {reason}", throttle_duration_sec=2.0)

    def _receive(self, taken) -> Frame | None:
        """Store what arrived; the frame to process now, if any."""
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
        if not self.camera.use_depth:
            return Frame(taken.colour, budget=self.budget) if taken.colour is not None else None
        nxt: Next | None = self.pairer.next_frame()
        if nxt is None:
            return None
        self.status.count("skipped", nxt.skipped)
        if nxt.depth is None:
            self.status.count("unpaired")
            self._no_3d(nxt.reason)
        return Frame(nxt.colour.item, nxt.depth.item if nxt.depth else None, self.info, self.budget)

    def _check_rectified(self, info: CameraInfo) -> None:
        """Inputs are taken as rectified (only K is used): say so once when a camera with lens distortion feeds
        an unrectified topic (image_raw) to the node."""
        if self._warned_distortion or not any(abs(float(d)) > 1e-9 for d in info.d):
            return
        if "image_raw" in self.camera.image_topic:
            self._warned_distortion = True
            self.log.warning(
                f"{self.camera.image_topic} is unrectified and its camera_info has lens distortion "
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

    def _process(self, frame: Frame, given: Given = (None, None, None)) -> None:
        """One frame through the pipeline and out (`given`: its model results from a batched call)."""
        values = self.values()
        obstacles = values["object_mode"] == "obstacles"
        vision = None if obstacles else self.source.vision
        if vision is None and not obstacles:  # none yet, or lost: built here when a retry is due
            vision = self._unpinned(self.source.current, values)
        if vision is None and not obstacles:
            self.status.count("no_model")
            self.health.failed(f"no model: {self.source.state}")
            return
        pin = values["pin_worker"] and vision is not None and pool_pinned(getattr(vision.runner, "backend", None))
        if pin != self._pinned:
            self._pin(pin)
        if obstacles and frame.depth is None:
            return
        watch = Stopwatch()
        tracker = self._tracker(values, vision)
        try:
            r = compute(frame, vision, values, objects=frame.depth is not None, tracker=tracker, given=given)
        except ImageError as exc:
            self._drop("decode_budget" if isinstance(exc, DecodeBudgetError) else "errors", str(exc))
            return
        except (RemoteError, InferenceServerError) as exc:
            self.status.error("errors", str(exc))
            self.health.failed(str(exc))
            self._unpinned(self.source.failed, exc, values)
            return
        if r.segmentation is not None:
            self.class_shares = ", ".join(f"{name} {share:.2f}" for _, name, _, share in r.segmentation.shares()[:10])
        if frame.depth is not None and not to_target_frame(r, frame.header, values, self.frames):
            self.status.count("tf_errors")
        if frame.depth is not None:
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
        self.outputs.publish(
            frame.header,
            r,
            vision,
            values["publish_class_names"],
            values["publish_debug_image"],
            value_of(values, "publish_masks"),
            value_of(values, "publish_markers"),
        )
        self.source.healthy()
        self.status.count("processed")
        self.health.processed()
        self.status.timing("processing", watch.ms())
        age = self.outputs.node.get_clock().now().nanoseconds * 1e-9 - stamp_s(frame.header)
        if stamp_s(frame.header) > 0 and -1.0 < age < SAME_CLOCK_S:
            self.status.timing("latency", age * 1000.0)

    def _tracker(self, values: dict[str, Any], vision: VisionModel | None) -> Tracker | None:
        """The stream's tracker (None when tracking is off); a fresh one for new settings or a new model."""
        config = tracker_config(values)
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

    def _pin(self, pin: bool) -> None:
        """Keep this thread on the core the runtime's pinned pool threads leave free (`pin_worker`, for a model
        in this process whose pool is pinned: `threads.pool_pinned`), or let it run on any allowed core."""
        self._pinned = pin
        where = self._affinity(pin)
        if where:
            self.log.info(f"worker thread {where}")

    def _affinity(self, pin: bool) -> str:
        """Set this thread's CPU affinity; what it is now, "" when it could not be set."""
        try:
            return pin_caller(pin)
        except (OSError, ValueError) as exc:
            self.log.warning(
                f"pin_worker: the worker's CPU affinity could not be set: {exc}", throttle_duration_sec=60.0
            )
            return ""

    def _unpinned(self, fn: Callable, *args):
        """`fn(*args)` with this thread free to run on any core: a model it builds (a retry, a model changed on
        the service) may start threads (runtime pools, gRPC), which inherit their creator's CPU affinity."""
        if not self._pinned:
            return fn(*args)
        self._affinity(False)
        try:
            return fn(*args)
        finally:
            self._affinity(True)

    def _no_3d(self, reason: str) -> None:
        if reason != self.depth_state and reason.startswith(NO_CAMERA_INFO) and not self.depth_state:
            self.log.info(f"2D only until camera_info arrives: {reason}")  # a camera's first frames
        elif reason != self.depth_state:
            self.log.error(f"2D only, no 3D objects: {reason}", throttle_duration_sec=2.0)
        self.depth_state = reason
