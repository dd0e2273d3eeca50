"""Drawing results on images (debug topic, demo output)."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from ..reading.decoders.boxes import rotated_corners
from ..reading.vision import Classification, Detection


def colour_for(index: int) -> tuple[int, int, int]:
    """A stable, distinct RGB colour per class index."""
    hue = (index * 47) % 180
    hsv = np.array([[[hue, 220, 255]]], dtype=np.uint8)
    r, g, b = (int(c) for c in cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0])
    return r, g, b


def palette(classes: int) -> np.ndarray:
    """(classes, 3) uint8: colour_for of every class index (HSV → RGB in one conversion)."""
    hues = (np.arange(classes) * 47 % 180).astype(np.uint8)
    hsv = np.stack([hues, np.full_like(hues, 220), np.full_like(hues, 255)], axis=-1)[None]
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0]


def overlay_classes(rgb: np.ndarray, classes: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """`rgb` blended with each pixel's class colour (a class map of the image's size), class 0 included."""
    colours = palette(int(classes.max()) + 1 if classes.size else 1)[classes]
    return cv2.addWeighted(rgb, 1.0 - alpha, colours, alpha, 0.0)


def overlay_masks(out: np.ndarray, detections: Sequence[Detection], alpha: float = 0.5) -> np.ndarray:
    """Tint each detection's mask pixels with its colour (in place; earlier detections on top) and outline it."""
    for d in reversed(list(detections)):
        m = d.mask
        if m is None or m.roi.size == 0 or m.shape != out.shape[:2]:
            continue
        h, w = m.roi.shape
        view = out[m.y0 : m.y0 + h, m.x0 : m.x0 + w]
        colour = np.asarray(colour_for(d.class_index), np.float32)
        view[m.roi] = (view[m.roi].astype(np.float32) * (1 - alpha) + colour * alpha).astype(np.uint8)
        contours, _ = cv2.findContours(m.roi.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(view, contours, -1, tuple(int(c) for c in colour), 1)
    return out


def draw(
    rgb: np.ndarray, detections: Sequence[Detection] = (), classifications: Sequence[Classification] = ()
) -> np.ndarray:
    """A copy of `rgb` with masks (tinted), boxes, labels, scores and tracking ids (#id) drawn."""
    out = np.ascontiguousarray(rgb).copy()
    scale = max(0.4, min(out.shape[:2]) / 800.0)
    thick = max(1, int(round(2 * scale)))
    overlay_masks(out, detections)
    for d in detections:
        colour = colour_for(d.class_index)
        p0, p1 = (int(d.x_min), int(d.y_min)), (int(d.x_max), int(d.y_max))
        if d.rotated is not None:  # oriented box: its rotated rectangle
            corners = rotated_corners(np.asarray([d.rotated], np.float64))[0]
            cv2.polylines(out, [np.round(corners).astype(np.int32)], True, colour, thick, cv2.LINE_AA)
        else:
            cv2.rectangle(out, p0, p1, colour, thick)
        if d.keypoints is not None:
            draw_keypoints(out, d.keypoints, colour, thick)
        text = f"{'#' + d.id + ' ' if d.id else ''}{d.class_name} {d.confidence:.2f}"
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
        y = max(p0[1], th + base)
        cv2.rectangle(out, (p0[0], y - th - base), (p0[0] + tw, y), colour, -1)
        cv2.putText(out, text, (p0[0], y - base), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thick)
    for i, c in enumerate(classifications):
        y = int((i + 1) * 30 * scale) + 5
        text = f"{c.class_name} {c.confidence:.2f}"
        cv2.putText(out, text, (8, y), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thick + 2)
        cv2.putText(out, text, (8, y), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thick)
    return out


#: Keypoints drawn only above this score (Ultralytics' plotting default).
KEYPOINT_MIN_SCORE = 0.5


def draw_keypoints(out: np.ndarray, keypoints: np.ndarray, colour: tuple[int, int, int], thick: int) -> None:
    """A pose detection's keypoints (K, 3) as dots, those below KEYPOINT_MIN_SCORE left out."""
    radius = max(2, thick + 1)
    for x, y, score in np.asarray(keypoints, np.float64):
        if score >= KEYPOINT_MIN_SCORE:
            cv2.circle(out, (int(round(x)), int(round(y))), radius, colour, -1, cv2.LINE_AA)
