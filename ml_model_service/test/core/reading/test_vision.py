"""The vision model (core/reading/vision.py), ROS-free: generated ONNX models with known raw outputs decoded through
onnxruntime (letterbox, NMS, filters, mean/std, BGR), a model without a role refused, and the lean path on a real
YOLO11n export."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from ml_model_service.core.loading.model import Model
from ml_model_service.core.reading.decoders.base import DecoderConfig
from ml_model_service.core.reading.decoders.boxes import anchor_centres
from ml_model_service.core.reading.preprocess import PreprocessConfig, RoleError
from ml_model_service.core.reading.vision import FilterConfig, VisionConfig, VisionModel

from conftest import constant_model

LABELS = ["a", "b", "c"]


def vision_for(path: Path, labels: list[str] | None = None, **config) -> VisionModel:
    label_file = ""
    if labels:
        label_file = str(path.with_suffix(".labels"))
        Path(label_file).write_text("\n".join(labels) + "\n")
    model = Model(str(path), label_file, providers=["cpu"])
    return VisionModel(model, model.labels, VisionConfig(**config))


# Raw candidates in model-input pixels (640x640): cx, cy, w, h, class, score
CANDIDATES = [
    (320, 320, 100, 80, 0, 0.90),
    (324, 322, 100, 80, 0, 0.80),  # duplicate of the first: removed by NMS
    (320, 320, 100, 80, 1, 0.70),  # same place, other class: kept unless NMS is class-agnostic
    (100, 200, 50, 60, 2, 0.60),
    (600, 600, 20, 20, 2, 0.10),  # below the threshold
    (500, 400, 40, 40, 1, 0.55),
]


def letterboxed(cx, cy, w, h):
    """Expected source box for a 1280x720 image letterboxed into 640x640 (scale 0.5, 140 px bars)."""
    return np.array([(cx - w / 2) / 0.5, (cy - h / 2 - 140) / 0.5, (cx + w / 2) / 0.5, (cy + h / 2 - 140) / 0.5])


GRID_640 = 80 * 80 + 40 * 40 + 20 * 20  # candidates of a raw YOLO head at 640 x 640 (strides 8, 16, 32)


def empty_candidates(per_cell: int) -> np.ndarray:
    """(N, 4) boxes of a head's empty candidates, on their grid cells (as a real YOLO head's are)."""
    cells = anchor_centres(640, 640, per_cell, (8, 16, 32))
    return np.column_stack([cells[:, :2], cells[:, 2], cells[:, 2]]).astype(np.float32)


def yolo_v8_output() -> np.ndarray:
    out = np.zeros((1, 4 + len(LABELS), GRID_640), np.float32)
    out[0, :4] = empty_candidates(1).T
    for j, (cx, cy, w, h, c, s) in enumerate(CANDIDATES):
        out[0, :4, j] = (cx, cy, w, h)
        out[0, 4 + c, j] = s
    return out


def yolo_v5_output() -> np.ndarray:
    out = np.zeros((1, 3 * GRID_640, 5 + len(LABELS)), np.float32)  # three anchors per cell
    out[0, :, :4] = empty_candidates(3)
    for j, (cx, cy, w, h, c, s) in enumerate(CANDIDATES):
        out[0, j, :5] = (cx, cy, w, h, 0.95)  # objectness 0.95, class score s / 0.95: score = s
        out[0, j, 5 + c] = s / 0.95
    return out


@pytest.mark.parametrize("layout", ["v8", "v5"])
def test_yolo_raw_outputs_decode_with_nms_and_letterbox(tmp_path, layout):
    output = yolo_v8_output() if layout == "v8" else yolo_v5_output()
    path = constant_model(tmp_path / f"yolo_{layout}.onnx", [1, 3, 640, 640], {"output0": output})
    vision = vision_for(path, LABELS)
    assert vision.role == "yolo"
    image = np.zeros((720, 1280, 3), np.uint8)
    dets = vision.detect(image)
    expected = [CANDIDATES[0], CANDIDATES[2], CANDIDATES[3], CANDIDATES[5]]
    assert [(d.class_name, round(d.confidence, 3)) for d in dets] == [(LABELS[c], s) for *_, c, s in expected]
    for d, (cx, cy, w, h, _, _) in zip(dets, expected):
        np.testing.assert_allclose([d.x_min, d.y_min, d.x_max, d.y_max], letterboxed(cx, cy, w, h), atol=1e-3)

    agnostic = vision_for(path, LABELS, decoder=DecoderConfig(agnostic_nms=True))
    assert [d.confidence for d in agnostic.detect(image)] == pytest.approx([0.9, 0.6, 0.55])
    top2 = vision_for(path, LABELS, decoder=DecoderConfig(max_detections=2))
    assert len(top2.detect(image)) == 2
    only_c = vision_for(path, LABELS, filters=FilterConfig(classes=["c"]))
    assert [d.class_name for d in only_c.detect(image)] == ["c"]
    per_label = vision_for(path, LABELS, filters=FilterConfig(label_confidences={"b": 0.6}))
    assert [(d.class_name, d.confidence) for d in per_label.detect(image)] == [("b", pytest.approx(0.7))]


def test_ssd_style_pixel_boxes_with_score_matrix_and_box_order(tmp_path):
    boxes = np.array([[[10, 20, 50, 60], [0, 0, 5, 5]]], np.float32)  # x0, y0, x1, y1 in 100x100 input pixels
    scores = np.array([[[0.1, 0.8], [0.3, 0.2]]], np.float32)  # [1, N, C]: category by argmax
    path = constant_model(tmp_path / "ssd.onnx", [1, 100, 100, 3], {"boxes": boxes, "scores": scores})
    vision = vision_for(
        path, ["x", "y"], decoder=DecoderConfig(box_order=(0, 1, 2, 3)), filters=FilterConfig(confidence_threshold=0.5)
    )
    assert vision.role == "detector"
    dets = vision.detect(np.zeros((100, 200, 3), np.uint8))  # the whole image is resized: x scale 0.5
    assert len(dets) == 1 and dets[0].class_name == "y" and dets[0].confidence == pytest.approx(0.8)
    np.testing.assert_allclose([dets[0].x_min, dets[0].y_min, dets[0].x_max, dets[0].y_max], [20, 20, 100, 60])


def mean_classifier(path: Path) -> Path:
    """NCHW float32 classifier: probabilities = softmax(10 x per-channel mean of the normalised input)."""
    nodes = [
        helper.make_node("ReduceMean", ["images"], ["m"], axes=[2, 3], keepdims=0),
        helper.make_node("Mul", ["m", "ten"], ["l"]),
        helper.make_node("Softmax", ["l"], ["probability"], axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        "mean",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 32, 32])],
        [helper.make_tensor_value_info("probability", TensorProto.FLOAT, [1, 3])],
        [numpy_helper.from_array(np.array(10.0, np.float32), "ten")],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    return path


def test_nchw_float_model_with_mean_std_and_bgr(tmp_path):
    path = mean_classifier(tmp_path / "mean.onnx")
    image = np.zeros((20, 30, 3), np.uint8)
    image[:] = (200, 100, 50)
    plain = vision_for(path, ["red", "green", "blue"], filters=FilterConfig(confidence_threshold=0.0))
    assert plain.layout.nchw and plain.role == "classifier"
    assert plain.classify(image, 1)[0].class_name == "red"
    normalised = vision_for(
        path,
        ["red", "green", "blue"],
        filters=FilterConfig(confidence_threshold=0.0),
        preprocess=PreprocessConfig(mean=(0.9, 0.1, 0.1), std=(1.0, 1.0, 1.0)),
    )
    probs = {c.class_name: c.confidence for c in normalised.classify(image, 0)}
    logits = 10 * ((np.array([200, 100, 50]) / 255.0 - [0.9, 0.1, 0.1]) / 1.0)
    expected = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    assert [probs["red"], probs["green"], probs["blue"]] == pytest.approx(expected, abs=1e-4)
    bgr = vision_for(
        path,
        ["red", "green", "blue"],
        filters=FilterConfig(confidence_threshold=0.0),
        preprocess=PreprocessConfig(bgr=True),
    )
    assert bgr.classify(image, 1)[0].class_name == "blue"  # channel 2 now holds the red values


def test_model_without_a_role_lists_its_tensors(tmp_path):
    graph = helper.make_graph(
        [helper.make_node("Identity", ["images"], ["embedding"])],
        "none",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 16, 16])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, [1, 3, 16, 16])],
    )
    path = tmp_path / "none.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    with pytest.raises(RoleError) as err:
        vision_for(path)
    assert "input images: float32 [1, 3, 16, 16]" in str(err.value)
    assert "output embedding: float32 [1, 3, 16, 16]" in str(err.value)


def test_lean_path_matches_the_plain_arithmetic_on_a_real_yolo11n_export():
    """One-pass preprocessing and score-first candidate filtering give what the plain numpy arithmetic gives, on
    a real Ultralytics YOLO11n export (calibrated random weights: ~1000 candidates pass the pre-filter) and a
    photograph."""
    import cv2

    from ml_model_service_dev.harness.photos import photo
    from ml_model_service_dev.harness.yolo_export import yolo11n_onnx

    path, why = yolo11n_onnx()
    if path is None:
        pytest.skip(why)
    model = Model(str(path), providers=["cpu"], backend="onnx")
    vision = VisionModel(model, model.labels)
    frame = np.ascontiguousarray(cv2.resize(photo("motorcycle"), (640, 480), interpolation=cv2.INTER_AREA))
    tensor, transform = vision._tensor(frame)  # noqa: SLF001 - the model input the pipeline makes
    # letterbox by hand, then (v / 255) as float32 NCHW: the same tensor (to float rounding)
    scale = min(640 / 640, 640 / 480)
    new_w, new_h = round(640 * scale), round(480 * scale)
    top = int(round((640 - new_h) / 2 - 0.1))
    canvas = np.full((640, 640, 3), 114, np.uint8)
    canvas[top : top + new_h, :new_w] = cv2.resize(frame, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    expected = (canvas.astype(np.float32) / np.float32(255.0)).transpose(2, 0, 1)[None]
    assert np.abs(tensor[model.metadata.inputs[0].name] - expected).max() < 1e-6
    # every candidate's best class over all rows, then the threshold: the same candidates, classes and scores
    outputs = model.infer(tensor)
    rows = outputs["output0"][0].T
    classes = rows[:, 4:].argmax(axis=1)
    scores = rows[np.arange(len(rows)), 4 + classes]
    keep = np.flatnonzero(scores >= vision.decoder.config.nms_score_threshold)
    got_keep, got_xywh, got_scores, got_classes, _ = vision.decoder.candidates(outputs)
    assert len(keep) > 500
    np.testing.assert_array_equal(got_keep, keep)
    np.testing.assert_array_equal(got_classes, classes[keep])
    np.testing.assert_array_equal(got_scores, scores[keep])
    np.testing.assert_array_equal(got_xywh, rows[keep, :4])
    assert 0 < len(vision.decoder.decode(outputs, transform).scores) <= 100
