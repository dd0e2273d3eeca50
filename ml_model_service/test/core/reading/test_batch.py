"""Batched inference (core/reading/batch.py): several images in one call give each the single-frame results.

The models are ONNX graphs (built here and in ml_model_service_dev.harness.batch_models) whose outputs depend
on each image: an end-to-end detector ([B, N, 6] rows, score = the image's mean brightness, so images of
different brightness keep different detections) and a classifier (softmax over the per-channel means), with a
dynamic, a fixed (padded) and a batch-1 axis.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from ml_model_service.core.loading.model import Model
from ml_model_service.core.reading.batch import batch_support, classify_batch, detect_batch, infer_batch
from ml_model_service.core.reading.decoders.base import DecoderConfig
from ml_model_service.core.reading.vision import FilterConfig, VisionConfig, VisionModel
from ml_model_service_dev.harness.batch_models import LABELS, SIDE, Counting, end2end_model, save_graph


def classifier_model(path: Path, batch) -> Path:
    """[B, SIDE, SIDE, 3] float → [B, 3] softmax of 8 x the channel means."""
    nodes = [
        helper.make_node("ReduceMean", ["images"], ["m"], axes=[1, 2], keepdims=0),  # [B, 3]
        helper.make_node("Mul", ["m", "k"], ["mk"]),
        helper.make_node("Softmax", ["mk"], ["probs"], axis=1),
    ]
    inits = [numpy_helper.from_array(np.array(8.0, np.float32), "k")]
    ins = [helper.make_tensor_value_info("images", TensorProto.FLOAT, [batch, SIDE, SIDE, 3])]
    outs = [helper.make_tensor_value_info("probs", TensorProto.FLOAT, [batch, 3])]
    return save_graph(path, nodes, ins, outs, inits)


def vision(path: Path, model_type: str) -> tuple[VisionModel, Counting]:
    model = Model(str(path), str(path.with_suffix(".txt")), providers=["cpu"])
    runner = Counting(model)
    config = VisionConfig(
        decoder=DecoderConfig(model_type=model_type, box_format="xyxy", box_units="pixels"), filters=FilterConfig(0.3)
    )
    return VisionModel(runner, model.labels, config), runner


def images() -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    out = [np.full((48, 64, 3), v, np.uint8) for v in (250, 160, 90)]  # 3 brightness levels
    out.append(rng.integers(0, 255, (120, 100, 3), dtype=np.uint8))  # another size (stretched to SIDE)
    return out


def detections(found) -> list[tuple]:
    return [(d.class_name, round(d.confidence, 5), round(d.x_min, 3), round(d.y_max, 3)) for d in found]


@pytest.mark.parametrize("batch", ["N", 4])
def test_a_detector_batch_answers_each_image_as_alone_in_one_call(tmp_path, batch):
    v, runner = vision(end2end_model(tmp_path / "e2e.onnx", batch), "end2end")
    support = batch_support(v)
    assert support.size == (4 if batch == 4 else 64) and support.fixed == (batch == 4)
    alone = [detections(v.detect(img)) for img in images()]
    assert len({len(a) for a in alone}) > 1  # the images really differ in what they keep
    runner.batches.clear()
    together = [detections(found) for found in detect_batch(v, images())]
    assert together == alone
    assert runner.batches == [4]  # four images, one call


def test_a_fixed_batch_is_padded_and_split(tmp_path):
    v, runner = vision(end2end_model(tmp_path / "e2e.onnx", 4), "end2end")
    assert batch_support(v).fixed
    runner.batches.clear()
    two = images()[:2]
    assert [detections(f) for f in detect_batch(v, two)] == [detections(v.detect(i)) for i in two]
    assert runner.batches[0] == 4  # two images padded to the model's four
    outputs = infer_batch(v, two)
    assert all(o["output0"].shape == (1, 3, 6) for o, _ in outputs)


def test_a_classifier_batch_matches_one_at_a_time(tmp_path):
    v, runner = vision(classifier_model(tmp_path / "cls.onnx", "batch"), "classifier")
    coloured = [np.zeros((40, 40, 3), np.uint8) for _ in range(3)]
    for i, img in enumerate(coloured):
        img[..., i] = 255
    assert batch_support(v).size > 1  # probed once (a call of 2), then cached
    runner.batches.clear()
    together = classify_batch(v, coloured, 2)
    assert runner.batches == [3]
    for img, found in zip(coloured, together):
        assert [(c.class_name, round(c.confidence, 6)) for c in found] == [
            (c.class_name, round(c.confidence, 6)) for c in v.classify(img, 2)
        ]
    assert [f[0].class_name for f in together] == LABELS


def test_a_batch_one_model_runs_in_turn(tmp_path):
    v, runner = vision(end2end_model(tmp_path / "e2e.onnx", 1), "end2end")
    support = batch_support(v)
    assert support.size == 1 and "batch dimension is 1" in support.reason
    runner.batches.clear()
    together = [detections(f) for f in detect_batch(v, images())]
    assert runner.batches == [1, 1, 1, 1]
    assert together == [detections(v.detect(i)) for i in images()]


def test_the_bundled_ssd_does_not_batch_and_keeps_its_results():
    from skimage import data

    model = Model("ssd_mobilenet_v2_coco", providers=["cpu"])
    v = VisionModel(model, model.labels)
    assert batch_support(v).size == 1
    photo = data.chelsea()
    assert detections(detect_batch(v, [photo])[0]) == detections(v.detect(photo))


def same(got, expected) -> None:
    """Detections of a batched call against the single-frame ones of the same image."""
    assert [d.class_index for d in got] == [d.class_index for d in expected]
    assert np.allclose([d.box for d in got], [d.box for d in expected], atol=1e-3) if expected else not got
    assert [d.confidence for d in got] == pytest.approx([d.confidence for d in expected], abs=1e-4)


def test_a_real_dynamic_yolo_export_batches_with_the_exporters_results():
    """YOLOv8n exported by Ultralytics with dynamic=True (harness.exports). Four 640x480 camera frames
    go through one inference call and each gets its single-frame detections. The exporter's four photos (four
    sizes: Ultralytics' rect letterbox gives each its own input shape) go one call per shape, and each matches
    Ultralytics' own predictions on it."""
    import cv2

    from ml_model_service.core.settings.configs import vision_config
    from ml_model_service.core.settings.tables import VISION_PARAMS, defaults
    from ml_model_service.core.settings.typed import VisionSettings
    from ml_model_service_dev.harness.exports import compare, export

    e = export("yolov8n.yaml", 640, dynamic=True)
    model = Model(str(e.path), providers=["cpu"])
    runner = Counting(model)
    peer = {"confidence_threshold": 0.25, "iou_threshold": 0.7, "max_detections": 300}  # Ultralytics' predict
    v = VisionModel(runner, model.labels, vision_config(VisionSettings.of({**defaults(VISION_PARAMS), **peer})))
    support = batch_support(v)
    assert support.size > 1 and not support.fixed, support
    photos = [e.image(i) for i in range(len(e.photo_paths))]
    frames = [cv2.resize(p, (640, 480), interpolation=cv2.INTER_AREA) for p in photos]  # four cameras
    alone = [v.detect(f) for f in frames]
    assert sum(len(a) for a in alone) >= 10
    runner.batches.clear()
    together = detect_batch(v, frames)
    assert runner.batches == [4]
    for a, t in zip(alone, together):
        same(t, a)
    runner.batches.clear()
    together = detect_batch(v, photos)
    assert len(runner.batches) == len({v._tensor(p)[0][v.layout.name].shape for p in photos})  # one per shape
    for i, (p, t) in enumerate(zip(photos, together)):
        same(t, v.detect(p))
        assert compare([d.to_dict() for d in t], e.expected(i), (p.shape[1], p.shape[0])) == [], i
