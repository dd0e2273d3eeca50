"""The offline command, as a user runs it."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from skimage import data


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ml_model_service", *args], capture_output=True, text=True,
                          timeout=120)


def test_detect_and_classify_print_json_lines():
    images = [str(Path(data.data_dir) / f) for f in ("motorcycle_left.png", "coffee.png")]
    out = run_cli("detect", *images)
    assert out.returncode == 0, out.stderr
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert [line["image"] for line in lines] == images
    assert (lines[0]["width"], lines[0]["height"]) == (741, 500)
    moto = [d for d in lines[0]["detections"] if d["class_name"] == "motorcycle"]
    assert moto and set(moto[0]) == {"class_name", "confidence", "x_min", "y_min", "x_max", "y_max"}
    assert 0 <= moto[0]["x_min"] < moto[0]["x_max"] <= 741
    assert "cup" in [d["class_name"] for d in lines[1]["detections"]]

    out = run_cli("classify", "--top", "2", str(Path(data.data_dir) / "chelsea.png"))
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert len(result["classifications"]) == 2 and "cat" in result["classifications"][0]["class_name"]


def test_metadata_infer_and_errors(tmp_path):
    out = run_cli("metadata", "efficientnet_lite0_tflite")
    meta = json.loads(out.stdout)
    assert meta["outputs"][0]["shape"] == [1, 1000] and meta["outputs"][0]["data_type"] == "uint8"
    import numpy as np

    np.save(tmp_path / "x.npy", np.zeros((1, 224, 224, 3), np.uint8))
    out = run_cli("infer", "efficientnet_lite0", "--input", f"images={tmp_path / 'x.npy'}")
    outputs = json.loads(out.stdout)["outputs"]
    assert outputs[0]["name"] == "Softmax" and outputs[0]["data_type"] == "uint8"
    np.save(tmp_path / "bad.npy", np.zeros((1, 10, 10, 3), np.uint8))
    out = run_cli("infer", "efficientnet_lite0", "--input", f"images={tmp_path / 'bad.npy'}")
    assert out.returncode == 2 and "shape" in json.loads(out.stderr)["error"]
    out = run_cli("detect", str(tmp_path / "nope.png"))
    assert out.returncode == 1 and "cannot read image" in out.stdout
