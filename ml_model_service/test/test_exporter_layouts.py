"""Real exports against their exporter's own pipeline: each model is built from Ultralytics' bundled yaml, given
input-dependent weights, exported by Ultralytics (exporters/make_export.py of the development package, in
build/exporters-venv), and predicted on by Ultralytics on the same file; `ml_model_cli detect` on that file must give
the same detections (same classes, box IoU >= 0.8, scores within 0.01, theta within 0.05 rad, keypoints within 2 px).

Metadata-stripped copies are refused, and the option the refusal names then reads them right.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest

from ml_model_service_dev.harness.exports import Export, compare, export

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
    "yolo26-detect": ("yolo26n.yaml", 640, {}),  # Ultralytics 8.4.190 exports YOLO26 raw unless nms=False
    "yolo26-detect-e2e": ("yolo26n.yaml", 640, {"nms": False}),  # the one-to-one (NMS-free) head
    "yolo26-seg-e2e": ("yolo26n-seg.yaml", 640, {"nms": False}),
    "yolo26-pose-e2e": ("yolo26n-pose.yaml", 640, {"nms": False}),
    "yolo26-obb": ("yolo26n-obb.yaml", 640, {}),
    "yolo26-obb-e2e": ("yolo26n-obb.yaml", 640, {"nms": False}),
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


def sizes(e: Export) -> list[tuple[int, int]]:
    return [(img.shape[1], img.shape[0]) for img in (e.image(i) for i in range(len(e.photo_paths)))]


def check_all(found: list[list[dict]], e: Export) -> None:
    total = sum(len(p.get("cls", [])) for p in e.reference["photos"])
    assert total >= 10, f"the export's weights give too few detections to compare ({total})"
    wh = sizes(e)
    problems = {p.name: compare(found[i], e.expected(i), wh[i]) for i, p in enumerate(e.photo_paths)}
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


#: What each stripped export is, in the words a refusal uses for the reading it offers.
KINDS = {"rtdetr": "RT-DETR", "obb": "oriented boxes|OBB", "pose": "pose", "nms": "nms=True", "e2e": "YOLO26"}


def refusal_options(text: str, variant: str) -> list[str]:
    """The CLI flags of the option set a refusal offers for what the model is ("[k=v k=v] for <reading>")."""
    offers = re.findall(r"\[([^\]]+)\] for ([^;]+)", text)
    assert offers, f"the refusal offers no option sets: {text}"
    kind = next(v for k, v in KINDS.items() if k in variant.split("-") or k in variant)
    chosen = [values for values, reads_as in offers if re.search(kind, reads_as)]
    assert chosen, f"no offer reads the model as {kind}: {offers}"
    flags = []
    for name, value in re.findall(r"(\w+)=(\S+)", chosen[0]):
        flags += [f"--{name}", value]
    return flags


@pytest.mark.parametrize(
    "variant",
    [
        "rtdetr",
        "yolo11-obb",
        "yolo11-pose",
        "yolo11-pose-nms",
        "yolo11-obb-nms",
        "yolo26-detect-e2e",
        "yolo26-obb-e2e",
        "yolo11-detect-nms",
    ],
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
    flags = refusal_options(refusal, variant)
    found = detect(path, e, "--labels", str(labels), *flags)
    check_all(found, e)


def test_ultralytics_classifier_matches_its_predict():
    """Same class and probability where the exporter is sure (>= 0.5). Where it is not, its ranking follows the
    interpolation (PIL's antialiased bilinear there, OpenCV's area resampling here), not the crop."""
    e = export("yolo11n-cls.yaml", 224)
    out = cli("classify", "--model", str(e.path), "--top", "5", *map(str, e.photo_paths))
    assert out.returncode == 0, out.stderr[-2000:]
    sure = 0
    for i, line in enumerate(out.stdout.splitlines()):
        ours = json.loads(line)["classifications"]
        probs = np.asarray(e.expected(i)["probs"])
        if probs.max() < 0.5:
            continue
        sure += 1
        assert ours[0]["class_id"] == int(probs.argmax()), (i, ours[:2], probs.argmax())
        assert abs(ours[0]["confidence"] - probs.max()) <= 0.1, (i, ours[0], probs.max())
    assert sure >= 2, "the export's classifier is sure of too few photos to compare"


def test_ultralytics_classifier_keeps_a_crop_fraction_the_user_sets(tmp_path):
    e = export("yolo11n-cls.yaml", 224)
    wide = tmp_path / "wide.png"
    cv2.imwrite(str(wide), cv2.resize(cv2.imread(str(e.photo_paths[0])), (900, 300)))
    default = cli("classify", "--model", str(e.path), "--top", "3", str(wide))
    cropped = cli("classify", "--model", str(e.path), "--top", "3", "--crop_fraction", "0.5", str(wide))
    assert default.returncode == 0 and cropped.returncode == 0, default.stderr + cropped.stderr
    assert json.loads(default.stdout)["classifications"] != json.loads(cropped.stdout)["classifications"]


def test_labels_under_other_exporters_keys(tmp_path):
    from ml_model_service.core.loading.labels import embedded_labels

    labels = embedded_labels(tmp_path / "m.onnx", {"label_list": "['cat', 'dog']"})
    assert labels is not None and labels.name(1) == "dog"
    labels = embedded_labels(tmp_path / "m.onnx", {"character": "a\nb\nc"})
    assert labels is not None and labels.name(2) == "c"


def test_stripped_obb_without_labels_is_refused_not_read_as_one_more_class(tmp_path):
    """Its angle channel once read as class 80 (hundreds of junk detections): nothing says how many values are
    classes, so the reading is refused, offering the OBB one, which then gives the exporter's boxes."""
    arch, imgsz, options = DETECTORS["yolo11-obb"]
    e = export(arch, imgsz, **options)
    path = stripped(e, tmp_path)
    out = cli("detect", "--model", str(path), *PEER, str(e.photo_paths[0]))
    assert out.returncode != 0, out.stdout[:500]
    refusal = json.loads(out.stderr.strip().splitlines()[-1])["error"]
    assert "no class score" in refusal
    check_all(detect(path, e, *refusal_options(refusal, "obb")), e)


def test_the_result_threshold_before_nms_keeps_the_same_detections():
    """Candidates below the result filters' threshold are dropped before NMS (a busy YOLO11n frame: ~1000
    candidates at 0.05): the same detections as NMS over every candidate at 0.05 with the threshold after it."""
    from ml_model_service.core.loading.model import Model
    from ml_model_service.core.reading.results import FilterConfig
    from ml_model_service.core.reading.vision import VisionConfig, VisionModel

    e = export("yolo11n.yaml", 640, candidates=1000)
    model = Model(str(e.path), backend="onnx", providers=["cpu"])
    every = VisionModel(model, model.labels, VisionConfig(filters=FilterConfig(confidence_threshold=0.0)))
    for threshold, labels in ((0.5, {}), (0.3, {}), (0.0, {"person": 0.6, "car": 0.4})):
        filters = FilterConfig(confidence_threshold=threshold, label_confidences=labels)
        kept = VisionModel(model, model.labels, VisionConfig(filters=filters))
        counts = []
        for path in e.photo_paths:
            rgb = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
            everything = every.detect(rgb)
            counts.append(len(everything))
            expected = [d for d in everything if filters.keep(d.class_name, d.confidence)]
            assert kept.detect(rgb) == expected, (threshold, labels, path.name)
        assert max(counts) == every.config.decoder.max_detections, counts  # a busy frame: NMS truncated there
