"""A camera publisher: messages published as a paced stream, with one fresh stamp per frame."""

from __future__ import annotations

import threading
import time

#: The topics a camera publishes, under its namespace (see `Camera`).
STREAMS = ("image", "compressed", "depth", "camera_info")


class Camera:
    """Publishes `messages` (or what `show` gives later) at `rate` Hz from a thread of its own, each frame's
    messages with one fresh common stamp: an Image on `<namespace>/image` (the first) or `<namespace>/depth` (the
    next), a CompressedImage on `<image topic>/compressed`, a CameraInfo on `<namespace>/camera_info`.

    `streams` are the publishers it makes (of STREAMS); `reliable` and `depth` its QoS; `image_topic` replaces
    `<namespace>/image`. `sent` holds the monotonic time of every frame sent."""

    def __init__(
        self,
        node,
        namespace: str = "",
        rate: float = 10.0,
        messages: tuple = (),
        *,
        reliable: bool = True,
        depth: int = 1,
        image_topic: str | None = None,
        streams: tuple[str, ...] = STREAMS,
    ) -> None:
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import CameraInfo, CompressedImage, Image

        qos = QoSProfile(
            depth=depth, reliability=ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT
        )
        image = image_topic or f"{namespace}/image"
        topics = {
            "image": (Image, image),
            "compressed": (CompressedImage, f"{image}/compressed"),
            "depth": (Image, f"{namespace}/depth"),
            "camera_info": (CameraInfo, f"{namespace}/camera_info"),
        }
        self.node = node
        self.pubs = {kind: node.create_publisher(*topics[kind], qos) for kind in streams}
        self.messages: tuple = tuple(messages)
        self.period = 1.0 / rate
        self.sent: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def show(self, *messages) -> None:
        """Publish these messages (Image, CompressedImage, depth Image, CameraInfo...) from now on."""
        self.messages = messages

    def _run(self) -> None:
        next_t = time.monotonic()
        while not self._stop.is_set():
            try:
                self._publish_once()
            except Exception:
                if not self._stop.is_set():  # publishing races with close(); anything else is a real failure
                    raise
            next_t += self.period
            delay = next_t - time.monotonic()
            if delay > 0:
                self._stop.wait(delay)
            else:
                next_t = time.monotonic()

    def _publish_once(self) -> None:
        from sensor_msgs.msg import CameraInfo, CompressedImage

        messages = self.messages
        if not messages:
            return
        stamp = self.node.get_clock().now().to_msg()
        for i, msg in enumerate(messages):
            msg.header.stamp = stamp
            kind = (
                "compressed"
                if isinstance(msg, CompressedImage)
                else "camera_info"
                if isinstance(msg, CameraInfo)
                else "image"
                if i == 0
                else "depth"
            )
            self.pubs[kind].publish(msg)
        self.sent.append(time.monotonic())

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        for pub in self.pubs.values():
            self.node.destroy_publisher(pub)
