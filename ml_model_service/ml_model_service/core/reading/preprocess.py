"""Image → model input tensor: layout (NHWC/NCHW, batched or not), input size, resize mode, dtype and
normalisation.

Normalisation choice (Viam's docs say "none when unset", its code defaults mean = std = 0.5): float inputs
get (v/255 - mean) / std with **mean = 0, std = 1 by default, i.e. values in [0, 1]**, which is what YOLO
exports and most float detectors expect. Set `input_mean` / `input_std` (e.g. 0.5/0.5 for [-1, 1], or the
ImageNet statistics) for other models. Integer inputs get the 0-255 pixel values unchanged.

Resize modes: `stretch` (whole image to the input size), `letterbox` (aspect kept, grey bars: YOLO), and
`center_crop` (shorter side to size / crop_fraction, then the centre: how ImageNet classifiers are trained
and evaluated; crop_fraction 0.875 gives the usual 256 → 224).

Input size: a fixed model dimension is used as declared; an open one (-1) takes the size given in
`input_size` (the option, else the model's own `imgsz` metadata), else follows the image, rounded up to
the stride for letterboxed models. Inputs above `max_input_pixels` are refused before anything is
allocated.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from ..metadata import ModelMetadata, TensorSpec

#: Default cap on a model input (height x width).
MAX_INPUT_PIXELS = 16_777_216
RESIZE_MODES = ("stretch", "letterbox", "center_crop")
PAD_CORNERS = ("center", "top_left")
INPUT_RANGES = ("unit", "byte")


class RoleError(ValueError):
    """The model does not fit the role asked of it; the message lists its tensors."""


@dataclass(frozen=True)
class InputLayout:
    """Where height, width and channels sit in a model's image input."""

    name: str
    data_type: str
    nchw: bool
    height: int  # -1: open (see the module docstring)
    width: int
    channels: int
    batched: bool = True  # False: a 3-D input (CHW or HWC) without the batch axis (torchvision detectors)
    batch: int = 1  # the batch dimension: 1, -1 (dynamic) or a fixed N > 1 (filled by padding)

    @classmethod
    def from_spec(cls, spec: TensorSpec) -> InputLayout:
        shape = list(spec.shape)
        batched = len(shape) == 4
        if len(shape) == 3:
            shape = [1, *shape]
        if len(shape) != 4:
            raise RoleError(
                f"input {spec.name!r} has shape {list(spec.shape)}; an image input must be 4-D "
                "(NHWC or NCHW) or 3-D (CHW or HWC)"
            )
        if batched and (shape[0] == 0 or shape[0] < -1):
            raise RoleError(f"input {spec.name!r} has a batch dimension of {shape[0]} (shape {shape})")
        # Viam's rule: NCHW when the first 3 in the shape is at index 1 (extended to 1-channel inputs); with every
        # axis open (PyTorch exports such as optimum's; TensorFlow's fix their channel axis) NCHW too.
        nchw = (shape[1] in (1, 3) and shape[3] not in (1, 3)) or shape[1] == shape[2] == shape[3] == -1
        if nchw:
            _, c, h, w = shape
        else:
            _, h, w, c = shape
        if c not in (1, 3, -1):
            raise RoleError(f"input {spec.name!r} has {c} channels (shape {list(spec.shape)}); expected 1 or 3")
        return cls(spec.name, spec.data_type, nchw, h, w, 3 if c == -1 else c, batched, shape[0] if batched else 1)

    @property
    def fixed(self) -> bool:
        return self.height > 0 and self.width > 0


@dataclass
class PreprocessConfig:
    """How images become tensors."""

    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    bgr: bool = False
    letterbox: bool = False
    pad_value: int = 114
    center_crop: bool = False  # resize the shorter side to size / crop_fraction, keep the centre
    crop_fraction: float = 0.875
    input_size: tuple[int, int] | None = None  # (height, width) for open dimensions; None: follow the image
    stride: int = 32  # open dimensions that follow the image are rounded up to this (letterbox only)
    #: Letterbox into input_size with open dimensions: only as large as the scaled image, rounded up to the
    #: stride (Ultralytics' rect inference on dynamic exports: a 741 x 500 image at 640 runs at 640 x 448).
    rect: bool = False
    max_input_pixels: int = MAX_INPUT_PIXELS
    #: Open dimensions follow the image with its shorter side scaled to this and its longer side at most
    #: `longest_edge` (0: no bound), aspect kept (Hugging Face's DETR-family processors); 0: not used.
    shortest_edge: int = 0
    longest_edge: int = 0
    edge_multiple: int = 0  # the shortest-edge size's sides rounded down to a multiple of this (0: not)
    pad_corner: str = "center"  # letterbox: the image centred in its bars, or at the top left (YOLOX)
    input_range: str = "unit"  # float inputs: unit ((v/255 - mean) / std) or byte (the same times 255)
    pil_resample: int = (
        0  # a Pillow filter (PIL_FILTERS) to resize with, as the model's image processor does; 0: OpenCV
    )

    @property
    def mode(self) -> str:
        return "letterbox" if self.letterbox else "center_crop" if self.center_crop else "stretch"


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


def parse_size(value) -> tuple[int, int] | None:
    """An input-size option or `imgsz` metadata value → (height, width); [], 0 or None → None.

    Accepts an int (square), a sequence of one or two ints, or text such as "640", "[640, 640]", "480x640".
    """
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip().strip("[]()").replace("x", ",").replace("X", ",")
        parts = [p for p in text.replace(" ", ",").split(",") if p]
        if not parts:
            return None
        try:
            value = [int(float(p)) for p in parts]
        except ValueError as exc:
            raise ValueError(f"input size {value!r} is not one or two integers") from exc
    if isinstance(value, (int, np.integer)):
        value = [int(value)]
    value = [int(v) for v in value]
    if not value or value == [0]:
        return None
    if len(value) == 1:
        value = value * 2
    if len(value) != 2 or min(value) <= 0:
        raise ValueError(f"input size {list(value)} must be one or two positive integers (height, width)")
    return value[0], value[1]


def edge_size(src_h: int, src_w: int, shortest: int, longest: int = 0, multiple: int = 0) -> tuple[int, int]:
    """(height, width) of a src_h x src_w image whose shorter side is scaled to `shortest`, unless its longer side
    would then pass `longest` (> 0), aspect kept: the rule and rounding of Hugging Face's DETR image processors
    (`get_size_with_aspect_ratio`); `multiple` > 0: each side then rounded down to a multiple of it (YOLOS: 16)."""
    if multiple > 0:
        h, w = edge_size(src_h, src_w, shortest, longest)
        return max(multiple, h - h % multiple), max(multiple, w - w % multiple)
    size, raw = float(shortest), None
    small, large = float(min(src_h, src_w)), float(max(src_h, src_w))
    if longest > 0 and large / small * size > longest:
        raw = longest * small / large
        size = float(int(round(raw)))
    if (src_h <= src_w and src_h == size) or (src_w <= src_h and src_w == size):
        return src_h, src_w
    factor = raw if raw is not None else size
    if src_w < src_h:
        return int(factor * src_h / src_w), int(size)
    return int(size), int(factor * src_w / src_h)


def input_size(layout: InputLayout, config: PreprocessConfig, src_h: int, src_w: int) -> tuple[int, int]:
    """The (height, width) the model is fed for a src_h x src_w image; refused above max_input_pixels."""
    stride = max(int(config.stride), 1) if config.letterbox else 1
    if config.input_size:
        want_h, want_w = config.input_size
    elif config.shortest_edge > 0:
        want_h, want_w = edge_size(src_h, src_w, config.shortest_edge, config.longest_edge, config.edge_multiple)
    else:
        want_h, want_w = -(-src_h // stride) * stride, -(-src_w // stride) * stride
    if config.rect and config.letterbox and config.input_size:
        scale = min(want_h / src_h, want_w / src_w)
        want_h = min(want_h, -(-round(src_h * scale) // stride) * stride)
        want_w = min(want_w, -(-round(src_w * scale) // stride) * stride)
    dst_h = layout.height if layout.height > 0 else want_h
    dst_w = layout.width if layout.width > 0 else want_w
    if dst_h * dst_w > config.max_input_pixels:
        raise RoleError(
            f"model input {layout.name!r} would be {dst_h} x {dst_w} = {dst_h * dst_w} pixels, above "
            f"max_input_pixels ({config.max_input_pixels}); set input_size for open dimensions "
            "or raise max_input_pixels"
        )
    return dst_h, dst_w


#: Pillow's resampling filters by their number (what Hugging Face's preprocessor_config.json `resample` holds).
PIL_FILTERS = {1: "LANCZOS", 2: "BILINEAR", 3: "BICUBIC"}


def _resize(image: np.ndarray, width: int, height: int, pil: int = 0) -> np.ndarray:
    """OpenCV's bilinear resize; with `pil` (1, 2, 3: a Pillow filter) Pillow's, which widens its filter when it
    shrinks (antialiasing), as Hugging Face's image processors resize."""
    if image.shape[1] == width and image.shape[0] == height:
        return image
    if pil in PIL_FILTERS:
        from PIL import Image

        resample = getattr(Image.Resampling, PIL_FILTERS[pil])
        return np.asarray(Image.fromarray(np.ascontiguousarray(image)).resize((width, height), resample))
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)


def _float_tensor(
    image: np.ndarray,
    layout: InputLayout,
    config: PreprocessConfig,
    size: tuple[int, int],
    at: tuple[int, int],
    out: np.ndarray | None = None,
) -> np.ndarray:
    """A float tensor of `size` (height, width) for `layout` holding (v/255 - mean) / std of the uint8 (h, w, C)
    `image` at offset `at` (top, left) and the normalised pad value around it (letterbox bars): the layout change,
    the scaling and the padding in one pass into the tensor, with no padded uint8 canvas in between (three times
    faster than OpenCV's blobFromImage on the padded canvas: 0.7 against 3 ms at 640 x 640 here). Into `out` when
    it has the tensor's shape and type."""
    (dst_h, dst_w), (top, left) = size, at
    h, w, c = image.shape
    unit = 1.0 if config.input_range == "byte" else 255.0  # byte: the normalised values times 255
    scale = 1.0 / (unit * np.asarray(config.std[:c], np.float32))
    offset = (255.0 / unit) * np.asarray(config.mean[:c], np.float32) / np.asarray(config.std[:c], np.float32)
    dtype = np.dtype(layout.data_type)
    shape = (c, dst_h, dst_w) if layout.nchw else (dst_h, dst_w, c)
    shape = (1, *shape) if layout.batched else shape
    if out is not None and out.shape == shape and out.dtype == dtype and out.flags.c_contiguous:
        tensor: np.ndarray = out
    else:
        tensor = np.empty(shape, dtype)
    body = tensor[0] if layout.batched else tensor
    # NCHW: the image is read through a transposed view and the tensor written in order (writing through a
    # transposed view of the tensor instead is 3.5 times slower)
    src, per_channel = (image.transpose(2, 0, 1), (slice(None), None, None)) if layout.nchw else (image, (...,))
    rows = body[:, top : top + h] if layout.nchw else body[top : top + h]
    if (top, left, h, w) != (0, 0, dst_h, dst_w):  # the bars: the pad value, normalised like the pixels
        pad = (np.float32(config.pad_value) * scale - offset).astype(dtype)[per_channel]
        if layout.nchw:
            bars = (body[:, :top], body[:, top + h :], rows[:, :, :left], rows[:, :, left + w :])
        else:
            bars = (body[:top], body[top + h :], rows[:, :left], rows[:, left + w :])
        for bar in bars:
            bar[...] = pad
    region = rows[:, :, left : left + w] if layout.nchw else rows[:, left : left + w]
    np.multiply(src, scale[per_channel], out=region, casting="unsafe")
    if offset.any():
        np.subtract(region, offset.astype(dtype)[per_channel], out=region)
    return tensor


def preprocess(
    rgb: np.ndarray, layout: InputLayout, config: PreprocessConfig, out: np.ndarray | None = None
) -> tuple[np.ndarray, Transform]:
    """An RGB uint8 (H, W, 3) image → a batch-of-one tensor for `layout`, and the box transform back. A float
    tensor is written into `out` when that has its shape and type (a tensor of an earlier frame, used up)."""
    src_h, src_w = rgb.shape[:2]
    dst_h, dst_w = input_size(layout, config, src_h, src_w)
    top = left = 0
    if config.letterbox:
        scale = min(dst_w / src_w, dst_h / src_h)
        size_of = int if config.pad_corner == "top_left" else round  # YOLOX's preproc floors; Ultralytics rounds
        new_w, new_h = max(1, size_of(src_w * scale)), max(1, size_of(src_h * scale))
        pad_x, pad_y = (dst_w - new_w) / 2.0, (dst_h - new_h) / 2.0
        image = _resize(rgb, new_w, new_h, config.pil_resample)
        top, left = (0, 0) if config.pad_corner == "top_left" else (int(round(pad_y - 0.1)), int(round(pad_x - 0.1)))
        transform = Transform(scale, scale, left, top, dst_w, dst_h, src_w, src_h)
    elif config.center_crop:
        if not 0.0 < config.crop_fraction <= 1.0:
            raise RoleError(f"crop_fraction {config.crop_fraction} must be in (0, 1]")
        # The source region that ends up in the input: dst / scale, centred (crop first, then one resize).
        scale = max(dst_w / src_w, dst_h / src_h) / config.crop_fraction
        crop_w, crop_h = min(src_w, max(1, round(dst_w / scale))), min(src_h, max(1, round(dst_h / scale)))
        x0, y0 = (src_w - crop_w) // 2, (src_h - crop_h) // 2
        crop = np.ascontiguousarray(rgb[y0 : y0 + crop_h, x0 : x0 + crop_w])
        shrink = crop_w > dst_w and crop_h > dst_h
        if config.pil_resample:
            image = _resize(crop, dst_w, dst_h, config.pil_resample)
        else:
            image = cv2.resize(crop, (dst_w, dst_h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
        sx, sy = dst_w / crop_w, dst_h / crop_h
        transform = Transform(sx, sy, -x0 * sx, -y0 * sy, dst_w, dst_h, src_w, src_h)
    else:
        image = _resize(rgb, dst_w, dst_h, config.pil_resample)
        transform = Transform(dst_w / src_w, dst_h / src_h, 0.0, 0.0, dst_w, dst_h, src_w, src_h)
    if layout.channels == 1:
        image = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY)[..., None]
    elif config.bgr:
        image = image[..., ::-1]  # a view: the copy into the tensor swaps
    if layout.data_type.startswith("float"):
        return _float_tensor(image, layout, config, (dst_h, dst_w), (top, left), out), transform
    if (top, left, image.shape[0], image.shape[1]) != (0, 0, dst_h, dst_w):
        pad = (config.pad_value,) * 3
        bottom, right = dst_h - image.shape[0] - top, dst_w - image.shape[1] - left
        image = np.ascontiguousarray(image)
        image = cv2.copyMakeBorder(image, top, bottom, left, right, cv2.BORDER_CONSTANT, value=pad)
        image = image.reshape(dst_h, dst_w, -1)  # (OpenCV drops a single channel's axis)
    if layout.data_type == "uint8":
        tensor = image
    elif layout.data_type == "int8":
        tensor = (image.astype(np.int16) - 128).astype(np.int8)
    else:
        raise RoleError(f"input {layout.name!r} has data type {layout.data_type}; expected uint8, int8 or float")
    if layout.nchw:
        tensor = tensor.transpose(2, 0, 1)
    return np.ascontiguousarray(tensor[None] if layout.batched else tensor), transform


_SIZE_INPUT_SHAPES = ([1, 2], [2], [-1, 2])


_SIZE_INPUT_NAMES = ("orig_target_sizes", "orig_target_size", "orig_size", "orig_sizes", "target_sizes")


def _is_size_input(spec: TensorSpec) -> bool:
    """The `orig_target_sizes` input of the official RT-DETR / D-FINE exports: [1, 2], width then height.
    Other extra inputs (PaddleDetection's im_shape and scale_factor, with other meanings and orders) are not
    guessed at."""
    return (
        spec.name.lower() in _SIZE_INPUT_NAMES
        and list(spec.shape) in _SIZE_INPUT_SHAPES
        and spec.data_type.startswith(("int", "float"))
    )


def size_inputs(metadata: ModelMetadata, image: TensorSpec, describe: str) -> list[TensorSpec]:
    """The inputs besides the image: image-size inputs only (filled in `_tensor`)."""
    others = [s for s in metadata.inputs if s.name != image.name]
    for other in others:
        if not _is_size_input(other):
            raise RoleError(
                f"input {other.name!r} ({other.data_type} {list(other.shape)}) is neither the image "
                "nor a [1, 2] image-size input (orig_target_sizes), so it cannot be filled; no option "
                f"can help (remap_input_names only picks which input is the image). Model tensors: "
                f"{describe}"
            )
    return others


def infer_one(
    infer: Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]], layout: InputLayout, inputs: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """`infer` on one image's inputs; for a fixed batch of N > 1 the image is padded to N (copies) and the
    first image's outputs are returned (those with the batch as their first axis, cut to it)."""
    n = layout.batch
    if n <= 1:
        return infer(inputs)
    out = infer({**inputs, layout.name: np.repeat(inputs[layout.name], n, axis=0)})
    return {k: v[:1] if v.ndim and v.shape[0] == n else v for k, v in out.items()}
