"""`backend: auto`'s last check, on answers: the runtime it chose (the fastest whose raw outputs matched the file's
own runtime on a synthetic picture) must also give the same decoded answers on real photographs, fed as the model
is fed (its normalisation, size and value range). A reduced-precision runtime can pass the first check and still
change the boxes or classes a photograph gets; the model then runs on its file's own runtime, and says why."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np

from .preprocess import Transform
from .results import Segmentation


class Answering(Protocol):
    """What the check needs of a vision model (`vision.VisionModel`)."""

    config: Any
    decoder: Any

    @property
    def detections_supported(self) -> bool: ...

    @property
    def segmentation_supported(self) -> bool: ...

    @property
    def classifications_supported(self) -> bool: ...

    def _tensor(self, rgb: np.ndarray) -> tuple[dict[str, np.ndarray], Transform]: ...

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]: ...

    def decode_detections(self, outputs: dict[str, np.ndarray], transform: Transform) -> Any: ...

    def decode_segmentation(self, outputs: dict[str, np.ndarray], transform: Transform) -> Segmentation: ...


#: The photographs the answers are compared on (see photos/PROVENANCE.md).
PHOTOS_DIR = Path(__file__).resolve().parents[2] / "photos"
#: Decoded answers agree when each detection above the threshold has a twin (class, IoU, score), each photo's
#: top class is the same and top-5 share four, and class maps agree on this share of pixels.
MIN_IOU, SCORE_TOL, MAP_AGREEMENT = 0.8, 0.05, 0.99


def photos() -> list[np.ndarray]:
    """The bundled photographs, RGB uint8."""
    found = []
    for path in sorted(PHOTOS_DIR.glob("*.jpg")):
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is not None:
            found.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    return found


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of box a (4,) with boxes b (N, 4)."""
    x0, y0 = np.maximum(a[0], b[:, 0]), np.maximum(a[1], b[:, 1])
    x1, y1 = np.minimum(a[2], b[:, 2]), np.minimum(a[3], b[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0)


def _unmatched(mine, theirs, threshold: float) -> int:
    """Detections of `mine` above threshold + SCORE_TOL with no twin in `theirs`."""
    missing = 0
    for box, score, cls in zip(mine.boxes, mine.scores, mine.classes):
        if score < threshold + SCORE_TOL:
            continue
        same = theirs.classes == cls
        ious = _iou(box, theirs.boxes[same]) if same.any() else np.zeros(0)
        close = np.abs(theirs.scores[same] - score) <= SCORE_TOL
        missing += not bool(((ious >= MIN_IOU) & close).any())
    return missing


def differences(vision: Answering, reference: Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]) -> str:
    """ "" when `vision`'s runner and `reference` (the file's own runtime) give the same decoded answers on the
    bundled photographs, else what differs."""
    threshold = vision.config.filters.confidence_threshold
    for index, rgb in enumerate(photos()):
        inputs, transform = vision._tensor(rgb)
        ours, theirs = vision.run(inputs), reference(inputs)
        if vision.detections_supported:
            a, b = vision.decode_detections(ours, transform), vision.decode_detections(theirs, transform)
            missing = _unmatched(a, b, threshold) + _unmatched(b, a, threshold)
            if missing:
                return f"photo {index + 1}: {missing} detection(s) differ from the file's own runtime"
        elif vision.segmentation_supported:
            maps = [vision.decode_segmentation(o, transform).classes for o in (ours, theirs)]
            agree = float(np.mean(maps[0] == maps[1]))
            if agree < MAP_AGREEMENT:
                return f"photo {index + 1}: {agree:.3f} of the class map's pixels agree with the file's own runtime"
        elif vision.classifications_supported:
            a, b = (np.argsort(-vision.decoder.decode(o), kind="stable")[:5].tolist() for o in (ours, theirs))  # type: ignore[attr-defined]
            if a[0] != b[0] or len(set(a) & set(b)) < 4:  # (near-ties may swap the last places)
                return f"photo {index + 1}: top-5 classes {a} instead of the file's own runtime's {b}"
    return ""
