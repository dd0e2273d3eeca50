"""Real exports against their exporter's own pipeline: each model is built from Ultralytics' bundled yaml, given
input-dependent weights, exported by Ultralytics (test/exporters/make_export.py, in build/exporters-venv), and
predicted on by Ultralytics on the same file; `ml_model_cli detect` on that file must give the same detections
(same classes, box IoU >= 0.8, scores within 0.01, theta within 0.05 rad, keypoints within 2 px).

Metadata-stripped copies are refused, and the option the refusal names then reads them right.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

from harness.exports import Export, compare, export

#: Ultralytics predict's defaults, which the comparison uses on our side too.
PEER = ("--confidence_threshold", "0.25", "--iou_threshold", "0.7", "--max_detections", "300")

#: id -> (architecture, imgsz, export options). Every Ultralytics row of docs/model-layouts.md.
DETECTORS = {
    "yolo11-detect": ("yolo11n.yaml", 640, {}),
    "yolo11-detect-nms": ("yolo11n.yaml", 640, {"nms": True}),
    "yolo11-seg-nms": ("yolo11n-seg.yaml", 640, {"nms": True}),
    "yolo11-pose": ("yolo11n-pose.yaml", 640, {}),
    "yolo11-pose-nms": ("yolo11n-pose.yaml", 640, {"nms": True}),
    "yolo11-obb": ("yolo11n-obb.yaml", 640, {}),
    "yolo11-obb-nms": ("yolo11n-obb.yaml", 640, {"nms": True}),
    "yolo26-detect": ("yolo26n.yaml", 640, {}),
    "yolo26-pose": ("yolo26n-pose.yaml", 640, {}),
    "yolo26-obb": ("yolo26n-obb.yaml", 640, {}),
    "rtdetr": ("rtdetr-l.yaml", 320, {}),
    "yolo11-openvino-ir": ("yolo11n.yaml", 640, {"format": "openvino"}),
    "yolov8-dynamic": ("yolov8n.yaml", 640, {"dynamic": True}),
}


def cli(*args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "ml_model_service", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


def detect(model: Path, e: Export, *options: str) -> list[list[dict]]:
    """Our detections on each photo of `e` through the CLI."""
    out = cli("detect", "--model", str(model), *PEER, *options, *map(str, e.photo_paths))
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    return [line["detections"] for line in lines]


def check_all(found: list[list[dict]], e: Export) -> None:
    total = sum(len(p.get("cls", [])) for p in e.reference["photos"])
    assert total >= 10, f"the export's weights give too few detections to compare ({total})"
    problems = {p.name: compare(found[i], e.expected(i)) for i, p in enumerate(e.photo_paths)}
    assert not any(problems.values()), problems


@pytest.mark.parametrize("variant", list(DETECTORS))
def test_export_decodes_as_its_exporter_does(variant):
    arch, imgsz, options = DETECTORS[variant]
    e = export(arch, imgsz, **options)
    found = detect(e.path, e)
    check_all(found, e)
    if e.task == "pose":
        assert all("keypoints" in d for d in found[0]), found[0][:1]
    if e.task == "obb":
        assert all({"theta", "center_x", "size_x"} <= set(d) for d in found[0]), found[0][:1]


def stripped(e: Export, tmp_path: Path) -> Path:
    """A copy of the export without its metadata (as a converter or a hand export leaves it)."""
    model = onnx.load(str(e.path))
    del model.metadata_props[:]
    path = tmp_path / e.path.name
    onnx.save(model, str(path))
    return path


def refusal_options(text: str) -> list[str]:
    """The CLI flags a refusal names as the way to read the model ("... --option value ...")."""
    match = re.search(r"try: (.+?)(?:\.|$)", text)
    assert match, f"the refusal names no options to try: {text}"
    return match.group(1).split()


@pytest.mark.parametrize(
    "variant",
    ["rtdetr", "yolo11-obb", "yolo11-pose", "yolo11-pose-nms", "yolo11-obb-nms", "yolo26-detect", "yolo11-detect-nms"],
)
def test_stripped_export_is_refused_with_options_that_work(variant, tmp_path):
    arch, imgsz, options = DETECTORS[variant]
    e = export(arch, imgsz, **options)
    path = stripped(e, tmp_path)
    # The class count comes from a label file, as a user without metadata gives it.
    labels = tmp_path / "labels.txt"
    labels.write_text("\n".join(e.expected(0)["names"][str(i)] for i in range(len(e.expected(0)["names"]))) + "\n")
    out = cli("detect", "--model", str(path), "--labels", str(labels), *PEER, str(e.photo_paths[0]))
    assert out.returncode != 0, out.stdout[:500]
    refusal = json.loads(out.stderr.strip().splitlines()[-1])["error"]
    flags = refusal_options(refusal)
    found = detect(path, e, "--labels", str(labels), *flags)
    check_all(found, e)


def test_ultralytics_classifier_matches_its_predict():
    e = export("yolo11n-cls.yaml", 224)
    out = cli("classify", "--model", str(e.path), "--top", "5", *map(str, e.photo_paths))
    assert out.returncode == 0, out.stderr[-2000:]
    for i, line in enumerate(out.stdout.splitlines()):
        ours = json.loads(line)["classifications"]
        probs = np.asarray(e.expected(i)["probs"])
        top = np.argsort(-probs)[:5]
        assert [c["class_id"] for c in ours] == top.tolist()
        assert np.allclose([c["confidence"] for c in ours], probs[top], atol=0.01)
