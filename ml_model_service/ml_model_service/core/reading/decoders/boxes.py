"""Boxes: units and formats made source-image corners, the best candidates without NMS (`top`) or with
OpenCV's NMS (`nms`), and the candidate grid of a YOLO head (`grid_counts`, `anchor_centres`), which tells a
raw YOLO output from other layouts."""

from __future__ import annotations

import math

import cv2
import numpy as np

from ..preprocess import Transform
from .base import DecoderConfig, RawDetections


def input_pixels(boxes: np.ndarray, units: str, transform: Transform) -> np.ndarray:
    """Proportional boxes → pixels of the model input; 'auto' takes boxes within [0, 1.5] as proportional."""
    if units == "proportional" or (units == "auto" and (boxes.size == 0 or float(np.abs(boxes).max()) <= 1.5)):
        boxes = boxes * np.array([transform.input_width, transform.input_height] * 2, dtype=np.float64)
    return boxes


def to_corners(boxes: np.ndarray, box_format: str) -> np.ndarray:
    """(N, 4) boxes → x_min, y_min, x_max, y_max."""
    boxes = boxes.astype(np.float64)
    if box_format == "cxcywh":
        return np.column_stack(
            [
                boxes[:, 0] - boxes[:, 2] / 2,
                boxes[:, 1] - boxes[:, 3] / 2,
                boxes[:, 0] + boxes[:, 2] / 2,
                boxes[:, 1] + boxes[:, 3] / 2,
            ]
        )
    return boxes


def top(
    boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray, config: DecoderConfig, transform: Transform, units: str
) -> RawDetections:
    """Candidates above the pre-filter score, best first, at most max_detections (no NMS)."""
    keep = np.flatnonzero(scores >= config.prefilter)
    keep = keep[np.argsort(-scores[keep], kind="stable")][: max(config.max_detections, 0)]
    if keep.size == 0:
        return RawDetections.empty()
    pixels = input_pixels(boxes[keep], units, transform)
    return RawDetections(
        transform.to_source(pixels), scores[keep].astype(np.float64), classes[keep].astype(np.int64), rows=keep
    )


def nms(boxes_xyxy: np.ndarray, scores: np.ndarray, classes: np.ndarray, config: DecoderConfig) -> np.ndarray:
    """Indices kept by OpenCV's NMS (per class unless agnostic), best first, at most max_detections."""
    xywh = np.column_stack([boxes_xyxy[:, :2], boxes_xyxy[:, 2:] - boxes_xyxy[:, :2]]).tolist()
    args = (xywh, scores.astype(float).tolist())
    idx: object
    if config.agnostic_nms:
        idx = cv2.dnn.NMSBoxes(*args, config.prefilter, config.iou_threshold)
    else:
        idx = cv2.dnn.NMSBoxesBatched(*args, classes.astype(int).tolist(), config.prefilter, config.iou_threshold)
    kept = np.asarray(idx, dtype=np.int64).reshape(-1)
    kept = kept[np.argsort(-scores[kept], kind="stable")]
    return kept[: max(config.max_detections, 0)]


def rotated_corners(xywhr: np.ndarray) -> np.ndarray:
    """(N, 4, 2) corners of oriented boxes: the width runs along (cos theta, sin theta) in image axes."""
    c, s = np.cos(xywhr[:, 4]), np.sin(xywhr[:, 4])
    half_w = np.stack([c, s], axis=1) * (xywhr[:, 2:3] / 2)
    half_h = np.stack([-s, c], axis=1) * (xywhr[:, 3:4] / 2)
    centre = xywhr[:, :2]
    return np.stack(
        [centre + half_w + half_h, centre + half_w - half_h, centre - half_w - half_h, centre - half_w + half_h], axis=1
    )


def rotated_to_source(xywhr: np.ndarray, transform: Transform) -> tuple[np.ndarray, np.ndarray]:
    """Oriented boxes in model-input pixels → (the same in source pixels, theta kept in the model's own half
    turn; their axis-aligned envelopes as x_min, y_min, x_max, y_max clipped to the image). Exact for the uniform
    scale of letterbox and crop; under a stretch a rotated rectangle becomes a parallelogram, read as its sides'
    mean."""
    corners = rotated_corners(np.asarray(xywhr, np.float64))
    corners[..., 0] = (corners[..., 0] - transform.pad_x) / transform.scale_x
    corners[..., 1] = (corners[..., 1] - transform.pad_y) / transform.scale_y
    centre = corners.mean(axis=1)
    side_w = (corners[:, 0] - corners[:, 3] + corners[:, 1] - corners[:, 2]) / 2
    side_h = (corners[:, 0] - corners[:, 1] + corners[:, 3] - corners[:, 2]) / 2
    source = np.column_stack([centre, np.hypot(*side_w.T), np.hypot(*side_h.T), np.arctan2(side_w[:, 1], side_w[:, 0])])
    envelope = np.column_stack(
        [corners[..., 0].min(1), corners[..., 1].min(1), corners[..., 0].max(1), corners[..., 1].max(1)]
    )
    envelope[:, [0, 2]] = np.clip(envelope[:, [0, 2]], 0, transform.source_width)
    envelope[:, [1, 3]] = np.clip(envelope[:, [1, 3]], 0, transform.source_height)
    return source, envelope


def probiou(a: np.ndarray, b: np.ndarray, eps: float = 1e-7) -> np.ndarray:
    """(N, M) ProbIoU of oriented boxes (xywhr): one minus the Hellinger distance of their Gaussians (Llerena
    et al. 2021), the overlap Ultralytics' OBB NMS uses, so rotated NMS keeps what the exporter's pipeline does."""

    def cov(boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        va, vb = boxes[:, 2] ** 2 / 12, boxes[:, 3] ** 2 / 12
        c, s = np.cos(boxes[:, 4]), np.sin(boxes[:, 4])
        return va * c**2 + vb * s**2, va * s**2 + vb * c**2, (va - vb) * c * s

    a1, b1, c1 = (v[:, None] for v in cov(a))
    a2, b2, c2 = (v[None] for v in cov(b))
    dx, dy = a[:, None, 0] - b[None, :, 0], a[:, None, 1] - b[None, :, 1]
    den = (a1 + a2) * (b1 + b2) - (c1 + c2) ** 2 + eps
    t1 = ((a1 + a2) * dy**2 + (b1 + b2) * dx**2) / den * 0.25
    t2 = ((c1 + c2) * (-dx) * dy) / den * 0.5
    det = np.sqrt(np.clip(a1 * b1 - c1**2, 0, None) * np.clip(a2 * b2 - c2**2, 0, None))
    t3 = np.log(den / (4 * det + eps) + eps) * 0.5
    distance = np.clip(t1 + t2 + t3, eps, 100.0)
    return 1 - np.sqrt(1.0 - np.exp(-distance) + eps)


#: Class offset of rotated NMS (boxes of different classes never overlap), as Ultralytics' max_wh.
_CLASS_OFFSET = 7680.0


def rotated_nms(xywhr: np.ndarray, scores: np.ndarray, classes: np.ndarray, config: DecoderConfig) -> np.ndarray:
    """Indices kept by rotated NMS on ProbIoU, best first, at most max_detections: a box goes when a better one
    overlaps it above iou_threshold (per class unless agnostic), in blocks so memory stays O(block x N)."""
    if not len(scores):
        return np.zeros(0, np.int64)
    order = np.argsort(-scores, kind="stable")
    boxes = np.asarray(xywhr, np.float64)[order].copy()
    if not config.agnostic_nms:
        boxes[:, 0] += classes[order] * _CLASS_OFFSET
    worst = np.zeros(len(boxes))
    for start in range(0, len(boxes), 512):
        block = probiou(boxes[start : start + 512], boxes)
        rows = np.arange(start, start + len(block))[:, None]
        block[np.arange(len(boxes))[None] <= rows] = 0.0  # only better (earlier) boxes suppress
        worst = np.maximum(worst, block.max(axis=0))
    kept = order[worst <= config.iou_threshold]
    return kept[: max(config.max_detections, 0)]


def keypoints_to_source(values: np.ndarray, shape: tuple[int, int], transform: Transform) -> np.ndarray:
    """(N, K*D) keypoint values in model-input pixels → (N, K, 3) x, y in source pixels (clipped to the
    image, as Ultralytics does) and score (1 where the model gives none: D == 2)."""
    k, d = shape
    points = np.asarray(values, np.float64).reshape(len(values), k, d)
    out = np.ones((len(values), k, 3))
    out[..., 0] = np.clip((points[..., 0] - transform.pad_x) / transform.scale_x, 0, transform.source_width)
    out[..., 1] = np.clip((points[..., 1] - transform.pad_y) / transform.scale_y, 0, transform.source_height)
    if d == 3:
        out[..., 2] = points[..., 2]
    return out


_STRIDES = ((8, 16, 32), (8, 16, 32, 64))  # P5 and P6 heads


def grid_counts(height: int, width: int) -> dict[int, tuple[int, tuple[int, ...]]]:
    """Candidate counts a raw YOLO head gives for an input size → (anchors per cell (1: v8/v11, 3: v5/v7),
    strides), for P5 (strides 8-32) and P6 (8-64) heads."""
    counts: dict[int, tuple[int, tuple[int, ...]]] = {}
    for strides in _STRIDES:
        cells = sum(math.ceil(height / s) * math.ceil(width / s) for s in strides)
        counts.setdefault(cells, (1, strides))
        counts.setdefault(3 * cells, (3, strides))
    return counts


def anchor_centres(height: int, width: int, per_cell: int, strides: tuple[int, ...]) -> np.ndarray:
    """(N, 3) x, y, stride of each candidate's grid cell centre, in a YOLO head's output order (per stride
    level; anchors, then rows, then columns)."""
    parts = []
    for s in strides:
        ny, nx = math.ceil(height / s), math.ceil(width / s)
        yy, xx = np.meshgrid(np.arange(ny), np.arange(nx), indexing="ij")
        cell = np.column_stack([(xx.ravel() + 0.5) * s, (yy.ravel() + 0.5) * s, np.full(ny * nx, float(s))])
        parts.extend([cell] * per_cell)
    return np.concatenate(parts)
