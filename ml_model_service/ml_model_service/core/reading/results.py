"""What reading a model gives: detections (with masks, oriented boxes, keypoints and tracking ids where the model
and the node give them), classifications and class maps (segmentation), and the filters that keep them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .masks import Mask


@dataclass
class Detection:
    """One object: class, confidence and a box in source-image pixels; its pixels (`mask`) when the model
    segments, and its tracking id (`id`, "" without tracking)."""

    class_index: int
    class_name: str
    confidence: float
    x_min: float
    y_min: float
    x_max: float
    y_max: float
    mask: Mask | None = field(default=None, compare=False, repr=False)
    id: str = ""
    #: Oriented boxes: centre x, centre y, width, height, theta (radians; the width runs along (cos, sin) in image
    #: axes); x_min..y_max are then its axis-aligned envelope.
    rotated: tuple[float, float, float, float, float] | None = None
    keypoints: np.ndarray | None = field(default=None, compare=False, repr=False)  # pose: (K, 3) x, y, score

    @property
    def box(self) -> tuple[float, float, float, float]:
        return self.x_min, self.y_min, self.x_max, self.y_max

    def to_dict(self) -> dict:
        return {
            "class_id": self.class_index,
            "class_name": self.class_name,
            "confidence": round(self.confidence, 4),
            "x_min": round(self.x_min, 1),
            "y_min": round(self.y_min, 1),
            "x_max": round(self.x_max, 1),
            "y_max": round(self.y_max, 1),
            **({"mask_pixels": self.mask.area} if self.mask is not None else {}),
            **({"id": self.id} if self.id else {}),
            **(self._rotated_dict() if self.rotated is not None else {}),
            **({"keypoints": np.round(self.keypoints, 3).tolist()} if self.keypoints is not None else {}),
        }

    def _rotated_dict(self) -> dict:
        cx, cy, w, h, theta = self.rotated or (0.0,) * 5
        return {
            "center_x": round(cx, 1),
            "center_y": round(cy, 1),
            "size_x": round(w, 1),
            "size_y": round(h, 1),
            "theta": round(theta, 4),
        }


@dataclass
class Classification:
    class_index: int
    class_name: str
    confidence: float

    def to_dict(self) -> dict:
        return {"class_id": self.class_index, "class_name": self.class_name, "confidence": round(self.confidence, 4)}


@dataclass
class Segmentation:
    """A class for every pixel: `classes` (H, W) holds each pixel's class index at the image's size (uint8 for up
    to 256 classes, else uint16); `names` maps an index to its class name."""

    classes: np.ndarray
    names: Callable[[int], str] = field(default=str, compare=False, repr=False)

    def counts(self) -> np.ndarray:
        """Pixels of each class index (as long as the highest index present + 1)."""
        return np.bincount(self.classes.ravel())

    def shares(self) -> list[tuple[int, str, int, float]]:
        """(index, name, pixels, share of the image) of every class present, most pixels first."""
        counts = self.counts()
        total = max(int(self.classes.size), 1)
        present = [i for i in np.argsort(-counts, kind="stable") if counts[i]]
        return [(int(i), self.names(int(i)), int(counts[i]), int(counts[i]) / total) for i in present]

    def to_dict(self) -> dict:
        return {
            "width": int(self.classes.shape[1]),
            "height": int(self.classes.shape[0]),
            "classes": [
                {"class_id": i, "class_name": name, "pixels": n, "share": round(share, 4)}
                for i, name, n, share in self.shares()
            ],
        }


@dataclass
class FilterConfig:
    """Which results are kept."""

    confidence_threshold: float = 0.5
    label_confidences: dict[str, float] = field(default_factory=dict)  # listed labels only, each its minimum
    classes: list[str] = field(default_factory=list)  # keep only these (empty = all)

    @property
    def floor(self) -> float:
        """The lowest score `keep` can keep."""
        return min(self.label_confidences.values()) if self.label_confidences else self.confidence_threshold

    def keep(self, name: str, score: float) -> bool:
        if self.classes and name not in self.classes:
            return False
        if self.label_confidences:
            minimum = self.label_confidences.get(name)
            return minimum is not None and score >= minimum
        return score >= self.confidence_threshold
