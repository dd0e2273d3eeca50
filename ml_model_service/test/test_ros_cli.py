"""Both nodes driven with the real `ros2` CLI, as a ROS user would: `ros2 param dump` lists every parameter
and loads back into an identical node, `ros2 param set` refuses values outside an enum, `ros2 service call
~/load_model` shows in `ros2 param get model_path`, `-p` values typed the way users type them (a string for
a list, 1 for a bool), and /diagnostics (diagnostic_msgs/DiagnosticArray) from both nodes."""

from __future__ import annotations

import re

import pytest
import yaml
from ros2_cli import SERVING, VISION_UP, Background, echo_once, launcher, param, param_get, service_call

from ml_model_service_dev.harness.waits import wait_for

from conftest import Collector

NODES = {"vision": "/cli/vision_service", "model_service": "/cli/ml_model_service"}


@pytest.fixture
def launch(tmp_path, request):
    yield from launcher(tmp_path, request)


@pytest.fixture(scope="module")
def both_nodes(tmp_path_factory):
    """vision.launch.py with use_model_service: a model service and a vision node in /cli, for the module."""
    run = Background(
        tmp_path_factory.mktemp("cli"),
        "launch",
        "ml_model_service",
        "vision.launch.py",
        "namespace:=/cli",
        "use_model_service:=true",
        "execution_providers:=cpu",
        "image:=/cli_cam",
    )
    try:
        run.wait_for_log(SERVING)
        run.wait_for_log(VISION_UP)
        yield run
    finally:
        run.stop()


def param_names(node: str) -> set[str]:
    res = param("list", node)
    assert res.returncode == 0, res.stdout
    return {line.strip() for line in res.stdout.splitlines() if line.startswith("  ")}


def dump(node: str) -> dict:
    res = param("dump", node)
    assert res.returncode == 0, res.stdout
    return yaml.safe_load(res.stdout)


def test_param_set_refuses_a_value_outside_the_enum(both_nodes):
    res = param("set", NODES["vision"], "resize_mode", "bogus_mode")
    assert "successful" not in res.stdout.lower(), res.stdout
    assert "failed" in res.stdout.lower(), res.stdout
    assert param_get(NODES["vision"], "resize_mode") == "auto"
    assert both_nodes.proc.poll() is None
    ok = param("set", NODES["vision"], "resize_mode", "letterbox")
    assert "Set parameter successful" in ok.stdout, ok.stdout  # an allowed value still goes through


@pytest.mark.usefixtures("both_nodes")
def test_diagnostics_from_both_nodes(spinner):
    from diagnostic_msgs.msg import DiagnosticArray

    text = echo_once("/diagnostics", "diagnostic_msgs/msg/DiagnosticArray", timeout=30)
    assert "status:" in text, text
    arrays = Collector(spinner.node, DiagnosticArray, "/diagnostics")
    try:

        def statuses() -> dict:
            return {s.name: s for a in list(arrays.messages) for s in a.status}

        def named(part: str) -> list:
            return [s for name, s in statuses().items() if part in name or part in s.hardware_id]

        wait_for(
            lambda: named("vision_service") and named("ml_model_service"),
            30,
            what="/diagnostics statuses of both nodes",
        )
    finally:
        spinner.node.destroy_subscription(arrays.sub)
    vision_keys = " ".join(kv.key.lower() for s in named("vision_service") for kv in s.values)
    for word in ("received", "processed", "skipped"):
        assert word in vision_keys, vision_keys
    assert "fail" in vision_keys or "error" in vision_keys, vision_keys
    service_text = " ".join(
        f"{s.name} {s.message} " + " ".join(f"{kv.key} {kv.value}" for kv in s.values)
        for s in named("ml_model_service")
    ).lower()
    assert "model" in service_text and "ssd_mobilenet" in service_text, service_text  # which model serves


def test_load_model_service_call_shows_in_param_get(both_nodes):
    node = NODES["model_service"]
    res = service_call(
        f"{node}/load_model",
        "ml_model_service_interfaces/srv/LoadModel",
        "{model_path: efficientnet_lite0}",
    )
    assert res.returncode == 0 and "success=True" in res.stdout, res.stdout
    assert param_get(node, "model_path") == "efficientnet_lite0"
    assert both_nodes.proc.poll() is None


def test_param_dump_lists_every_parameter_and_loads_back(launch, tmp_path):
    first = launch(
        "vision.launch.py",
        "namespace:=/cli_dump",
        "use_model_service:=true",
        "execution_providers:=cpu",
        "model_path:=ssd_mobilenet_v2_coco_tflite",
    )
    first.wait_for_log(SERVING)
    first.wait_for_log(VISION_UP)
    vision, service = "/cli_dump/vision_service", "/cli_dump/ml_model_service"
    # some values away from the defaults, typed lists included
    for name, value in (
        ("confidence_threshold", "0.61"),
        ("classes", "['cat', 'dog']"),
        ("input_mean", "[0.5, 0.5, 0.5]"),
    ):
        res = param("set", vision, name, value)
        assert "Set parameter successful" in res.stdout, f"{name}: {res.stdout}"
    dumps = {}
    for node in (vision, service):
        dumps[node] = dump(node)
        values = dumps[node][node]["ros__parameters"]
        missing = param_names(node) - set(values)
        assert not missing, f"ros2 param dump {node} leaves out {sorted(missing)}"
    assert dumps[vision][vision]["ros__parameters"]["classes"] == ["cat", "dog"]
    both = tmp_path / "dump.yaml"
    both.write_text(yaml.safe_dump({**dumps[vision], **dumps[service]}))
    first.stop()

    second = launch("vision.launch.py", "namespace:=/cli_dump", "use_model_service:=true", f"params_file:={both}")
    second.wait_for_log(SERVING)
    second.wait_for_log(VISION_UP)
    for node in (vision, service):
        assert dump(node) == dumps[node], f"{node} loaded from its dump differs"


def test_ros_args_typed_as_users_type_them(launch):
    service = launch("run", "model_service", "--ros-args", "-r", "__ns:=/cli_types", "-p", "execution_providers:=cpu")
    service.wait_for_log(SERVING)
    assert param_get("/cli_types/ml_model_service", "execution_providers") == "['cpu']"
    assert service.proc.poll() is None

    vision = launch(
        "run",
        "vision_service",
        "--ros-args",
        "-r",
        "__ns:=/cli_types",
        "-p",
        "use_depth:=1",
        "-p",
        "execution_providers:=cpu",
    )
    wait_for(
        lambda: vision.proc.poll() is not None or re.search(r"\bready\b", vision.log()),
        90,
        what="the vision node to start or refuse use_depth:=1",
    )
    if vision.proc.poll() is None:  # accepted: then as true, never silently false
        assert param_get("/cli_types/vision_service", "use_depth") == "True"
    else:  # refused: one clear line naming the parameter, no traceback
        assert vision.proc.returncode != 0
        assert "Traceback" not in vision.log(), vision.log()
        assert [line for line in vision.log().splitlines() if "use_depth" in line], vision.log()
