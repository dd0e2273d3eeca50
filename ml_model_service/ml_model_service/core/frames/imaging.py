"""Raw image buffers (as sensor_msgs/Image carries them) ↔ numpy, without ROS or cv_bridge.

Every check a camera driver can get wrong (encoding, zero size, step, byte length) raises ImageError
with a message that says which.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import cv2
import numpy as np

#: encoding -> (dtype, channels)
ENCODINGS: dict[str, tuple[np.dtype, int]] = {
    "rgb8": (np.dtype(np.uint8), 3),
    "bgr8": (np.dtype(np.uint8), 3),
    "rgba8": (np.dtype(np.uint8), 4),
    "bgra8": (np.dtype(np.uint8), 4),
    "mono8": (np.dtype(np.uint8), 1),
    "8UC1": (np.dtype(np.uint8), 1),
    "8UC3": (np.dtype(np.uint8), 3),
    "mono16": (np.dtype(np.uint16), 1),
    "16UC1": (np.dtype(np.uint16), 1),
    "32FC1": (np.dtype(np.float32), 1),
    "64FC1": (np.dtype(np.float64), 1),
    # YUV 4:2:2, two bytes a pixel (what most USB cameras give): UYVY and YUYV, under their ROS names
    "uyvy": (np.dtype(np.uint8), 2),
    "yuv422": (np.dtype(np.uint8), 2),
    "yuyv": (np.dtype(np.uint8), 2),
    "yuv422_yuy2": (np.dtype(np.uint8), 2),
    **{
        f"bayer_{p}{bits}": (np.dtype(np.uint8 if bits == 8 else np.uint16), 1)
        for p in ("rggb", "bggr", "gbrg", "grbg")
        for bits in (8, 16)
    },
}
#: ROS colour encodings OpenCV converts: YUV 4:2:2 byte orders and Bayer mosaics (OpenCV names a mosaic by
#: the second row's second and third pixels, so ROS's rggb is OpenCV's BG)
_TO_RGB = {
    "uyvy": cv2.COLOR_YUV2RGB_UYVY,
    "yuv422": cv2.COLOR_YUV2RGB_UYVY,
    "yuyv": cv2.COLOR_YUV2RGB_YUYV,
    "yuv422_yuy2": cv2.COLOR_YUV2RGB_YUYV,
    **{
        f"bayer_{p}{bits}": code
        for bits in (8, 16)
        for p, code in (
            ("rggb", cv2.COLOR_BayerBG2RGB),
            ("bggr", cv2.COLOR_BayerRG2RGB),
            ("gbrg", cv2.COLOR_BayerGR2RGB),
            ("grbg", cv2.COLOR_BayerGB2RGB),
        )
    },
}
#: Default cap on decoded image size (width x height); the vision node's max_image_pixels.
MAX_PIXELS = 50_000_000
COLOUR_ENCODINGS = ("rgb8", "bgr8", "rgba8", "bgra8", "mono8", "mono16", "8UC1", "8UC3", *_TO_RGB)
DEPTH_ENCODINGS = ("16UC1", "mono16", "32FC1")


class ImageError(ValueError):
    """An image that cannot be read as it claims to be."""


def check_pixels(width: int, height: int, max_pixels: int | None, what: str = "image") -> None:
    """Refuse an image larger than `max_pixels` (width x height) before it is decoded or copied."""
    if width <= 0 or height <= 0:
        raise ImageError(f"zero-size {what} ({width}x{height})")
    if max_pixels is not None and width * height > max_pixels:
        raise ImageError(
            f"{what} of {width}x{height} = {width * height} pixels is above the limit of "
            f"{max_pixels} pixels (max_image_pixels)"
        )


def image_array(
    data: bytes | memoryview,
    encoding: str,
    width: int,
    height: int,
    step: int,
    is_bigendian: bool = False,
    max_pixels: int | None = None,
) -> np.ndarray:
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
        raise ImageError(
            f"image data is {len(data)} bytes, shorter than step x height = {step} x {height} = {step * height}"
        )
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
    if encoding in _TO_RGB:
        if encoding.startswith("yuv") or encoding in ("uyvy", "yuyv"):
            if array.shape[1] % 2:
                raise ImageError(
                    f"{encoding} needs an even width (two pixels share their chroma), got {array.shape[1]}"
                )
        elif array.shape[0] < 2 or array.shape[1] < 2:
            raise ImageError(f"a {encoding} mosaic needs at least 2x2 pixels, got {array.shape[1]}x{array.shape[0]}")
        rgb = cv2.cvtColor(np.ascontiguousarray(array), _TO_RGB[encoding])
        return (np.asarray(rgb, dtype=np.uint16) >> 8).astype(np.uint8) if rgb.dtype == np.uint16 else np.asarray(rgb)
    raise ImageError(f"encoding {encoding!r} is not a colour image; use one of {COLOUR_ENCODINGS}")


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_JPEG_LOSSLESS = {0xC3, 0xC7, 0xCB, 0xCF}  # one coded sample per pixel and component, not 8x8 blocks
_JPEG_ARITHMETIC = {0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_JPEG_SCAN_BYTES = 4 * 1024 * 1024  # the frame header must come within this many bytes
_JPEG_MAX_SEGMENTS = 4096
#: PNG colour type → channels
_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
#: Bombs: a compressed image must have at least 1/SAFETY of the bytes any encoder needs for the size it declares.
#: Huffman-coded JPEG spends at least one bit per 8x8 block (lossless: per sample) of each component (a
#: progressive DC scan; baseline spends two); deflate (PNG) expands at most 1032 times.
BOMB_SAFETY = 2
DEFLATE_MAX_RATIO = 1032
#: Arithmetic-coded JPEG has no such floor (a uniform image codes to almost nothing): it is decoded up to this
#: many pixels only (a bounded decode; no camera sends arithmetic coding).
ARITHMETIC_JPEG_MAX_PIXELS = 2_100_000


def _ceil(a: int, b: int) -> int:
    return -(-a // b)


class DecodeBudgetError(ImageError):
    """A compressed image refused because the decode budget (`DecodeBudget`) is spent for now."""


def _jpeg_frame(data: bytes | memoryview) -> tuple[int, int, int, list[tuple[int, int]]]:
    """(SOF marker, width, height, [(h, v) sampling factors of each component]) from a JPEG's frame header."""
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
        length = int.from_bytes(view[i + 2 : i + 4], "big")
        if length < 2:
            raise ImageError(f"JPEG image: bad segment length at byte {i}")
        if marker in _JPEG_SOF:
            if i + 10 > len(view):
                break
            height = int.from_bytes(view[i + 5 : i + 7], "big")
            width = int.from_bytes(view[i + 7 : i + 9], "big")
            count = view[i + 9]
            if count == 0 or length < 8 + 3 * count or i + 10 + 3 * count > len(view):
                raise ImageError(f"JPEG image: frame header at byte {i} declares {count} components in {length} bytes")
            sampling = [(view[i + 11 + 3 * c] >> 4, view[i + 11 + 3 * c] & 0x0F) for c in range(count)]
            if any(not (1 <= h <= 4 and 1 <= v <= 4) for h, v in sampling):
                raise ImageError(f"JPEG image: sampling factors {sampling} outside 1..4")
            return marker, width, height, sampling
        i += 2 + length
        segments += 1
    raise ImageError("JPEG image without a frame header (size) near its start")


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
        _, width, height, _ = _jpeg_frame(data)
        return "jpeg", width, height
    raise ImageError("compressed image is neither PNG nor JPEG (the formats accepted)")


def check_bomb(data: bytes | memoryview) -> tuple[str, int, int]:
    """(format, width, height) of a compressed image whose bytes can hold the size it declares; raises
    ImageError, before decoding, for one that declares more pixels than its bytes can encode (a truncated file
    or a decompression bomb: decoders fill what is missing, so 600 bytes declaring 7000x7000 would cost a
    147 MB image and its decoding time)."""
    kind, width, height = compressed_size(data)
    if width <= 0 or height <= 0:
        return kind, width, height  # check_pixels refuses it
    size = len(data)
    if kind == "png":
        ihdr = bytes(data[24:26])
        depth, colour = (ihdr[0], ihdr[1]) if len(ihdr) == 2 else (0, -1)
        if depth not in (1, 2, 4, 8, 16) or colour not in _PNG_CHANNELS:
            raise ImageError(f"PNG image: bit depth {depth} and colour type {colour} are not a PNG's")
        raw = height * _ceil(width * _PNG_CHANNELS[colour] * depth, 8)
        if size * DEFLATE_MAX_RATIO * BOMB_SAFETY < raw:
            raise ImageError(
                f"compressed png image declares {width}x{height} ({raw} bytes of {depth}-bit pixels) in {size} "
                f"bytes: deflate expands at most {DEFLATE_MAX_RATIO} times, so it needs at least "
                f"{_ceil(raw, DEFLATE_MAX_RATIO)} bytes (refused below 1/{BOMB_SAFETY} of that): truncated or a "
                "decompression bomb"
            )
        return kind, width, height
    marker, _, _, sampling = _jpeg_frame(data)
    if marker in _JPEG_ARITHMETIC:
        if width * height > ARITHMETIC_JPEG_MAX_PIXELS:
            raise ImageError(
                f"compressed jpeg image is arithmetic-coded (SOF 0x{marker:02X}) and declares "
                f"{width}x{height} = {width * height} pixels: arithmetic coding has no floor on bytes "
                f"per pixel, so it is decoded up to {ARITHMETIC_JPEG_MAX_PIXELS} pixels only"
            )
        return kind, width, height
    unit = 1 if marker in _JPEG_LOSSLESS else 8
    h_max, v_max = max(h for h, _ in sampling), max(v for _, v in sampling)
    units = sum(_ceil(_ceil(width * h, h_max), unit) * _ceil(_ceil(height * v, v_max), unit) for h, v in sampling)
    if size * 8 * BOMB_SAFETY < units:
        what = "samples" if unit == 1 else "8x8 blocks"
        raise ImageError(
            f"compressed jpeg image declares {width}x{height} ({units} {what} in {len(sampling)} components) in "
            f"{size} bytes: Huffman-coded JPEG needs at least a bit per {what[:-1]}, so at least {_ceil(units, 8)} "
            f"bytes (refused below 1/{BOMB_SAFETY} of that): truncated or a decompression bomb"
        )
    return kind, width, height


class DecodeBudget:
    """A token bucket over the pixels compressed images declare, so decoding costs at most about
    `pixels_per_s` pixels a second on average and `pixels_per_s * burst_s` at once. `take` before decoding.
    An image larger than the whole bucket passes only when the bucket is full (and leaves it owing), so it is
    slowed, never locked out. `pixels_per_s` <= 0: no budget. Thread-safe."""

    def __init__(self, pixels_per_s: float, burst_s: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        if pixels_per_s > 0 and not burst_s > 0:
            raise ValueError(f"burst_s must be positive, not {burst_s}")
        self.pixels_per_s = float(pixels_per_s)
        self.burst_s = float(burst_s)
        self.capacity = self.pixels_per_s * self.burst_s
        self._tokens = self.capacity
        self._clock = clock
        self._last = clock()
        self._lock = threading.Lock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.capacity, self._tokens + max(0.0, now - self._last) * self.pixels_per_s)
        self._last = now

    @property
    def tokens(self) -> float:
        """Pixels that may be decoded now (negative while a large image is paid off)."""
        with self._lock:
            if self.pixels_per_s > 0:
                self._refill()
            return self._tokens

    def take(self, pixels: int) -> bool:
        """Spend `pixels` if the budget has them now (True), else spend nothing (False)."""
        if pixels < 0:
            raise ValueError(f"pixels must not be negative, not {pixels}")
        if self.pixels_per_s <= 0:
            return True
        with self._lock:
            self._refill()
            if pixels <= self._tokens or self._tokens >= self.capacity:
                self._tokens -= pixels
                return True
            return False

    def describe(self) -> str:
        """The budget in words, for refusals."""
        return f"{self.pixels_per_s:.0f} pixels/s with a burst of {self.burst_s:g} s"


def decode_compressed(
    data: bytes | memoryview, fmt: str = "", max_pixels: int | None = MAX_PIXELS, budget: DecodeBudget | None = None
) -> np.ndarray:
    """JPEG/PNG bytes → RGB uint8. Before any decoding, the size in the header is checked against `max_pixels`
    and against what the file's bytes can encode (`check_bomb`), and its pixels are taken from `budget`
    (DecodeBudgetError when it is spent)."""
    if len(data) == 0:
        raise ImageError("compressed image is empty")
    kind, width, height = compressed_size(data)
    check_pixels(width, height, max_pixels, f"compressed {kind} image")
    check_bomb(data)
    if budget is not None and not budget.take(width * height):
        raise DecodeBudgetError(
            f"compressed {kind} image of {width}x{height} skipped: the decode budget "
            f"({budget.describe()}) is spent for now"
        )
    decoded = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if decoded is None:
        raise ImageError(f"compressed image ({fmt or kind}, {len(data)} bytes) could not be decoded")
    if decoded.shape[0] * decoded.shape[1] > width * height:  # a decoder that disagreed with the header
        raise ImageError(
            f"compressed {kind} image decoded to {decoded.shape[1]}x{decoded.shape[0]}, larger than "
            f"its header's {width}x{height}"
        )
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
