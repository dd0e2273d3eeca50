"""Instance masks: from a segmentation model's outputs to source-image pixels, and the instance image.

Two kinds of model output are read:
- YOLOv8/11-seg style: mask coefficients per detection (N, nm) and a prototype tensor [1, nm, h, w]
  (NHWC [1, h, w, nm] in TFLite exports); a detection's mask is sigmoid(coefficients @ prototypes);
- per-detection masks given directly (torchvision Mask R-CNN: [N, 1, h, w] probabilities).
Either map spans the whole model input, so it is carried back to the source image through the
preprocessing transform (letterbox padding and scale included) with one affine warp per detection, done only
over the detection's box (the mask is cropped to the box, as Ultralytics does), then thresholded.

`instance_image` writes the masks of one frame as a mono16 image: pixel = index + 1 of the detection in the
frame's detection list (Detection2DArray order), 0 = background; where masks overlap, the earlier (more
confident) detection wins.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from .preprocess import Transform


@dataclass
class Mask:
    """A binary mask stored over its box: `roi` (h, w) bool whose top-left pixel is (x0, y0) in an image of
    `shape` (height, width)."""

    roi: np.ndarray
    x0: int
    y0: int
    shape: tuple[int, int]

    @property
    def area(self) -> int:
        return int(np.count_nonzero(self.roi))

    def full(self) -> np.ndarray:
        """The mask at the image's size (bool)."""
        out = np.zeros(self.shape, bool)
        h, w = self.roi.shape
        out[self.y0 : self.y0 + h, self.x0 : self.x0 + w] = self.roi
        return out

    def crop(self, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
        """The mask over the pixel rectangle [x0, x1) x [y0, y1) (bool)."""
        if (x0, y0) == (self.x0, self.y0) and (y1 - y0, x1 - x0) == self.roi.shape:
            return self.roi
        out = np.zeros((max(0, y1 - y0), max(0, x1 - x0)), bool)
        h, w = self.roi.shape
        ix0, iy0 = max(x0, self.x0), max(y0, self.y0)
        ix1, iy1 = min(x1, self.x0 + w), min(y1, self.y0 + h)
        if ix1 > ix0 and iy1 > iy0:
            out[iy0 - y0 : iy1 - y0, ix0 - x0 : ix1 - x0] = self.roi[
                iy0 - self.y0 : iy1 - self.y0, ix0 - self.x0 : ix1 - self.x0
            ]
        return out


def polygon_mask(corners: np.ndarray, box: Sequence[float], width: int, height: int) -> Mask:
    """The pixels of a polygon (an oriented box's (4, 2) corners, source pixels) over its envelope `box`."""
    x0, y0, x1, y1 = box_pixels(box, width, height)
    roi = np.zeros((y1 - y0, x1 - x0), np.uint8)
    if roi.size:
        cv2.fillPoly(roi, [np.round(np.asarray(corners) - [x0, y0]).astype(np.int32)], 1)
    return Mask(roi.astype(bool), x0, y0, (height, width))


def box_pixels(box: Sequence[float], width: int, height: int) -> tuple[int, int, int, int]:
    """The pixel rectangle [x0, x1) x [y0, y1) a source-pixel box covers, clipped to the image."""
    x0, y0 = max(0, int(math.floor(box[0]))), max(0, int(math.floor(box[1])))
    x1, y1 = min(width, int(math.ceil(box[2]))), min(height, int(math.ceil(box[3])))
    return x0, y0, max(x0, x1), max(y0, y1)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return (1.0 / (1.0 + np.exp(-np.clip(x, -50.0, 50.0)))).astype(np.float32)


@dataclass
class MaskSource:
    """What a decoder found for masks, aligned with its detections (row i = detection i): either
    coefficients (N, nm) with prototypes (nm, h, w), or probability maps (N, h, w); both span the model input."""

    transform: Transform
    coefficients: np.ndarray | None = None
    prototypes: np.ndarray | None = None
    maps: np.ndarray | None = None

    def _maps(self) -> np.ndarray:
        assert self.maps is not None, "a MaskSource has coefficients or maps"
        return self.maps

    def _protos(self) -> np.ndarray:
        assert self.prototypes is not None, "coefficients come with their prototypes"
        return self.prototypes

    def __len__(self) -> int:
        return len(self.coefficients) if self.coefficients is not None else len(self._maps())

    def subset(self, rows: np.ndarray) -> MaskSource:
        """The rows kept (e.g. by NMS), in that order."""
        if self.coefficients is not None:
            return MaskSource(self.transform, self.coefficients[rows], self.prototypes)
        return MaskSource(self.transform, maps=self._maps()[rows])

    def probability_map(self, i: int, window: tuple[int, int, int, int] | None = None) -> np.ndarray:
        """Detection i's mask probabilities over the model input's map (h, w) float32, or over the map's
        `window` (x0, y0, x1, y1) only."""
        if self.coefficients is not None:
            protos = self._protos()
            if window is not None:
                protos = protos[:, window[1] : window[3], window[0] : window[2]]
            nm, h, w = protos.shape
            logits = self.coefficients[i].astype(np.float32) @ protos.reshape(nm, -1)
            return sigmoid(logits.reshape(h, w))
        maps = self._maps()[i]
        if window is not None:
            maps = maps[window[1] : window[3], window[0] : window[2]]
        return np.ascontiguousarray(maps, dtype=np.float32)

    def map_shape(self) -> tuple[int, int]:
        shape = self._protos().shape[1:] if self.coefficients is not None else self._maps().shape[1:]
        return int(shape[0]), int(shape[1])

    def mask(self, i: int, box: Sequence[float], threshold: float = 0.5) -> Mask:
        """Detection i's mask in source pixels, inside its source-pixel `box` (x_min, y_min, x_max, y_max)."""
        t = self.transform
        x0, y0, x1, y1 = box_pixels(box, t.source_width, t.source_height)
        if x1 <= x0 or y1 <= y0:
            return Mask(np.zeros((0, 0), bool), x0, y0, (t.source_height, t.source_width))
        mh, mw = self.map_shape()
        rh, rw = mh / t.input_height, mw / t.input_width
        # Source pixel centre (x + 0.5) → model input x_m = (x + 0.5) * scale + pad → map pixel x_m * r - 0.5.
        ax, bx = t.scale_x * rw, ((x0 + 0.5) * t.scale_x + t.pad_x) * rw - 0.5
        ay, by = t.scale_y * rh, ((y0 + 0.5) * t.scale_y + t.pad_y) * rh - 0.5
        # Only the map's window under the box (one pixel of margin for the interpolation).
        wx0, wy0 = max(0, int(math.floor(bx)) - 1), max(0, int(math.floor(by)) - 1)
        wx1 = min(mw, int(math.ceil(ax * (x1 - x0 - 1) + bx)) + 2)
        wy1 = min(mh, int(math.ceil(ay * (y1 - y0 - 1) + by)) + 2)
        if wx1 <= wx0 or wy1 <= wy0:
            return Mask(np.zeros((y1 - y0, x1 - x0), bool), x0, y0, (t.source_height, t.source_width))
        prob = self.probability_map(i, (wx0, wy0, wx1, wy1))
        warp = np.array([[ax, 0.0, bx - wx0], [0.0, ay, by - wy0]])
        roi = cv2.warpAffine(
            prob,
            warp,
            (x1 - x0, y1 - y0),
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_REPLICATE,
        )
        return Mask(roi > threshold, x0, y0, (t.source_height, t.source_width))


def prototypes_from(array: np.ndarray, num_masks: int) -> np.ndarray:
    """A prototype output [1, nm, h, w] (or NHWC [1, h, w, nm]) → (nm, h, w) float32."""
    a = np.asarray(array, dtype=np.float32)[0]
    if a.shape[0] != num_masks and a.shape[-1] == num_masks:
        a = np.moveaxis(a, -1, 0)
    if a.shape[0] != num_masks:
        raise ValueError(f"prototype output of shape {list(np.shape(array))} does not hold {num_masks} masks")
    return np.ascontiguousarray(a)


def direct_maps(array: np.ndarray, count: int) -> np.ndarray | None:
    """Per-detection mask maps ([N, 1, h, w], [1, N, h, w] or [N, h, w]) for `count` candidates → (N, h, w),
    or None when the array is not that."""
    a = np.asarray(array)
    if a.ndim == 4 and a.shape[0] == count and a.shape[1] == 1:
        a = a[:, 0]
    elif a.ndim == 4 and a.shape[0] == 1 and a.shape[1] == count:
        a = a[0]
    if a.ndim != 3 or a.shape[0] != count or min(a.shape[1:]) < 8:
        return None
    return a


def instance_image(masks: Sequence[Mask | None], height: int, width: int) -> np.ndarray:
    """uint16 (H, W): index + 1 of the detection owning each pixel, 0 = background (earlier wins overlaps)."""
    out = np.zeros((height, width), np.uint16)
    for index in range(len(masks) - 1, -1, -1):
        m = masks[index]
        if m is None or m.roi.size == 0 or m.shape != (height, width):
            continue
        h, w = m.roi.shape
        view = out[m.y0 : m.y0 + h, m.x0 : m.x0 + w]
        view[m.roi] = index + 1
    return out


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two boolean masks of the same shape."""
    union = np.count_nonzero(a | b)
    return float(np.count_nonzero(a & b) / union) if union else 1.0
