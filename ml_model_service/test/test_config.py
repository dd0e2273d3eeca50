"""Parameter files and launch files that ship with the package."""
from __future__ import annotations

import py_compile
from pathlib import Path

import pytest
import yaml

from ml_model_service.ros.parameters import MODEL_SERVICE_PARAMS, VISION_PARAMS

from conftest import wait_for

PKG = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name, params", [("model_service.yaml", MODEL_SERVICE_PARAMS),
                                          ("vision.yaml", VISION_PARAMS)])
def test_parameter_files_cover_every_parameter(name, params):
    text = (PKG / "config" / name).read_text()
    values = yaml.safe_load(text)["/**"]["ros__parameters"]
    declared = {p.name: p for p in params}
    assert set(values) <= set(declared)
    # every parameter appears, set or as a commented example (empty lists cannot be typed in a YAML file)
    missing = [n for n in declared if n not in values and f"# {n}:" not in text]
    assert not missing
    for key, value in values.items():
        assert type(value) is type(declared[key].default) or isinstance(declared[key].default, float), key


def test_nodes_start_from_the_shipped_parameter_files(start_node):
    for kind, name in (("model_service", "model_service.yaml"), ("vision_service", "vision.yaml")):
        proc = start_node(kind, {}, namespace=f"/cfg_{kind}", params_file=PKG / "config" / name)
        wait_for(lambda p=proc: "ready" in p.log() or "serving" in p.log(), 30, what=f"{kind} with {name}")
        assert proc.alive()
        assert "error" not in proc.log().lower()


@pytest.mark.parametrize("name", ["model_service.launch.py", "vision.launch.py"])
def test_launch_files_compile(name):
    py_compile.compile(str(PKG / "launch" / name), doraise=True)
