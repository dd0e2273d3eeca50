"""Raw image buffers (as sensor_msgs/Image carries them) ↔ numpy, without ROS or cv_bridge.

Every check a camera driver can get wrong (encoding, zero size, step, byte length) raises ImageError
with a message that says which.
"""
from __future__ import annotations

import cv2
import numpy as np

#: encoding -> (dtype, channels)
ENCODINGS: dict[str, tuple[np.dtype, int]] = {
    "rgb8": (np.dtype(np.uint8), 3), "bgr8": (np.dtype(np.uint8), 3),
    "rgba8": (np.dtype(np.uint8), 4), "bgra8": (np.dtype(np.uint8), 4),
    "mono8": (np.dtype(np.uint8), 1), "8UC1": (np.dtype(np.uint8), 1), "8UC3": (np.dtype(np.uint8), 3),
    "mono16": (np.dtype(np.uint16), 1), "16UC1": (np.dtype(np.uint16), 1),
    "32FC1": (np.dtype(np.float32), 1), "64FC1": (np.dtype(np.float64), 1),
}
COLOUR_ENCODINGS = ("rgb8", "bgr8", "rgba8", "bgra8", "mono8", "mono16", "8UC1", "8UC3")
DEPTH_ENCODINGS = ("16UC1", "mono16", "32FC1")


class ImageError(ValueError):
    """An image that cannot be read as it claims to be."""


def image_array(data: bytes | memoryview, encoding: str, width: int, height: int, step: int,
                is_bigendian: bool = False) -> np.ndarray:
    """A (H, W) or (H, W, C) view of an image buffer; raises ImageError on anything inconsistent."""
    if encoding not in ENCODINGS:
        raise ImageError(f"unsupported image encoding {encoding!r}; supported: {sorted(ENCODINGS)}")
    if width <= 0 or height <= 0:
        raise ImageError(f"zero-size image ({width}x{height})")
    dtype, channels = ENCODINGS[encoding]
    row = width * channels * dtype.itemsize
    if step < row:
        raise ImageError(f"step {step} is less than width x channels x bytes = {row} for {width}px {encoding}")
    if len(data) < step * height:
        raise ImageError(f"image data is {len(data)} bytes, shorter than step x height = {step} x {height} "
                         f"= {step * height}")
    dtype = dtype.newbyteorder(">" if is_bigendian else "<")
    flat = np.frombuffer(data, dtype=np.uint8, count=step * height).reshape(height, step)
    pixels = flat[:, :row].view(dtype).reshape(height, width, channels)
    return pixels[:, :, 0] if channels == 1 else pixels


def to_rgb8(array: np.ndarray, encoding: str) -> np.ndarray:
    """Any supported colour/mono encoding → contiguous RGB uint8 (H, W, 3)."""
    if encoding in ("rgb8", "8UC3"):
        return np.ascontiguousarray(array)
    if encoding == "bgr8":
        return cv2.cvtColor(array, cv2.COLOR_BGR2RGB)
    if encoding == "rgba8":
        return cv2.cvtColor(array, cv2.COLOR_RGBA2RGB)
    if encoding == "bgra8":
        return cv2.cvtColor(array, cv2.COLOR_BGRA2RGB)
    if encoding in ("mono8", "8UC1"):
        return cv2.cvtColor(np.ascontiguousarray(array), cv2.COLOR_GRAY2RGB)
    if encoding in ("mono16", "16UC1"):
        as8 = (array.astype(np.uint16) >> 8).astype(np.uint8)
        return cv2.cvtColor(as8, cv2.COLOR_GRAY2RGB)
    raise ImageError(f"encoding {encoding!r} is not a colour image; use one of {COLOUR_ENCODINGS}")


def decode_compressed(data: bytes | memoryview, fmt: str = "") -> np.ndarray:
    """JPEG/PNG bytes → RGB uint8."""
    if len(data) == 0:
        raise ImageError("compressed image is empty")
    decoded = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if decoded is None:
        raise ImageError(f"compressed image ({fmt or 'unknown format'}, {len(data)} bytes) could not be decoded")
    return cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB)


def depth_to_metres(array: np.ndarray, encoding: str, unit_scale: float = 0.0) -> np.ndarray:
    """Depth image → float32 metres; invalid (0, NaN, inf) become NaN. `unit_scale` (metres per unit)
    overrides the encoding's convention (16UC1: millimetres; 32FC1: metres)."""
    if encoding not in DEPTH_ENCODINGS:
        raise ImageError(f"unsupported depth encoding {encoding!r}; expected one of {DEPTH_ENCODINGS}")
    scale = unit_scale if unit_scale > 0 else (1.0 if encoding == "32FC1" else 0.001)
    depth = array.astype(np.float32) * np.float32(scale)
    depth[~np.isfinite(depth) | (depth <= 0)] = np.nan
    return depth
