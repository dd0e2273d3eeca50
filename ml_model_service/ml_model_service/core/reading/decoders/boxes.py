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
    keep = np.flatnonzero(scores >= config.nms_score_threshold)
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
        idx = cv2.dnn.NMSBoxes(*args, config.nms_score_threshold, config.iou_threshold)
    else:
        idx = cv2.dnn.NMSBoxesBatched(
            *args, classes.astype(int).tolist(), config.nms_score_threshold, config.iou_threshold
        )
    kept = np.asarray(idx, dtype=np.int64).reshape(-1)
    kept = kept[np.argsort(-scores[kept], kind="stable")]
    return kept[: max(config.max_detections, 0)]


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
