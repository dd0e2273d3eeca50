"""What every robustness phase uses: nodes in their own processes, a client node, outputs collected, figures."""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..harness.camera import Camera
from ..harness.processes import spawn_node
from ..harness.spinner import BackgroundSpinner

if TYPE_CHECKING:
    from vision_msgs.msg import Classification, Detection2DArray


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


class Harness:
    """Nodes in their own processes, a client node spun in a thread, and the figures collected."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.logs = out / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.spinner = BackgroundSpinner(f"robustness_{os.getpid()}")
        self.node = self.spinner.node
        self.procs: list = []
        self.results: dict[str, dict] = {}
        self.work = Path(tempfile.mkdtemp(prefix="robustness-"))
        self.allowed = self.work / "allowed"
        self.allowed.mkdir()

    # --- nodes ------------------------------------------------------------------------------------
    def spawn(self, kind: str, ns: str, params: dict):
        proc, log = spawn_node(kind, self.logs, params, namespace=ns)
        setattr(proc, "log_path", log)  # noqa: B010 (Popen has no such field; the phases read proc.log_path)
        self.procs.append(proc)
        return proc

    def model_service(self, ns: str, **params):
        base = {
            "model_path": "ssd_mobilenet_v2_coco",
            "execution_providers": ["cpu"],
            "allowed_paths": [str(self.allowed)],
        }
        return self.spawn("model_service", ns, {**base, **params})

    def vision(self, ns: str, service_ns: str, **params):
        base = {
            "model_service": f"{service_ns}/ml_model_service",
            "always_on": True,
            "service_timeout": 2.0,
            "allowed_paths": [str(self.allowed)],
        }
        return self.spawn("vision_service", ns, {**base, **params})

    @staticmethod
    def stop(proc) -> None:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(10)
            except Exception:
                proc.kill()
                proc.wait(5)

    def remote(self, service_ns: str, timeout: float = 60.0, proc=None):
        """A RemoteModel once the model service in `service_ns` serves."""
        from ml_model_service.ros.remote_model import RemoteModel

        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if proc is not None and proc.poll() is not None:
                raise RuntimeError(f"model service exited ({proc.returncode}); log {proc.log_path}")
            try:
                return RemoteModel(self.node, f"{service_ns}/ml_model_service", timeout=2.0)
            except Exception as exc:
                last = exc
                time.sleep(0.1)
        raise RuntimeError(f"model service {service_ns} did not serve within {timeout:.0f} s: {last}")

    def close(self) -> None:
        for proc in self.procs:
            self.stop(proc)
        self.spinner.close()
        shutil.rmtree(self.work, ignore_errors=True)


def camera_stream(node, ns: str, rate: float, messages: tuple):
    """`messages` published at `rate` Hz as a camera driver publishes them (best effort: image, depth,
    camera_info), each frame counted in `.sent`."""
    return Camera(node, ns, rate, messages, reliable=False, streams=("image", "depth", "camera_info"))


class Outputs:
    """Every detections / classifications message of a vision node, with its receipt time."""

    def __init__(self, node, ns: str) -> None:
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from vision_msgs.msg import Classification, Detection2DArray

        qos = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
        self.node = node
        self.detections: list[tuple[float, Detection2DArray]] = []
        self.classifications: list[tuple[float, Classification]] = []
        self.subs = [
            node.create_subscription(
                Detection2DArray, f"{ns}/detections", lambda m: self.detections.append((time.monotonic(), m)), qos
            ),
            node.create_subscription(
                Classification,
                f"{ns}/classifications",
                lambda m: self.classifications.append((time.monotonic(), m)),
                qos,
            ),
        ]

    def since(self, t: float) -> list:
        return [m for tr, m in list(self.detections) + list(self.classifications) if tr >= t]

    def close(self) -> None:
        for sub in self.subs:
            self.node.destroy_subscription(sub)


def classes_of(det_msg) -> set[str]:
    return {d.results[0].hypothesis.class_id for d in det_msg.detections if d.results}
