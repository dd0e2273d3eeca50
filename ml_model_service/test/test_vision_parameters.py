"""Vision node parameters over DDS: invalid values refused with the reason (at start-up and at run time),
changes applied by tier (a threshold never reloads the model), model_path always names the loaded model."""

from __future__ import annotations

import os
import subprocess
import sys

from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
from rcl_interfaces.srv import GetParameters, SetParameters
from test_vision_service import start_vision, wait_ready
from vision_msgs.msg import Detection2DArray

from ml_model_service.ros.remote_model import call
from ml_model_service_dev.harness.camera import Camera
from ml_model_service_dev.harness.messages import image_msg
from ml_model_service_dev.harness.photos import photo
from ml_model_service_dev.harness.waits import wait_for
from ml_model_service_interfaces.srv import GetProperties

from conftest import Collector

NS = "/params"


def value(v) -> ParameterValue:
    if isinstance(v, bool):
        return ParameterValue(type=ParameterType.PARAMETER_BOOL, bool_value=v)
    if isinstance(v, float):
        return ParameterValue(type=ParameterType.PARAMETER_DOUBLE, double_value=v)
    if isinstance(v, int):
        return ParameterValue(type=ParameterType.PARAMETER_INTEGER, integer_value=v)
    if isinstance(v, str):
        return ParameterValue(type=ParameterType.PARAMETER_STRING, string_value=v)
    if all(isinstance(x, float) for x in v):
        return ParameterValue(type=ParameterType.PARAMETER_DOUBLE_ARRAY, double_array_value=v)
    if all(isinstance(x, int) for x in v):
        return ParameterValue(type=ParameterType.PARAMETER_INTEGER_ARRAY, integer_array_value=v)
    return ParameterValue(type=ParameterType.PARAMETER_STRING_ARRAY, string_array_value=v)


def test_refused_values_tiers_and_model_path_in_sync(start_node, spinner):
    proc = start_vision(start_node, namespace=NS)
    wait_ready(spinner, proc, namespace=NS)
    set_client = spinner.node.create_client(SetParameters, f"{NS}/vision_service/set_parameters")
    get_client = spinner.node.create_client(GetParameters, f"{NS}/vision_service/get_parameters")
    props = spinner.node.create_client(GetProperties, f"{NS}/vision_service/get_properties")

    def set_(name, v):
        r = call(set_client, SetParameters.Request(parameters=[Parameter(name=name, value=value(v))]), 30.0)
        return r.results[0]

    def get(name):
        return call(get_client, GetParameters.Request(names=[name]), 10.0).values[0]

    refused = {
        "resize_mode": ("bogus_mode", "not one of"),
        "box_units": ("inches", "not one of"),
        "input_mean": ([0.5, 0.5], "exactly 3"),
        "box_order": ([0, 0, 1, 2], "permutation"),
        "confidence_threshold": (1.5, ""),
        "label_confidences": (["cat"], "key:value"),
        "model_path": ("/no/such/model.onnx", "keeps serving"),
        "use_depth": (True, "read-only"),
    }
    for name, (bad, words) in refused.items():
        r = set_(name, bad)
        assert not r.successful and words in r.reason, (name, r.reason)
    assert get("model_path").string_value == "" and get("resize_mode").string_value == "auto"

    loads = proc.log().count("ready (")
    for threshold in (0.3, 0.6, 0.5):
        assert set_("confidence_threshold", threshold).successful
    assert set_("top_n", 3).successful and set_("classes", ["cat", "dog"]).successful
    assert proc.log().count("ready (") == loads  # live parameters never reload or rebuild the model
    assert set_("resize_mode", "letterbox").successful
    wait_for(lambda: "decoder rebuilt" in proc.log(), 10, what="decoder rebuilt for a model-tier change")
    assert "model changed" not in proc.log()

    assert set_("model_path", "efficientnet_lite0").successful  # one path for a swap: the parameter
    assert get("model_path").string_value == "efficientnet_lite0"
    assert call(props, GetProperties.Request(), 10.0).classifications_supported
    assert set_("confidence_threshold", 0.2).successful  # an unrelated change keeps the new model
    r = call(props, GetProperties.Request(), 10.0)
    assert r.classifications_supported and not r.detections_supported
    assert proc.alive()


def assert_start_refused(args: list[str], words: str) -> None:
    """The vision node started with `args` ends at once (status 2) with one line saying `words`, no traceback."""
    done = subprocess.run(
        [sys.executable, "-m", "ml_model_service.ros.vision_node", "--ros-args", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and words in done.stderr + done.stdout, done.stderr
    assert "Traceback" not in done.stderr


def test_bad_start_up_values_end_with_one_clear_line():
    for args, words in (
        (["-p", "resize_mode:=bogus"], "resize_mode: 'bogus' is not one of"),
        (["-p", "input_std:=[1.0, 0.0, 1.0]"], "non-zero"),
    ):
        assert_start_refused(args, words)


def test_forms_users_type_on_the_command_line_are_accepted(spinner):
    cmd = [
        sys.executable,
        "-m",
        "ml_model_service.ros.vision_node",
        "--ros-args",
        "-r",
        "__ns:=/typed",
        "-p",
        "execution_providers:=cpu",
        "-p",
        "use_depth:=1",
        "-p",
        "confidence_threshold:=1",
    ]
    node = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        get_client = spinner.node.create_client(GetParameters, "/typed/vision_service/get_parameters")
        wait_for(lambda: get_client.wait_for_service(0.5), 30, what="node with typed command-line values")
        values = call(
            get_client, GetParameters.Request(names=["execution_providers", "use_depth", "confidence_threshold"]), 10.0
        ).values
        assert list(values[0].string_array_value) == ["cpu"] and values[1].bool_value is True
        assert values[2].double_value == 1.0
    finally:
        node.terminate()
        node.wait(10)


def test_both_nodes_report_on_diagnostics(start_node, spinner):
    from diagnostic_msgs.msg import DiagnosticArray

    from conftest import Collector

    start_node("model_service", {"execution_providers": ["cpu"]}, namespace="/diag")
    start_vision(start_node, namespace="/diag")
    diagnostics = Collector(spinner.node, DiagnosticArray, "/diagnostics")

    def names():
        return {s.name: s for m in list(diagnostics.messages) for s in m.status}

    found = wait_for(
        lambda: {"/diag/ml_model_service", "/diag/vision_service"} <= set(names()) and names(),
        30,
        what="both nodes on /diagnostics",
    )
    service, vision = found["/diag/ml_model_service"], found["/diag/vision_service"]
    assert "serving" in service.message and {"infer_ok", "loads"} <= {v.key for v in service.values}
    keys = {v.key for v in vision.values}
    assert "ready" in vision.message and {"received", "processed", "skipped", "errors"} <= keys


def _thread_cpus(pid: int) -> list[set[int]]:
    """The allowed CPUs of each thread of process `pid` (Cpus_allowed_list in /proc)."""
    out = []
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/status") as f:
            text = next(line for line in f if line.startswith("Cpus_allowed_list:")).split(":")[1].strip()
        cpus = set()
        for part in text.split(","):
            low, _, high = part.partition("-")
            cpus |= set(range(int(low), int(high or low) + 1))
        out.append(cpus)
    return out


def test_pin_worker_keeps_the_worker_apart_from_the_pool_and_applies_live(start_node, spinner):
    """The worker on the first allowed core, onnxruntime's pool thread(s) on the others (pin_threads); turning
    pin_worker off frees the worker live (no reload) and leaves the pool where it is."""
    ns = "/pin"
    proc = start_vision(start_node, namespace=ns)
    wait_ready(spinner, proc, namespace=ns)
    allowed = os.sched_getaffinity(proc.proc.pid)
    home = {min(allowed)}
    camera = Camera(spinner.node, ns)
    dets = Collector(spinner.node, Detection2DArray, f"{ns}/detections")
    try:
        camera.show(image_msg(photo("motorcycle"), "pin_a"))
        wait_for(
            lambda: "worker thread pinned to CPU" in proc.log() or len(allowed) == 1,
            30,
            what="the worker pinned at its first frame",
        )
        cpus = _thread_cpus(proc.proc.pid)
        pool = [c for c in cpus if len(c) == 1 and c < allowed and c != home]
        if len(allowed) > 1:
            assert cpus.count(home) == 1, cpus  # the worker alone on its core
            assert len(pool) == len(allowed) - 1, cpus  # 1 thread per core by default: one pool thread per other core
            assert f"worker thread pinned to CPU {min(allowed)}" in proc.log()

        set_client = spinner.node.create_client(SetParameters, f"{ns}/vision_service/set_parameters")
        loads = proc.log().count("ready (")
        r = call(set_client, SetParameters.Request(parameters=[Parameter(name="pin_worker", value=value(False))]), 30.0)
        assert r.results[0].successful, r.results[0].reason
        camera.show(image_msg(photo("motorcycle"), "pin_b"))
        wait_for(lambda: dets.where(lambda m: m.header.frame_id == "pin_b"), 30, what="detections after the change")
        if len(allowed) > 1:
            wait_for(lambda: "free to run on any allowed core" in proc.log(), 10, what="the worker unpinned")
            cpus = _thread_cpus(proc.proc.pid)
            assert home not in cpus, cpus
            assert sorted(map(sorted, (c for c in cpus if c != allowed))) == sorted(map(sorted, pool)), cpus
        assert proc.log().count("ready (") == loads  # a live parameter: no model reload
        assert proc.alive()
    finally:
        camera.close()
