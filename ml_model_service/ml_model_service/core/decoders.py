"""Raw output tensors → boxes, scores and classes, or class probabilities.

Layouts (each decoder is built by `find_decoder` from the metadata, the model's own properties and a
trial run, and returns arrays in source-image pixels; naming, filtering and messages happen elsewhere):

- `detector`: SSD-style boxes + scores (+ category, + count), as TFLite's detection post-processing,
  torchvision (boxes/labels/scores) and the official RT-DETR/D-FINE exports (with `orig_target_sizes`) emit;
- `yolo`: raw YOLO, v5 `[1, N, 5+C]` (objectness) and v8/v11 `[1, 4+C, N]`, also seg heads
  (`+32` mask coefficients and a protos output, read into instance masks: core.masks) and pose heads
  (`+K*3` keypoints, ignored) used as detectors, and
  corner boxes `[1, N, 4]` + scores `[1, N, C]` in two tensors (YOLO-NAS, PP-YOLOE), with NMS; the
  candidates must be the head's grid for the input size, with boxes on their grid cells;
- `end2end`: `[1, N, 6(+extra)]` rows of box, score, class (+ mask coefficients with a protos output):
  YOLO26/YOLOv10/`nms=True` exports (corner
  boxes in input pixels) and Ultralytics RT-DETR (normalised centre boxes);
- `detr`: DETR family, normalised centre/size boxes + class logits (sigmoid, or softmax with a no-object
  class): Hugging Face DETR (`pred_boxes`/`logits`), RF-DETR (`dets`/`labels`), older Ultralytics RT-DETR
  `[1, 300, 4+C]`;
- `classifier`: one score vector.

Every decoder checks what it reads: scores must lie in [0, 1] after the decoder's activation, class ids must
be whole numbers, boxes must be boxes. What does not fit is refused (`Refused`, a `RoleError`) with the
model's tensors and the one option that would help, or the statement that none can: a confident wrong answer
is worse than none.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from .hints import ModelHints
from .loading.labels import Labels
from .masks import MaskSource, direct_maps, prototypes_from
from .metadata import ModelMetadata, TensorSpec
from .preprocess import RoleError, Transform

ROLES = ("location", "score", "category", "count", "probability")
MODEL_TYPES = ("auto", "detector", "yolo", "end2end", "detr", "classifier")
DETECTION_ROLES = ("detector", "yolo", "end2end", "detr")
BOX_FORMATS = ("auto", "xyxy", "cxcywh")
SCORE_ACTIVATIONS = ("auto", "none", "sigmoid", "softmax")
TFLITE_BOX_ORDER = (1, 0, 3, 2)
_NAME_HINTS = {
    "location": ("location", "boxes", "detection_boxes", "bboxes"),
    "score": ("score", "scores", "detection_scores", "confidence"),
    "category": ("category", "classes", "detection_classes", "labels", "class"),
    "count": ("count", "num_detections", "num"),
    "probability": ("probability", "probabilities", "prob", "softmax", "logits"),
}
_DETR_BOX_NAMES = ("pred_boxes", "dets", "boxes", "bboxes")
_DETR_LOGIT_NAMES = ("logits", "pred_logits", "labels", "scores")
_TOL = 1e-3  # fp16 rounding


@dataclass
class DecoderConfig:
    """Decoding options (see the vision node's parameters)."""

    model_type: str = "auto"  # one of MODEL_TYPES
    remap_output_names: dict[str, str] = field(default_factory=dict)  # model tensor name -> role
    box_order: tuple[int, ...] = ()  # positions of x_min, y_min, x_max, y_max in an SSD-style box; () = auto
    box_units: str = "auto"  # auto | proportional | pixels (of the model input)
    yolo_format: str = "auto"  # auto | v5 | v8
    iou_threshold: float = 0.45
    max_detections: int = 100
    agnostic_nms: bool = False
    nms_score_threshold: float = 0.05
    box_format: str = "auto"  # end2end/DETR boxes: auto | xyxy | cxcywh
    score_activation: str = "auto"  # DETR logits and classifiers: auto | none | sigmoid | softmax


class Refused(RoleError):
    """The model's outputs were read and fail a check; `option` names the one option that can help (None:
    no option can)."""

    def __init__(self, message: str, option: str | None = None) -> None:
        super().__init__(message)
        self.option = option


@dataclass
class RawDetections:
    """Boxes (N, 4) x_min, y_min, x_max, y_max in source pixels; scores (N,); class indices (N,)."""

    boxes: np.ndarray
    scores: np.ndarray
    classes: np.ndarray
    masks: MaskSource | None = None  # segmentation models: row i's mask (see core.masks)
    rows: np.ndarray | None = None  # the decoder's candidate row of each detection (where it tracks them)

    @classmethod
    def empty(cls) -> RawDetections:
        return cls(np.zeros((0, 4)), np.zeros(0), np.zeros(0, dtype=np.int64))


@dataclass
class Context:
    """What a decoder is chosen from."""

    metadata: ModelMetadata
    outputs: dict[str, np.ndarray]  # trial-run outputs
    config: DecoderConfig
    labels: Labels | None
    hints: ModelHints = field(default_factory=ModelHints)
    input_hw: tuple[int, int] = (0, 0)  # model input size of the trial run
    size_input: bool = False  # the model takes an orig_target_sizes-like input (official RT-DETR/D-FINE)

    def spec(self, name: str) -> TensorSpec | None:
        return next((o for o in self.metadata.outputs if o.name == name), None)

    def shape(self, name: str) -> tuple[int, ...]:
        return np.asarray(self.outputs[name]).shape

    @property
    def span(self) -> int:
        return self.labels.span if self.labels else 0

    def refuse(self, message: str, option: str | None) -> Refused:
        return Refused(f"{message}; {help_text(option)}. Model tensors: {self.metadata.describe_tensors()}", option)


def help_text(option: str | None) -> str:
    return f"set {option} to say how to read it" if option else "no option can help"


def dequantize(array: np.ndarray, spec: TensorSpec | None) -> np.ndarray:
    """Integer scores/probabilities → float. Uses the model's quantisation parameters when known, else the
    TFLite convention for quantised softmax outputs (uint8: v/256; int8: (v+128)/256)."""
    if array.dtype.kind == "f":
        return array.astype(np.float32, copy=False)
    extra = spec.extra if spec else {}
    if "quantization_scale" in extra:
        scale = float(extra["quantization_scale"])
        zero = int(extra.get("quantization_zero_point", 0))
        return (array.astype(np.float32) - zero) * scale
    if array.dtype == np.uint8:
        return array.astype(np.float32) / 256.0
    if array.dtype == np.int8:
        return (array.astype(np.float32) + 128.0) / 256.0
    return array.astype(np.float32)


def _range(values: np.ndarray) -> tuple[float, float]:
    return (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)


def tolerance(spec: TensorSpec | None) -> float:
    """How far outside [0, 1] a score may fall by rounding: fp16 rounding, or one quantisation step."""
    scale = (spec.extra if spec else {}).get("quantization_scale")
    try:
        return max(_TOL, float(scale or 0.0))
    except ValueError:
        return _TOL


def check_probabilities(values: np.ndarray, what: str, option: str | None, tensors: str,
                        tol: float = _TOL) -> None:
    """Scores must lie in [0, 1] (no rescaling of percentages: out-of-range values are a misread)."""
    low, high = _range(values)
    if not (math.isfinite(low) and math.isfinite(high)) or low < -tol or high > 1 + tol:
        raise Refused(f"{what} range from {low:.4g} to {high:.4g}, outside [0, 1]: they are not confidences, so "
                      f"the outputs are not what this layout expects; {help_text(option)}. Model tensors: {tensors}",
                      option)


def check_class_ids(values: np.ndarray, what: str, option: str | None, tensors: str, limit: int = 0) -> None:
    """Class ids must be whole, non-negative numbers (below `limit` when known)."""
    if values.size == 0:
        return
    bad = (np.abs(values - np.rint(values)) > 1e-3) | (values < -_TOL) | ~np.isfinite(values)
    if limit:
        bad |= values > limit - 1 + _TOL
    if bad.any():
        low, high = _range(values)
        raise Refused(f"{what} hold {int(bad.sum())} values that are not class ids (range {low:.4g} to {high:.4g}"
                      f"{f', {limit} classes' if limit else ''}); {help_text(option)}. Model tensors: {tensors}",
                      option)


def _activate(scores: np.ndarray, activation: str, axis: int = -1) -> np.ndarray:
    if activation == "sigmoid":
        return 1.0 / (1.0 + np.exp(-np.clip(scores, -80, 80)))
    if activation == "softmax":
        exp = np.exp(scores - scores.max(axis=axis, keepdims=True))
        return exp / exp.sum(axis=axis, keepdims=True)
    return scores


def _units(boxes: np.ndarray, units: str, transform: Transform) -> np.ndarray:
    """Proportional boxes → pixels of the model input; 'auto' takes boxes within [0, 1.5] as proportional."""
    if units == "proportional" or (units == "auto" and (boxes.size == 0 or float(np.abs(boxes).max()) <= 1.5)):
        boxes = boxes * np.array([transform.input_width, transform.input_height] * 2, dtype=np.float64)
    return boxes


def _corners(boxes: np.ndarray, box_format: str) -> np.ndarray:
    """(N, 4) boxes → x_min, y_min, x_max, y_max."""
    boxes = boxes.astype(np.float64)
    if box_format == "cxcywh":
        return np.column_stack([boxes[:, 0] - boxes[:, 2] / 2, boxes[:, 1] - boxes[:, 3] / 2,
                                boxes[:, 0] + boxes[:, 2] / 2, boxes[:, 1] + boxes[:, 3] / 2])
    return boxes


def _top(boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray, config: DecoderConfig, transform: Transform,
         units: str) -> RawDetections:
    """Candidates above the pre-filter score, best first, at most max_detections (no NMS)."""
    keep = np.flatnonzero(scores >= config.nms_score_threshold)
    keep = keep[np.argsort(-scores[keep], kind="stable")][: max(config.max_detections, 0)]
    if keep.size == 0:
        return RawDetections.empty()
    pixels = _units(boxes[keep], units, transform)
    return RawDetections(transform.to_source(pixels), scores[keep].astype(np.float64),
                         classes[keep].astype(np.int64), rows=keep)


class SsdDecoder:
    """Boxes + scores (+ category, + count) tensors, as TFLite's detection post-processing emits."""

    role = "detector"

    def __init__(self, tensors: dict[str, str], specs: dict[str, TensorSpec], config: DecoderConfig,
                 box_order: tuple[int, ...], describe: str) -> None:
        self.tensors = tensors  # role -> tensor name
        self.specs = specs
        self.config = config
        self.box_order = box_order
        self.describe = describe
        self.masks_output: str | None = None  # per-detection masks [N, 1, h, w] (torchvision Mask R-CNN)

    def read(self, outputs: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Boxes (model order), scores, classes of the valid rows, checked."""
        loc = outputs[self.tensors["location"]]
        boxes = dequantize(loc, self.specs.get(self.tensors["location"])).reshape(-1, 4).astype(np.float64)
        score = dequantize(outputs[self.tensors["score"]], self.specs.get(self.tensors["score"]))
        if "category" in self.tensors:
            scores = score.reshape(-1)
            classes = np.asarray(outputs[self.tensors["category"]]).reshape(-1).astype(np.float64)
        else:  # [1, N, C] score tensor: category by argmax
            per_class = score.reshape(boxes.shape[0], -1) if boxes.shape[0] else score.reshape(0, 1)
            classes = per_class.argmax(axis=1).astype(np.float64)
            scores = per_class[np.arange(len(classes)), classes.astype(np.int64)]
        n = min(len(boxes), len(scores), len(classes))
        if "count" in self.tensors:
            n = min(n, max(int(np.asarray(outputs[self.tensors["count"]]).reshape(-1)[0]), 0))
        scores, classes = scores[:n].astype(np.float64), classes[:n]
        check_probabilities(scores, f"scores in {self.tensors['score']!r}", "remap_output_names", self.describe,
                            tolerance(self.specs.get(self.tensors["score"])))
        if "category" in self.tensors:
            check_class_ids(classes, f"classes in {self.tensors['category']!r}", "remap_output_names", self.describe)
        return boxes[:n], scores, np.rint(classes).astype(np.int64)

    def decode(self, outputs: dict[str, np.ndarray], transform: Transform) -> RawDetections:
        boxes, scores, classes = self.read(outputs)
        boxes = _units(boxes[:, list(self.box_order)], self.config.box_units, transform)
        masks = None
        if self.masks_output is not None:
            maps = direct_maps(dequantize(outputs[self.masks_output], self.specs.get(self.masks_output)),
                               len(np.asarray(outputs[self.masks_output])))
            if maps is not None and len(maps) >= len(scores):
                masks = MaskSource(transform, maps=maps[:len(scores)])
        return RawDetections(transform.to_source(boxes), scores, classes, masks)


class YoloDecoder:
    """Raw YOLO output: centre-x, centre-y, width, height (+ objectness for v5), per-class scores, and extra
    per-box values: mask coefficients (read with the `protos` output into masks) or keypoints (ignored)."""

    role = "yolo"

    def __init__(self, tensor: str, spec: TensorSpec, attrs_first: bool, has_objectness: bool, num_classes: int,
                 config: DecoderConfig, describe: str) -> None:
        self.tensor = tensor
        self.spec = spec
        self.attrs_first = attrs_first
        self.has_objectness = has_objectness
        self.num_classes = num_classes
        self.config = config
        self.describe = describe
        self.protos: str | None = None  # seg heads: the prototype output; coefficients follow the classes
        self.protos_spec: TensorSpec | None = None
        self.num_masks = 0

    def mask_source(self, outputs: dict[str, np.ndarray], rows: np.ndarray, kept: np.ndarray,
                    transform: Transform) -> MaskSource | None:
        """Masks of the kept candidates (seg heads only)."""
        if self.protos is None or not self.num_masks:
            return None
        start = (5 if self.has_objectness else 4) + self.num_classes
        coefficients = np.asarray(rows[kept, start:start + self.num_masks], np.float32)
        protos = prototypes_from(dequantize(np.asarray(outputs[self.protos]), self.protos_spec), self.num_masks)
        return MaskSource(transform, coefficients, protos)

    def rows(self, outputs: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(N, 4) centre boxes, (N, C) class scores (times objectness), objectness or None; checked."""
        raw = dequantize(np.asarray(outputs[self.tensor]), self.spec)[0]
        rows = raw.T if self.attrs_first else raw  # (N, K)
        start = 5 if self.has_objectness else 4
        cls_scores = rows[:, start:start + self.num_classes]
        check_probabilities(cls_scores, f"class scores (values {start}-{start + self.num_classes - 1} of each "
                            f"row of {self.tensor!r})", None, self.describe, tolerance(self.spec))
        if self.has_objectness:
            check_probabilities(rows[:, 4], f"objectness (value 4 of each row of {self.tensor!r})", "yolo_format",
                                self.describe, tolerance(self.spec))
            cls_scores = cls_scores * rows[:, 4:5]
        return rows[:, :4], cls_scores, rows

    def decode(self, outputs: dict[str, np.ndarray], transform: Transform) -> RawDetections:
        xywh, cls_scores, rows = self.rows(outputs)
        classes = cls_scores.argmax(axis=1)
        scores = cls_scores[np.arange(len(classes)), classes]
        keep = np.flatnonzero(scores >= self.config.nms_score_threshold)
        xywh, scores, classes = xywh[keep].astype(np.float64), scores[keep], classes[keep]
        if len(scores) == 0:
            return RawDetections.empty()
        boxes = _units(_corners(xywh, "cxcywh"), self.config.box_units, transform)
        idx = nms(boxes, scores, classes, self.config)
        return RawDetections(transform.to_source(boxes[idx]), scores[idx].astype(np.float64),
                             classes[idx].astype(np.int64), self.mask_source(outputs, rows, keep[idx], transform),
                             keep[idx])


class SplitYoloDecoder(YoloDecoder):
    """YOLO candidates in two tensors: corner boxes [1, N, 4] in input pixels and class scores [1, N, C] or
    [1, C, N] (YOLO-NAS, PP-YOLOE and DAMO-YOLO exports without NMS); NMS as for raw YOLO."""

    def __init__(self, boxes: str, scores: str, specs: dict[str, TensorSpec | None], scores_first: bool,
                 config: DecoderConfig, describe: str) -> None:
        super().__init__(boxes, specs.get(boxes), False, False, 0, config, describe)
        self.scores = scores
        self.specs = specs
        self.scores_first = scores_first

    def rows(self, outputs: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        corners = dequantize(np.asarray(outputs[self.tensor]), self.specs.get(self.tensor))[0].astype(np.float64)
        scores = dequantize(np.asarray(outputs[self.scores]), self.specs.get(self.scores))[0]
        scores = scores.T if self.scores_first else scores
        check_probabilities(scores, f"class scores in {self.scores!r}", None, self.describe,
                            tolerance(self.specs.get(self.scores)))
        xywh = np.column_stack([(corners[:, 0] + corners[:, 2]) / 2, (corners[:, 1] + corners[:, 3]) / 2,
                                corners[:, 2] - corners[:, 0], corners[:, 3] - corners[:, 1]])
        return xywh, scores, corners


class EndToEndDecoder:
    """`[1, N, 6+E]` rows: box (corners or centre/size), score, class id, E ignored values; no NMS needed."""

    role = "end2end"

    def __init__(self, tensor: str, spec: TensorSpec, box_format: str, units: str, num_classes: int,
                 config: DecoderConfig, describe: str) -> None:
        self.tensor = tensor
        self.spec = spec
        self.box_format = box_format
        self.units = units
        self.num_classes = num_classes
        self.config = config
        self.describe = describe
        self.protos: str | None = None  # seg exports: the prototype output; coefficients follow the class id
        self.protos_spec: TensorSpec | None = None
        self.num_masks = 0

    def rows(self, outputs: dict[str, np.ndarray]) -> np.ndarray:
        rows = dequantize(np.asarray(outputs[self.tensor]), self.spec)[0].astype(np.float64)
        check_probabilities(rows[:, 4], f"scores (value 4 of each row of {self.tensor!r})", None, self.describe,
                            tolerance(self.spec))
        check_class_ids(rows[:, 5], f"class ids (value 5 of each row of {self.tensor!r})", None, self.describe,
                        self.num_classes)
        return rows

    def decode(self, outputs: dict[str, np.ndarray], transform: Transform) -> RawDetections:
        rows = self.rows(outputs)
        found = _top(_corners(rows[:, :4], self.box_format), rows[:, 4], np.rint(rows[:, 5]), self.config,
                     transform, self.units)
        if self.protos is not None and self.num_masks and found.rows is not None and len(found.rows):
            protos = prototypes_from(dequantize(np.asarray(outputs[self.protos]), self.protos_spec), self.num_masks)
            found.masks = MaskSource(transform, rows[found.rows, 6:6 + self.num_masks].astype(np.float32), protos)
        return found


class DetrDecoder:
    """DETR family: per query a box (normalised centre/size unless told otherwise) and class scores (logits
    with sigmoid, or softmax with a trailing no-object class, or probabilities)."""

    role = "detr"

    def __init__(self, boxes: str, scores: str | None, specs: dict[str, TensorSpec | None], activation: str,
                 no_object: bool, box_format: str, config: DecoderConfig, describe: str) -> None:
        self.boxes = boxes
        self.scores = scores  # None: the classes follow the box in the same tensor ([1, Q, 4+C])
        self.specs = specs
        self.activation = activation
        self.no_object = no_object
        self.box_format = box_format
        self.config = config
        self.describe = describe

    def read(self, outputs: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        raw = dequantize(np.asarray(outputs[self.boxes]), self.specs.get(self.boxes)).astype(np.float64)
        raw = raw.reshape(-1, raw.shape[-1])
        if self.scores is None:
            boxes, logits = raw[:, :4], raw[:, 4:]
        else:
            boxes = raw[:, :4]
            logits = dequantize(np.asarray(outputs[self.scores]), self.specs.get(self.scores)).astype(np.float64)
            logits = logits.reshape(boxes.shape[0], -1)
        probs = _activate(logits, self.activation)
        if self.no_object:
            probs = probs[:, :-1]
        what = f"class scores of {self.scores or self.boxes!r} after {self.activation}"
        check_probabilities(probs, what, "score_activation", self.describe)
        if self.box_format == "cxcywh" and self.config.box_units != "pixels":
            low, high = _range(boxes)
            if low < -0.05 or high > 1.05:
                raise Refused(f"boxes in {self.boxes!r} range from {low:.4g} to {high:.4g}; DETR-style boxes are "
                              "normalised centre/size values in [0, 1] (these look like anchor-relative encodings, "
                              "which need anchors the model does not carry); no option can help. "
                              f"Model tensors: {self.describe}", None)
        return boxes, probs

    def decode(self, outputs: dict[str, np.ndarray], transform: Transform) -> RawDetections:
        boxes, probs = self.read(outputs)
        if probs.shape[1] == 0:
            return RawDetections.empty()
        classes = probs.argmax(axis=1)
        scores = probs[np.arange(len(classes)), classes]
        return _top(_corners(boxes, self.box_format), scores, classes, self.config, transform,
                    self.config.box_units)


def nms(boxes_xyxy: np.ndarray, scores: np.ndarray, classes: np.ndarray, config: DecoderConfig) -> np.ndarray:
    """Indices kept by OpenCV's NMS (per class unless agnostic), best first, at most max_detections."""
    xywh = np.column_stack([boxes_xyxy[:, :2], boxes_xyxy[:, 2:] - boxes_xyxy[:, :2]]).tolist()
    args = (xywh, scores.astype(float).tolist())
    if config.agnostic_nms:
        idx = cv2.dnn.NMSBoxes(*args, config.nms_score_threshold, config.iou_threshold)
    else:
        idx = cv2.dnn.NMSBoxesBatched(*args, classes.astype(int).tolist(), config.nms_score_threshold,
                                      config.iou_threshold)
    idx = np.asarray(idx, dtype=np.int64).reshape(-1)
    idx = idx[np.argsort(-scores[idx], kind="stable")]
    return idx[: max(config.max_detections, 0)]


class ClassifierDecoder:
    """One score vector; softmax when values fall outside [0, 1] (sigmoid for a single value), unless
    `score_activation` says otherwise."""

    role = "classifier"

    def __init__(self, tensor: str, spec: TensorSpec, background_offset: int, activation: str = "auto",
                 describe: str = "") -> None:
        self.tensor = tensor
        self.spec = spec
        self.background_offset = background_offset
        self.activation = activation
        self.describe = describe

    def decode(self, outputs: dict[str, np.ndarray]) -> np.ndarray:
        """Probabilities indexed like the labels."""
        scores = dequantize(np.asarray(outputs[self.tensor]), self.spec).reshape(-1).astype(np.float64)
        activation = self.activation
        if activation == "auto":
            outside = scores.size and (scores.min() < -_TOL or scores.max() > 1 + _TOL)
            activation = ("sigmoid" if scores.size == 1 else "softmax") if outside else "none"
        scores = _activate(scores, activation)
        check_probabilities(scores, f"scores in {self.tensor!r} after {activation}", "score_activation",
                            self.describe, tolerance(self.spec))
        return scores[self.background_offset:]


# --- choosing a decoder ----------------------------------------------------------------------------------

def _by_role(metadata: ModelMetadata, config: DecoderConfig) -> dict[str, str]:
    """Role -> output name, from remapping first, then exact or common names."""
    found: dict[str, str] = {}
    for model_name, role in config.remap_output_names.items():
        if role not in ROLES:
            raise RoleError(f"remap_output_names maps {model_name!r} to unknown role {role!r}; roles are {ROLES}")
        if model_name not in {o.name for o in metadata.outputs}:
            raise RoleError(f"remap_output_names names {model_name!r}, which is not an output of the model; "
                            f"tensors: {metadata.describe_tensors()}")
        found[role] = model_name
    for role, hints in _NAME_HINTS.items():
        if role in found:
            continue
        for spec in metadata.outputs:
            if spec.name.lower() in hints and spec.name not in found.values():
                found[role] = spec.name
                break
    return found


_STRIDES = ((8, 16, 32), (8, 16, 32, 64))  # P5 and P6 heads


def grid_counts(height: int, width: int) -> dict[int, tuple[int, tuple[int, ...]]]:
    """Candidate counts a raw YOLO head gives for an input size → (anchors per cell (1: v8/v11, 3: v5/v7),
    strides), for P5 (strides 8-32) and P6 (8-64) heads."""
    counts: dict[int, tuple[int, tuple[int, ...]]] = {}
    for strides in _STRIDES:
        cells = sum(math.ceil(height / s) * math.ceil(width / s) for s in strides)
        counts.setdefault(cells, (1, strides))
        counts.setdefault(3 * cells, (3, strides))
    return counts


def anchor_centres(height: int, width: int, per_cell: int, strides: tuple[int, ...]) -> np.ndarray:
    """(N, 3) x, y, stride of each candidate's grid cell centre, in a YOLO head's output order (per stride
    level; anchors, then rows, then columns)."""
    parts = []
    for s in strides:
        ny, nx = math.ceil(height / s), math.ceil(width / s)
        yy, xx = np.meshgrid(np.arange(ny), np.arange(nx), indexing="ij")
        cell = np.column_stack([(xx.ravel() + 0.5) * s, (yy.ravel() + 0.5) * s, np.full(ny * nx, float(s))])
        parts.extend([cell] * per_cell)
    return np.concatenate(parts)


def _check_grid(ctx: Context, name: str, xywh: np.ndarray, per_cell: int, strides: tuple[int, ...]) -> None:
    """Decoded YOLO boxes sit near their grid cell (within a stride or two; measured on a real YOLOv8 export:
    median 0.1-0.4 strides). Raw head outputs (e.g. YOLOX without decode_in_inference), other tensors
    read as YOLO or a transposed reading do not."""
    h, w = ctx.input_hw
    centres = anchor_centres(h, w, per_cell, strides)
    if len(centres) != len(xywh) or not len(xywh):
        return
    xy = xywh[:, :2].astype(np.float64)
    if ctx.config.box_units == "proportional" or (ctx.config.box_units == "auto" and np.abs(xywh).max() <= 1.5):
        xy = xy * np.array([w, h])
    off = np.abs(xy - centres[:, :2]) / centres[:, 2:3]
    median = float(np.median(off.max(axis=1)))
    if median > 2.0:
        raise ctx.refuse(f"the box centres in {name!r} do not follow the YOLO grid of a {h} x {w} input (median "
                         f"distance from their cell {median:.1f} strides; decoded YOLO boxes sit within one or two): "
                         "these are not decoded boxes (a raw head such as YOLOX exported without "
                         "decode_in_inference, or another kind of output); export the model with its box decoding",
                         None)


def _protos(ctx: Context, exclude: str) -> tuple[str, int] | None:
    """A segmentation head's prototype masks output ([1, nm, h, w]): (name, nm)."""
    for name in ctx.outputs:
        shape = ctx.shape(name)
        if name != exclude and len(shape) == 4 and shape[0] == 1 and shape[1] > 1 and shape[2] > 1:
            if shape[1] == shape[2] and shape[3] < shape[1]:
                return name, int(shape[3])  # NHWC (TFLite exports): [1, h, w, nm]
            return name, int(shape[1])
    return None


def _extra_per_box(ctx: Context, main: str) -> tuple[int, list[str]]:
    """(values per box after the classes, the other outputs they explain) from seg protos or pose metadata;
    refuses heads that cannot be read as boxes (oriented boxes)."""
    if ctx.hints.task == "obb":
        raise ctx.refuse("the model gives oriented (rotated) boxes (task 'obb'), which vision_msgs boxes here "
                         "cannot carry", None)
    protos = _protos(ctx, main)
    if protos is not None:
        return protos[1], [protos[0]]
    return ctx.hints.extra_per_box, []


def _end2end(ctx: Context) -> EndToEndDecoder | None:
    cfg, hints = ctx.config, ctx.hints
    name = ctx.metadata.outputs[0].name
    shape = ctx.shape(name)
    if len(shape) != 3 or shape[0] != 1 or shape[2] < 6 or shape[1] < 1:
        return None
    if hints.end2end is False and cfg.model_type != "end2end":
        return None
    rows = dequantize(np.asarray(ctx.outputs[name]), ctx.spec(name))[0].astype(np.float64)
    extra, explained = _extra_per_box(ctx, name)
    others = [n for n in ctx.outputs if n != name and n not in explained]
    if others and cfg.model_type != "end2end":
        return None
    if hints.family == "rtdetr" and ctx.span and shape[2] == 4 + ctx.span and shape[2] != 6 + extra:
        return None  # older Ultralytics RT-DETR [1, 300, 4+C]: the detr decoder reads it
    whole = rows.size == 0 or bool(np.all(np.abs(rows[:, 5] - np.rint(rows[:, 5])) < 1e-3))
    claimed = cfg.model_type == "end2end" or bool(hints.end2end) or (
        hints.family == "rtdetr" and shape[2] == 6 and (ctx.span != 2 or whole))
    if not claimed:
        # Structure alone: rows of box, score in [0, 1], whole class id, not a raw YOLO grid of candidates.
        on_grid = shape[1] in grid_counts(*ctx.input_hw)
        scores_ok = rows.size == 0 or (rows[:, 4].min() >= -_TOL and rows[:, 4].max() <= 1 + _TOL)
        if on_grid or not whole or not scores_ok or shape[2] != 6 + extra:
            return None
    if shape[2] != 6 + extra:
        raise ctx.refuse(f"output {name!r} has {shape[2]} values per row; an end-to-end output has 6 (box, score, "
                         f"class) plus {extra} explained by the model's task metadata", None)
    box_format = cfg.box_format
    if box_format == "auto":
        if hints.family == "rtdetr":
            box_format = "cxcywh"
        elif hints.end2end or hints.family == "yolo":
            box_format = "xyxy"
        else:
            raise ctx.refuse(f"output {name!r} [1, {shape[1]}, {shape[2]}] reads as end-to-end rows (box, score, "
                             "class id) but the model does not say how its boxes are written: xyxy for YOLO26, "
                             "YOLOv10 and nms=True exports (corners in input pixels), cxcywh for RT-DETR "
                             "(normalised centre/size)", "box_format")
    units = cfg.box_units
    if units == "auto":
        units = "proportional" if hints.family == "rtdetr" else "auto"  # TFLite YOLO exports normalise boxes
    decoder = EndToEndDecoder(name, ctx.spec(name), box_format, units, ctx.span if hints.ultralytics else 0, cfg,
                              ctx.metadata.describe_tensors())
    if explained:
        decoder.protos, decoder.protos_spec, decoder.num_masks = explained[0], ctx.spec(explained[0]), extra
    decoder.rows(ctx.outputs)  # the trial run's rows pass the checks
    return decoder


def _activation_for(ctx: Context, scores_name: str | None, num_scores: int, values: np.ndarray) -> tuple[str, bool]:
    """(activation, trailing no-object class) for DETR class scores."""
    act = ctx.config.score_activation
    span = ctx.span
    if act != "auto":
        return act, act == "softmax"  # DETR's softmax always has the trailing no-object class
    low, high = _range(values)
    if values.size and low >= -_TOL and high <= 1 + _TOL:
        return "none", False
    if span and num_scores == span + 1:
        return "softmax", True
    if span and num_scores == span:
        return "sigmoid", False
    if scores_name is not None and scores_name.lower() == "labels" or ctx.hints.family == "rtdetr":
        return "sigmoid", False  # RF-DETR's [1, Q, C] 'labels' logits; Ultralytics RT-DETR
    raise ctx.refuse(f"class scores {scores_name!r} are logits ({num_scores} per query) and nothing says whether "
                     "they take a sigmoid (RF-DETR, Deformable DETR, RT-DETR) or a softmax with a no-object class "
                     "(DETR); a label file with one name per class tells (as many names as scores: sigmoid; one "
                     "fewer: softmax), or", "score_activation")


def _detr(ctx: Context) -> DetrDecoder | None:
    cfg, hints = ctx.config, ctx.hints
    describe = ctx.metadata.describe_tensors()
    specs = {n: ctx.spec(n) for n in ctx.outputs}
    box_format = "cxcywh" if cfg.box_format == "auto" else cfg.box_format
    shapes = {n: ctx.shape(n) for n in ctx.outputs}
    if ctx.size_input:
        return None  # official RT-DETR/D-FINE exports give decoded boxes/scores/labels: the detector reads them
    # Single tensor [1, Q, 4+C] (older Ultralytics RT-DETR; scores already sigmoid).
    first = ctx.metadata.outputs[0].name
    if len(ctx.outputs) == 1 and (hints.family == "rtdetr" or cfg.model_type == "detr"):
        shape = shapes[first]
        if len(shape) != 3 or shape[0] != 1 or shape[2] < 5:
            return None
        values = dequantize(np.asarray(ctx.outputs[first]), specs[first])[0, :, 4:]
        act, no_object = _activation_for(ctx, first, shape[2] - 4, values)
        decoder = DetrDecoder(first, None, specs, act, no_object, box_format, cfg, describe)
        decoder.read(ctx.outputs)
        return decoder
    # Two tensors: boxes [1, Q, 4] and class scores [1, Q, C].
    roles = {role: name for name, role in cfg.remap_output_names.items()}
    box_like = [n for n in ctx.outputs if len(shapes[n]) == 3 and shapes[n][0] == 1 and shapes[n][2] == 4]
    boxes = roles.get("location") or next((n for n in box_like if n.lower() in _DETR_BOX_NAMES), None) or next(
        (n for n in box_like if n.lower() not in _DETR_LOGIT_NAMES), None)
    if boxes is None:
        return None
    q = shapes[boxes][1]
    scores = roles.get("score") or roles.get("probability") or next(
        (n for n in ctx.outputs if n != boxes and len(shapes[n]) == 3 and shapes[n][:2] == (1, q)), None)
    if scores is None:
        return None
    values = dequantize(np.asarray(ctx.outputs[scores]), specs[scores])
    low, high = _range(values)
    logits = values.size > 0 and (low < -_TOL or high > 1 + _TOL)
    named = boxes.lower() in _DETR_BOX_NAMES[:2] or scores.lower() in ("logits", "pred_logits")
    if cfg.model_type != "detr" and not named and (not logits or q in grid_counts(*ctx.input_hw)):
        return None  # probabilities with boxes: SSD-style; one box per grid cell: split YOLO
    box_values = dequantize(np.asarray(ctx.outputs[boxes]), specs[boxes])
    low, high = _range(box_values)
    if box_format == "cxcywh" and cfg.box_units != "pixels" and (low < -0.05 or high > 1.05):
        raise ctx.refuse(f"boxes in {boxes!r} range from {low:.4g} to {high:.4g} next to class logits "
                         f"{scores!r}: not DETR's normalised boxes but anchor-relative encodings (BlazeFace, SSD "
                         "without post-processing), which need anchors and decoding the model does not carry", None)
    act, no_object = _activation_for(ctx, scores, shapes[scores][2], values)
    decoder = DetrDecoder(boxes, scores, specs, act, no_object, box_format, cfg, describe)
    decoder.read(ctx.outputs)
    return decoder


def _yolo(ctx: Context) -> YoloDecoder | None:
    """Raw YOLO: one [1, 4+C(+extra), N] / [1, N, 5+C] output, or corner boxes and scores in two."""
    cfg = ctx.config
    spec = ctx.metadata.outputs[0]
    shape = ctx.shape(spec.name)
    forced = cfg.model_type == "yolo"
    counts = grid_counts(*ctx.input_hw)
    if len(ctx.outputs) == 2:
        for name in ctx.outputs:
            box_shape = ctx.shape(name)
            if len(box_shape) == 3 and box_shape[0] == 1 and box_shape[2] == 4 and box_shape[1] in counts:
                return _split_yolo(ctx, name, counts[box_shape[1]])
    if len(shape) != 3 or shape[0] != 1 or min(shape[1:]) < 5:
        return None
    extra, explained = _extra_per_box(ctx, spec.name)
    others = [n for n in ctx.outputs if n != spec.name and n not in explained]
    if others and not forced:
        return None  # raw YOLO has one output (and the protos of a seg head)
    span = ctx.span
    if shape[2] in counts and shape[1] not in counts:
        attrs_first, (per_cell, strides) = True, counts[shape[2]]
    elif shape[1] in counts and shape[2] not in counts:
        attrs_first, (per_cell, strides) = False, counts[shape[1]]
    elif shape[1] in counts and shape[2] in counts:
        attrs_first, (per_cell, strides) = shape[1] < shape[2], counts[max(shape[1:])]
    elif forced:
        attrs_first, per_cell, strides = shape[1] < shape[2], 0, ()
        for first in (True, False):
            if span and (shape[1] if first else shape[2]) - extra - span in (4, 5):
                attrs_first = first
                break
    else:
        return None  # not a grid of candidates for this input size (an OCR recogniser, anchors-only output...)
    k = shape[1] if attrs_first else shape[2]
    fmt = cfg.yolo_format
    if fmt == "auto":
        if span and k - extra - span in (4, 5):
            fmt = "v8" if k - extra - span == 4 else "v5"
        elif per_cell == 3:
            fmt = "v5"
        else:
            fmt = "v8" if attrs_first else "v5"
    start = 5 if fmt == "v5" else 4
    num_classes = k - start - extra
    if num_classes < 1:
        raise ctx.refuse(f"output {spec.name!r} has {k} values per candidate: too few for {start} box values, "
                         f"{extra} extra values and at least one class", "yolo_format")
    if span and num_classes > span:
        raise ctx.refuse(f"output {spec.name!r} has {num_classes} values per candidate after the box "
                         f"({fmt} layout{f', {extra} extra values' if extra else ''}) but the labels name {span} "
                         "classes: the other values (mask coefficients, keypoints) are not explained by the model's "
                         "metadata (task, kpt_shape) or a protos output, or the label file is short",
                         "label_path (one name per class)")
    decoder = YoloDecoder(spec.name, spec, attrs_first, fmt == "v5", num_classes, cfg,
                          ctx.metadata.describe_tensors())
    if explained:
        decoder.protos, decoder.protos_spec, decoder.num_masks = explained[0], ctx.spec(explained[0]), extra
    xywh, _, _ = decoder.rows(ctx.outputs)
    if xywh.size and float(xywh[:, 2:].min()) < -_TOL:
        raise ctx.refuse(f"output {spec.name!r} has negative box widths or heights: not YOLO centre/size boxes",
                         None)
    if per_cell:
        _check_grid(ctx, spec.name, xywh, per_cell, strides)
    return decoder


def _split_yolo(ctx: Context, boxes: str, grid: tuple[int, tuple[int, ...]]) -> SplitYoloDecoder | None:
    n = ctx.shape(boxes)[1]
    scores = next(o for o in ctx.outputs if o != boxes)
    shape = ctx.shape(scores)
    if len(shape) != 3 or shape[0] != 1 or n not in shape[1:]:
        return None
    scores_first = shape[2] == n and shape[1] != n
    num_classes = shape[1] if scores_first else shape[2]
    if ctx.span and num_classes > ctx.span:
        raise ctx.refuse(f"{scores!r} scores {num_classes} classes but the labels name {ctx.span}",
                         "label_path (one name per class)")
    decoder = SplitYoloDecoder(boxes, scores, {n_: ctx.spec(n_) for n_ in ctx.outputs}, scores_first, ctx.config,
                               ctx.metadata.describe_tensors())
    decoder.num_classes = num_classes
    xywh, _, _ = decoder.rows(ctx.outputs)
    if xywh.size and float(xywh[:, 2:].min()) < -_TOL:
        raise ctx.refuse(f"boxes in {boxes!r} are not x_min, y_min, x_max, y_max corners (negative sizes)", None)
    _check_grid(ctx, boxes, xywh, *grid)
    return decoder


def _ssd(ctx: Context) -> SsdDecoder | None:
    metadata, outputs, config = ctx.metadata, ctx.outputs, ctx.config
    roles = _by_role(metadata, config)
    shapes = {name: np.asarray(arr).shape for name, arr in outputs.items()}
    if "location" not in roles:
        cands = [n for n, s in shapes.items() if len(s) in (2, 3) and s[-1] == 4 and (len(s) == 2 or s[0] == 1)]
        cands.sort(key=lambda n: n.lower() in _DETR_LOGIT_NAMES + _NAME_HINTS["probability"])
        if not cands or len(outputs) < 2:
            return None
        roles["location"] = cands[0]
    n_boxes = shapes[roles["location"]][-2] if len(shapes[roles["location"]]) >= 2 else 0
    free = [o.name for o in metadata.outputs if o.name not in roles.values()]
    per_box = [n for n in free if shapes[n] in ((1, n_boxes), (n_boxes,))]
    per_class = [n for n in free if len(shapes[n]) == 3 and shapes[n][:2] == (1, n_boxes) and shapes[n][2] > 1]
    if "score" not in roles:
        if "category" not in roles and len(per_box) >= 2:
            # TFLite's post-processing order: boxes, classes, scores, count.
            roles["category"], roles["score"] = per_box[0], per_box[1]
        elif per_box and "category" in roles:
            roles["score"] = per_box[0]
        elif per_class:
            roles["score"] = per_class[0]
        elif per_box:
            roles["score"] = per_box[0]
        else:
            raise ctx.refuse(f"found box tensor {roles['location']!r} but no score tensor of shape [1, {n_boxes}], "
                             f"[{n_boxes}] or [1, {n_boxes}, C] (per-anchor outputs such as SCRFD's need anchor "
                             "decoding the model does not carry)", None)
    elif "category" not in roles and per_box and len(shapes[roles["score"]]) < 3:
        roles["category"] = per_box[0]
    if "count" not in roles:
        counts = [n for n in free if n not in roles.values() and int(np.prod(shapes[n])) == 1]
        if counts:
            roles["count"] = counts[0]
    box_order = tuple(config.box_order)
    # torchvision (2-D boxes, no batch) and the official RT-DETR/D-FINE exports (orig_target_sizes) always
    # give x_min, y_min, x_max, y_max; TFLite's detection post-processing gives y_min, x_min, y_max, x_max.
    # The TFLite order (the old default of box_order) is not applied to those models.
    xyxy = ctx.size_input or len(shapes[roles["location"]]) == 2
    if not box_order or (xyxy and box_order == TFLITE_BOX_ORDER):
        box_order = (0, 1, 2, 3) if xyxy else TFLITE_BOX_ORDER
    if sorted(box_order) != [0, 1, 2, 3]:
        raise RoleError(f"box_order {list(box_order)} is not a permutation of 0..3")
    decoder = SsdDecoder(roles, {o.name: o for o in metadata.outputs}, config, box_order,
                         metadata.describe_tensors())
    for name in free:
        if name not in roles.values() and direct_maps(outputs[name], n_boxes) is not None:
            decoder.masks_output = name  # per-detection masks (torchvision Mask R-CNN's [N, 1, H, W])
            break
    try:
        decoder.read(outputs)
    except Refused as exc:
        raise ctx.refuse(str(exc).split("; ")[0], "remap_output_names") from exc
    return decoder


def _classifier(ctx: Context) -> ClassifierDecoder | None:
    roles = _by_role(ctx.metadata, ctx.config)
    name = roles.get("probability")
    if name is None:
        if len(ctx.metadata.outputs) != 1:
            return None
        name = ctx.metadata.outputs[0].name
    shape = ctx.shape(name)
    if sum(1 for d in shape if d != 1) > 1:
        return None
    size = int(np.prod(shape))
    offset = 1 if ctx.labels and size == ctx.labels.span + 1 else 0
    decoder = ClassifierDecoder(name, ctx.spec(name), offset, ctx.config.score_activation,
                                ctx.metadata.describe_tensors())
    decoder.decode(ctx.outputs)
    return decoder


_ATTEMPTS = {"end2end": _end2end, "detr": _detr, "yolo": _yolo, "detector": _ssd, "classifier": _classifier}
_WHY_NOT = {
    "end2end": "no [1, N, 6+] output of box, score and class id rows",
    "detr": "no [1, Q, 4] normalised boxes with [1, Q, C] class logits",
    "yolo": "no [1, 4+C, N] / [1, N, 5+C] output (or [1, N, 4] boxes + scores) with a candidate count on the "
            "YOLO grid of the input",
    "detector": "no boxes tensor ([1, N, 4] or [N, 4]) with per-box scores",
    "classifier": "not one output holding a single score vector",
}


def check_config(config: DecoderConfig) -> None:
    """Refuse option values outside their choices."""
    for what, value, allowed in (("model_type", config.model_type, MODEL_TYPES),
                                 ("box_format", config.box_format, BOX_FORMATS),
                                 ("score_activation", config.score_activation, SCORE_ACTIVATIONS),
                                 ("box_units", config.box_units, ("auto", "proportional", "pixels")),
                                 ("yolo_format", config.yolo_format, ("auto", "v5", "v8"))):
        if value not in allowed:
            raise RoleError(f"{what} {value!r} is not one of {', '.join(allowed)}")


def find_decoder(metadata: ModelMetadata, trial_outputs: dict[str, np.ndarray], config: DecoderConfig,
                 labels: Labels | None, hints: ModelHints | None = None, input_hw: tuple[int, int] = (0, 0),
                 size_input: bool = False):
    """The decoder for this model (forced by `model_type` or found from metadata and a trial run)."""
    check_config(config)
    ctx = Context(metadata, trial_outputs, config, labels, hints or ModelHints(), input_hw, size_input)
    kind = config.model_type
    order = [kind] if kind != "auto" else list(_ATTEMPTS)
    reasons: list[str] = []
    shapes = "; ".join(f"{n}: {np.asarray(a).dtype} {list(np.asarray(a).shape)}" for n, a in trial_outputs.items())
    for role in order:
        try:
            decoder = _ATTEMPTS[role](ctx)
        except Refused as exc:
            # The outputs have this layout's structure but fail its checks: reading them as a looser layout
            # would be a guess, so the search stops here.
            advice = f"The option that can help: {exc.option}." if exc.option else "No option can help."
            raise Refused(f"the model's outputs look like the {role} layout but cannot be read as it: "
                          f"{str(exc).split('. Model tensors:')[0]}. Model tensors: {metadata.describe_tensors()}. "
                          f"Trial-run outputs: {shapes}. {advice}", exc.option) from exc
        if decoder is not None:
            return decoder
        reasons.append(f"{role}: {_WHY_NOT[role]}")
    advice = ("No option can help with a layout none of these fits; if the model is one of them after all, set "
              "model_type to force it (e.g. yolo for a raw YOLO output whose candidate count is not the usual grid).")
    raise RoleError(
        "the model fits no vision role (end2end, detr, yolo, detector, classifier). Its tensors: "
        f"{metadata.describe_tensors()}. Trial-run outputs: {shapes}. Tried: {' | '.join(reasons)}. {advice}"
    )
