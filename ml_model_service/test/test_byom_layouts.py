"""Bring your own model: every exported layout decodes to the objects its outputs hold, or is refused.

The models are ONNX graphs built here whose outputs are designed (so the right answer is known), run
through onnxruntime by the same `Model` + `VisionModel` code the node and the CLI use. Each one mimics an
exporter's real signature: tensor names, shapes, data types and the metadata it embeds.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from ml_model_service.core.loading.model import Model
from ml_model_service.core.reading.decoders.base import DecoderConfig
from ml_model_service.core.reading.decoders.boxes import anchor_centres
from ml_model_service.core.reading.preprocess import InputLayout, PreprocessConfig, RoleError, preprocess
from ml_model_service.core.reading.vision import FilterConfig, VisionConfig, VisionModel

_NP = {TensorProto.FLOAT: np.float32, TensorProto.FLOAT16: np.float16, TensorProto.INT64: np.int64}
IMAGE = np.zeros((720, 1280, 3), np.uint8)  # 16:9 source image; boxes are checked in its pixels
NAMES = {0: "person", 1: "car", 2: "dog"}


def ultralytics_props(
    task: str = "detect",
    imgsz=(640, 640),
    end2end: bool | None = None,
    kpt=None,
    description: str = "Ultralytics YOLO11n model trained on coco.yaml",
) -> dict[str, str]:
    """The custom metadata an Ultralytics ONNX export embeds."""
    props = {
        "description": description,
        "author": "Ultralytics",
        "version": "8.4.0",
        "task": task,
        "stride": "32",
        "batch": "1",
        "imgsz": str(list(imgsz)),
        "names": str(NAMES),
    }
    if end2end is not None:
        props["end2end"] = str(end2end)
    if kpt:
        props["kpt_shape"] = str(list(kpt))
    return props


def graph(
    path: Path,
    inputs: list[tuple[str, int, list]],
    outputs: dict[str, np.ndarray],
    props: dict[str, str] | None = None,
    out_types: dict[str, int] | None = None,
) -> Path:
    """A model whose outputs are fixed arrays (made to depend on the first input, x 0), of the given types."""
    out_types = out_types or {}
    first = inputs[0][0]
    nodes = [
        helper.make_node("Cast", [first], ["_x"], to=TensorProto.FLOAT),
        helper.make_node("ReduceSum", ["_x"], ["_s"], keepdims=0),
        helper.make_node("Mul", ["_s", "_zero"], ["_z"]),
    ]
    inits = [numpy_helper.from_array(np.array(0.0, np.float32), "_zero")]
    outs = []
    for i, (name, value) in enumerate(outputs.items()):
        kind = out_types.get(name, TensorProto.FLOAT)
        inits.append(numpy_helper.from_array(np.asarray(value, np.float32), f"_c{i}"))
        nodes.append(helper.make_node("Add", [f"_c{i}", "_z"], [f"_f{i}"]))
        nodes.append(helper.make_node("Cast", [f"_f{i}"], [name], to=kind))
        outs.append(helper.make_tensor_value_info(name, kind, list(np.shape(value))))
    ins = [helper.make_tensor_value_info(n, t, s) for n, t, s in inputs]
    model = helper.make_model(
        helper.make_graph(nodes, "designed", ins, outs, inits), opset_imports=[helper.make_opsetid("", 13)]
    )
    for key, value in (props or {}).items():
        model.metadata_props.add(key=key, value=value)
    onnx.save(model, path)
    return path


class Recorder:
    """A model runner that remembers the shapes it was fed (wraps the real model; nothing is faked)."""

    def __init__(self, model: Model) -> None:
        self.model = model
        self.metadata = model.metadata
        self.fed: list[dict[str, tuple]] = []

    def infer(self, inputs):
        self.fed.append({k: tuple(np.asarray(v).shape) for k, v in inputs.items()})
        return self.model.infer(inputs)


def load(path: Path, labels: list[str] | None = None, **config) -> tuple[VisionModel, Recorder]:
    label_file = ""
    if labels is not None:
        label_file = str(path.parent / f"{path.stem}-names.txt")  # not a name found beside the model
        Path(label_file).write_text("\n".join(labels) + "\n")
    model = Model(str(path), label_file, providers=["cpu"])
    config.setdefault("filters", FilterConfig(confidence_threshold=0.3))
    runner = Recorder(model)
    return VisionModel(runner, model.labels, VisionConfig(**config)), runner


def found(vision: VisionModel, image: np.ndarray = IMAGE) -> list[tuple[str, float, list[float]]]:
    return [(d.class_name, round(d.confidence, 3), [d.x_min, d.y_min, d.x_max, d.y_max]) for d in vision.detect(image)]


def letterbox_to_source(box_xyxy, size: int = 640, src=(720, 1280)) -> np.ndarray:
    """Model-input corner box (square letterboxed input) → source pixels."""
    scale = min(size / src[1], size / src[0])
    pad_y, pad_x = (size - src[0] * scale) / 2, (size - src[1] * scale) / 2
    x0, y0, x1, y1 = box_xyxy
    return np.array([(x0 - pad_x) / scale, (y0 - pad_y) / scale, (x1 - pad_x) / scale, (y1 - pad_y) / scale])


def grid(size: int) -> int:
    return sum((size // s) ** 2 for s in (8, 16, 32))


def background(n: int) -> np.ndarray:
    """(4, n) centre/size boxes of a head's empty candidates: one stride wide, on their own grid cells (as
    a real head's are: measured on NudeNet's YOLOv8n, a median 0.1-0.4 strides from the cell centre)."""
    size = next(s for s in (320, 640, 1280) if n in (grid(s), 3 * grid(s)))
    cells = anchor_centres(size, size, n // grid(size), (8, 16, 32))
    return np.vstack([cells[:, 0], cells[:, 1], cells[:, 2], cells[:, 2]]).astype(np.float32)


# Objects in a 640x640 letterboxed input (1280x720 image: scale 0.5, bars of 140 px): corners, class, score.
OBJECTS = [((100, 200, 300, 400), 1, 0.9), ((400, 250, 600, 330), 2, 0.8), ((50, 150, 90, 230), 0, 0.6)]


def expect(objects=OBJECTS, size: int = 640):
    return [(NAMES[c], s, letterbox_to_source(b, size)) for b, c, s in objects]


def check(got, want, atol: float = 1.0) -> None:
    assert [(n, s) for n, s, _ in got] == [(n, s) for n, s, _ in want], got
    for (_, _, g), (_, _, w) in zip(got, want):
        np.testing.assert_allclose(g, w, atol=atol)


def raw_v8(objects=OBJECTS, n: int = grid(640), classes: int = 3, extra: np.ndarray | None = None) -> np.ndarray:
    """[1, 4+C(+extra), N]: centre boxes in input pixels, class scores, then extra values per candidate."""
    k = 4 + classes + (0 if extra is None else extra.shape[0])
    out = np.zeros((1, k, n), np.float32)
    out[0, :4] = background(n)
    if extra is not None:
        out[0, 4 + classes :] = extra
    for j, ((x0, y0, x1, y1), c, s) in enumerate(objects):
        out[0, :4, j] = ((x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0)
        out[0, 4 + c, j] = s
    return out


def end2end_rows(objects=OBJECTS, n: int = 300, extra: int = 0, centre_norm: float | None = None) -> np.ndarray:
    """[1, N, 6+extra] rows: box (corners, or normalised centre/size when centre_norm = input size), score, class."""
    out = np.zeros((1, n, 6 + extra), np.float32)
    out[0, :, 4] = 0.001
    for j, ((x0, y0, x1, y1), c, s) in enumerate(objects):
        box = (
            (x0, y0, x1, y1)
            if centre_norm is None
            else (
                (x0 + x1) / 2 / centre_norm,
                (y0 + y1) / 2 / centre_norm,
                (x1 - x0) / centre_norm,
                (y1 - y0) / centre_norm,
            )
        )
        out[0, j, :6] = (*box, s, c)
        if extra:
            out[0, j, 6:] = np.linspace(-3, 700, extra)  # mask coefficients / keypoints: not classes
    return out


NCHW = [("images", TensorProto.FLOAT, [1, 3, 640, 640])]
DYNAMIC = [("images", TensorProto.FLOAT, ["batch", 3, "height", "width"])]


# --- YOLO raw -------------------------------------------------------------------------------------------


def test_dynamic_input_runs_at_the_models_imgsz(tmp_path):
    props = ultralytics_props(imgsz=(320, 320))
    objects = [((50, 100, 150, 200), 1, 0.9)]
    path = graph(tmp_path / "dyn.onnx", DYNAMIC, {"output0": raw_v8(objects, grid(320))}, props)
    vision, runner = load(path)
    assert vision.role == "yolo" and vision.input_hw == (320, 320) and vision.resize_mode == "letterbox"
    assert runner.fed[0]["images"] == (1, 3, 320, 320)  # the trial run: stride-aligned, the model's size
    vision.detect(IMAGE)  # a 1280x720 frame at imgsz, padded only to the stride (Ultralytics' rect inference)
    assert runner.fed[-1]["images"] == (1, 3, 192, 320)
    square, runner = load(path, input_size=(320,))  # an input_size set is fed as it is
    check(found(square), expect(objects, 320))
    assert runner.fed[-1]["images"] == (1, 3, 320, 320)


def test_dynamic_input_size_option_and_image_size_fallback(tmp_path):
    objects = [((50, 100, 150, 200), 1, 0.9)]
    path = graph(
        tmp_path / "dyn.onnx",
        DYNAMIC,
        {"output0": raw_v8(objects, grid(320))},
        {k: v for k, v in ultralytics_props().items() if k != "imgsz"},
    )
    vision, runner = load(path, input_size=(320,))
    assert vision.input_hw == (320, 320)
    check(found(vision), expect(objects, 320))
    assert runner.fed[-1]["images"] == (1, 3, 320, 320)
    # No size anywhere: the trial runs at 320 (stride-aligned) and frames follow the image, rounded to 32.
    vision, runner = load(path)
    assert runner.fed[0]["images"] == (1, 3, 320, 320)
    assert any("input_size" in w for w in vision.warnings)
    vision.detect(np.zeros((500, 741, 3), np.uint8))
    assert runner.fed[-1]["images"] == (1, 3, 512, 768)


@pytest.mark.parametrize("half", [False, True])
def test_yolo_v8_raw_with_embedded_names_fp32_and_fp16(tmp_path, half):
    kind = TensorProto.FLOAT16 if half else TensorProto.FLOAT
    path = graph(tmp_path / "v8.onnx", NCHW, {"output0": raw_v8()}, ultralytics_props(), out_types={"output0": kind})
    vision, _ = load(path)
    assert vision.role == "yolo"
    check(found(vision), expect(), atol=1.0 if not half else 1.5)


def test_seg_head_reads_boxes_and_classes_and_ignores_mask_coefficients(tmp_path):
    coeffs = np.random.default_rng(0).normal(0, 3, (32, grid(640))).astype(np.float32)  # beyond [0, 1]
    outputs = {"output0": raw_v8(extra=coeffs), "output1": np.zeros((1, 32, 160, 160), np.float32)}
    path = graph(tmp_path / "seg.onnx", NCHW, outputs, ultralytics_props(task="segment"))
    vision, _ = load(path)
    assert vision.role == "yolo" and vision.decoder.num_classes == 3
    check(found(vision), expect())
    # Without metadata the protos output still says how many values are mask coefficients.
    path = graph(tmp_path / "seg_bare.onnx", NCHW, outputs)
    vision, _ = load(path, list(NAMES.values()))
    check(found(vision), expect())


def test_pose_head_is_a_person_detector_with_its_keypoints(tmp_path):
    names = {0: "person"}
    kpts = np.tile(np.array([320.0, 200.0, 0.9] * 17, np.float32)[:, None], (1, grid(640)))
    out = raw_v8([((100, 200, 300, 400), 0, 0.9)], classes=1, extra=kpts)
    props = {**ultralytics_props(task="pose", kpt=(17, 3)), "names": str(names)}
    path = graph(tmp_path / "pose.onnx", NCHW, {"output0": out}, props)
    vision, _ = load(path)
    assert vision.role == "yolo" and vision.decoder.num_classes == 1
    dets = found(vision)
    assert [(n, s) for n, s, _ in dets] == [("person", 0.9)]
    np.testing.assert_allclose(dets[0][2], letterbox_to_source((100, 200, 300, 400)), atol=1.0)
    assert vision.keypoint_shape == (17, 3) and vision.detect(IMAGE)[0].keypoints.shape == (17, 3)
    # The same output without its metadata was read as 52 classes with keypoint pixels as scores (one box
    # at 1.0): now refused, offering the pose reading (tried at load), which then reads it.
    bare = graph(tmp_path / "pose_bare.onnx", NCHW, {"output0": out})
    with pytest.raises(RoleError, match=r"outside \[0, 1\].*\[task=pose keypoint_shape=17,3\] for a pose head") as err:
        load(bare)
    assert "output output0: float32 [1, 56, 8400]" in str(err.value)
    vision, _ = load(bare, decoder=DecoderConfig(task="pose", keypoint_shape=(17, 3)))
    assert [(n, s) for n, s, _ in found(vision)] == [("0", 0.9)]


@pytest.mark.parametrize("scores_first", [False, True])
def test_split_boxes_and_scores_yolo_nas_and_pp_yoloe(tmp_path, scores_first):
    n = grid(640)
    centres = background(n)
    boxes = np.column_stack([centres[0] - 4, centres[1] - 4, centres[0] + 4, centres[1] + 4])[None]
    scores = np.zeros((1, n, 3), np.float32)
    for j, (box, c, s) in enumerate(OBJECTS):
        boxes[0, 5000 + j] = box
        scores[0, 5000 + j, c] = s
    scores[0, 4000, 1] = 0.85  # a duplicate of the first object: removed by NMS
    boxes[0, 4000] = (102, 202, 302, 402)
    outputs = {"scores": scores.transpose(0, 2, 1) if scores_first else scores, "boxes": boxes.astype(np.float32)}
    vision, _ = load(graph(tmp_path / "nas.onnx", NCHW, outputs), list(NAMES.values()))
    assert vision.role == "yolo"
    check(found(vision), expect())
    # The same boxes written y_min, x_min, y_max, x_max are off their grid cells: refused.
    outputs["boxes"] = outputs["boxes"][..., [1, 0, 3, 2]].copy()
    outputs["boxes"][0, :, :] += np.array([0, 50, 0, 50], np.float32)
    with pytest.raises(RoleError, match="do not follow the YOLO grid"):
        load(graph(tmp_path / "nas_yx.onnx", NCHW, outputs), list(NAMES.values()))


# --- end-to-end [1, N, 6] ---------------------------------------------------------------------------------


def test_end_to_end_corner_rows_yolo26(tmp_path):
    path = graph(
        tmp_path / "yolo26.onnx",
        NCHW,
        {"output0": end2end_rows()},
        ultralytics_props(end2end=True, description="Ultralytics YOLO26n model trained on coco.yaml"),
    )
    vision, _ = load(path)
    assert vision.role == "end2end" and vision.resize_mode == "letterbox"
    check(found(vision), expect())


@pytest.mark.parametrize("task,extra,protos", [("segment", 32, True), ("pose", 51, False)])
def test_end_to_end_seg_and_pose_rows(tmp_path, task, extra, protos):
    outputs = {"output0": end2end_rows(extra=extra)}
    if protos:
        outputs["output1"] = np.zeros((1, 32, 160, 160), np.float32)
    props = ultralytics_props(task=task, end2end=True, kpt=(17, 3) if task == "pose" else None)
    vision, _ = load(graph(tmp_path / f"e2e_{task}.onnx", NCHW, outputs, props))
    check(found(vision), expect())


def test_end_to_end_rtdetr_normalised_centre_boxes_with_stretch(tmp_path):
    # Ultralytics RT-DETR: [1, 300, 6] with normalised cx, cy, w, h; its predictor stretches the image.
    objects = [((128, 64, 384, 320), 2, 0.85)]
    props = ultralytics_props(description="Ultralytics rtdetr-l model trained on coco.yaml")
    path = graph(tmp_path / "rtdetr.onnx", NCHW, {"output0": end2end_rows(objects, centre_norm=640)}, props)
    vision, _ = load(path)
    assert vision.role == "end2end" and vision.resize_mode == "stretch"
    dets = found(vision)
    assert [(n, s) for n, s, _ in dets] == [("dog", 0.85)]
    np.testing.assert_allclose(dets[0][2], [128 * 2, 64 * 720 / 640, 384 * 2, 320 * 720 / 640], atol=1.0)


def test_end_to_end_without_metadata_is_refused_until_box_format_is_given(tmp_path):
    path = graph(tmp_path / "e2e_bare.onnx", NCHW, {"output0": end2end_rows()})
    with pytest.raises(RoleError, match="box_format") as err:
        load(path, list(NAMES.values()))
    assert "output output0: float32 [1, 300, 6]" in str(err.value)
    vision, _ = load(path, list(NAMES.values()), decoder=DecoderConfig(box_format="xyxy"), resize_mode="letterbox")
    check(found(vision), expect())


def test_older_rtdetr_single_tensor_with_names(tmp_path):
    out = np.zeros((1, 300, 4 + 3), np.float32)
    out[0, 0, :4] = (0.5, 0.5, 0.25, 0.5)
    out[0, 0, 4 + 1] = 0.75
    props = ultralytics_props(description="Ultralytics rtdetr-l model trained on coco.yaml")
    vision, _ = load(graph(tmp_path / "rtdetr_old.onnx", NCHW, {"output0": out}, props))
    assert vision.role == "detr"
    dets = found(vision)
    assert [(n, s) for n, s, _ in dets] == [("car", 0.75)]
    np.testing.assert_allclose(dets[0][2], [480, 180, 800, 540], atol=1.0)


# --- DETR family ------------------------------------------------------------------------------------------


def detr_outputs(queries: int, classes: int, objects, no_object: bool, box_name: str, logit_name: str):
    boxes = np.full((1, queries, 4), 0.5, np.float32)
    boxes[0, :, 2:] = 0.1
    logits = np.full((1, queries, classes + int(no_object)), -6.0, np.float32)
    if no_object:
        logits[0, :, -1] = 4.0  # every empty query says "no object"
    for j, (cxcywh, c, logit) in enumerate(objects):
        boxes[0, j] = cxcywh
        logits[0, j, c] = logit
    return {logit_name: logits, box_name: boxes}


def test_hugging_face_detr_softmax_with_no_object_class(tmp_path):
    objects = [((0.5, 0.5, 0.2, 0.4), 1, 8.0)]
    path = graph(
        tmp_path / "detr.onnx",
        [("pixel_values", TensorProto.FLOAT, ["b", 3, "h", "w"])],
        detr_outputs(100, 3, objects, True, "pred_boxes", "logits"),
    )
    with pytest.raises(RoleError, match="score_activation") as err:
        load(path)  # logits without labels: sigmoid or softmax cannot be told apart
    assert "output logits: float32 [1, 100, 4]" in str(err.value)
    vision, runner = load(path, ["person", "car", "dog"])
    assert vision.role == "detr" and vision.decoder.activation == "softmax" and vision.decoder.no_object
    dets = found(vision)
    assert runner.fed[-1]["pixel_values"] == (1, 3, 720, 1280)  # open input: the image itself
    expected_score = np.exp(8.0) / (np.exp(8.0) + np.exp(4.0) + 2 * np.exp(-6.0))
    assert [(n, s) for n, s, _ in dets] == [("car", round(expected_score, 3))]
    np.testing.assert_allclose(dets[0][2], [512, 216, 768, 504], atol=1.0)
    vision, _ = load(path, decoder=DecoderConfig(score_activation="softmax"))
    assert [n for n, _, _ in found(vision)] == ["1"]


def test_rf_detr_sigmoid_logits_need_nothing(tmp_path):
    objects = [((0.25, 0.75, 0.1, 0.2), 1, 3.0), ((0.6, 0.4, 0.2, 0.2), 18, 1.0)]
    path = graph(
        tmp_path / "rfdetr.onnx",
        [("input", TensorProto.FLOAT, [1, 3, 560, 560])],
        detr_outputs(300, 91, objects, False, "dets", "labels"),
    )
    vision, _ = load(path)
    assert vision.role == "detr" and vision.decoder.activation == "sigmoid"
    dets = found(vision)
    sig = lambda v: round(1 / (1 + np.exp(-v)), 3)  # noqa: E731
    assert [(n, s) for n, s, _ in dets] == [("1", sig(3.0)), ("18", sig(1.0))]
    np.testing.assert_allclose(dets[0][2], [0.2 * 1280, 0.65 * 720, 0.3 * 1280, 0.85 * 720], atol=1.0)


def test_official_rtdetr_dfine_export_gets_orig_target_sizes(tmp_path):
    """images + orig_target_sizes (int64 [1, 2], w then h) → labels, boxes (corners scaled by the sizes),
    scores: the boxes are computed from the size input, so a wrong fill gives wrong boxes."""
    norm = np.zeros((1, 300, 4), np.float32)
    norm[0, 0] = (0.25, 0.5, 0.5, 0.75)
    scores = np.zeros((1, 300), np.float32)
    scores[0, 0] = 0.88
    labels = np.zeros((1, 300), np.float32)
    labels[0, 0] = 2
    nodes = [
        helper.make_node("Cast", ["orig_target_sizes"], ["sz"], to=TensorProto.FLOAT),
        helper.make_node("Concat", ["sz", "sz"], ["sz4"], axis=1),
        helper.make_node("Unsqueeze", ["sz4", "ax"], ["sz4u"]),
        helper.make_node("Mul", ["norm", "sz4u"], ["boxes"]),
        helper.make_node("ReduceSum", ["images"], ["s"], keepdims=0),
        helper.make_node("Mul", ["s", "zero"], ["z"]),
        helper.make_node("Add", ["sc", "z"], ["scores"]),
        helper.make_node("Add", ["lb", "z"], ["lbf"]),
        helper.make_node("Cast", ["lbf"], ["labels"], to=TensorProto.INT64),
    ]
    inits = [
        numpy_helper.from_array(norm, "norm"),
        numpy_helper.from_array(scores, "sc"),
        numpy_helper.from_array(labels, "lb"),
        numpy_helper.from_array(np.array(0.0, np.float32), "zero"),
        numpy_helper.from_array(np.array([1], np.int64), "ax"),
    ]
    ins = [
        helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 640, 640]),
        helper.make_tensor_value_info("orig_target_sizes", TensorProto.INT64, [1, 2]),
    ]
    outs = [
        helper.make_tensor_value_info("labels", TensorProto.INT64, [1, 300]),
        helper.make_tensor_value_info("boxes", TensorProto.FLOAT, [1, 300, 4]),
        helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, 300]),
    ]
    g = helper.make_graph(nodes, "dfine", ins, outs, inits)
    path = tmp_path / "dfine.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), path)
    vision, runner = load(path, ["person", "car", "dog"])
    assert vision.role == "detector" and vision.decoder.box_order == (0, 1, 2, 3)
    dets = found(vision)
    assert runner.fed[-1]["orig_target_sizes"] == (1, 2)
    assert [(n, s) for n, s, _ in dets] == [("dog", 0.88)]
    np.testing.assert_allclose(dets[0][2], [0.25 * 1280, 0.5 * 720, 0.5 * 1280, 0.75 * 720], atol=1.0)


def test_torchvision_detector_with_a_3d_input(tmp_path):
    boxes = np.array([[100, 50, 300, 250], [10, 10, 20, 20]], np.float32)  # x0, y0, x1, y1 in input pixels
    outputs = {"boxes": boxes, "labels": np.array([3, 1], np.float32), "scores": np.array([0.9, 0.2], np.float32)}
    path = graph(
        tmp_path / "tv.onnx",
        [("images", TensorProto.FLOAT, [3, "h", "w"])],
        outputs,
        out_types={"labels": TensorProto.INT64},
    )
    vision, runner = load(path)
    assert vision.role == "detector" and vision.decoder.box_order == (0, 1, 2, 3) and not vision.layout.batched
    dets = found(vision)
    assert runner.fed[-1]["images"] == (3, 720, 1280)
    assert [(n, s) for n, s, _ in dets] == [("3", 0.9)]
    np.testing.assert_allclose(dets[0][2], [100, 50, 300, 250], atol=1e-3)
    # The node's old box_order default (TFLite's y_min, x_min, ...) is not applied to torchvision's corners.
    vision, _ = load(path, decoder=DecoderConfig(box_order=(1, 0, 3, 2)))
    np.testing.assert_allclose(found(vision)[0][2], [100, 50, 300, 250], atol=1e-3)


# --- refusals ---------------------------------------------------------------------------------------------


def test_blazeface_like_anchor_outputs_are_refused_with_no_option(tmp_path):
    rng = np.random.default_rng(1)
    outputs = {
        "regressors": rng.normal(0, 20, (1, 896, 16)).astype(np.float32),
        "classificators": rng.normal(0, 5, (1, 896, 1)).astype(np.float32),
    }
    path = graph(tmp_path / "blaze.onnx", [("input", TensorProto.FLOAT, [1, 128, 128, 3])], outputs)
    with pytest.raises(RoleError) as err:
        load(path)
    text = str(err.value)
    assert "output regressors: float32 [1, 896, 16]" in text and "No option can help" in text
    # Boxes as 4 anchor offsets next to logits: read as DETR-like, refused on the box values.
    outputs = {"boxes": rng.normal(0, 20, (1, 896, 4)).astype(np.float32), "scores": outputs["classificators"]}
    with pytest.raises(RoleError, match="anchor-relative.*no option can help"):
        load(graph(tmp_path / "blaze4.onnx", [("input", TensorProto.FLOAT, [1, 128, 128, 3])], outputs))


def test_raw_head_offsets_are_not_taken_for_decoded_boxes(tmp_path):
    """A YOLOX export without decode_in_inference: [1, 8400, 5+C] rows of grid-cell offsets, objectness and
    class scores (all in range): the boxes would be confident garbage in the top-left corner."""
    rng = np.random.default_rng(3)
    out = np.zeros((1, grid(640), 5 + 3), np.float32)
    out[0, :, :2] = rng.uniform(-0.5, 1.5, (grid(640), 2))  # offsets within the cell, in cells
    out[0, :, 2:4] = rng.uniform(0.1, 2.0, (grid(640), 2))  # sizes in cells
    out[0, :, 4:] = rng.uniform(0, 1, (grid(640), 4))
    with pytest.raises(RoleError, match="do not follow the YOLO grid.*No option can help"):
        load(graph(tmp_path / "yolox_raw.onnx", NCHW, {"output": out}), list(NAMES.values()))
    out[0, :, :4] = background(grid(640)).T  # the same head with its boxes decoded: YOLOX's export with decoding,
    path = graph(tmp_path / "yolox.onnx", NCHW, {"output": out})  # which nothing says how to feed
    with pytest.raises(RoleError, match=r"\[input_bgr=true input_range=byte letterbox_position=top_left\] for YOLOX"):
        load(path, list(NAMES.values()))
    yolox = PreprocessConfig(bgr=True, input_range="byte", pad_corner="top_left")
    vision, _ = load(path, list(NAMES.values()), preprocess=yolox)  # YOLOX's preproc, as the refusal names it
    assert vision.role == "yolo" and vision.decoder.has_objectness and vision.resize_mode == "letterbox"
    vision, _ = load(path, list(NAMES.values()), decoder=DecoderConfig(yolo_format="v5"))  # or RGB [0, 1]
    assert vision.role == "yolo" and vision.decoder.has_objectness


def test_ocr_recogniser_is_not_taken_for_yolo(tmp_path):
    probs = np.full((1, 40, 97), 1 / 97, np.float32)
    path = graph(tmp_path / "rec.onnx", [("x", TensorProto.FLOAT, ["b", 3, 48, "w"])], {"softmax_0.tmp_0": probs})
    with pytest.raises(RoleError, match="No option can help") as err:
        load(path)
    assert "[1, 40, 97]" in str(err.value)


def test_scores_above_one_are_refused_not_rescaled(tmp_path):
    boxes = np.array([[[0.1, 0.1, 0.5, 0.5]]], np.float32)
    outputs = {
        "location": boxes,
        "category": np.array([[1.0]], np.float32),
        "score": np.array([[87.0]], np.float32),
        "count": np.array([1.0], np.float32),
    }
    path = graph(tmp_path / "pct.onnx", [("images", TensorProto.FLOAT, [1, 300, 300, 3])], outputs)
    with pytest.raises(RoleError, match=r"range from 87 to 87, outside \[0, 1\].*remap_output_names"):
        load(path)
    # Class ids in the score tensor's place (swapped outputs) are refused the same way.
    outputs = {"location": boxes, "category": np.array([[0.7]], np.float32), "score": np.array([[3.0]], np.float32)}
    with pytest.raises(RoleError, match="remap_output_names"):
        load(graph(tmp_path / "swap.onnx", [("images", TensorProto.FLOAT, [1, 300, 300, 3])], outputs))


def test_huge_declared_input_is_refused_before_allocation(tmp_path):
    path = graph(
        tmp_path / "huge.onnx",
        [("images", TensorProto.FLOAT, [1, 3, 4097, 4097])],
        {"probability": np.ones((1, 2), np.float32) / 2},
    )
    with pytest.raises(RoleError, match="above max_input_pixels \\(16777216\\)"):
        load(path)
    with pytest.raises(RoleError, match="max_input_pixels \\(1000\\)"):  # the cap is settable
        load(
            graph(tmp_path / "small.onnx", DYNAMIC, {"probability": np.ones((1, 2), np.float32) / 2}),
            max_input_pixels=1000,
        )


def test_every_refusal_names_an_option_only_where_one_helps(tmp_path):
    rng = np.random.default_rng(2)
    path = graph(
        tmp_path / "embedding.onnx",
        NCHW,
        {"a": rng.normal(size=(1, 7, 7)).astype(np.float32), "b": rng.normal(size=(1, 5)).astype(np.float32)},
    )
    with pytest.raises(RoleError) as err:
        load(path)
    assert "Set model_type, remap_output_names or box_order" not in str(err.value)
    assert "No option can help" in str(err.value)


# --- classifiers ------------------------------------------------------------------------------------------


def test_center_crop_keeps_the_centre_of_the_shorter_side():
    layout = InputLayout.from_spec(type("S", (), {"name": "x", "data_type": "uint8", "shape": [1, 224, 224, 3]})())
    rgb = np.zeros((400, 800, 3), np.uint8)
    rgb[:, 400 - 175 : 400 + 175] = 200  # the central 350 x 350 square (0.875 of the 400 px shorter side)
    tensor, transform = preprocess(rgb, layout, PreprocessConfig(center_crop=True, crop_fraction=0.875))
    assert tensor.shape == (1, 224, 224, 3)
    assert tensor[0, 2:-2, 2:-2].min() == 200  # the crop is exactly the bright square
    corners = transform.to_source(np.array([[0.0, 0.0, 224.0, 224.0]]))
    np.testing.assert_allclose(corners[0], [225, 25, 575, 375], atol=0.5)
    half, _ = preprocess(rgb, layout, PreprocessConfig(center_crop=True, crop_fraction=0.5))
    assert half[0].min() == 200
    stretched, _ = preprocess(rgb, layout, PreprocessConfig())
    assert stretched[0].min() == 0  # the whole image, bars included


def test_bundled_classifier_uses_centre_crop_and_others_stretch(tmp_path):
    for name in ("efficientnet_lite0", "efficientnet_lite0_tflite"):
        model = Model(name, providers=["cpu"])
        vision = VisionModel(model, model.labels)
        assert vision.role == "classifier" and vision.resize_mode == "center_crop"
        forced = VisionModel(model, model.labels, VisionConfig(resize_mode="stretch"))
        assert forced.resize_mode == "stretch"
    from skimage import data

    model = Model("efficientnet_lite0", providers=["cpu"])
    top = VisionModel(model, model.labels, VisionConfig(filters=FilterConfig(0.0))).classify(data.chelsea(), 3)
    assert {c.class_name for c in top} & {"Egyptian cat", "tabby", "tiger cat"}
    path = graph(
        tmp_path / "cls.onnx",
        [("images", TensorProto.FLOAT, [1, 3, 32, 32])],
        {"probability": np.array([[0.1, 0.7, 0.2]], np.float32)},
    )
    vision, _ = load(path, ["a", "b", "c"])
    assert vision.role == "classifier" and vision.resize_mode == "stretch"
    assert [(c.class_index, c.class_name) for c in vision.classify(IMAGE, 1)] == [(1, "b")]


def test_ultralytics_classifier_crops_the_whole_shorter_side(tmp_path):
    props = {**ultralytics_props(task="classify", imgsz=(224, 224)), "names": str({0: "a", 1: "b"})}
    path = graph(
        tmp_path / "cls.onnx",
        [("images", TensorProto.FLOAT, [1, 3, 224, 224])],
        {"output0": np.array([[0.3, 0.7]], np.float32)},
        props,
    )
    vision, _ = load(path)
    assert vision.role == "classifier" and vision.resize_mode == "center_crop" and vision._pre.crop_fraction == 1.0
    assert [(c.class_index, c.class_name) for c in vision.classify(IMAGE, 1)] == [(1, "b")]


def test_unknown_extra_inputs_are_refused_not_guessed(tmp_path):
    """PaddleDetection's im_shape (h, w) and scale_factor: not an orig_target_sizes (w, h) to be filled."""
    inputs = [
        ("image", TensorProto.FLOAT, [1, 3, 640, 640]),
        ("im_shape", TensorProto.FLOAT, [1, 2]),
        ("scale_factor", TensorProto.FLOAT, [1, 2]),
    ]
    path = graph(tmp_path / "ppyoloe.onnx", inputs, {"multiclass_nms3_0.tmp_0": np.zeros((1, 6), np.float32)})
    with pytest.raises(RoleError, match="'im_shape'.*no option can help"):
        load(path)


def test_classifier_score_activation_option(tmp_path):
    path = graph(
        tmp_path / "logit.onnx",
        [("images", TensorProto.FLOAT, [1, 3, 32, 32])],
        {"logits": np.array([[0.2, 0.9, 0.4]], np.float32)},
    )  # logits that happen to lie in [0, 1]
    plain, _ = load(path, ["a", "b", "c"], filters=FilterConfig(confidence_threshold=0.0))
    assert plain.classify(IMAGE, 1)[0].confidence == pytest.approx(0.9)
    soft, _ = load(
        path,
        ["a", "b", "c"],
        filters=FilterConfig(confidence_threshold=0.0),
        decoder=DecoderConfig(score_activation="softmax"),
    )
    e = np.exp([0.2, 0.9, 0.4])
    assert soft.classify(IMAGE, 1)[0].confidence == pytest.approx(e[1] / e.sum())


# --- a real export shipped on the package registry --------------------------------------------------------


def test_nudenet_dynamic_yolov8_runs_at_its_imgsz_and_matches_its_own_pipeline(tmp_path):
    """NudeNet ships an Ultralytics YOLOv8n export with open input dimensions and imgsz 320."""
    nudenet = pytest.importorskip("nudenet")
    import cv2
    from skimage import data

    path = Path(nudenet.__file__).parent / "320n.onnx"
    model = Model(str(path), providers=["cpu"])
    runner = Recorder(model)
    vision = VisionModel(
        runner,
        model.labels,
        VisionConfig(filters=FilterConfig(confidence_threshold=0.3), decoder=DecoderConfig(agnostic_nms=True)),
    )
    assert vision.role == "yolo" and vision.input_hw == (320, 320) and runner.fed[0]["images"] == (1, 3, 320, 320)
    detector = nudenet.NudeDetector()
    # NudeNet's own pipeline feeds BGR (its cvtColor RGBA2BGR swaps a 3-channel image) and pads right/bottom.
    same = VisionModel(
        runner,
        model.labels,
        VisionConfig(
            filters=FilterConfig(confidence_threshold=0.2),
            decoder=DecoderConfig(agnostic_nms=True),
            preprocess=PreprocessConfig(bgr=True),
            input_size=(320,),  # NudeNet pads every image to a 320 square (Ultralytics' predictor would not)
        ),
    )
    for crop, box_tol, score_tol in ((512, 2, 0.01), (400, 4, 0.05)):
        rgb = np.ascontiguousarray(data.astronaut()[:crop])
        image_path = tmp_path / f"astronaut_{crop}.png"
        cv2.imwrite(str(image_path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        theirs = detector.detect(str(image_path))
        ours = same.detect(rgb)
        assert runner.fed[-1]["images"] == (1, 3, 320, 320)
        assert "FACE_FEMALE" in [d.class_name for d in ours]
        assert sorted(d.class_name for d in ours) == sorted(d["class"] for d in theirs)
        for d in ours:
            match = next(t for t in theirs if t["class"] == d.class_name)
            x, y, w, h = match["box"]
            np.testing.assert_allclose([d.x_min, d.y_min, d.x_max, d.y_max], [x, y, x + w, y + h], atol=box_tol)
            assert d.confidence == pytest.approx(match["score"], abs=score_tol)
    # RGB (what Ultralytics models take), the default: the same face, in the same place.
    face = [d for d in vision.detect(data.astronaut()) if d.class_name == "FACE_FEMALE"]
    assert face and face[0].confidence > 0.5
    np.testing.assert_allclose([face[0].x_min, face[0].y_min], [173, 82], atol=3)
