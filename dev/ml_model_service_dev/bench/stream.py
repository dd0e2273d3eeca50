"""Camera streams into a vision node running in its own process, and what they cost it (for the benchmark).

The node is a black box: it is started with `spawn_node`, fed `sensor_msgs/Image` frames on `<ns>/image`
(best effort, depth 1, like a camera driver) and answers on `<ns>/detections`. Its CPU time is read from
/proc/<pid>/stat and per-thread schedstat (all its threads), so the node pays for everything it does.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from builtin_interfaces.msg import Time
from rclpy.client import Client as ServiceClient
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.subscription import Subscription
from sensor_msgs.msg import Image
from std_msgs.msg import Header
from vision_msgs.msg import Detection2DArray

from ml_model_service.ros import conversions, direct
from ml_model_service_interfaces.srv import GetProperties

from ..harness.processes import spawn_node
from ..harness.spinner import BackgroundSpinner

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
CAMERA_QOS = QoSProfile(
    depth=1,
    history=HistoryPolicy.KEEP_LAST,
    reliability=ReliabilityPolicy.BEST_EFFORT,
    durability=DurabilityPolicy.VOLATILE,
)


class BenchError(RuntimeError):
    """A measurement that could not be made (a node that died, never answered, never matched)."""


@dataclass(frozen=True)
class CpuSample:
    """A process's CPU time: user + system ticks of /proc/<pid>/stat (all threads, exited ones included,
    10 ms resolution) and each live thread's run time in ns from /proc/<pid>/task/*/schedstat."""

    ticks_s: float
    threads_ns: dict[int, int]

    def __sub__(self, before: CpuSample) -> float:
        """CPU seconds between two samples: exact when no thread of `before` has gone, else by ticks."""
        if self.threads_ns and before.threads_ns and before.threads_ns.keys() <= self.threads_ns.keys():
            return (sum(self.threads_ns.values()) - sum(before.threads_ns.values())) / 1e9
        return self.ticks_s - before.ticks_s


def process_cpu(pid: int) -> CpuSample:
    """Sample the CPU time of process `pid`."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()  # fields[0] is field 3 (state) of proc(5)
    threads = {}
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                    threads[int(tid)] = int(f.read().split()[0])
            except (OSError, ValueError, IndexError):
                pass  # a thread that just ended; the tick count still has it
    except OSError:
        threads = {}
    return CpuSample((int(fields[11]) + int(fields[12])) / CLOCK_TICKS, threads)


@dataclass
class NodeProcess:
    """A node started by spawn_node, stopped by `stop`."""

    kind: str
    ns: str
    proc: subprocess.Popen
    log: Path
    idle: float | None = None  # % of a core, when sampled beside a node (see idle_percent)

    @classmethod
    def start(cls, kind: str, log_dir: Path, params: dict, ns: str) -> NodeProcess:
        proc, log = spawn_node(kind, log_dir, params, namespace=ns)
        return cls(kind, ns, proc, log)

    def cpu(self) -> CpuSample:
        self.check()
        return process_cpu(self.proc.pid)

    def check(self) -> None:
        """Raise with the end of the node's log when it has exited."""
        if self.proc.poll() is not None:
            tail = self.log.read_text(errors="replace")[-1500:] if self.log.exists() else ""
            raise BenchError(
                f"{self.kind} in {self.ns} exited with code {self.proc.returncode}; log {self.log}:\n{tail}"
            )

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@dataclass
class StreamResult:
    """Frames sent in the timed window, latencies (ms) of those answered, node CPU seconds over the window."""

    rate: float
    sent: int
    latencies_ms: list[float] = field(default_factory=list)
    node_cpu_s: float = 0.0

    def __add__(self, other: StreamResult) -> StreamResult:
        """Two windows of the same stream taken as one."""
        return StreamResult(
            self.rate,
            self.sent + other.sent,
            self.latencies_ms + other.latencies_ms,
            self.node_cpu_s + other.node_cpu_s,
        )

    @property
    def answered(self) -> int:
        return len(self.latencies_ms)

    @property
    def fraction(self) -> float:
        return self.answered / self.sent if self.sent else 0.0

    @property
    def cpu_per_answer_ms(self) -> float:
        return 1000 * self.node_cpu_s / self.answered if self.answered else float("nan")

    @property
    def median_ms(self) -> float:
        return statistics.median(self.latencies_ms) if self.latencies_ms else float("nan")

    @property
    def p95_ms(self) -> float:
        return float(np.percentile(self.latencies_ms, 95)) if self.latencies_ms else float("nan")


class Camera:
    """One photograph published as a paced camera stream on `<ns>/image`; answers heard on `<ns>/detections`.

    Each frame gets a fresh header stamp (wall clock); an answer is matched to its frame by the stamp, and
    its latency is the arrival time minus the stamp. Answers are taken by a thread of their own that waits
    on the subscription alone and is woken by the answer (`direct.wait`, as the vision node takes images),
    so the time an executor would spend dispatching it in this process is not charged to the node.
    """

    def __init__(self, client: Client, ns: str, rgb: np.ndarray) -> None:
        self.client = client
        self.node = client.node
        self.ns = ns
        self.pub = self.node.create_publisher(Image, f"{ns}/image", CAMERA_QOS)
        self.msg = conversions.rgb_to_image(rgb, Header(frame_id="bench_camera"))
        self.arrivals: dict[int, int] = {}  # stamp ns -> arrival ns (first answer only)
        self.sub: Subscription[Any] | None = None
        self._receiver: threading.Thread | None = None

    def _receive(self, sub: Subscription[Any]) -> None:
        """Take each answer as it arrives (until the subscription is closed)."""
        while self.sub is sub:
            if sub.handle.pointer not in direct.wait(self.node, 0.2, subscriptions=[sub]):
                continue
            arrival = time.time_ns()
            for msg in direct.take_all(sub):
                stamp = msg.header.stamp
                self.arrivals.setdefault(stamp.sec * 1_000_000_000 + stamp.nanosec, arrival)

    def publish(self) -> int:
        """Send the frame stamped now; returns the stamp in ns."""
        now = time.time_ns()
        self.msg.header.stamp = Time(sec=now // 1_000_000_000, nanosec=now % 1_000_000_000)
        self.pub.publish(self.msg)
        return now

    def listen(self, timeout: float = 30.0, vision: NodeProcess | None = None) -> None:
        """Subscribe to detections (QoS compatible with the node's publisher) and wait until the node's
        publisher matched us and the node subscribed to our camera."""
        topic = f"{self.ns}/detections"
        deadline = time.monotonic() + timeout
        infos: list[Any] = []
        while not infos:
            infos = self.node.get_publishers_info_by_topic(topic)
            if vision is not None:
                vision.check()
            if not infos and time.monotonic() > deadline:
                raise BenchError(f"nobody publishes {topic}")
            time.sleep(0.05)
        reliability = infos[0].qos_profile.reliability
        qos = QoSProfile(
            depth=50, history=HistoryPolicy.KEEP_LAST, reliability=reliability, durability=DurabilityPolicy.VOLATILE
        )
        self.sub = self.node.create_subscription(
            Detection2DArray, topic, lambda _m: None, qos, callback_group=direct.WorkerOwned()
        )
        self._receiver = threading.Thread(target=self._receive, args=(self.sub,), daemon=True)
        self._receiver.start()
        while self.sub.get_publisher_count() < 1 or self.pub.get_subscription_count() < 1:
            if vision is not None:
                vision.check()
            if time.monotonic() > deadline:
                raise BenchError(
                    f"not matched within {timeout:.0f} s: {topic} publishers "
                    f"{self.sub.get_publisher_count()}, {self.ns}/image subscribers "
                    f"{self.pub.get_subscription_count()}"
                )
            time.sleep(0.05)

    def run(self, rate: float, seconds: float, vision: NodeProcess | None = None) -> tuple[list[int], float]:
        """Publish at `rate` Hz for `seconds` (sleeping between frames, like a camera); returns the stamps
        sent and the node's CPU seconds over the window."""
        period = 1.0 / rate
        count = max(1, round(rate * seconds))
        stamps = []
        cpu0 = vision.cpu() if vision else None
        start = time.perf_counter()
        for i in range(count):
            delay = start + i * period - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            stamps.append(self.publish())
        delay = start + count * period - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        return stamps, (vision.cpu() - cpu0 if vision is not None and cpu0 is not None else 0.0)

    def stream(
        self, vision: NodeProcess, rate: float, seconds: float, warmup: float = 2.0, drain: float = 1.0
    ) -> StreamResult:
        """Warm up, then a timed window at `rate`; frames answered, latencies and node CPU in that window."""
        if self.sub is None:
            self.listen(vision=vision)
        first = time.monotonic() + 30
        while True:  # warm-up until the node answers at all, at least `warmup` seconds
            stamps, _ = self.run(rate, warmup, vision)
            if any(s in self.arrivals for s in stamps):
                break
            if time.monotonic() > first:
                raise BenchError(
                    f"{self.ns}: no `detections` answer carried the stamp of a frame sent in 30 s "
                    f"({len(self.arrivals)} messages received)"
                )
        stamps, cpu = self.run(rate, seconds, vision)
        time.sleep(drain)
        vision.check()
        latencies = [(self.arrivals[s] - s) / 1e6 for s in stamps if s in self.arrivals]
        return StreamResult(rate, len(stamps), latencies, cpu)

    def close(self) -> None:
        if self.sub is not None:
            sub, self.sub = self.sub, None
            assert self._receiver is not None  # started with the subscription, in listen()
            self._receiver.join(2.0)
            self.node.destroy_subscription(sub)
        self.node.destroy_publisher(self.pub)


class Client:
    """The benchmark's own ROS node, spun in a background thread (single-threaded executor)."""

    def __init__(self) -> None:
        self.spinner = BackgroundSpinner(f"bench_client_{os.getpid()}")
        self.node = self.spinner.node

    def call(self, client, request, timeout: float):
        """A service call; None when no answer came in `timeout` seconds."""
        done = threading.Event()
        future = client.call_async(request)
        future.add_done_callback(lambda _: done.set())
        if not done.wait(timeout):
            future.cancel()
            return None
        return future.result()

    def wait_ready(self, vision: NodeProcess, timeout: float = 60.0) -> GetProperties.Response:
        """Wait until the vision node's ~/get_properties says it has a working model."""
        client: ServiceClient[Any, Any] = self.node.create_client(
            GetProperties, f"{vision.ns}/vision_service/get_properties"
        )
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                vision.check()
                if client.wait_for_service(timeout_sec=0.5):
                    answer = self.call(client, GetProperties.Request(), 10.0)
                    if answer is not None and (answer.detections_supported or answer.classifications_supported):
                        return answer
                    time.sleep(0.5)
            raise BenchError(
                f"{vision.ns}: the vision node had no working model after {timeout:.0f} s (log {vision.log})"
            )
        finally:
            self.node.destroy_client(client)

    def close(self) -> None:
        self.spinner.close()


def idle_percent(vision: NodeProcess, seconds: float, *others: NodeProcess) -> float:
    """The node's CPU over `seconds` of waiting, in % of one core (`others`: also sampled over the same
    window, in their `idle` attribute)."""
    before = [p.cpu() for p in (vision, *others)]
    time.sleep(seconds)
    after = [p.cpu() for p in (vision, *others)]
    for p, a, b in zip(others, before[1:], after[1:]):
        p.idle = 100 * (b - a) / seconds
    return 100 * (after[0] - before[0]) / seconds


#: A reference for idle CPU: a bare rclpy node that publishes a small status message once a second.
REFERENCE_NODE = """
import rclpy
from rclpy.executors import ExternalShutdownException
from std_msgs.msg import String
rclpy.init()
node = rclpy.create_node("bench_idle_reference")
pub = node.create_publisher(String, "~/status", 1)
node.create_timer(1.0, lambda: pub.publish(String(data="ok")))
try:
    rclpy.spin(node)
except (KeyboardInterrupt, ExternalShutdownException):
    pass
"""

#: A reference for the plumbing: a bare rclpy node that takes each `image` (best effort, depth 1) and at once
#: publishes an empty Detection2DArray with its header: DDS and rclpy alone, no model.
ECHO_NODE = """
import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image
from vision_msgs.msg import Detection2DArray
rclpy.init()
node = rclpy.create_node("bench_echo")
pub = node.create_publisher(Detection2DArray, "detections", 10)
node.create_subscription(Image, "image", lambda m: pub.publish(Detection2DArray(header=m.header)),
                         QoSProfile(depth=1, reliability=ReliabilityPolicy.BEST_EFFORT))
try:
    rclpy.spin(node)
except (KeyboardInterrupt, ExternalShutdownException):
    pass
"""


def start_script(kind: str, code: str, log_dir: Path, ns: str) -> NodeProcess:
    """Run a reference node (REFERENCE_NODE, ECHO_NODE) in its own process, in namespace `ns`."""
    log = log_dir / f"{kind}-{ns.strip('/').replace('/', '_')}.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", code, "--ros-args", "-r", f"__ns:={ns}"], stdout=out, stderr=subprocess.STDOUT
        )
    return NodeProcess(kind, ns, proc, log)
