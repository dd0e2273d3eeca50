"""Health of a node: counters, model state, 3D state and timings → `~/status` (DiagnosticStatus) and the
standard `/diagnostics` (DiagnosticArray, read by rqt_runtime_monitor and diagnostic_aggregator), at 1 Hz."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from std_msgs.msg import Header

#: volatile like every output but label_info (a late reader gets the state at the next second, never an old one)
STATUS_QOS = QoSProfile(depth=1, durability=DurabilityPolicy.VOLATILE, reliability=ReliabilityPolicy.RELIABLE)

OK, WARN, ERROR = DiagnosticStatus.OK, DiagnosticStatus.WARN, DiagnosticStatus.ERROR


class Status:
    """Counters (thread-safe), named states with a level, and recent timings, published every second."""

    def __init__(
        self,
        node: Node,
        hardware_id: str,
        counters: list[str],
        states: Callable[[], list[tuple[bytes, str]]],
        fields: Callable[[], dict[str, str]] | None = None,
        name: str = "",
        publish: bool = True,
        children: Callable[[], list[Status]] | None = None,
        tick: Callable[[], None] | None = None,
    ) -> None:
        """`name`: the status's name ("" = the node's); `publish` False: built by a parent only (one camera of
        several), whose /diagnostics carries its `children` after its own status. `tick`: the node's other
        once-a-second work, run by the same timer before each publication (a timer of its own would wake the
        executor once more every second, as costly as the publication: idle CPU)."""
        self.node = node
        self.name = name
        self._children = children or list
        self.hardware_id = hardware_id
        self.counters = dict.fromkeys(counters, 0)
        self.timings: dict[str, float] = {}
        self.last_error = ""
        self._states = states
        self._fields = fields or dict
        self._lock = threading.Lock()
        self._errors_seen = 0
        self._tick = tick
        if publish:
            self.pub = node.create_publisher(DiagnosticStatus, "~/status", STATUS_QOS)
            self.pub_diagnostics = node.create_publisher(DiagnosticArray, "/diagnostics", 10)
            node.create_timer(1.0, self.publish)

    def count(self, name: str, n: int = 1) -> None:
        with self._lock:
            self.counters[name] = self.counters.get(name, 0) + n

    def error(self, name: str, message: str) -> None:
        """Count an error and remember it as the last one."""
        self.count(name)
        self.last_error = message

    def timing(self, name: str, ms: float) -> None:
        """An exponentially smoothed timing in milliseconds."""
        old = self.timings.get(name)
        self.timings[name] = ms if old is None else 0.8 * old + 0.2 * ms

    def build(self) -> DiagnosticStatus:
        states = self._states()
        level = max((lvl for lvl, _ in states), default=OK)
        with self._lock:
            values = [KeyValue(key=k, value=str(v)) for k, v in self.counters.items()]
        values += [KeyValue(key=k, value=v) for k, v in self._fields().items()]
        values += [KeyValue(key=f"{k}_ms", value=f"{v:.1f}") for k, v in self.timings.items()]
        if self.last_error:
            values.append(KeyValue(key="last_error", value=self.last_error))
        message = "; ".join(text for _, text in states if text)
        return DiagnosticStatus(
            level=level,
            name=self.name or self.node.get_fully_qualified_name(),
            message=message,
            hardware_id=self.hardware_id,
            values=values,
        )

    def publish(self) -> None:
        if self._tick is not None:
            try:
                self._tick()
            except Exception as exc:  # noqa: BLE001 - the status is published whatever the tick did
                self.node.get_logger().error(f"once-a-second work failed: {exc!r}", throttle_duration_sec=60.0)
        status = self.build()
        self.pub.publish(status)
        header = Header(stamp=self.node.get_clock().now().to_msg())
        children = [child.build() for child in self._children()]
        self.pub_diagnostics.publish(DiagnosticArray(header=header, status=[status, *children]))


class Stopwatch:
    """Milliseconds since construction."""

    def __init__(self) -> None:
        self.t0 = time.perf_counter()

    def ms(self) -> float:
        return (time.perf_counter() - self.t0) * 1000.0
