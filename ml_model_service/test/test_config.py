"""Parameter files and launch files that ship with the package: the nodes start from them (their text is
generated from the table: test/core/settings/test_files.py)."""

from __future__ import annotations

import py_compile
from pathlib import Path

import pytest

from ml_model_service_dev.harness.waits import wait_for

PKG = Path(__file__).resolve().parents[1]


def test_nodes_start_from_the_shipped_parameter_files(start_node):
    for kind, name in (("model_service", "model_service.yaml"), ("vision_service", "vision.yaml")):
        proc = start_node(kind, {}, namespace=f"/cfg_{kind}", params_file=PKG / "config" / name)
        wait_for(lambda p=proc: "ready" in p.log() or "serving" in p.log(), 30, what=f"{kind} with {name}")
        assert proc.alive()
        assert "error" not in proc.log().lower()


@pytest.mark.parametrize("name", ["model_service.launch.py", "vision.launch.py"])
def test_launch_files_compile(name):
    py_compile.compile(str(PKG / "launch" / name), doraise=True)
