"""Semantic segmentation: a class for every pixel, from per-pixel class scores or a class map the graph made.

Layouts recognised from the outputs of a trial run (`recognise`), where the shapes say so:

- class scores `[1, C, h, w]` (NCHW: torchvision FCN / DeepLabV3 / LRASPP `out` at the input size, Hugging
  Face SegFormer / UperNet / DPT `logits` at 1/4 of it) or `[1, h, w, C]` (NHWC: TFLite / Keras), logits or
  probabilities; one channel (`[1, 1, h, w]`, `[1, h, w, 1]`) is a foreground probability (a person mask):
  class 1 where it is above 0.5, else 0;
- class maps already argmax-ed in the graph, `[1, h, w]` (or `[1, 1, h, w]`) of integers.

The map's spatial size must be the input's, or the input's divided by 2, 4 or 8 (rounded either way): the
sizes segmentation heads give. A detection head's grid (YOLOv2-style outputs at 1/16 or 1/32, CenterNet's
heat maps beside their box maps) is never read as a class map, and a model with outputs besides its maps is not
a segmenter.

The class map follows the framework's own post-processing (torchvision, Hugging Face's
`post_process_semantic_segmentation`): the scores are resized bilinearly to the source image with half-pixel
centres (PyTorch's `align_corners=False`), through whatever resize fed the model (stretch, letterbox or
centre crop, undone), then argmax; integer maps are resized by nearest neighbour (half-pixel centres).
Computed exactly without upsampling every class (`resize_scores_argmax`): only pixels on class boundaries are
interpolated, and there only the classes that can win.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ...metadata import TensorSpec
from ..preprocess import Transform
from .base import Context, Decoder
from .scores import TOL, dequantize, tolerance

#: Output names that usually hold a class map or class scores.
MAP_NAMES = ("out", "output", "logits", "semantic", "segmentation", "seg", "mask", "masks", "classes")
#: The downscales a segmentation head's map may have against the input.
FACTORS = (1, 2, 4, 8)
#: Most classes a class map can name (mono16).
MAX_CLASSES = 65536
#: Boundary pixels interpolated in full at once (bounds the temporaries to C x CHUNK floats).
CHUNK = 8192


@dataclass(frozen=True)
class AxisMap:
    """Where each pixel along one axis of the source image samples the model's map: the two neighbours and
    the weight of the second (bilinear), and the nearest."""

    i0: np.ndarray
    i1: np.ndarray
    w1: np.ndarray
    nearest: np.ndarray

    @classmethod
    def build(cls, n_source: int, n_map: int, scale: float, pad: float, n_input: int) -> AxisMap:
        """Source pixel x → the map's coordinate: through the model input (x_in = x * scale + pad), whose
        `n_input` pixels the map's `n_map` cover; half-pixel centres, clamped at the edges as PyTorch does."""
        ratio = n_map / n_input
        centre = (np.arange(n_source, dtype=np.float64) + 0.5) * scale + pad  # model-input coordinates
        src = np.maximum(centre * ratio - 0.5, 0.0)
        i0 = np.minimum(np.floor(src).astype(np.intp), n_map - 1)
        i1 = np.minimum(i0 + 1, n_map - 1)
        w1 = (src - i0).astype(np.float32)
        nearest = np.clip(np.floor(centre * ratio).astype(np.intp), 0, n_map - 1)
        return cls(i0, i1, w1, nearest)


def map_axes(transform: Transform, map_h: int, map_w: int) -> tuple[AxisMap, AxisMap]:
    """The sampling of a (map_h, map_w) map for every row and column of the transform's source image."""
    ys = AxisMap.build(transform.source_height, map_h, transform.scale_y, transform.pad_y, transform.input_height)
    xs = AxisMap.build(transform.source_width, map_w, transform.scale_x, transform.pad_x, transform.input_width)
    return ys, xs


def map_dtype(classes: int) -> type:
    return np.uint8 if classes <= 256 else np.uint16


def top_two(scores: np.ndarray, dtype: type) -> tuple[np.ndarray, np.ndarray]:
    """argmax over the first axis of (C, h, w) float32 scores (the first class wins a tie, as argmax does), and
    the second-best score of each pixel: one pass per class of OpenCV's vectorised compare / copy / max, without
    the transposed copy numpy's axis-0 argmax makes (4 to 5 times faster)."""
    best = scores[0].copy()
    second = np.full_like(best, -np.inf)
    index = np.zeros(best.shape, dtype)
    fill, lower = np.empty(best.shape, dtype), np.empty_like(best)
    for c in range(1, scores.shape[0]):
        plane = scores[c]
        higher = cv2.compare(plane, best, cv2.CMP_GT)
        fill[...] = c
        cv2.copyTo(fill, higher, index)
        cv2.min(best, plane, dst=lower)
        cv2.max(second, lower, dst=second)
        cv2.max(best, plane, dst=best)
    return index, second


def _bilinear(values: list[np.ndarray], wx: np.ndarray, wy: np.ndarray) -> np.ndarray:
    """Values at the four corners (00, 01, 10, 11) interpolated, in PyTorch's order of operations."""
    top = values[0] * (1 - wx) + values[1] * wx
    bottom = values[2] * (1 - wx) + values[3] * wx
    return top * (1 - wy) + bottom * wy


def resize_scores_argmax(scores: np.ndarray, ys: AxisMap, xs: AxisMap) -> np.ndarray:
    """The class map at the source size of (C, h, w) float32 scores: bilinear resize, then argmax (exact).

    Where a pixel's four map neighbours share one argmax, that class wins for any weighting. Elsewhere (class
    boundaries) the corners' own classes are interpolated; a class that is none of them scores at most the
    interpolated second-best scores, so the best corner class above that bound is the answer; the few pixels
    where it is not (near-ties) are interpolated over every class."""
    classes, h, w = scores.shape
    low, second = top_two(scores, map_dtype(classes))
    # a cell (i, j) is mixed when the four map pixels (i..i+1, j..j+1) do not share one argmax
    edge = np.pad(low, ((0, 1), (0, 1)), mode="edge")
    mixed_cell = (edge[:-1, 1:] != low) | (edge[1:, :-1] != low) | (edge[1:, 1:] != low)
    out = low[ys.i0][:, xs.i0]
    mixed = mixed_cell[ys.i0][:, xs.i0]
    rows, cols = np.nonzero(mixed)
    flat, best_flat, second_flat = scores.reshape(classes, h * w), low.reshape(-1), second.reshape(-1)
    plane = h * w
    for start in range(0, rows.size, CHUNK):  # bounded temporaries
        r, c = rows[start : start + CHUNK], cols[start : start + CHUNK]
        y0, y1, wy = ys.i0[r] * w, ys.i1[r] * w, ys.w1[r]
        x0, x1, wx = xs.i0[c], xs.i1[c], xs.w1[c]
        corners = [y0 + x0, y0 + x1, y1 + x0, y1 + x1]
        candidates = np.stack([best_flat[p].astype(np.intp) for p in corners])  # (4, n) classes
        values = np.stack([_bilinear([flat.reshape(-1)[k * plane + p] for p in corners], wx, wy) for k in candidates])
        top = values.max(axis=0)
        winner = np.where(values == top, candidates, classes).min(axis=0)  # ties: the lowest class, as argmax
        bound = _bilinear([second_flat[p] for p in corners], wx, wy)
        sure = top > bound + 1e-5 * np.maximum(1.0, np.abs(bound))
        out[r[sure], c[sure]] = winner[sure]
        unsure = ~sure
        if unsure.any():  # near-ties: every class
            ru, cu, wxu, wyu = r[unsure], c[unsure], wx[unsure], wy[unsure]
            full = _bilinear([flat[:, p[unsure]] for p in corners], wxu, wyu)
            out[ru, cu] = full.argmax(axis=0)
    return out


def resize_indices(indices: np.ndarray, ys: AxisMap, xs: AxisMap) -> np.ndarray:
    """A class-index map (h, w) at the source size (nearest neighbour, half-pixel centres)."""
    return indices[ys.nearest][:, xs.nearest]


class SegmentationDecoder(Decoder):
    """Reads one output as class scores (`layout` nchw / nhwc) or as a class-index map (`layout` index)."""

    role = "segmenter"

    def __init__(
        self, tensor: str, spec: TensorSpec | None, layout: str, classes: int, foreground: float = 0.5
    ) -> None:
        self.tensor, self.spec, self.layout = tensor, spec, layout
        self.num_classes = classes  # 0: an index map (as many classes as its values say)
        #: one channel: the value above which a pixel is foreground (0.5 for probabilities, 0 for logits)
        self.foreground = foreground

    def scores(self, outputs: dict[str, np.ndarray]) -> np.ndarray:
        """The output as (C, h, w) scores."""
        array = dequantize(np.asarray(outputs[self.tensor]), self.spec)
        array = array.reshape(array.shape[-3:])
        return array if self.layout == "nchw" else np.moveaxis(array, -1, 0)

    def decode(self, outputs: dict[str, np.ndarray], transform: Transform) -> np.ndarray:
        """The class map at the source image's size (uint8 for up to 256 classes, else uint16)."""
        raw = np.asarray(outputs[self.tensor])
        if self.layout == "index":
            indices = raw.reshape(raw.shape[-2], raw.shape[-1])
            if indices.size and (indices.min() < 0 or indices.max() > 65535):
                raise ValueError(
                    f"class map {self.tensor!r} holds {int(indices.min())}..{int(indices.max())}: not class indices"
                )
            dtype = map_dtype(int(indices.max()) + 1 if indices.size else 1)
            ys, xs = map_axes(transform, indices.shape[0], indices.shape[1])
            return resize_indices(indices.astype(dtype, copy=False), ys, xs)
        scores = self.scores(outputs).astype(np.float32, copy=False)
        if scores.shape[0] == 1:  # a foreground score: against a constant background at the threshold
            scores = np.concatenate([np.full_like(scores, self.foreground), scores])
        ys, xs = map_axes(transform, scores.shape[1], scores.shape[2])
        return resize_scores_argmax(np.ascontiguousarray(scores), ys, xs)


def _downscale(map_hw: tuple[int, int], input_hw: tuple[int, int]) -> int:
    """The factor (FACTORS) the map is smaller than the input by along both axes; 0 when none fits."""
    for f in FACTORS:
        if all(m in (n // f, -(-n // f)) for m, n in zip(map_hw, input_hw)):
            return f
    return 0


def _reading(shape: tuple[int, ...], dtype: np.dtype, input_hw: tuple[int, int], layout: str) -> list[str]:
    """How an output of `shape` can be read as a map of an `input_hw` input: nchw, nhwc, index (any that fit)."""
    found = []
    integer = np.issubdtype(dtype, np.integer)
    if len(shape) == 3 and shape[0] == 1 and integer and _downscale(shape[1:], input_hw):
        found.append("index")
    if len(shape) == 4 and shape[0] == 1:
        if integer and shape[1] == 1 and _downscale(shape[2:], input_hw):
            found.append("index")
        elif not integer or layout != "auto":
            if layout in ("auto", "nchw") and _downscale(shape[2:], input_hw):
                found.append("nchw")
            if layout in ("auto", "nhwc") and _downscale(shape[1:3], input_hw):
                found.append("nhwc")
    return found


def _unsure(ctx: Context, classes: int, shape: tuple[int, ...], kind: str) -> bool:
    """Class scores the shapes alone cannot tell from another model's output: a picture of the input's size and
    channels (an image-to-image model's), or a map smaller than the input without a label for each channel (a
    backbone's feature map)."""
    spatial = tuple(shape[2:] if kind == "nchw" else shape[1:3])
    image = ctx.metadata.inputs[0].shape if ctx.metadata.inputs else []
    channels = {d for d in image[1:] if d in (1, 3)} if len(image) == 4 else set()
    if classes in channels and spatial == tuple(ctx.input_hw):
        return True
    labelled = ctx.labels is not None and ctx.span == classes
    return spatial != tuple(ctx.input_hw) and classes > 1 and not labelled


def recognise(ctx: Context) -> SegmentationDecoder | None:
    """A segmenter: every output is a map of the input's size (or 1/2, 1/4, 1/8 of it), and one can be read
    (the one named like a map, or the only one, or the first of several of one shape: torchvision's `out`
    beside `aux`). Ambiguous NCHW/NHWC readings are refused with `segmentation_layout`; class scores that may be
    another model's output (`_unsure`) are read only with `model_type: segmenter`."""
    if ctx.input_hw == (0, 0):
        return None
    layout = ctx.config.segmentation_layout
    readings = {n: _reading(ctx.shape(n), np.asarray(a).dtype, ctx.input_hw, layout) for n, a in ctx.outputs.items()}
    if not readings or not all(readings.values()):
        return None
    names = list(readings)
    named = [n for n in names if n.lower().split("/")[-1].split(":")[0] in MAP_NAMES]
    shapes = {ctx.shape(n) for n in names}
    if named:
        name = named[0]
    elif len(names) == 1 or len(shapes) == 1:
        name = names[0]
    else:
        return None  # several maps of different shapes (heat maps, box maps): not a segmenter's
    found = readings[name]
    if len(found) > 1:
        raise ctx.refuse(
            f"output {name!r} {list(ctx.shape(name))} can be read as class scores both NCHW and NHWC",
            "segmentation_layout",
        )
    kind = found[0]
    shape = ctx.shape(name)
    classes = 0 if kind == "index" else int(shape[1] if kind == "nchw" else shape[-1])
    if ctx.config.model_type != "segmenter" and kind != "index" and _unsure(ctx, classes, shape, kind):
        return None  # read only with model_type: segmenter, which the refusal offers (tried)
    if classes > MAX_CLASSES:
        raise ctx.refuse(f"output {name!r} {list(shape)} scores {classes} classes, more than a mono16 map holds", None)
    activation = ctx.config.score_activation
    if kind != "index" and classes == 1 and activation not in ("sigmoid",):
        values = dequantize(np.asarray(ctx.outputs[name]), ctx.spec(name))
        tol = max(TOL, tolerance(ctx.spec(name)))
        if values.size and (values.min() < -tol or values.max() > 1 + tol):
            raise ctx.refuse(
                f"output {name!r} {list(shape)} is one channel (a foreground mask) but holds values in "
                f"{float(values.min()):.3g}..{float(values.max()):.3g}, not probabilities in [0, 1] (logits: "
                "score_activation sigmoid)",
                "score_activation",
            )
    return SegmentationDecoder(name, ctx.spec(name), kind, classes, 0.0 if activation == "sigmoid" else 0.5)
