"""The real `ros2` command line in tests: `ros2 launch` in the background, `ros2 param/service/topic/node`
calls, and a camera that publishes a real photograph.

`ros2` comes from a sourced ROS install, or from ../shared/tools/ros2-cli (`make test` sources it). The
tests run in the DDS domain conftest.py chose; every `ros2` call uses --no-daemon where the verb has it, so
no daemon outlives the tests.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ml_model_service_dev.harness.camera import Camera
from ml_model_service_dev.harness.messages import image_msg
from ml_model_service_dev.harness.photos import photo

# A shell's background job (make test & in a script, some CI runners) starts with SIGINT ignored, and children
# inherit that: `ros2 launch` would then not hear the Ctrl-C that stop() sends. Take SIGINT back.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

NO_ROS2 = (
    "`ros2` is not on PATH: source a ROS 2 install, or (wheels-only environment) "
    "`source env.sh && source ../shared/tools/ros2-cli/setup.sh .` (make test does this)"
)


def node_models_dir() -> Path:
    """The bundled models folder of the ml_model_service the nodes import (an installed workspace's, not
    the source tree's that `python -m pytest` in the package folder puts first): model and label files load
    only from there unless the operator allows more."""
    out = subprocess.run(
        [sys.executable, "-c", "import ml_model_service; print(ml_model_service.__file__)"],
        cwd="/",
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    return Path(out).resolve().parent / "models"


def ros2_exe() -> str:
    """Path of the `ros2` executable, or fail the test with how to get one."""
    exe = shutil.which("ros2")
    if not exe:
        pytest.fail(NO_ROS2)
    return exe


def ros2(*args: str, timeout: float = 90.0) -> subprocess.CompletedProcess:
    """Run `ros2 ARGS...`; stdout and stderr together in .stdout (text)."""
    cmd = [ros2_exe(), *args]
    try:
        return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        pytest.fail(f"`ros2 {' '.join(args)}` did not finish within {timeout:.0f} s; output:\n{out[-3000:]}")


# `ros2 service call` of the Kilted ros2cli used here (shared/tools/ros2-cli) calls `with rclpy.init():`, a form
# rclpy only has from 9 (Kilted): on an older rclpy (Jazzy's 7.x) the verb fails before it calls anything. There
# the same call is made by a small rclpy client in its own process, printed as the verb prints it. A sourced ROS
# install's own `ros2` matches its rclpy and is always used.
_CALL_CLIENT = r"""
import sys, yaml, rclpy
from rosidl_runtime_py.set_message import set_message_fields
from rosidl_runtime_py.utilities import get_service
service, type_name, values = sys.argv[1:4]
srv = get_service(type_name)
request = srv.Request()
set_message_fields(request, yaml.safe_load(values) or {})
rclpy.init()
node = rclpy.create_node("service_call_client")
client = node.create_client(srv, service)
if not client.wait_for_service(timeout_sec=60):
    sys.exit(f"service {service} not available")
print(f"requester: making request: {request!r}")
future = client.call_async(request)
rclpy.spin_until_future_complete(node, future, timeout_sec=60)
if not future.done():
    sys.exit("no response within 60 s")
print(f"\nresponse:\n{future.result()!r}\n")
node.destroy_node()
rclpy.shutdown()
"""


def cli_service_call_works() -> bool:
    """Whether `ros2 service call` runs with this rclpy: a ROS install's own `ros2` does; the Kilted tools'
    only on rclpy >= 9 (see _CALL_CLIENT)."""
    overlay = os.environ.get("ROS2_CLI_OVERLAY")
    kilted_tools = bool(overlay) and Path(overlay).resolve() in Path(ros2_exe()).resolve().parents
    return not kilted_tools or _rclpy_major() >= 9


def _rclpy_major() -> int:
    """rclpy's major version (7: Jazzy, 9: Kilted)."""
    from importlib.metadata import PackageNotFoundError, version

    for dist in ("ros-rclpy", "rclpy"):
        try:
            return int(version(dist).split(".")[0])
        except PackageNotFoundError:
            continue
    return 9


def service_call(service: str, type_name: str, values: str = "{}", timeout: float = 90.0):
    """`ros2 service call SERVICE TYPE VALUES`, or on rclpy < 9 the same call by a client of its own (see
    _CALL_CLIENT); stdout and stderr together in .stdout."""
    if cli_service_call_works():
        return ros2("service", "call", service, type_name, values, timeout=timeout)
    cmd = [sys.executable, "-c", _CALL_CLIENT, service, type_name, values]
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout)


# Log lines that say a node is up: the model service serves a model; the vision node has a model ("ready")
# or, with a model service, listens (it connects to the service when it first needs the model).
SERVING = r"serving "
VISION_UP = r"listening on|\bready\b"


def param(verb: str, *args: str) -> subprocess.CompletedProcess:
    """`ros2 param VERB ARGS`, waiting up to 30 s for the node to be discovered. `list` has no --timeout, only
    a fixed discovery spin (3 s), which a busy 2-core machine can overrun: it is retried on "Node not found"."""
    if verb != "list":
        return ros2("param", verb, "--no-daemon", "--timeout", "30", *args)
    deadline = time.monotonic() + 30
    while True:
        res = ros2("param", verb, "--no-daemon", "--spin-time", "3", *args)
        if "Node not found" not in res.stdout or time.monotonic() > deadline:
            return res


def param_get(node: str, name: str) -> str:
    """`ros2 param get --hide-type NODE NAME` → the printed value (e.g. '0.77', 'True', "['cpu']")."""
    res = param("get", "--hide-type", node, name)
    assert res.returncode == 0, f"ros2 param get {node} {name} failed:\n{res.stdout}"
    return res.stdout.strip()


class Background:
    """`ros2 ARGS...` (a launch, a `ros2 run`) in the background (own process group), output kept in a log
    file; stop() sends SIGINT like Ctrl-C, then kills the group if it has not ended."""

    def __init__(self, tmp: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.args = args
        self.log_path = tmp / f"ros2-{args[0]}-{time.monotonic_ns()}.log"
        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen(
                [ros2_exe(), *args], stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=env
            )

    def node_pids(self) -> list[int]:
        """Pids of the processes `ros2 launch` started (from its "process started with pid [N]" lines)."""
        return [int(pid) for pid in re.findall(r"process started with pid \[(\d+)\]", self.log())]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_log(self, pattern: str, timeout: float = 90.0, count: int = 1) -> str:
        """Wait until `pattern` (a regex) occurs `count` times in the output; fail if the launch ends."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.log()
            if len(re.findall(pattern, text)) >= count:
                return text
            if self.proc.poll() is not None:
                pytest.fail(
                    f"ros2 {' '.join(self.args)} ended (rc {self.proc.returncode}) before {pattern!r}:\n{text[-4000:]}"
                )
            time.sleep(0.2)
        pytest.fail(f"timed out after {timeout:.0f} s waiting for {pattern!r} in:\n{self.log()[-4000:]}")

    def wait_exit(self, timeout: float = 60.0) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"ros2 {' '.join(self.args)} still running after {timeout:.0f} s:\n{self.log()[-3000:]}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)


def launcher(tmp_path: Path, request):
    """Body of a test module's `launch` fixture (`yield from launcher(tmp_path, request)`): a factory
    launch(FILE, 'name:=value', ...) → Launch, stopped at teardown, its log printed on failure."""
    ros2_exe()
    started: list[Background] = []

    def _launch(launch_file: str, *args: str, env: dict[str, str] | None = None) -> Background:
        """`ros2 launch ml_model_service FILE ARGS`; launch("run", EXECUTABLE, ...) for `ros2 run`."""
        argv = (
            ("run", "ml_model_service", *args)
            if launch_file == "run"
            else ("launch", "ml_model_service", launch_file, *args)
        )
        started.append(Background(tmp_path, *argv, env=env))
        return started[-1]

    yield _launch
    failed = getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed
    for item in started:
        item.stop()
        if failed:
            print(f"---- ros2 {' '.join(item.args)} ----\n{item.log()[-5000:]}")


class Photographer(Camera):
    """Publishes a real photograph on a topic at 5 Hz (reliable, like most camera drivers), as
    sensor_msgs/Image rgb8 or, for a topic ending in /compressed, as a JPEG CompressedImage."""

    def __init__(self, node, topic: str, photo_name: str = "chelsea", rate: float = 5.0) -> None:
        import cv2
        from sensor_msgs.msg import CompressedImage

        rgb = photo(photo_name)[..., :3]
        compressed = topic.endswith("/compressed")
        if compressed:
            ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
            assert ok
            self.msg = CompressedImage(format="jpeg", data=jpeg.tobytes())
            self.msg.header.frame_id = "camera"
        else:
            self.msg = image_msg(rgb, "camera")
        super().__init__(
            node,
            rate=rate,
            messages=(self.msg,),
            depth=2,
            image_topic=topic.removesuffix("/compressed"),
            streams=("compressed",) if compressed else ("image",),
        )


def echo_once(topic: str, msg_type: str, timeout: float = 60.0) -> str:
    """`ros2 topic echo --once TOPIC TYPE` → the first message as YAML text (fails on timeout)."""
    res = ros2("topic", "echo", "--once", "--no-daemon", topic, msg_type, timeout=timeout)
    assert res.returncode == 0, f"ros2 topic echo {topic} failed:\n{res.stdout}"
    return res.stdout
