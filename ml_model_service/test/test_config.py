"""Parameter files and launch files that ship with the package."""

from __future__ import annotations

import py_compile
from pathlib import Path

import pytest
import yaml

from ml_model_service.core.settings.files import README_TABLES, shipped_parameter_files, update_readme
from ml_model_service.core.settings.tables import MODEL_SERVICE_PARAMS, VISION_PARAMS
from ml_model_service_dev.harness.waits import wait_for

PKG = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", ["model_service.yaml", "vision.yaml"])
def test_parameter_files_are_generated_from_the_table(name):
    """Every parameter with its default and description; regenerate with
    `python3 -m ml_model_service.core.settings ml_model_service/config`."""
    assert (PKG / "config" / name).read_text() == shipped_parameter_files()[name]
    values = yaml.safe_load((PKG / "config" / name).read_text())["/**"]["ros__parameters"]
    params = MODEL_SERVICE_PARAMS if name == "model_service.yaml" else VISION_PARAMS
    assert values == {p.name: p.default for p in params}


def test_documented_parameter_tables_are_generated_from_the_table():
    doc = PKG.parent / "docs" / "parameters.md"
    assert doc.read_text() == update_readme(str(doc), README_TABLES)
    for name in README_TABLES:
        assert f"<!-- params:{name} -->\n| parameter |" in doc.read_text()


def test_nodes_start_from_the_shipped_parameter_files(start_node):
    for kind, name in (("model_service", "model_service.yaml"), ("vision_service", "vision.yaml")):
        proc = start_node(kind, {}, namespace=f"/cfg_{kind}", params_file=PKG / "config" / name)
        wait_for(lambda p=proc: "ready" in p.log() or "serving" in p.log(), 30, what=f"{kind} with {name}")
        assert proc.alive()
        assert "error" not in proc.log().lower()


@pytest.mark.parametrize("name", ["model_service.launch.py", "vision.launch.py"])
def test_launch_files_compile(name):
    py_compile.compile(str(PKG / "launch" / name), doraise=True)
