"""The sensor messages a camera sends: colour images in its encodings, depth images and camera_info."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ml_model_service.core.frames.pointcloud import Intrinsics


def camera_bytes(rgb: np.ndarray, encoding: str) -> np.ndarray:
    """`rgb` as a camera sends it in YUV 4:2:2 (uyvy/yuv422, yuyv/yuv422_yuy2: BT.601 video range, chroma of
    each pixel pair from its first pixel) or a Bayer mosaic (bayer_PATTERN8/16: each pixel keeps the one
    channel its position in the 2x2 PATTERN names)."""
    h, w = rgb.shape[:2]
    if encoding.startswith("bayer_"):
        pattern, bits = encoding[6:10], int(encoding[10:])
        out = np.zeros((h, w), np.uint8)
        for (dy, dx), channel in zip(((0, 0), (0, 1), (1, 0), (1, 1)), pattern):
            out[dy::2, dx::2] = rgb[dy::2, dx::2, "rgb".index(channel)]
        return out.astype(np.uint16) * 257 if bits == 16 else out
    r, g, b = (rgb[..., i].astype(np.float64) for i in range(3))
    y = 16 + (65.481 * r + 128.553 * g + 24.966 * b) / 255
    u = 128 + (-37.797 * r - 74.203 * g + 112.0 * b) / 255
    v = 128 + (112.0 * r - 93.786 * g - 18.214 * b) / 255
    y8, u8, v8 = (np.clip(np.round(c), 0, 255).astype(np.uint8) for c in (y, u, v))
    out = np.zeros((h, w, 2), np.uint8)
    luma, chroma = (1, 0) if encoding in ("uyvy", "yuv422") else (0, 1)
    out[..., luma] = y8
    out[:, 0::2, chroma], out[:, 1::2, chroma] = u8[:, 0::2], v8[:, 0::2]
    return out


def image_msg(rgb: np.ndarray, frame_id: str = "camera", encoding: str = "rgb8"):
    """A sensor_msgs/Image of `rgb` in the given encoding (rgb8, bgr8, rgba8, bgra8, mono8, mono16, and the
    camera encodings of `camera_bytes`)."""
    import cv2
    from sensor_msgs.msg import Image

    if encoding.startswith(("bayer_", "yuv", "uyvy", "yuyv")):
        rgb = rgb[: rgb.shape[0] // 2 * 2, : rgb.shape[1] // 2 * 2]
        data = np.ascontiguousarray(camera_bytes(rgb, encoding))
        msg = Image(
            height=data.shape[0],
            width=data.shape[1],
            encoding=encoding,
            is_bigendian=0,
            step=data.shape[1] * data.itemsize * (1 if data.ndim == 2 else 2),
            data=data.tobytes(),
        )
        msg.header.frame_id = frame_id
        return msg

    conv = {
        "rgb8": None,
        "bgr8": cv2.COLOR_RGB2BGR,
        "rgba8": cv2.COLOR_RGB2RGBA,
        "bgra8": cv2.COLOR_RGB2BGRA,
        "mono8": cv2.COLOR_RGB2GRAY,
        "mono16": cv2.COLOR_RGB2GRAY,
    }[encoding]
    data = rgb if conv is None else cv2.cvtColor(rgb, conv)
    if encoding == "mono16":
        data = data.astype(np.uint16) * 257
    data = np.ascontiguousarray(data)
    msg = Image(
        height=data.shape[0],
        width=data.shape[1],
        encoding=encoding,
        is_bigendian=0,
        step=data.shape[1] * data.itemsize * (1 if data.ndim == 2 else data.shape[2]),
        data=data.tobytes(),
    )
    msg.header.frame_id = frame_id
    return msg


def depth_msg(depth_m: np.ndarray, encoding: str = "16UC1", frame_id: str = "camera"):
    """A sensor_msgs/Image of a depth map in metres (NaN: no depth), as 16UC1 (millimetres, 0 where unknown)
    or 32FC1 (metres)."""
    from sensor_msgs.msg import Image

    if encoding == "16UC1":
        data = np.nan_to_num(depth_m * 1000.0, nan=0.0).round().astype(np.uint16)
    else:
        data = depth_m.astype(np.float32)
    msg = Image(
        height=data.shape[0],
        width=data.shape[1],
        encoding=encoding,
        is_bigendian=0,
        step=data.shape[1] * data.itemsize,
        data=data.tobytes(),
    )
    msg.header.frame_id = frame_id
    return msg


def camera_info_msg(k: Intrinsics, frame_id: str = "camera", distortion: Sequence[float] | None = None):
    """A sensor_msgs/CameraInfo of pinhole intrinsics `k`; with `distortion`, a plumb_bob model with those
    coefficients (else none)."""
    from sensor_msgs.msg import CameraInfo

    msg = CameraInfo(height=k.height, width=k.width, k=[k.fx, 0.0, k.cx, 0.0, k.fy, k.cy, 0.0, 0.0, 1.0])
    if distortion is not None:
        msg.distortion_model, msg.d = "plumb_bob", [float(v) for v in distortion]
    msg.header.frame_id = frame_id
    return msg
