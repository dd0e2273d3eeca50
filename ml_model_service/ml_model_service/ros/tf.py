"""3D results in the frame the robot plans in (`target_frame`), through tf2 at the image's stamp.

tf2_ros comes from the ROS install (rosdep key `tf2_ros`); where it cannot be imported, `target_frame` is
refused with what to install (`available()`). The listener's /tf and /tf_static subscriptions run on the
node's executor; lookups wait (up to `tf_timeout`) in the thread that needs the transform, never in the
executor. A missing transform costs that frame's 3D only: `FrameError` says which frames and why.
"""

from __future__ import annotations

from typing import Any

from rclpy.duration import Duration
from rclpy.node import Node
from rclpy.time import Time
from std_msgs.msg import Header

from ..core.frames.pointcloud import RigidTransform

INSTALL_TF2 = (
    "target_frame needs tf2_ros, which cannot be imported here: install it (rosdep key tf2_ros; "
    "apt install ros-$ROS_DISTRO-tf2-ros)"
)


class FrameError(RuntimeError):
    """No transform between the camera's frame and the target frame for a frame's stamp."""


def available() -> bool:
    """Whether tf2_ros can be imported."""
    try:
        import tf2_ros  # noqa: F401
    except ImportError:
        return False
    return True


class TargetFrame:
    """Looks up camera → target transforms; the tf2 buffer and listener are made at the first lookup."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self._buffer: Any = None  # tf2_ros.Buffer, made on first use (tf2_ros is optional)
        self._listener: Any = None

    def _ensure(self) -> None:
        if self._buffer is None:
            import tf2_ros

            self._buffer = tf2_ros.Buffer(node=self.node)
            self._listener = tf2_ros.TransformListener(self._buffer, self.node)

    def lookup(self, target: str, header: Header, timeout: float) -> RigidTransform:
        """The transform taking points in `header.frame_id` at `header.stamp` to `target`."""
        import tf2_ros

        self._ensure()
        source = header.frame_id
        if not source:
            raise FrameError(f"the image has no frame_id: its 3D results cannot be put in {target!r}")
        try:
            tf = self._buffer.lookup_transform(
                target, source, Time.from_msg(header.stamp), timeout=Duration(seconds=timeout)
            )
        except (
            tf2_ros.LookupException,
            tf2_ros.ConnectivityException,
            tf2_ros.ExtrapolationException,
            tf2_ros.InvalidArgumentException,
        ) as exc:
            raise FrameError(
                f"no transform from {source!r} to {target!r} at the image's stamp "
                f"{header.stamp.sec}.{header.stamp.nanosec:09d}: {exc}"
            ) from exc
        t, q = tf.transform.translation, tf.transform.rotation
        return RigidTransform((t.x, t.y, t.z), (q.x, q.y, q.z, q.w))

    def close(self) -> None:
        if self._listener is not None:
            self._listener.unregister()
        self._buffer = self._listener = None
