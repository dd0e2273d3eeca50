"""Image → model input tensor: layout (NHWC/NCHW), resize or letterbox, dtype and normalisation.

Normalisation choice (Viam's docs say "none when unset", its code defaults mean = std = 0.5): float inputs
get (v/255 - mean) / std with **mean = 0, std = 1 by default, i.e. values in [0, 1]**, which is what YOLO
exports and most float detectors expect. Set `input_mean` / `input_std` (e.g. 0.5/0.5 for [-1, 1], or the
ImageNet statistics) for other models. Integer inputs get the 0-255 pixel values unchanged.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .metadata import TensorSpec


class RoleError(ValueError):
    """The model does not fit the role asked of it; the message lists its tensors."""


@dataclass(frozen=True)
class InputLayout:
    """Where height, width and channels sit in a model's first image input."""

    name: str
    data_type: str
    nchw: bool
    height: int  # -1: follows the image
    width: int
    channels: int

    @classmethod
    def from_spec(cls, spec: TensorSpec) -> InputLayout:
        shape = list(spec.shape)
        if len(shape) != 4:
            raise RoleError(f"input {spec.name!r} has shape {shape}; an image input must be 4-D (NHWC or NCHW)")
        # Viam's rule: NCHW when the first 3 in the shape is at index 1 (extended to 1-channel inputs).
        nchw = shape[1] in (1, 3) and shape[3] not in (1, 3)
        if nchw:
            _, c, h, w = shape
        else:
            _, h, w, c = shape
        if c not in (1, 3, -1):
            raise RoleError(f"input {spec.name!r} has {c} channels (shape {shape}); expected 1 or 3")
        return cls(spec.name, spec.data_type, nchw, h, w, 3 if c == -1 else c)


@dataclass
class PreprocessConfig:
    """How images become tensors."""

    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    bgr: bool = False
    letterbox: bool = False
    pad_value: int = 114


@dataclass(frozen=True)
class Transform:
    """Maps model-input pixels back to source pixels: src = (model - pad) / scale."""

    scale_x: float
    scale_y: float
    pad_x: float
    pad_y: float
    input_width: int
    input_height: int
    source_width: int
    source_height: int

    def to_source(self, boxes_xyxy: np.ndarray) -> np.ndarray:
        """Model-pixel boxes (N, 4) → source-pixel boxes, clipped to the image."""
        out = np.empty_like(boxes_xyxy, dtype=np.float64)
        out[:, [0, 2]] = np.clip((boxes_xyxy[:, [0, 2]] - self.pad_x) / self.scale_x, 0, self.source_width)
        out[:, [1, 3]] = np.clip((boxes_xyxy[:, [1, 3]] - self.pad_y) / self.scale_y, 0, self.source_height)
        return out


def preprocess(rgb: np.ndarray, layout: InputLayout, config: PreprocessConfig) -> tuple[np.ndarray, Transform]:
    """An RGB uint8 (H, W, 3) image → a batch-of-one tensor for `layout`, and the box transform back."""
    src_h, src_w = rgb.shape[:2]
    # Open dimensions follow the image (Viam); letterboxed (YOLO) inputs round up to the stride of 32.
    stride = 32 if config.letterbox else 1
    dst_w = layout.width if layout.width > 0 else -(-src_w // stride) * stride
    dst_h = layout.height if layout.height > 0 else -(-src_h // stride) * stride
    image = rgb[..., ::-1] if config.bgr else rgb
    if config.letterbox:
        scale = min(dst_w / src_w, dst_h / src_h)
        new_w, new_h = max(1, round(src_w * scale)), max(1, round(src_h * scale))
        pad_x, pad_y = (dst_w - new_w) / 2.0, (dst_h - new_h) / 2.0
        resized = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
        top, left = int(round(pad_y - 0.1)), int(round(pad_x - 0.1))
        canvas = cv2.copyMakeBorder(resized, top, dst_h - new_h - top, left, dst_w - new_w - left,
                                    cv2.BORDER_CONSTANT, value=(config.pad_value,) * 3)
        transform = Transform(scale, scale, left, top, dst_w, dst_h, src_w, src_h)
    else:
        canvas = image if (dst_w, dst_h) == (src_w, src_h) else cv2.resize(
            image, (dst_w, dst_h), interpolation=cv2.INTER_LINEAR)
        transform = Transform(dst_w / src_w, dst_h / src_h, 0.0, 0.0, dst_w, dst_h, src_w, src_h)
    if layout.channels == 1:
        canvas = cv2.cvtColor(np.ascontiguousarray(canvas), cv2.COLOR_RGB2GRAY)[..., None]
    if layout.data_type.startswith("float"):
        mean = np.asarray(config.mean[: layout.channels], dtype=np.float32)
        std = np.asarray(config.std[: layout.channels], dtype=np.float32)
        tensor = (canvas.astype(np.float32) * np.float32(1 / 255.0) - mean) / std
        tensor = tensor.astype(layout.data_type, copy=False)
    elif layout.data_type == "uint8":
        tensor = canvas
    elif layout.data_type == "int8":
        tensor = (canvas.astype(np.int16) - 128).astype(np.int8)
    else:
        raise RoleError(f"input {layout.name!r} has data type {layout.data_type}; expected uint8, int8 or float")
    if layout.nchw:
        tensor = tensor.transpose(2, 0, 1)
    return np.ascontiguousarray(tensor[None]), transform
