"""The camera subscriptions, owned by the worker thread and waited on there — not by the executor.

Why: dispatching each 640x480 image through an rclpy executor costs about 4 ms of CPU (measured here:
11 % of a core at 30 Hz on a SingleThreadedExecutor, 21-33 % on a MultiThreadedExecutor) against about
1 ms when the thread that uses the frame waits on the subscription itself (`direct.py`). So the worker
blocks in a wait set on them (no polling, no timeout while idle) and is woken by the frame, or by `wake()`
(a guard condition) when the demand for frames changes or the node stops.

Frames are taken serialised and all taken each time: the ones a newer frame replaces are counted as
skipped and never deserialised; the newest raw Image is read in place (`conversions.image_from_cdr`, the
pixels are not copied again). Subscriptions are created and destroyed only by the worker thread.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from rclpy.guard_condition import GuardCondition
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rclpy.serialization import deserialize_message
from sensor_msgs.msg import CameraInfo, CompressedImage, Image

from . import conversions, direct


@dataclass
class Taken:
    """What one wait returned: the newest colour message (+ how many it replaced), depth messages, the
    newest camera_info."""

    colour: Image | CompressedImage | None = None
    colour_replaced: int = 0
    colour_count: int = 0
    depths: list[Image] = field(default_factory=list)
    info: CameraInfo | None = None


class CameraInput:
    """Colour (raw or compressed), depth and camera_info subscriptions, subscribed only while wanted."""

    def __init__(self, node: Node, image_topic: str, compressed: bool, use_depth: bool, reliable: bool,
                 depth: int = 2) -> None:
        self.node = node
        self.image_topic = image_topic
        self.colour_type = CompressedImage if compressed else Image
        self.use_depth = use_depth
        # REP-2003 sensor data: best effort, small queue; the queue only lets skipped frames be counted.
        self.qos = QoSProfile(depth=depth, reliability=ReliabilityPolicy.RELIABLE if reliable
                              else ReliabilityPolicy.BEST_EFFORT)
        self._group = direct.WorkerOwned()
        self._guard = GuardCondition(None, None, context=node.context)
        self._subs: dict[str, object] = {}
        self.wanted = False
        self.stopping = False

    @property
    def subscribed(self) -> bool:
        return bool(self._subs)

    def wake(self) -> None:
        """Wake the worker out of `wait` (from any thread)."""
        self._guard.trigger()

    def _reconcile(self) -> bool:
        """Subscribe or unsubscribe to match `wanted`; True when that changed anything."""
        if self.wanted and not self._subs and not self.stopping:
            make = self.node.create_subscription
            self._subs["colour"] = make(self.colour_type, self.image_topic, lambda _m: None, self.qos,
                                        callback_group=self._group, raw=True)
            if self.use_depth:
                self._subs["depth"] = make(Image, "depth", lambda _m: None, self.qos, callback_group=self._group)
                self._subs["info"] = make(CameraInfo, "camera_info", lambda _m: None, self.qos,
                                          callback_group=self._group)
            self.node.get_logger().info(f"subscribed to {self.image_topic}" +
                                        (" with depth and camera_info" if self.use_depth else ""))
            return True
        if (not self.wanted or self.stopping) and self._subs:
            for sub in self._subs.values():
                self.node.destroy_subscription(sub)
            self._subs = {}
            if not self.stopping:
                self.node.get_logger().info("nobody listens: unsubscribed from the camera")
            return True
        return False

    def wait(self, timeout: float | None) -> Taken:
        """Block until a message arrives, `wake()` is called or `timeout` seconds pass (None: no timeout);
        return everything available (empty when woken or timed out)."""
        if self._reconcile() or self.stopping:
            return Taken()
        ready = direct.wait(self.node, timeout, subscriptions=self._subs.values(), guards=[self._guard])
        taken = Taken()
        if "colour" in self._subs and self._subs["colour"].handle.pointer in ready:
            raws = direct.take_all(self._subs["colour"])
            if raws:
                newest = raws[-1]
                taken.colour = ((conversions.image_from_cdr(newest) if self.colour_type is Image else None)
                                or deserialize_message(newest, self.colour_type))
                taken.colour_count, taken.colour_replaced = len(raws), len(raws) - 1
        if "depth" in self._subs and self._subs["depth"].handle.pointer in ready:
            taken.depths = direct.take_all(self._subs["depth"])
        if "info" in self._subs and self._subs["info"].handle.pointer in ready:
            infos = direct.take_all(self._subs["info"])
            taken.info = infos[-1] if infos else None
        return taken

    def close(self) -> None:
        """Called by the worker when it ends."""
        self.stopping = True
        self._reconcile()

