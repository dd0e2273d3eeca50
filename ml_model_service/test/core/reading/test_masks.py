"""Instance masks: segmentation graphs built here with known masks give those masks in source pixels
(through the letterbox), the instance image numbers them like the detections, and object clouds built from
masks leave the wall behind a thin object out.

The models are ONNX graphs whose outputs are designed (YOLOv8-seg: coefficients + prototypes; YOLO26-seg
end-to-end rows + prototypes; torchvision Mask R-CNN: per-detection masks), run by the same `Model` +
`VisionModel` code the node uses.
"""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto
from test_byom_layouts import IMAGE, NCHW, OBJECTS, end2end_rows, graph, grid, load, raw_v8, ultralytics_props

from ml_model_service.core.frames import pipeline
from ml_model_service.core.reading import masks
from ml_model_service.core.reading.vision import Detection
from ml_model_service_dev.harness import scenes

SIZE = 640  # model input; the 1280x720 source is letterboxed: scale 0.5, 140-pixel bars top and bottom
SCALE, PAD_Y = 0.5, 140.0


def disc(cx: float, cy: float, r: float, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    return (xs - cx) ** 2 + (ys - cy) ** 2 <= r * r


def shapes_in_input(xs: np.ndarray, ys: np.ndarray) -> list[np.ndarray]:
    """Each designed object's true shape at model-input coordinates (xs, ys): a disc inside object 0's box,
    a ring inside object 1's box, a disc larger than object 2's box (so the box crop shows)."""
    ring = disc(500, 290, 38, xs, ys) & ~disc(500, 290, 20, xs, ys)
    return [disc(200, 300, 80, xs, ys), ring, disc(70, 190, 60, xs, ys)]


def seg_outputs(nm: int = 32, proto_hw: int = 160) -> tuple[np.ndarray, np.ndarray]:
    """Prototypes [1, nm, 160, 160]: prototype j = +12 inside object j's shape, -12 outside; each object's
    coefficients select its prototype (others random, on prototypes that are zero)."""
    centres = (np.arange(proto_hw) + 0.5) * (SIZE / proto_hw)
    xs, ys = np.meshgrid(centres, centres)
    protos = np.zeros((1, nm, proto_hw, proto_hw), np.float32)
    for j, shape in enumerate(shapes_in_input(xs, ys)):
        protos[0, j] = np.where(shape, 12.0, -12.0)
    coeffs = np.zeros((nm, len(OBJECTS)), np.float32)
    coeffs[: len(OBJECTS)] = np.eye(len(OBJECTS))
    coeffs[len(OBJECTS) :] = np.random.default_rng(1).normal(0, 2, (nm - len(OBJECTS), len(OBJECTS)))
    return coeffs, protos


def expected_source_masks() -> list[np.ndarray]:
    """The true shapes in the 1280x720 source image, each cropped to its object's box."""
    ys, xs = np.mgrid[0:720, 0:1280].astype(np.float64)
    mx, my = (xs + 0.5) * SCALE, (ys + 0.5) * SCALE + PAD_Y  # source pixel centre → model input
    out = []
    for shape, ((x0, y0, x1, y1), _, _) in zip(shapes_in_input(mx, my), OBJECTS):
        out.append(shape & (mx >= x0) & (mx <= x1) & (my >= y0) & (my <= y1))
    return out


def check_masks(dets: list[Detection], min_iou: float = 0.9) -> None:
    """Masks match the true shapes (IoU: the thin ring loses some to the 4-pixel prototype grid), centred
    on them to a pixel (no letterbox offset), and stop at the box."""
    want = expected_source_masks()
    by_score = {s: i for i, (_, _, s) in enumerate(OBJECTS)}
    assert len(dets) == len(OBJECTS)
    for d in dets:
        truth = want[by_score[round(d.confidence, 3)]]
        assert d.mask is not None and d.mask.shape == (720, 1280)
        got = d.mask.full()
        assert masks.iou(got, truth) >= min_iou, (d.class_name, masks.iou(got, truth))
        np.testing.assert_allclose(np.argwhere(got).mean(0), np.argwhere(truth).mean(0), atol=1.0)
        x0, y0, x1, y1 = masks.box_pixels(d.box, 1280, 720)
        outside = got.copy()
        outside[y0:y1, x0:x1] = False
        assert not outside.any()  # cropped to the box


def yolo_seg_model(tmp_path, nm: int = 32):
    coeffs, protos = seg_outputs(nm)
    extra = np.random.default_rng(0).normal(0, 3, (nm, grid(SIZE))).astype(np.float32)
    extra[:, : len(OBJECTS)] = coeffs  # the objects are candidates 0..2 (see raw_v8)
    outputs = {"output0": raw_v8(extra=extra), "output1": protos}
    return graph(tmp_path / "seg.onnx", NCHW, outputs, ultralytics_props(task="segment"))


def test_yolov8_seg_masks_through_the_letterbox(tmp_path):
    vision, _ = load(yolo_seg_model(tmp_path))
    assert vision.segments
    dets = vision.detect(IMAGE)
    check_masks(dets)
    # Object 2's disc is larger than its box: the mask stops at the box.
    small = next(d for d in dets if round(d.confidence, 3) == 0.6)
    assert small.mask.area == pytest.approx(expected_source_masks()[2].sum(), rel=0.05)
    assert small.to_dict()["mask_pixels"] == small.mask.area  # the CLI's JSON says how many pixels


def test_masks_off_leaves_detections_unchanged(tmp_path):
    from ml_model_service.core.reading.vision import FilterConfig

    path = yolo_seg_model(tmp_path)
    with_masks, _ = load(path)
    without, _ = load(path, masks=False, filters=FilterConfig(confidence_threshold=0.3))
    a, b = with_masks.detect(IMAGE), without.detect(IMAGE)
    assert [d.box for d in a] == [d.box for d in b] and all(d.mask is None for d in b)


def test_end_to_end_seg_rows_masks(tmp_path):
    coeffs, protos = seg_outputs()
    rows = end2end_rows(extra=32)
    rows[0, : len(OBJECTS), 6:] = coeffs.T
    path = graph(
        tmp_path / "e2e_seg.onnx",
        NCHW,
        {"output0": rows, "output1": protos},
        ultralytics_props(task="segment", end2end=True),
    )
    vision, _ = load(path)
    assert vision.role == "end2end" and vision.segments
    check_masks(vision.detect(IMAGE))


def test_nhwc_prototypes_of_tflite_exports(tmp_path):
    coeffs, protos = seg_outputs()
    extra = np.zeros((32, grid(SIZE)), np.float32)
    extra[:, : len(OBJECTS)] = coeffs
    outputs = {"output0": raw_v8(extra=extra), "output1": np.ascontiguousarray(protos.transpose(0, 2, 3, 1))}
    vision, _ = load(graph(tmp_path / "seg_nhwc.onnx", NCHW, outputs, ultralytics_props(task="segment")))
    check_masks(vision.detect(IMAGE))


def test_per_detection_masks_of_a_mask_rcnn_layout(tmp_path):
    """torchvision Mask R-CNN: boxes, labels, scores and masks [N, 1, H, W] at the input's size."""
    h, w = 120, 160
    boxes = np.array([[20, 10, 100, 90], [110, 30, 150, 110]], np.float32)
    ys, xs = np.mgrid[0:h, 0:w] + 0.5
    probs = np.zeros((2, 1, h, w), np.float32)
    probs[0, 0] = disc(60, 50, 30, xs, ys) * 0.9
    probs[1, 0] = ((xs > 120) & (xs < 140) & (ys > 40) & (ys < 100)) * 0.8
    outputs = {
        "boxes": boxes,
        "labels": np.array([1, 2], np.float32),
        "scores": np.array([0.9, 0.7], np.float32),
        "masks": probs,
    }
    path = graph(
        tmp_path / "maskrcnn.onnx",
        [("images", TensorProto.FLOAT, [3, h, w])],
        outputs,
        out_types={"labels": TensorProto.INT64},
    )
    vision, _ = load(path)
    assert vision.role == "detector" and vision.segments
    image = np.zeros((240, 320, 3), np.uint8)  # stretched 2x to the 160x120 input
    dets = vision.detect(image)
    assert len(dets) == 2
    ys2, xs2 = np.mgrid[0:240, 0:320] + 0.5
    truth0 = disc(120, 100, 60, xs2, ys2)
    assert masks.iou(dets[0].mask.full(), truth0) > 0.95
    truth1 = (xs2 > 240) & (xs2 < 280) & (ys2 > 80) & (ys2 < 200)
    assert masks.iou(dets[1].mask.full(), truth1) > 0.95


def test_instance_image_numbers_pixels_like_the_detections(tmp_path):
    vision, _ = load(yolo_seg_model(tmp_path))
    r = pipeline.run(vision, IMAGE)
    image = r.instance_image()
    assert image.dtype == np.uint16 and image.shape == (720, 1280)
    for i, d in enumerate(r.detections):
        own = image == i + 1
        # every pixel of the detection's mask is its own unless a more confident detection covers it
        assert np.count_nonzero(own) == np.count_nonzero(d.mask.full() & (image == i + 1))
        assert np.count_nonzero(own) >= 0.95 * d.mask.area
    assert set(np.unique(image)) <= set(range(len(r.detections) + 1))


def test_overlapping_masks_go_to_the_more_confident_detection():
    a = masks.Mask(np.ones((10, 10), bool), 0, 0, (20, 20))
    b = masks.Mask(np.ones((10, 10), bool), 5, 5, (20, 20))
    image = masks.instance_image([a, b], 20, 20)
    assert image[7, 7] == 1 and image[12, 12] == 2 and image[0, 0] == 1 and image[19, 19] == 0


def test_mask_clouds_from_a_seg_model_in_the_pipeline(tmp_path):
    """A seg graph whose mask is the thin frame's true pixels, through the pipeline with depth."""
    thin = scenes.thin_object("frame", width=640, height=640)
    x0, y0, x1, y1 = thin.box
    cover = thin.mask.reshape(160, 4, 160, 4).mean(axis=(1, 3))  # 160x160 prototype over the 640x640 input
    proto = np.where(cover > 0.5, 12.0, -12.0).astype(np.float32)
    protos = np.zeros((1, 32, 160, 160), np.float32)
    protos[0, 0] = proto
    extra = np.zeros((32, grid(SIZE)), np.float32)
    extra[0, 0] = 1.0
    out = raw_v8(objects=[((x0, y0, x1, y1), 0, 0.9)], extra=extra)
    vision, _ = load(
        graph(tmp_path / "thin.onnx", NCHW, {"output0": out, "output1": protos}, ultralytics_props(task="segment"))
    )
    s = thin.scene
    depth = pipeline.Depth(lambda: s.depth, lambda: s.intrinsics)
    r = pipeline.run(vision, s.rgb, depth=depth)
    assert len(r.detections) == 1 and masks.iou(r.detections[0].mask.full(), thin.mask) > 0.85
    (obj,) = r.objects
    assert thin.off_object(obj.points) <= 0.02 * len(obj.points)
    assert obj.detection == 0
