"""vision.launch.py with the real `ros2 launch`, `ros2 param`, `ros2 node info` and `ros2 topic echo`: both
modes (model in the vision node / in a model service node, started by the launch file or already running),
every documented argument, the user's params_file over the shipped defaults, command-line arguments over
the file, topics where the arguments say, and detections of a real photograph (scikit-image's cat)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from ros2_cli import SERVING, VISION_UP, Photographer, echo_once, launcher, node_models_dir, param_get, ros2

from ml_model_service_dev.harness.waits import wait_for

from conftest import Collector

LAUNCH_DIR = Path(__file__).resolve().parents[2] / "launch"
READY = r"\bready\b"


@pytest.fixture
def launch(tmp_path, request):
    yield from launcher(tmp_path, request)


def user_file(tmp_path: Path, values: dict) -> Path:
    path = tmp_path / "my_vision.yaml"
    path.write_text(yaml.safe_dump({"/**": {"ros__parameters": values}}))
    return path


def has_cat(msg) -> bool:
    return any(r.hypothesis.class_id == "cat" for d in msg.detections for r in d.results)


def wait_for_cat(spinner, topic: str, camera_topic: str) -> None:
    """Listen to `topic` (the node subscribes only while someone listens), show the cat photograph on
    `camera_topic`, and wait for a Detection2DArray with a cat."""
    from vision_msgs.msg import Detection2DArray

    detections = Collector(spinner.node, Detection2DArray, topic)
    camera = Photographer(spinner.node, camera_topic)
    try:
        wait_for(lambda: detections.where(has_cat), 90, what=f"a cat on {topic}")
    finally:
        camera.close()
        spinner.node.destroy_subscription(detections.sub)


def test_own_model_params_file_wins_and_topics_follow_arguments(launch, spinner, tmp_path):
    mine = user_file(tmp_path, {"confidence_threshold": 0.77, "use_depth": True, "execution_providers": ["cpu"]})
    node = launch(
        "vision.launch.py",
        "namespace:=/vl_own",
        f"params_file:={mine}",
        "image:=/vl_own_cam/color",
        "depth:=/vl_own_cam/depth",
        "camera_info:=/vl_own_cam/info",
    )
    node.wait_for_log(READY)
    fqn = "/vl_own/vision_service"
    assert param_get(fqn, "confidence_threshold") == "0.77"
    assert param_get(fqn, "use_depth") == "True"
    assert param_get(fqn, "execution_providers") == "['cpu']"
    assert param_get(fqn, "model_service") == ""

    from vision_msgs.msg import Detection2DArray

    detections = Collector(spinner.node, Detection2DArray, "/vl_own/detections")
    camera = Photographer(spinner.node, "/vl_own_cam/color")
    try:
        found = wait_for(lambda: detections.where(has_cat), 90, what="a cat on /vl_own/detections")
        scores = [r.hypothesis.score for d in found[0].detections for r in d.results]
        assert min(scores) >= 0.77  # the file's threshold is in force
        wanted = ("/vl_own_cam/color:", "/vl_own_cam/depth:", "/vl_own_cam/info:")

        def subscribers() -> str:
            info = ros2("node", "info", "--no-daemon", "--spin-time", "2", fqn).stdout
            return info.split("Subscribers:")[1].split("Publishers:")[0] if "Subscribers:" in info else ""

        wait_for(
            lambda: all(t in subscribers() for t in wanted),
            60,
            what=f"`ros2 node info {fqn}` to list subscriptions to {wanted}",
        )
    finally:
        camera.close()
        spinner.node.destroy_subscription(detections.sub)


def test_command_line_wins_over_params_file(launch, spinner, tmp_path):
    mine = user_file(tmp_path, {"confidence_threshold": 0.77, "use_depth": True, "use_compressed": False})
    node = launch(
        "vision.launch.py",
        "namespace:=/vl_cli",
        f"params_file:={mine}",
        "confidence_threshold:=0.3",
        "use_depth:=0",
        "use_compressed:=True",
        "image:=/vl_cli_cam/image_raw",
        "model_path:=ssd_mobilenet_v2_coco_tflite",
        "execution_providers:=cpu",
    )
    node.wait_for_log(READY)
    fqn = "/vl_cli/vision_service"
    assert param_get(fqn, "confidence_threshold") == "0.3"
    assert param_get(fqn, "use_depth") == "False"
    assert param_get(fqn, "use_compressed") == "True"
    assert param_get(fqn, "model_path") == "ssd_mobilenet_v2_coco_tflite"
    assert param_get(fqn, "execution_providers") == "['cpu']"
    # use_compressed: the node reads <image>/compressed (a JPEG of the photograph)
    wait_for_cat(spinner, "/vl_cli/detections", "/vl_cli_cam/image_raw/compressed")


def test_model_service_started_by_the_launch_file(launch, spinner):
    labels = str(node_models_dir() / "coco_labels.txt")
    node = launch(
        "vision.launch.py",
        "namespace:=/vl_ms",
        "use_model_service:=true",
        "execution_providers:=cpu",
        "model_path:=ssd_mobilenet_v2_coco",
        f"label_path:={labels}",
        "image:=/vl_ms_cam/image",
    )
    node.wait_for_log(SERVING)
    node.wait_for_log(VISION_UP)
    assert param_get("/vl_ms/ml_model_service", "model_path") == "ssd_mobilenet_v2_coco"
    assert param_get("/vl_ms/ml_model_service", "execution_providers") == "['cpu']"
    assert param_get("/vl_ms/ml_model_service", "label_path") == labels
    assert param_get("/vl_ms/vision_service", "model_service") == "ml_model_service"
    camera = Photographer(spinner.node, "/vl_ms_cam/image")
    try:  # the real CLI as the listener this time
        text = echo_once("/vl_ms/detections", "vision_msgs/msg/Detection2DArray", timeout=90)
    finally:
        camera.close()
    assert re.search(r"class_id: cat\b", text), text


def test_model_service_already_running(launch, spinner):
    service = launch("model_service.launch.py", "namespace:=/vl_run", "execution_providers:=cpu")
    service.wait_for_log(SERVING)
    node = launch(
        "vision.launch.py",
        "namespace:=/vl_run",
        "model_service:=/vl_run/ml_model_service",
        "use_depth:=1",
        "image:=/vl_run_cam/image",
    )
    node.wait_for_log(VISION_UP)
    assert param_get("/vl_run/vision_service", "model_service") == "/vl_run/ml_model_service"
    assert param_get("/vl_run/vision_service", "use_depth") == "True"
    wait_for_cat(spinner, "/vl_run/detections", "/vl_run_cam/image")


@pytest.mark.parametrize(
    "args, message",
    [
        (["use_depth:=maybe"], "use_depth:='maybe' is not a boolean"),
        (["confidence_threshold:=1.5"], "confidence_threshold:='1.5' is outside 0.0..1.0"),
        (["confidence_threshold:=high"], "confidence_threshold:='high' is not a number"),
        (["use_model_service:=true", "model_service:=/other"], "give one of the two"),
    ],
)
def test_bad_arguments_are_refused_in_one_line(launch, args, message):
    run = launch("vision.launch.py", "namespace:=/vl_bad", *args)
    assert run.wait_exit() != 0
    errors = [line for line in run.log().splitlines() if "[ERROR]" in line]
    assert len(errors) == 1 and message in errors[0], run.log()
    assert "Traceback" not in run.log() and "process started" not in run.log()


@pytest.mark.parametrize("name", ["vision.launch.py", "model_service.launch.py"])
def test_every_argument_is_documented(name):
    shown = ros2("launch", "ml_model_service", name, "--show-args")
    assert shown.returncode == 0, shown.stdout
    args = re.findall(r"^    '(\w+)':", shown.stdout, re.MULTILINE)
    assert len(args) >= 5, shown.stdout
    doc = (LAUNCH_DIR / name).read_text().split('"""')[1]
    undocumented = [a for a in args if not re.search(rf"\b{a}\b", doc.split("Arguments")[1])]
    assert not undocumented, f"{name}: arguments missing from the docstring: {undocumented}"
    assert "FASTDDS_BUILTIN_TRANSPORTS=LARGE_DATA" not in doc  # one Fast DDS story: the shipped profile
    assert "fastdds_large_data.xml" in doc


def test_several_cameras_in_one_node(launch, spinner, tmp_path):
    """`cameras:=[...]` on the command line, a per-camera override in the user's params_file: one node,
    each camera on its own topics."""
    mine = user_file(tmp_path, {"front.use_depth": True})
    node = launch("vision.launch.py", "namespace:=/vl_mc", f"params_file:={mine}", "cameras:=[front, back]")
    node.wait_for_log(READY)
    fqn = "/vl_mc/vision_service"
    assert param_get(fqn, "cameras") == "['front', 'back']"
    assert param_get(fqn, "front.use_depth") == "True" and param_get(fqn, "back.use_depth") == "False"
    from vision_msgs.msg import Detection2DArray

    detections = Collector(spinner.node, Detection2DArray, "/vl_mc/back/detections")
    camera = Photographer(spinner.node, "/vl_mc/back/image")
    try:
        wait_for(lambda: detections.where(has_cat), 90, what="a cat on /vl_mc/back/detections")
    finally:
        camera.close()
        spinner.node.destroy_subscription(detections.sub)
