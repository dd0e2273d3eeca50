"""Drawing results on images (debug topic, demo output)."""
from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from .vision import Classification, Detection


def colour_for(index: int) -> tuple[int, int, int]:
    """A stable, distinct RGB colour per class index."""
    hue = (index * 47) % 180
    hsv = np.uint8([[[hue, 220, 255]]])
    return tuple(int(c) for c in cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0])


def draw(rgb: np.ndarray, detections: Sequence[Detection] = (),
         classifications: Sequence[Classification] = ()) -> np.ndarray:
    """A copy of `rgb` with boxes, labels and scores drawn."""
    out = np.ascontiguousarray(rgb).copy()
    scale = max(0.4, min(out.shape[:2]) / 800.0)
    thick = max(1, int(round(2 * scale)))
    for d in detections:
        colour = colour_for(d.class_index)
        p0, p1 = (int(d.x_min), int(d.y_min)), (int(d.x_max), int(d.y_max))
        cv2.rectangle(out, p0, p1, colour, thick)
        text = f"{d.class_name} {d.confidence:.2f}"
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
