"""A camera's subscriptions, owned by the driver thread (`driver.py`) and waited on there — not by the executor.

Why: dispatching each image through an rclpy executor costs far more CPU than letting the thread that uses the
frame wait on the subscription itself (`direct.py`), more so on a MultiThreadedExecutor. So the driver blocks
in one wait set on every camera's (no polling, no timeout while idle) and is woken by a frame, or by `wake()` (a
guard condition) when the demand for frames changes or the node stops.

Frames are taken serialised and all taken each time: the ones a newer frame replaces are counted as
skipped and never deserialised; the newest raw Image is read in place (`conversions.image_from_cdr`, the
pixels are not copied again). Subscriptions are created and destroyed only by the driver thread.

Every topic goes through one guarded path: any participant can publish bytes that do not deserialise, so
each message is read on its own and one that cannot be read is dropped with its reason (`Taken.malformed`),
never raised into the driver; the newest readable colour frame is used. A publisher whose QoS cannot match
the image subscription (e.g. best effort against `image_qos: reliable`) is reported (`qos_problem`), with the
offered and requested policies.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.guard_condition import GuardCondition
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rclpy.serialization import deserialize_message
from sensor_msgs.msg import CameraInfo, CompressedImage, Image

from .. import conversions, direct


@dataclass
class Taken:
    """What one wait returned: the newest colour message (+ how many it replaced), depth messages, the
    newest camera_info."""

    colour: Image | CompressedImage | None = None
    colour_replaced: int = 0
    colour_count: int = 0
    depths: list[Image] = field(default_factory=list)
    info: CameraInfo | None = None
    malformed: list[str] = field(default_factory=list)  # why each unreadable message was dropped


#: messages taken from one topic in one wait at most (the rest wait for the next)
MAX_TAKE = 64


def _read(raw: bytes, msg_type, topic: str, malformed: list[str]):
    """`raw` deserialised as `msg_type`, or None with the reason appended to `malformed`."""
    try:
        msg = conversions.image_from_cdr(raw) if msg_type is Image else None
        return msg or deserialize_message(raw, msg_type)
    except Exception as exc:  # bytes from any participant: never trusted to deserialise
        malformed.append(
            f"unreadable {msg_type.__name__} on {topic} ({len(raw)} bytes): {type(exc).__name__}: {str(exc)[:200]}"
        )
        return None


class CameraInput:
    """Colour (raw or compressed), depth and camera_info subscriptions, subscribed only while wanted."""

    def __init__(
        self,
        node: Node,
        image_topic: str,
        compressed: bool,
        use_depth: bool,
        reliable: bool,
        depth: int = 2,
        prefix: str = "",
    ) -> None:
        self.node = node
        self.image_topic = image_topic
        self.prefix = prefix  # "<camera>/" for one of several cameras: <camera>/depth, <camera>/camera_info
        self.colour_type = CompressedImage if compressed else Image
        self.use_depth = use_depth
        # REP-2003 sensor data: best effort, small queue; the queue only lets skipped frames be counted.
        self.qos = QoSProfile(
            depth=depth, reliability=ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT
        )
        self._group = direct.WorkerOwned()
        self._guard = GuardCondition(None, None, context=node.context)
        self._subs: dict[str, Any] = {}
        self.wanted = False
        self.stopping = False

    @property
    def subscribed(self) -> bool:
        return bool(self._subs)

    def wake(self) -> None:
        """Wake the driver out of its wait (from any thread)."""
        self._guard.trigger()

    def _reconcile(self) -> bool:
        """Subscribe or unsubscribe to match `wanted`; True when that changed anything."""
        if self.wanted and not self._subs and not self.stopping:

            def make(msg_type, topic):
                return self.node.create_subscription(
                    msg_type,
                    topic,
                    lambda _m: None,
                    self.qos,
                    callback_group=self._group,
                    raw=True,
                    event_callbacks=SubscriptionEventCallbacks(use_default_callbacks=False),
                )

            self._subs["colour"] = make(self.colour_type, self.image_topic)
            if self.use_depth:
                self._subs["depth"] = make(Image, f"{self.prefix}depth")
                self._subs["info"] = make(CameraInfo, f"{self.prefix}camera_info")
            self.node.get_logger().info(
                f"subscribed to {self.image_topic}" + (" with depth and camera_info" if self.use_depth else "")
            )
            return True
        if (not self.wanted or self.stopping) and self._subs:
            for sub in self._subs.values():
                self.node.destroy_subscription(sub)
            self._subs = {}
            if not self.stopping:
                self.node.get_logger().info(f"nobody listens: unsubscribed from {self.image_topic}")
            return True
        return False

    @property
    def qos_problem(self) -> str:
        """Why publishers of the image topic cannot reach the subscription ("" = none): their offered QoS from
        the ROS graph against the requested one, as DDS matches them (reliability, durability). Read from the
        graph rather than from the incompatible-QoS event: with rmw_fastrtps that event's waitable stays ready
        while the subscription holds unread data, which keeps an executor spinning."""
        if "colour" not in self._subs:
            return ""
        wants_reliable = self.qos.reliability == ReliabilityPolicy.RELIABLE
        wants_latched = self.qos.durability == DurabilityPolicy.TRANSIENT_LOCAL
        bad = []
        for info in self.node.get_publishers_info_by_topic(self._subs["colour"].topic_name):
            offered = info.qos_profile
            if (wants_reliable and offered.reliability == ReliabilityPolicy.BEST_EFFORT) or (
                wants_latched and offered.durability == DurabilityPolicy.VOLATILE
            ):
                bad.append(
                    f"{info.node_namespace.rstrip('/')}/{info.node_name} offers "
                    f"{offered.reliability.name.lower()}/{offered.durability.name.lower()}"
                )
        if not bad:
            return ""
        requested = f"{self.qos.reliability.name.lower()}/{self.qos.durability.name.lower()}"
        return (
            f"{len(bad)} publisher(s) of {self._subs['colour'].topic_name} offer QoS that cannot match "
            f"(reliability/durability): {'; '.join(bad[:3])}; requested {requested}: set image_qos to match "
            "the camera (sensor_data for best effort)"
        )

    def prepare(self) -> tuple[list, GuardCondition]:
        """(Un)subscribe to match `wanted`, then the subscriptions and the guard condition for the driver to wait
        on with every other camera's (`take` what they hold once woken)."""
        self._reconcile()
        return list(self._subs.values()), self._guard

    def take(self, ready: set[int]) -> Taken:
        """Everything the subscriptions in `ready` (handle pointers from `direct.wait`) hold."""
        taken = Taken()
        bad = taken.malformed
        if "colour" in self._subs and self._subs["colour"].handle.pointer in ready:
            raws = self._take("colour", bad)
            for i in range(len(raws) - 1, -1, -1):  # the newest frame that can be read
                taken.colour = _read(raws[i], self.colour_type, self.image_topic, bad)
                if taken.colour is not None:
                    taken.colour_replaced = i
                    break
            taken.colour_count = len(raws)
        if "depth" in self._subs and self._subs["depth"].handle.pointer in ready:
            taken.depths = [
                m
                for m in (_read(r, Image, f"{self.prefix}depth", bad) for r in self._take("depth", bad))
                if m is not None
            ]
        if "info" in self._subs and self._subs["info"].handle.pointer in ready:
            for raw in reversed(self._take("info", bad)):
                taken.info = _read(raw, CameraInfo, f"{self.prefix}camera_info", bad)
                if taken.info is not None:
                    break
        return taken

    def _take(self, which: str, malformed: list[str]) -> list[bytes]:
        """The serialised messages waiting on one subscription (at most MAX_TAKE), oldest first."""
        try:
            return direct.take_all(self._subs[which], limit=MAX_TAKE)
        except Exception as exc:  # the middleware refused a message: drop it, keep the stream
            malformed.append(f"could not take a message from {self._subs[which].topic_name}: {exc}")
            return []

    def close(self) -> None:
        """Called by the driver when it ends."""
        self.stopping = True
        self._reconcile()
