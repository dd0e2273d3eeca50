"""DETR-family detectors: normalised centre/size boxes + class logits (sigmoid, or softmax with a no-object
class): Hugging Face DETR (`pred_boxes`/`logits`), RF-DETR (`dets`/`labels`), older Ultralytics RT-DETR
`[1, 300, 4+C]`."""

from __future__ import annotations

import numpy as np

from ...metadata import TensorSpec
from ..preprocess import Transform
from .base import DETR_BOX_NAMES, DETR_LOGIT_NAMES, Context, DecoderConfig, DetectionDecoder, RawDetections, Refused
from .boxes import grid_counts, to_corners, top
from .scores import TOL, activate, check_probabilities, dequantize, value_range


class DetrDecoder(DetectionDecoder):
    """DETR family: per query a box (normalised centre/size unless told otherwise) and class scores (logits
    with sigmoid, or softmax with a trailing no-object class, or probabilities)."""

    role = "detr"

    def __init__(
        self,
        boxes: str,
        scores: str | None,
        specs: dict[str, TensorSpec | None],
        activation: str,
        no_object: bool,
        box_format: str,
        config: DecoderConfig,
        describe: str,
    ) -> None:
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
        probs = activate(logits, self.activation)
        if self.no_object:
            probs = probs[:, :-1]
        what = f"class scores of {self.scores or self.boxes!r} after {self.activation}"
        check_probabilities(probs, what, "score_activation", self.describe)
        if self.box_format == "cxcywh" and self.config.box_units != "pixels":
            low, high = value_range(boxes)
            if low < -0.05 or high > 1.05:
                raise Refused(
                    f"boxes in {self.boxes!r} range from {low:.4g} to {high:.4g}; DETR-style boxes are "
                    "normalised centre/size values in [0, 1] (these look like anchor-relative encodings, "
                    "which need anchors the model does not carry); no option can help. "
                    f"Model tensors: {self.describe}",
                    None,
                )
        return boxes, probs

    def decode(self, outputs: dict[str, np.ndarray], transform: Transform) -> RawDetections:
        boxes, probs = self.read(outputs)
        if probs.shape[1] == 0:
            return RawDetections.empty()
        if self.activation == "sigmoid":
            # Each class scored on its own: the best (query, class) pairs, as the frameworks' post-processing
            # (transformers' sigmoid DETRs, RT-DETR, RF-DETR) keeps them, so one box may carry two classes.
            queries, classes = np.nonzero(probs >= self.config.prefilter)
            scores = probs[queries, classes]
        else:
            queries = np.arange(len(probs))
            classes = probs.argmax(axis=1)
            scores = probs[queries, classes]
        corners = to_corners(boxes[queries], self.box_format)
        found = top(corners, scores, classes, self.config, transform, self.config.box_units)
        if found.rows is not None:
            found.rows = queries[found.rows]
        return found


def activation_for(ctx: Context, scores_name: str | None, num_scores: int, values: np.ndarray) -> tuple[str, bool]:
    """(activation, trailing no-object class) for DETR class scores."""
    act = ctx.config.score_activation
    span = ctx.span
    if act != "auto":
        return act, act == "softmax"  # DETR's softmax always has the trailing no-object class
    low, high = value_range(values)
    if values.size and low >= -TOL and high <= 1 + TOL:
        return "none", False
    if ctx.hints.detr_scores == "softmax":  # the architecture in the exporter's config.json says
        return "softmax", True
    if ctx.hints.exporter == "rfdetr":  # a fine-tuned head's last slot is no-object: one more than its labels
        return "sigmoid", bool(span) and num_scores == span + 1
    if ctx.hints.detr_scores == "sigmoid" or (scores_name or "").lower() == "labels":
        return "sigmoid", False
    if span and num_scores == span + 1:
        return "softmax", True
    if span and num_scores == span:
        return "sigmoid", False
    if ctx.hints.family == "rtdetr":
        return "sigmoid", False  # Ultralytics RT-DETR
    raise ctx.refuse(
        f"class scores {scores_name!r} are logits ({num_scores} per query) and nothing says whether "
        "they take a sigmoid (RF-DETR, Deformable DETR, RT-DETR) or a softmax with a no-object class "
        "(DETR). The exporter's config.json beside the model tells (its architecture), and so does a label file "
        "with one name per class (as many names as scores: sigmoid; one fewer: softmax)",
        "score_activation",
    )


def recognise(ctx: Context) -> DetrDecoder | None:
    """DETR-family boxes and class scores: one [1, Q, 4+C] tensor, or [1, Q, 4] boxes beside [1, Q, C] scores."""
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
        act, no_object = activation_for(ctx, first, shape[2] - 4, values)
        decoder = DetrDecoder(first, None, specs, act, no_object, box_format, cfg, describe)
        decoder.read(ctx.outputs)
        return decoder
    # Two tensors: boxes [1, Q, 4] and class scores [1, Q, C].
    roles = {role: name for name, role in cfg.remap_output_names.items()}
    box_like = [n for n in ctx.outputs if len(shapes[n]) == 3 and shapes[n][0] == 1 and shapes[n][2] == 4]
    boxes = (
        roles.get("location")
        or next((n for n in box_like if n.lower() in DETR_BOX_NAMES), None)
        or next((n for n in box_like if n.lower() not in DETR_LOGIT_NAMES), None)
    )
    if boxes is None:
        return None
    q = shapes[boxes][1]
    scores = (
        roles.get("score")
        or roles.get("probability")
        or next((n for n in ctx.outputs if n != boxes and len(shapes[n]) == 3 and shapes[n][:2] == (1, q)), None)
    )
    if scores is None:
        return None
    values = dequantize(np.asarray(ctx.outputs[scores]), specs[scores])
    low, high = value_range(values)
    logits = values.size > 0 and (low < -TOL or high > 1 + TOL)
    named = boxes.lower() in DETR_BOX_NAMES[:2] or scores.lower() in ("logits", "pred_logits")
    if cfg.model_type != "detr" and not named and (not logits or q in grid_counts(*ctx.input_hw)):
        return None  # probabilities with boxes: SSD-style; one box per grid cell: split YOLO
    box_values = dequantize(np.asarray(ctx.outputs[boxes]), specs[boxes])
    low, high = value_range(box_values)
    if box_format == "cxcywh" and cfg.box_units != "pixels" and (low < -0.05 or high > 1.05):
        raise ctx.refuse(
            f"boxes in {boxes!r} range from {low:.4g} to {high:.4g} next to class logits "
            f"{scores!r}: not DETR's normalised boxes but anchor-relative encodings (BlazeFace, SSD "
            "without post-processing), which need anchors and decoding the model does not carry",
            None,
        )
    act, no_object = activation_for(ctx, scores, shapes[scores][2], values)
    decoder = DetrDecoder(boxes, scores, specs, act, no_object, box_format, cfg, describe)
    decoder.read(ctx.outputs)
    return decoder
