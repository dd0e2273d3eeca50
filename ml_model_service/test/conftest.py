"""Shared fixtures: an isolated DDS domain, nodes started as separate processes (harness.processes), a client
node, and helpers only the tests use (Collector, constant_model, ir_model); the rest of the harness is in the
development package (`ml_model_service_dev.harness`)."""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import pytest

from ml_model_service_dev.harness.processes import NodeProcess
from ml_model_service_dev.system import isolate_dds

# Isolate this test run on DDS before rclpy starts: own domain (20-99: the tools use 101-199), discovery on this
# host, the shipped transport profile large images need (under both Fast DDS releases' names).
isolate_dds(int(os.environ.get("ROS_DOMAIN_ID") or random.Random(os.getpid()).randint(20, 99)), profile=True)
# Every process this run starts inherits this mark: one still running when the run ends is a leak (below).
RUN_MARK = f"MMS_TEST_RUN={os.getpid()}"
os.environ["MMS_TEST_RUN"] = str(os.getpid())

#: fixtures that need DDS (a node, a client, the ros2 CLI): a test using one is marked `ros`
ROS_FIXTURES = {"spinner", "start_node", "launch", "both_nodes", "camera", "detector"}
#: what a test module's source names when it needs ROS
ROS_MODULES = (
    "rclpy",
    "ml_model_service.ros",
    "_msgs",
    "ml_model_service_interfaces",
    "ros2_cli",
    "launch_ros",
    "colcon",
)
_uses_ros: dict[str, bool] = {}


def pytest_collection_modifyitems(config, items) -> None:  # noqa: ARG001 (pytest passes it by name)
    """Mark every test that needs ROS (`ros`): `make test-unit` (`-m "not ros"`) runs the others, without DDS."""
    for item in items:
        path = str(item.fspath)
        if path not in _uses_ros:
            text = Path(path).read_text()
            _uses_ros[path] = (
                any(f"import {m}" in text or f"from {m}" in text or f"{m} import" in text for m in ROS_MODULES)
                or "launch_tests" in path
                or "colcon " in text
            )
        if _uses_ros[path] or ROS_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.ros)


@pytest.fixture(scope="session")
def spinner():
    """A client node in the test process, spun in a background thread."""
    from ml_model_service_dev.harness.spinner import BackgroundSpinner

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


class Collector:
    """Keeps every message received on a topic."""

    def __init__(self, node, msg_type, topic: str, qos=10) -> None:
        self.messages: list = []
        self.sub = node.create_subscription(msg_type, topic, self.messages.append, qos)

    def where(self, predicate) -> list:
        return [m for m in list(self.messages) if predicate(m)]


def constant_model(path, input_shape: list[int], outputs: dict[str, np.ndarray]) -> Path:
    """A float32-input ONNX model whose outputs are fixed arrays (made to depend on the input, x 0)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes = [
        helper.make_node("ReduceSum", ["images"], ["s"], keepdims=0),
        helper.make_node("Mul", ["s", "zero"], ["z"]),
    ]
    inits = [numpy_helper.from_array(np.array(0.0, np.float32), "zero")]
    outs = []
    for i, (name, value) in enumerate(outputs.items()):
        inits.append(numpy_helper.from_array(value.astype(np.float32), f"c{i}"))
        nodes.append(helper.make_node("Add", [f"c{i}", "z"], [name]))
        outs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, list(value.shape)))
    graph = helper.make_graph(
        nodes, "const", [helper.make_tensor_value_info("images", TensorProto.FLOAT, input_shape)], outs, inits
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    return path


#: the outputs of `ir_model`'s model
IR_VALUES = np.arange(12, dtype=np.float32).reshape(1, 12)


def ir_model(folder: Path, name: str = "m") -> Path:
    """An OpenVINO IR whose output is a constant kept in its .bin (IR_VALUES)."""
    import openvino as ov

    folder.mkdir(parents=True, exist_ok=True)
    onnx_path = constant_model(folder / f"{name}_src.onnx", [1, 3, 8, 8], {"out": IR_VALUES})
    xml = folder / f"{name}.xml"
    ov.save_model(ov.convert_model(str(onnx_path)), str(xml), compress_to_fp16=False)
    onnx_path.unlink()
    return xml


def leftover_processes() -> dict[int, str]:
    """Processes this test run started that still run (pid -> command line): nodes, launches, `ros2 daemon`."""
    out = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if RUN_MARK in (entry / "environ").read_bytes().decode(errors="replace").split("\0"):
                out[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # gone, or not ours to read
            continue
    return out


def pytest_sessionfinish(session, exitstatus) -> None:  # noqa: ARG001 (pytest passes it by name)
    """Fail the run when a process it started outlives it (a `ros2 daemon`, a node, a launch), and stop them."""
    import contextlib
    import signal
    import time

    from ml_model_service.core.runtimes.shape_helper import HELPER

    HELPER.close()  # this process's own helper (it would end by itself after a minute idle)
    deadline = time.monotonic() + 10  # processes still stopping get time to end
    while (left := leftover_processes()) and time.monotonic() < deadline:
        time.sleep(0.5)
    if not left:
        return
    for pid in left:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    print(
        "\nprocesses started by the tests outlived them (now killed):\n"
        + "\n".join(f"  {p}: {c}" for p, c in left.items())
    )
    session.exitstatus = pytest.ExitCode.TESTS_FAILED
