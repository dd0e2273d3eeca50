"""Shared fixtures: an isolated DDS domain, nodes started as separate processes, real photographs."""
from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

# Isolate this test run on DDS before rclpy is imported anywhere: own domain, discovery on this host.
os.environ.setdefault("ROS_DOMAIN_ID", str(random.Random(os.getpid()).randint(20, 99)))
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
if not os.environ.get("FASTDDS_BUILTIN_TRANSPORTS"):  # large images need the shipped transport profile
    os.environ.setdefault("FASTDDS_DEFAULT_PROFILES_FILE",
                          str(Path(__file__).resolve().parents[1] / "config" / "fastdds_large_data.xml"))


from ml_model_service.ros.processes import spawn_node  # noqa: E402
from ml_model_service.ros.remote_model import BackgroundSpinner  # noqa: E402


def photo(name: str) -> np.ndarray:
    """A real photograph from scikit-image's bundled data (RGB uint8)."""
    from skimage import data

    if name == "motorcycle":
        return data.stereo_motorcycle()[0]
    return getattr(data, name)()


class NodeProcess:
    """A node executable running in its own process, with its log kept for failures."""

    def __init__(self, kind: str, tmp: Path, params: dict, name: str | None = None, namespace: str = "",
                 remaps: dict | None = None, params_file: Path | None = None) -> None:
        self.proc, self.log_path = spawn_node(kind, tmp, params, namespace=namespace, name=name, remaps=remaps,
                                              params_file=params_file)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        if self.alive():
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@pytest.fixture(scope="session")
def spinner():
    """A client node in the test process, spun in a background thread."""
    s = BackgroundSpinner(f"test_client_{os.getpid()}")
    yield s
    s.close()


@pytest.fixture
def start_node(tmp_path, request):
    """Factory: start_node(kind, params, name=..., namespace=...) → NodeProcess (stopped at teardown)."""
    procs: list[NodeProcess] = []

    def _start(kind: str, params: dict | None = None, **kwargs) -> NodeProcess:
        proc = NodeProcess(kind, tmp_path, params or {}, **kwargs)
        procs.append(proc)
        return proc

    yield _start
    failed = getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed
    for p in procs:
        p.stop()
        if failed:
            print(f"---- log of {p.log_path.name} ----\n{p.log()[-4000:]}")


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):  # noqa: ARG001 (pytest passes it by name)
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"rep_{rep.when}", rep)


def wait_for(predicate, timeout: float, interval: float = 0.05, what: str = "condition"):
    """Poll until predicate() is truthy; returns its value or fails the test."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")


class Camera:
    """Publishes a still image (and optionally depth + camera_info) as a 10 Hz camera stream."""

    def __init__(self, node, namespace: str = "", rate: float = 10.0) -> None:
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import CameraInfo, CompressedImage, Image

        qos = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE)
        self.node = node
        self.pub_image = node.create_publisher(Image, f"{namespace}/image", qos)
        self.pub_compressed = node.create_publisher(CompressedImage, f"{namespace}/image/compressed", qos)
        self.pub_depth = node.create_publisher(Image, f"{namespace}/depth", qos)
        self.pub_info = node.create_publisher(CameraInfo, f"{namespace}/camera_info", qos)
        self.messages: tuple = ()
        self.period = 1.0 / rate
        self._stop = False
        self._thread = __import__("threading").Thread(target=self._run, daemon=True)
        self._thread.start()

    def show(self, *messages) -> None:
        """Publish these messages (Image, CompressedImage, depth Image, CameraInfo...) from now on,
        each with a fresh common stamp."""
        self.messages = messages

    def _run(self) -> None:
        while not self._stop:
            try:
                self._publish_once()
            except Exception:
                if not self._stop:  # publishing races with close(); anything else is a real failure
                    raise
            time.sleep(self.period)

    def _publish_once(self) -> None:
        from sensor_msgs.msg import CameraInfo, CompressedImage

        stamp = self.node.get_clock().now().to_msg()
        for i, msg in enumerate(self.messages):
            msg.header.stamp = stamp
            if isinstance(msg, CompressedImage):
                self.pub_compressed.publish(msg)
            elif isinstance(msg, CameraInfo):
                self.pub_info.publish(msg)
            elif i == 0:
                self.pub_image.publish(msg)
            else:
                self.pub_depth.publish(msg)

    def close(self) -> None:
        self._stop = True
        self._thread.join(2)
        for pub in (self.pub_image, self.pub_compressed, self.pub_depth, self.pub_info):
            self.node.destroy_publisher(pub)


class Collector:
    """Keeps every message received on a topic."""

    def __init__(self, node, msg_type, topic: str, qos=10) -> None:
        self.messages: list = []
        self.sub = node.create_subscription(msg_type, topic, self.messages.append, qos)

    def where(self, predicate) -> list:
        return [m for m in list(self.messages) if predicate(m)]


def camera_bytes(rgb: np.ndarray, encoding: str) -> np.ndarray:
    """`rgb` as a camera sends it in YUV 4:2:2 (uyvy/yuv422, yuyv/yuv422_yuy2: BT.601 video range, chroma of
    each pixel pair from its first pixel) or a Bayer mosaic (bayer_PATTERN8/16: each pixel keeps the one
    channel its position in the 2x2 PATTERN names)."""
    h, w = rgb.shape[:2]
    if encoding.startswith("bayer_"):
        pattern, bits = encoding[6:10], int(encoding[10:])
        out = np.zeros((h, w), np.uint8)
        for (dy, dx), channel in zip(((0, 0), (0, 1), (1, 0), (1, 1)), pattern):
            out[dy::2, dx::2] = rgb[dy::2, dx::2, "rgb".index(channel)]
        return out.astype(np.uint16) * 257 if bits == 16 else out
    r, g, b = (rgb[..., i].astype(np.float64) for i in range(3))
    y = 16 + (65.481 * r + 128.553 * g + 24.966 * b) / 255
    u = 128 + (-37.797 * r - 74.203 * g + 112.0 * b) / 255
    v = 128 + (112.0 * r - 93.786 * g - 18.214 * b) / 255
    y, u, v = (np.clip(np.round(c), 0, 255).astype(np.uint8) for c in (y, u, v))
    out = np.zeros((h, w, 2), np.uint8)
    luma, chroma = (1, 0) if encoding in ("uyvy", "yuv422") else (0, 1)
    out[..., luma] = y
    out[:, 0::2, chroma], out[:, 1::2, chroma] = u[:, 0::2], v[:, 0::2]
    return out


def image_msg(rgb: np.ndarray, frame_id: str, encoding: str = "rgb8"):
    """A sensor_msgs/Image of `rgb` in the given encoding (rgb8, bgr8, rgba8, bgra8, mono8, mono16, and the
    camera encodings of `camera_bytes`)."""
    import cv2
    from sensor_msgs.msg import Image

    if encoding.startswith(("bayer_", "yuv", "uyvy", "yuyv")):
        rgb = rgb[: rgb.shape[0] // 2 * 2, : rgb.shape[1] // 2 * 2]
        data = np.ascontiguousarray(camera_bytes(rgb, encoding))
        msg = Image(height=data.shape[0], width=data.shape[1], encoding=encoding, is_bigendian=0,
                    step=data.shape[1] * data.itemsize * (1 if data.ndim == 2 else 2), data=data.tobytes())
        msg.header.frame_id = frame_id
        return msg

    conv = {"rgb8": None, "bgr8": cv2.COLOR_RGB2BGR, "rgba8": cv2.COLOR_RGB2RGBA, "bgra8": cv2.COLOR_RGB2BGRA,
            "mono8": cv2.COLOR_RGB2GRAY, "mono16": cv2.COLOR_RGB2GRAY}[encoding]
    data = rgb if conv is None else cv2.cvtColor(rgb, conv)
    if encoding == "mono16":
        data = data.astype(np.uint16) * 257
    data = np.ascontiguousarray(data)
    msg = Image(height=data.shape[0], width=data.shape[1], encoding=encoding, is_bigendian=0,
                step=data.shape[1] * data.itemsize * (1 if data.ndim == 2 else data.shape[2]), data=data.tobytes())
    msg.header.frame_id = frame_id
    return msg


def constant_model(path, input_shape: list[int], outputs: dict[str, np.ndarray]) -> Path:
    """A float32-input ONNX model whose outputs are fixed arrays (made to depend on the input, x 0)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes = [helper.make_node("ReduceSum", ["images"], ["s"], keepdims=0),
             helper.make_node("Mul", ["s", "zero"], ["z"])]
    inits = [numpy_helper.from_array(np.array(0.0, np.float32), "zero")]
    outs = []
    for i, (name, value) in enumerate(outputs.items()):
        inits.append(numpy_helper.from_array(value.astype(np.float32), f"c{i}"))
        nodes.append(helper.make_node("Add", [f"c{i}", "z"], [name]))
        outs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, list(value.shape)))
    graph = helper.make_graph(nodes, "const", [helper.make_tensor_value_info("images", TensorProto.FLOAT,
                                                                             input_shape)], outs, inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    return path
