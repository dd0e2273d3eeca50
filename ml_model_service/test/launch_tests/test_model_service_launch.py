"""model_service.launch.py with the real `ros2 launch` and `ros2 param/service`: the user's params_file wins
over the shipped defaults, an argument given on the command line wins over the file, arguments are typed
as users type them (execution_providers:=cpu), and bad values are refused in one line."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml
from ros2_cli import launcher, node_models_dir, param_get, service_call

from ml_model_service.ros import dds

MODELS = node_models_dir()
READY = r"serving |no model loaded"


@pytest.fixture
def launch(tmp_path, request):
    yield from launcher(tmp_path, request)


def user_file(tmp_path: Path, values: dict) -> Path:
    path = tmp_path / "my_model_service.yaml"
    path.write_text(yaml.safe_dump({"/**": {"ros__parameters": values}}))
    return path


def test_shipped_defaults_without_arguments(launch):
    # a user's shell without any Fast DDS setting: the launch file gives its node the shipped profile
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FASTDDS_", "FASTRTPS_"))}
    node = launch("model_service.launch.py", "namespace:=/msl_default", env=env)
    node.wait_for_log(READY)
    (pid,) = node.node_pids()
    node_env = dict(e.split("=", 1) for e in Path(f"/proc/{pid}/environ").read_text().split("\0") if "=" in e)
    profile = node_env.get("FASTDDS_DEFAULT_PROFILES_FILE", "")
    assert profile.endswith("share/ml_model_service/config/fastdds_large_data.xml") and Path(profile).is_file()
    for name in dds.profile_variables(node_env):  # and FASTRTPS_DEFAULT_PROFILES_FILE, which Jazzy's Fast DDS reads
        assert node_env.get(name) == profile, name
    assert param_get("/msl_default/ml_model_service", "model_path") == ""
    assert param_get("/msl_default/ml_model_service", "execution_providers") == "['cuda', 'cpu']"
    meta = service_call("/msl_default/ml_model_service/get_metadata", "ml_model_service_interfaces/srv/GetMetadata")
    assert "ssd_mobilenet_v2_coco" in meta.stdout, meta.stdout


def test_params_file_wins_over_defaults(launch, tmp_path):
    labels = str(MODELS / "imagenet_labels.txt")
    mine = user_file(
        tmp_path, {"model_path": "efficientnet_lite0", "label_path": labels, "execution_providers": ["cpu"]}
    )
    node = launch("model_service.launch.py", "namespace:=/msl_file", f"params_file:={mine}")
    node.wait_for_log(READY)
    fqn = "/msl_file/ml_model_service"
    assert param_get(fqn, "model_path") == "efficientnet_lite0"
    assert param_get(fqn, "label_path") == labels
    assert param_get(fqn, "execution_providers") == "['cpu']"
    meta = service_call(f"{fqn}/get_metadata", "ml_model_service_interfaces/srv/GetMetadata")
    assert "efficientnet" in meta.stdout, meta.stdout


def test_command_line_wins_over_params_file(launch, tmp_path):
    labels = str(MODELS / "imagenet_labels.txt")
    mine = user_file(
        tmp_path, {"model_path": "efficientnet_lite0", "label_path": labels, "execution_providers": ["cuda", "cpu"]}
    )
    # execution_providers as users type it: a plain string, not a YAML list
    node = launch(
        "model_service.launch.py",
        "namespace:=/msl_cli",
        f"params_file:={mine}",
        "model_path:=efficientnet_lite0_tflite",
        "execution_providers:=cpu",
    )
    node.wait_for_log(READY)
    fqn = "/msl_cli/ml_model_service"
    assert param_get(fqn, "model_path") == "efficientnet_lite0_tflite"
    assert param_get(fqn, "execution_providers") == "['cpu']"
    assert param_get(fqn, "label_path") == labels  # not given: the file's value holds
    assert node.proc.poll() is None


@pytest.mark.parametrize(
    "args, message",
    [
        (["execution_providers:=cuda,,cpu"], "execution_providers:='cuda,,cpu' has an empty entry"),
        (["params_file:=/nonexistent/my.yaml"], "params_file:='/nonexistent/my.yaml': no such file"),
    ],
)
def test_bad_arguments_are_refused_in_one_line(launch, args, message):
    run = launch("model_service.launch.py", "namespace:=/msl_bad", *args)
    assert run.wait_exit() != 0
    errors = [line for line in run.log().splitlines() if "[ERROR]" in line]
    assert len(errors) == 1 and message in errors[0], run.log()
    assert "Traceback" not in run.log()
    assert "process started" not in run.log()  # no node was started with a wrong value
