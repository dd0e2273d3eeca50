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
#: Default cap on decoded image size (width x height); the vision node's max_image_pixels.
MAX_PIXELS = 50_000_000
COLOUR_ENCODINGS = ("rgb8", "bgr8", "rgba8", "bgra8", "mono8", "mono16", "8UC1", "8UC3")
DEPTH_ENCODINGS = ("16UC1", "mono16", "32FC1")


class ImageError(ValueError):
    """An image that cannot be read as it claims to be."""


def check_pixels(width: int, height: int, max_pixels: int | None, what: str = "image") -> None:
    """Refuse an image larger than `max_pixels` (width x height) before it is decoded or copied."""
    if width <= 0 or height <= 0:
        raise ImageError(f"zero-size {what} ({width}x{height})")
    if max_pixels is not None and width * height > max_pixels:
        raise ImageError(f"{what} of {width}x{height} = {width * height} pixels is above the limit of "
                         f"{max_pixels} pixels (max_image_pixels)")


def image_array(data: bytes | memoryview, encoding: str, width: int, height: int, step: int,
                is_bigendian: bool = False, max_pixels: int | None = None) -> np.ndarray:
    """A (H, W) or (H, W, C) view of an image buffer; raises ImageError on anything inconsistent or
    larger than `max_pixels`."""
    if encoding not in ENCODINGS:
        raise ImageError(f"unsupported image encoding {encoding!r}; supported: {sorted(ENCODINGS)}")
    check_pixels(width, height, max_pixels)
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


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_JPEG_SCAN_BYTES = 4 * 1024 * 1024  # the frame header must come within this many bytes
_JPEG_MAX_SEGMENTS = 4096


def compressed_size(data: bytes | memoryview) -> tuple[str, int, int]:
    """(format, width, height) read from a PNG or JPEG header without decoding; raises ImageError for
    other formats or a header that does not declare a size."""
    head = bytes(data[:8])
    if head.startswith(_PNG_SIGNATURE):
        ihdr = bytes(data[8:24])
        if len(ihdr) < 16 or ihdr[4:8] != b"IHDR":
            raise ImageError("PNG image without an IHDR header")
        return "png", int.from_bytes(ihdr[8:12], "big"), int.from_bytes(ihdr[12:16], "big")
    if head.startswith(b"\xff\xd8"):
        view = memoryview(data)[:_JPEG_SCAN_BYTES]
        i, segments = 2, 0
        while i + 4 <= len(view) and segments < _JPEG_MAX_SEGMENTS:
            if view[i] != 0xFF:
                raise ImageError(f"JPEG image: bad marker at byte {i}")
            marker = view[i + 1]
            if marker == 0xFF:  # fill byte
                i += 1
                continue
            if marker in (0x01, 0xD8) or 0xD0 <= marker <= 0xD7:
                i += 2
                continue
            if marker in (0xD9, 0xDA):
                break
            length = int.from_bytes(view[i + 2:i + 4], "big")
            if length < 2:
                raise ImageError(f"JPEG image: bad segment length at byte {i}")
            if marker in _JPEG_SOF:
                if i + 9 > len(view):
                    break
                height = int.from_bytes(view[i + 5:i + 7], "big")
                width = int.from_bytes(view[i + 7:i + 9], "big")
                return "jpeg", width, height
            i += 2 + length
            segments += 1
        raise ImageError("JPEG image without a frame header (size) near its start")
    raise ImageError("compressed image is neither PNG nor JPEG (the formats accepted)")


def decode_compressed(data: bytes | memoryview, fmt: str = "", max_pixels: int | None = MAX_PIXELS) -> np.ndarray:
    """JPEG/PNG bytes → RGB uint8. The size in the header is checked against `max_pixels` first, so a
    small file declaring a huge image is refused before any decoding."""
    if len(data) == 0:
        raise ImageError("compressed image is empty")
    kind, width, height = compressed_size(data)
    check_pixels(width, height, max_pixels, f"compressed {kind} image")
    decoded = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if decoded is None:
        raise ImageError(f"compressed image ({fmt or kind}, {len(data)} bytes) could not be decoded")
    if decoded.shape[0] * decoded.shape[1] > width * height:  # a decoder that disagreed with the header
        raise ImageError(f"compressed {kind} image decoded to {decoded.shape[1]}x{decoded.shape[0]}, larger than "
                         f"its header's {width}x{height}")
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
