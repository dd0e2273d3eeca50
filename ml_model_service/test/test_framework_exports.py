"""Detectors as other frameworks export them, against each framework's own post-processing of the exported file
on photos (harness.framework_exports): Hugging Face's DETR family, each a folder as its exporter leaves it
(model.onnx, config.json, preprocessing_config.json), read with no option at all on photos of their own sizes;
RF-DETR's export (COCO head; fine-tuned with its label file) read by its conventions with no option; YOLOX's export
with decoding refused, then right with the options the refusal names. Through `ml_model_cli detect` and through
the vision node over DDS."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from test_exporter_node import start
from vision_msgs.msg import Detection2DArray

from ml_model_service_dev.harness.camera import Camera
from ml_model_service_dev.harness.exports import _iou
from ml_model_service_dev.harness.framework_exports import HF_DETECTORS, FrameworkExport, hf_detector, rfdetr_or_yolox
from ml_model_service_dev.harness.messages import image_msg
from ml_model_service_dev.harness.waits import wait_for

from conftest import Collector

#: The acceptance: this share of the framework's detections found (class, box IoU, score), on every model.
MIN_MATCHED, MIN_IOU, SCORE_TOL = 0.85, 0.8, 0.01


def detect(model: Path, photos: list[Path], *options: str) -> list[list[dict]]:
    """Our detections of each photo through `ml_model_cli detect`."""
    done = subprocess.run(
        [sys.executable, "-m", "ml_model_service", "detect", "--model", str(model), *options, *map(str, photos)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return [json.loads(line)["detections"] for line in done.stdout.splitlines()]


def matches(ours: list[dict], expected: dict, size: tuple[int, int], names: dict | None = None) -> tuple[int, int]:
    """(the framework's detections we found: same class, IoU >= MIN_IOU, score within SCORE_TOL; ours that are not
    the framework's), one to one. `size`: the photo's (height, width): the framework's boxes are taken within it,
    as ours are (its post-processing leaves them past the border)."""
    used: set[int] = set()
    found = 0
    boxes = np.clip(np.asarray(expected["xyxy"], np.float64).reshape(-1, 4), 0, [size[1], size[0]] * 2)
    for box, cls, conf in zip(boxes, expected["cls"], expected["conf"]):
        want = names[str(cls)] if names else cls
        best = max(
            (
                (float(_iou(box, np.array([d["x_min"], d["y_min"], d["x_max"], d["y_max"]]))), j)
                for j, d in enumerate(ours)
                if j not in used and d["class_id"] == want and abs(d["confidence"] - conf) <= SCORE_TOL
            ),
            default=(0.0, -1),
        )
        if best[0] >= MIN_IOU:
            used.add(best[1])
            found += 1
    return found, len(ours) - len(used)


def check(e: FrameworkExport, results: list[list[dict]]) -> None:
    found = extra = total = 0
    for ours, expected, photo in zip(results, e.predictions, e.photos):
        got, more = matches(ours, expected, cv2.imread(str(photo)).shape[:2])
        found, extra, total = found + got, extra + more, total + len(expected["cls"])
    assert total >= 8, f"the calibrated model gives too few detections to compare ({total})"
    assert found >= MIN_MATCHED * total, (found, total, results, e.predictions)
    assert extra <= (1 - MIN_MATCHED) * total, (extra, total)


@pytest.mark.parametrize("name", HF_DETECTORS)
def test_hugging_face_detector_folder_is_read_with_no_option(name):
    e = hf_detector(name)
    sizes = {cv2.imread(str(p)).shape[:2] for p in e.photos}
    assert len(sizes) >= 2  # photos of their own, different sizes
    check(e, detect(e.path, e.photos))
    out = subprocess.run([sys.executable, "-m", "ml_model_service", "metadata", str(e.path)], capture_output=True)
    vision = json.loads(out.stdout)["vision"]
    assert vision["role"] == "detr" and vision["labels_from"].endswith("config.json#id2label"), vision
    assert vision["read_from"]["score_activation"].startswith("config.json architectures"), vision


def test_sigmoid_detr_keeps_two_classes_of_one_query():
    """Deformable DETR's post-processing keeps the top (query, class) pairs: a box may carry two classes."""
    e = hf_detector("deformable_detr")
    results = detect(e.path, e.photos, "--confidence_threshold", "0.2")
    boxes = [tuple(round(d[k], 1) for k in ("x_min", "y_min", "x_max", "y_max")) for r in results for d in r]
    assert len(boxes) > len(set(boxes)), "no query gave two classes at 0.2"


@pytest.mark.parametrize("name", ["rfdetr-coco", "rfdetr-finetuned"])
def test_rfdetr_export_is_read_by_its_conventions(name):
    """ImageNet normalisation, a sigmoid per class, top (query, class) pairs; the fine-tuned head's extra slot (one
    more than its label file's names) is never a class."""
    e = rfdetr_or_yolox(name)
    results = detect(e.path, e.photos)
    check(e, results)
    if name == "rfdetr-finetuned":
        assert {d["class_id"] for r in results for d in r} <= set(range(5))


def test_yolox_export_is_refused_then_right_with_the_options_named():
    e = rfdetr_or_yolox("yolox")
    out = subprocess.run([sys.executable, "-m", "ml_model_service", "metadata", str(e.path)], capture_output=True)
    error = json.loads(out.stdout)["vision"]["error"]
    named = "[input_bgr=true input_range=byte letterbox_position=top_left] for YOLOX"
    assert named in error, error
    options = ("--input_bgr", "true", "--input_range", "byte", "--letterbox_position", "top_left")
    check(e, detect(e.path, e.photos, *options))  # photos of their own sizes: the letterbox sized as YOLOX sizes it


YOLOX_OPTIONS = {"input_bgr": True, "input_range": "byte", "letterbox_position": "top_left"}


@pytest.mark.ros
@pytest.mark.parametrize(
    ("name", "params"), [("detr", {}), ("rt_detr", {}), ("rfdetr-finetuned", {}), ("yolox", YOLOX_OPTIONS)]
)
def test_node_reads_each_export_as_its_framework(name, params, start_node, spinner):
    e = hf_detector(name) if name in HF_DETECTORS else rfdetr_or_yolox(name)
    namespace = f"/fw_{name.replace('-', '_')}"
    settings = {"max_detections": 100, "confidence_threshold": 0.5, "iou_threshold": 0.45, **params}
    start(start_node, spinner, namespace, e, allowed_paths=[str(e.folder)], execution_providers=["cpu"], **settings)
    dets = Collector(spinner.node, Detection2DArray, f"{namespace}/detections")
    camera = Camera(spinner.node, namespace, rate=2.0, streams=("image",))
    photo = cv2.cvtColor(cv2.imread(str(e.photos[0])), cv2.COLOR_BGR2RGB)
    try:
        camera.show(image_msg(photo, "photo0"))
        msg = wait_for(lambda: next(iter(dets.where(lambda m: m.header.frame_id == "photo0")), None), 60)
    finally:
        camera.close()
    names = None  # the node publishes class names where the model has labels: its label file, else id2label
    if (e.folder / "labels.txt").exists():
        names = {str(i): n for i, n in enumerate((e.folder / "labels.txt").read_text().splitlines())}
    elif "id2label" in e.info:
        names = {str(k): v for k, v in e.info["id2label"].items()}
    found, extra = matches(as_dicts_named(msg), e.predictions[0], photo.shape[:2], names=names)
    total = len(e.predictions[0]["cls"])
    assert total >= 2 and found >= MIN_MATCHED * total and extra <= (1 - MIN_MATCHED) * total, (found, extra, total)


def as_dicts_named(msg: Detection2DArray) -> list[dict]:
    """The node's detections with their class names (these exports' labels are names, not ids)."""
    out = []
    for d in msg.detections:
        c, w, h = d.bbox.center.position, d.bbox.size_x, d.bbox.size_y
        out.append(
            {
                "class_id": d.results[0].hypothesis.class_id,
                "confidence": d.results[0].hypothesis.score,
                "x_min": c.x - w / 2,
                "y_min": c.y - h / 2,
                "x_max": c.x + w / 2,
                "y_max": c.y + h / 2,
            }
        )
    return out
