"""Raw output tensors → boxes, scores and classes: SSD-style detectors (Viam's semantics), raw YOLO
outputs (v5 `[1, N, 5+C]`, v8/v11 `[1, 4+C, N]`, with NMS) and classifiers.

Each decoder is built by `find_decoder` from the model's metadata and a trial run, and returns arrays in
source-image pixels; naming, filtering and messages happen elsewhere.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from .labels import Labels
from .metadata import ModelMetadata, TensorSpec
from .preprocess import RoleError, Transform

ROLES = ("location", "score", "category", "count", "probability")
_NAME_HINTS = {
    "location": ("location", "boxes", "detection_boxes", "bboxes"),
    "score": ("score", "scores", "detection_scores", "confidence"),
    "category": ("category", "classes", "detection_classes", "labels", "class"),
    "count": ("count", "num_detections", "num"),
    "probability": ("probability", "probabilities", "prob", "softmax", "logits"),
}


@dataclass
class DecoderConfig:
    """Decoding options (see the vision node's parameters)."""

    model_type: str = "auto"  # auto | detector | yolo | classifier
    remap_output_names: dict[str, str] = field(default_factory=dict)  # model tensor name -> role
    box_order: tuple[int, int, int, int] = (1, 0, 3, 2)  # positions of x_min, y_min, x_max, y_max in a box
    box_units: str = "auto"  # auto | proportional | pixels (of the model input)
    yolo_format: str = "auto"  # auto | v5 | v8
    iou_threshold: float = 0.45
    max_detections: int = 100
    agnostic_nms: bool = False
    nms_score_threshold: float = 0.05


@dataclass
class RawDetections:
    """Boxes (N, 4) x_min, y_min, x_max, y_max in source pixels; scores (N,); class indices (N,)."""

    boxes: np.ndarray
    scores: np.ndarray
    classes: np.ndarray

    @classmethod
    def empty(cls) -> RawDetections:
        return cls(np.zeros((0, 4)), np.zeros(0), np.zeros(0, dtype=np.int64))


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


def normalise_scores(scores: np.ndarray) -> np.ndarray:
    """Viam's rules: negative scores become 0; scores above 1 are percent."""
    scores = np.maximum(scores, 0.0)
    return np.where(scores > 1.0, np.minimum(scores / 100.0, 1.0), scores)


def _boxes_to_model_pixels(boxes: np.ndarray, units: str, transform: Transform) -> np.ndarray:
    """Proportional boxes → pixels of the model input; 'auto' takes boxes within [0, 1.5] as proportional."""
    if units == "proportional" or (units == "auto" and (boxes.size == 0 or float(np.abs(boxes).max()) <= 1.5)):
        boxes = boxes * np.array([transform.input_width, transform.input_height] * 2, dtype=np.float64)
    return boxes


class SsdDecoder:
    """Boxes + scores (+ category, + count) tensors, as TFLite's detection post-processing emits."""

    role = "detector"

    def __init__(self, tensors: dict[str, str], specs: dict[str, TensorSpec], config: DecoderConfig) -> None:
        self.tensors = tensors  # role -> tensor name
        self.specs = specs
        self.config = config

    def decode(self, outputs: dict[str, np.ndarray], transform: Transform) -> RawDetections:
        loc = outputs[self.tensors["location"]]
        boxes = dequantize(loc, self.specs.get(self.tensors["location"])).reshape(-1, 4).astype(np.float64)
        score = dequantize(outputs[self.tensors["score"]], self.specs.get(self.tensors["score"]))
        if "category" in self.tensors:
            scores = score.reshape(-1)
            classes = np.rint(outputs[self.tensors["category"]].reshape(-1)).astype(np.int64)
        else:  # [1, N, C] score tensor: category by argmax
            per_class = score.reshape(boxes.shape[0], -1)
            classes = per_class.argmax(axis=1)
            scores = per_class[np.arange(len(classes)), classes]
        n = min(len(boxes), len(scores), len(classes))
        if "count" in self.tensors:
            n = min(n, int(np.asarray(outputs[self.tensors["count"]]).reshape(-1)[0]))
        order = list(self.config.box_order)
        boxes = boxes[:n][:, order]
        boxes = _boxes_to_model_pixels(boxes, self.config.box_units, transform)
        return RawDetections(transform.to_source(boxes), normalise_scores(scores[:n].astype(np.float64)),
                             classes[:n])


class YoloDecoder:
    """Raw YOLO output: centre-x, centre-y, width, height (+ objectness for v5) and per-class scores."""

    role = "yolo"

    def __init__(self, tensor: str, spec: TensorSpec, attrs_first: bool, has_objectness: bool,
                 config: DecoderConfig) -> None:
        self.tensor = tensor
        self.spec = spec
        self.attrs_first = attrs_first
        self.has_objectness = has_objectness
        self.config = config

    def decode(self, outputs: dict[str, np.ndarray], transform: Transform) -> RawDetections:
        raw = dequantize(outputs[self.tensor], self.spec)[0]
        rows = raw.T if self.attrs_first else raw  # (N, K)
        start = 5 if self.has_objectness else 4
        cls_scores = rows[:, start:]
        if self.has_objectness:
            cls_scores = cls_scores * rows[:, 4:5]
        classes = cls_scores.argmax(axis=1)
        scores = cls_scores[np.arange(len(classes)), classes]
        keep = scores >= self.config.nms_score_threshold
        xywh, scores, classes = rows[keep, :4].astype(np.float64), scores[keep], classes[keep]
        if len(scores) == 0:
            return RawDetections.empty()
        boxes = np.column_stack([xywh[:, 0] - xywh[:, 2] / 2, xywh[:, 1] - xywh[:, 3] / 2,
                                 xywh[:, 0] + xywh[:, 2] / 2, xywh[:, 1] + xywh[:, 3] / 2])
        boxes = _boxes_to_model_pixels(boxes, self.config.box_units, transform)
        idx = nms(boxes, scores, classes, self.config)
        return RawDetections(transform.to_source(boxes[idx]), normalise_scores(scores[idx].astype(np.float64)),
                             classes[idx].astype(np.int64))


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
    """One score vector; softmax when values fall outside [0, 1] (sigmoid for a single value)."""

    role = "classifier"

    def __init__(self, tensor: str, spec: TensorSpec, background_offset: int) -> None:
        self.tensor = tensor
        self.spec = spec
        self.background_offset = background_offset

    def decode(self, outputs: dict[str, np.ndarray]) -> np.ndarray:
        """Probabilities indexed like the labels."""
        scores = dequantize(outputs[self.tensor], self.spec).reshape(-1).astype(np.float64)
        if scores.size == 1 and (scores[0] < -1 or scores[0] > 1):
            scores = 1.0 / (1.0 + np.exp(-scores))
        elif scores.size > 1 and (scores.min() < 0 or scores.max() > 1):
            exp = np.exp(scores - scores.max())
            scores = exp / exp.sum()
        return scores[self.background_offset:]


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


def _ssd(metadata: ModelMetadata, outputs: dict[str, np.ndarray], config: DecoderConfig) -> SsdDecoder | None:
    roles = _by_role(metadata, config)
    shapes = {name: np.asarray(arr).shape for name, arr in outputs.items()}
    if "location" not in roles:
        cands = [n for n, s in shapes.items() if len(s) in (2, 3) and s[-1] == 4 and (len(s) == 2 or s[0] == 1)]
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
            raise RoleError(f"found box tensor {roles['location']!r} but no score tensor with {n_boxes} entries")
    elif "category" not in roles and per_box and len(shapes[roles["score"]]) < 3:
        roles["category"] = per_box[0]
    if "count" not in roles:
        counts = [n for n in free if n not in roles.values() and int(np.prod(shapes[n])) == 1]
        if counts:
            roles["count"] = counts[0]
    specs = {o.name: o for o in metadata.outputs}
    return SsdDecoder(roles, specs, config)


def _yolo(metadata: ModelMetadata, outputs: dict[str, np.ndarray], config: DecoderConfig,
          labels: Labels | None) -> YoloDecoder | None:
    spec = metadata.outputs[0]
    shape = np.asarray(outputs[spec.name]).shape
    if len(shape) != 3 or shape[0] != 1 or min(shape[1:]) < 5:
        return None
    n_labels = labels.span if labels else 0
    # Which axis holds the attributes (4 box values [+ objectness] + classes)? The labels tell when known;
    # otherwise the smaller axis (v8: [1, 84, 8400]; v5: [1, 25200, 85]).
    attrs_first = shape[1] < shape[2]
    for first in (True, False):
        if n_labels and (shape[1] if first else shape[2]) - n_labels in (4, 5):
            attrs_first = first
            break
    k = shape[1] if attrs_first else shape[2]
    fmt = config.yolo_format
    if fmt == "auto":
        if n_labels and k - n_labels in (4, 5):
            fmt = "v8" if k - n_labels == 4 else "v5"
        else:
            fmt = "v8" if attrs_first else "v5"
    return YoloDecoder(spec.name, spec, attrs_first, fmt == "v5", config)


def _classifier(metadata: ModelMetadata, outputs: dict[str, np.ndarray], config: DecoderConfig,
                labels: Labels | None) -> ClassifierDecoder | None:
    roles = _by_role(metadata, config)
    name = roles.get("probability")
    if name is None:
        if len(metadata.outputs) != 1:
            return None
        name = metadata.outputs[0].name
    shape = np.asarray(outputs[name]).shape
    if sum(1 for d in shape if d != 1) > 1:
        return None
    size = int(np.prod(shape))
    offset = 1 if labels and size == labels.span + 1 else 0
    return ClassifierDecoder(name, next(o for o in metadata.outputs if o.name == name), offset)


def find_decoder(metadata: ModelMetadata, trial_outputs: dict[str, np.ndarray], config: DecoderConfig,
                 labels: Labels | None):
    """The decoder for this model (forced by `model_type` or found from metadata and a trial run)."""
    kind = config.model_type
    attempts = {
        "detector": lambda: _ssd(metadata, trial_outputs, config),
        "yolo": lambda: _yolo(metadata, trial_outputs, config, labels),
        "classifier": lambda: _classifier(metadata, trial_outputs, config, labels),
    }
    if kind != "auto" and kind not in attempts:
        raise RoleError(f"model_type {kind!r} is not one of auto, detector, yolo, classifier")
    reasons = []
    for role in ([kind] if kind != "auto" else list(attempts)):
        try:
            decoder = attempts[role]()
        except RoleError as exc:
            reasons.append(f"{role}: {exc}")
            continue
        if decoder is not None:
            return decoder
        reasons.append(f"{role}: tensor layout does not fit")
    shapes = "; ".join(f"{n}: {np.asarray(a).dtype} {list(np.asarray(a).shape)}" for n, a in trial_outputs.items())
    raise RoleError(
        "the model fits no vision role (detector, yolo, classifier). Its tensors: "
        f"{metadata.describe_tensors()}. Trial-run outputs: {shapes}. Tried: {' | '.join(reasons)}. "
        "Set model_type, remap_output_names or box_order to say how to read it."
    )
