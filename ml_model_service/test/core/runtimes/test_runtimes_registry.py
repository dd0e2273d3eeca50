"""core/runtimes/registry.py: a model file opened by the backend its extension implies or the one named, and
files no backend reads refused with what to do."""

from __future__ import annotations

from pathlib import Path

import pytest

from ml_model_service.core.loading.bundled import BUNDLED, BUNDLED_DIR
from ml_model_service.core.runtimes.backend import ModelLoadError
from ml_model_service.core.runtimes.registry import open_backend, unsupported_format


def test_the_extension_picks_the_backend_and_a_named_one_wins():
    onnx = BUNDLED_DIR / BUNDLED["ssd_mobilenet_v2_coco"].file
    tflite = BUNDLED_DIR / BUNDLED["ssd_mobilenet_v2_coco_tflite"].file
    assert open_backend(onnx, providers=["cpu"], num_threads=1).kind == "onnx"
    assert open_backend(tflite, providers=["cpu"], num_threads=1).kind == "tflite"
    with pytest.raises(ModelLoadError, match="unknown backend 'pytorch'"):
        open_backend(onnx, backend="pytorch")
    with pytest.raises(ModelLoadError, match="model file not found"):
        open_backend(Path("/nonexistent/model.onnx"))


def test_other_formats_are_named(tmp_path):
    weights = tmp_path / "yolo11n.pt"
    weights.write_bytes(b"x")
    with pytest.raises(ModelLoadError, match="yolo11n.pt is"):
        open_backend(weights)
    assert "cannot tell the format of model.weird" in unsupported_format(Path("model.weird"))
