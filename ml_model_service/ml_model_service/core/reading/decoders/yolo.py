"""Raw YOLO heads, read with NMS: v5 `[1, N, 5+C]` (objectness) and v8/v11 `[1, 4+C, N]`, also seg heads (`+32`
mask coefficients and a protos output, read into instance masks: reading.masks), pose heads (`+K*D` keypoints)
and OBB heads (`+1` angle: oriented boxes, rotated NMS), and corner boxes `[1, N, 4]` + scores `[1, N, C]` in two
tensors (YOLO-NAS, PP-YOLOE). The candidates must be the head's grid for the input size, with boxes on their grid
cells."""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass

import numpy as np

from ...metadata import TensorSpec
from ..preprocess import Transform
from .base import Context, DecoderConfig, RawDetections
from .boxes import anchor_centres, grid_counts, input_pixels, nms, rotated_nms, to_corners
from .rows import RowDecoder, oriented_boxes
from .scores import TOL, check_probabilities, dequantize, tolerance


@dataclass(eq=False)
class YoloDecoder(RowDecoder):
    """Raw YOLO output: centre-x, centre-y, width, height (+ objectness for v5), per-class scores, and extra
    per-box values: mask coefficients (read with the `protos` output into masks), keypoints or the angle of an
    oriented box (OBB heads, radians)."""

    role = "yolo"

    _: KW_ONLY
    attrs_first: bool  # [1, K, N] (v8) rather than [1, N, K] (v5)
    has_objectness: bool

    def rows(self, outputs: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(N, 4) centre boxes, (N, C) class scores (times objectness), the rows; checked."""
        raw = dequantize(np.asarray(outputs[self.tensor]), self.spec)[0]
        rows = raw.T if self.attrs_first else raw  # (N, K)
        start = 5 if self.has_objectness else 4
        cls_scores = rows[:, start : start + self.num_classes]
        self._check(cls_scores, rows[:, 4] if self.has_objectness else None, start)
        if self.has_objectness:
            cls_scores = cls_scores * rows[:, 4:5]
        return rows[:, :4], cls_scores, rows

    def candidates(
        self, outputs: dict[str, np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The candidates whose best class score reaches nms_score_threshold: (indices, (n, 4) centre boxes,
        scores, classes, (n, E) values after the classes). The best score of every candidate is taken first (one
        pass over the contiguous class rows of a [1, 4+C, N] head), the class (argmax), boxes and extras of the
        survivors only."""
        first_extra = (5 if self.has_objectness else 4) + self.num_classes
        if not self.attrs_first:  # [1, N, K] rows (v5), or the split decoder's (N, C) scores
            xywh, cls_scores, rows = self.rows(outputs)
            keep = np.flatnonzero(cls_scores.max(axis=1) >= self.config.prefilter)
            survivors = cls_scores[keep]
            classes = survivors.argmax(axis=1)
            extra = np.asarray(rows[keep, first_extra:], np.float64)
            return keep, xywh[keep], survivors[np.arange(len(keep)), classes], classes, extra
        raw = dequantize(np.asarray(outputs[self.tensor]), self.spec)[0]  # (K, N)
        start = 5 if self.has_objectness else 4
        cls_scores = raw[start : start + self.num_classes]  # (C, N): rows of the candidates' scores
        self._check(cls_scores, raw[4] if self.has_objectness else None, start)
        best = cls_scores.max(axis=0)
        if self.has_objectness:
            best = best * raw[4]
        keep = np.flatnonzero(best >= self.config.prefilter)
        survivors = cls_scores[:, keep]
        if self.has_objectness:
            survivors = survivors * raw[4, keep]
        classes = survivors.argmax(axis=0)
        extra = np.asarray(raw[first_extra:, keep].T, np.float64)
        return keep, raw[:4, keep].T, survivors[classes, np.arange(len(keep))], classes, extra

    def _check(self, cls_scores: np.ndarray, objectness: np.ndarray | None, start: int) -> None:
        check_probabilities(
            cls_scores,
            f"class scores (values {start}-{start + self.num_classes - 1} of each row of {self.tensor!r})",
            None,
            self.describe,
            tolerance(self.spec),
        )
        if objectness is not None:
            check_probabilities(
                objectness,
                f"objectness (value 4 of each row of {self.tensor!r})",
                "yolo_format",
                self.describe,
                tolerance(self.spec),
            )

    def decode(self, outputs: dict[str, np.ndarray], transform: Transform) -> RawDetections:
        keep, xywh, scores, classes, extra = self.candidates(outputs)
        if not len(keep):
            return RawDetections.empty()
        scores = np.asarray(scores, np.float64)
        xywh = np.asarray(xywh, np.float64)
        if self.oriented:
            xywh_px = input_pixels(xywh, self.config.box_units, transform)
            idx = rotated_nms(np.column_stack([xywh_px, extra[:, 0]]), scores, classes, self.config)
            rotated, envelope = oriented_boxes(xywh_px[idx], extra[idx, 0], transform)
            return RawDetections(envelope, scores[idx], classes[idx].astype(np.int64), rows=keep[idx], rotated=rotated)
        boxes = input_pixels(to_corners(xywh, "cxcywh"), self.config.box_units, transform)
        idx = nms(boxes, scores, classes, self.config)
        found = RawDetections(
            transform.to_source(boxes[idx]), scores[idx], classes[idx].astype(np.int64), rows=keep[idx]
        )
        return self.finish(found, extra[idx], outputs, transform)


class SplitYoloDecoder(YoloDecoder):
    """YOLO candidates in two tensors: corner boxes [1, N, 4] in input pixels and class scores [1, N, C] or
    [1, C, N] (YOLO-NAS, PP-YOLOE and DAMO-YOLO exports without NMS); NMS as for raw YOLO."""

    def __init__(
        self,
        boxes: str,
        scores: str,
        specs: dict[str, TensorSpec | None],
        scores_first: bool,
        num_classes: int,
        config: DecoderConfig,
        describe: str,
    ) -> None:
        super().__init__(
            boxes, specs.get(boxes), num_classes, config, describe, attrs_first=False, has_objectness=False
        )
        self.scores = scores
        self.specs = specs
        self.scores_first = scores_first

    def rows(self, outputs: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        corners = dequantize(np.asarray(outputs[self.tensor]), self.specs.get(self.tensor))[0].astype(np.float64)
        scores = dequantize(np.asarray(outputs[self.scores]), self.specs.get(self.scores))[0]
        scores = scores.T if self.scores_first else scores
        check_probabilities(
            scores, f"class scores in {self.scores!r}", None, self.describe, tolerance(self.specs.get(self.scores))
        )
        xywh = np.column_stack(
            [
                (corners[:, 0] + corners[:, 2]) / 2,
                (corners[:, 1] + corners[:, 3]) / 2,
                corners[:, 2] - corners[:, 0],
                corners[:, 3] - corners[:, 1],
            ]
        )
        return xywh, scores, corners


def recognise(ctx: Context) -> YoloDecoder | None:
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
    extras = ctx.extras(spec.name)
    extra, protos = extras.count, extras.protos
    others = [n for n in ctx.outputs if n != spec.name and (protos is None or n != protos.name)]
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
    if fmt == "auto" and attrs_first and span and not extra and not ctx.task and k - span == 5:
        # [1, 5+C, N]: v8's layout (attrs first) with one value more than the classes: an OBB angle, or
        # objectness of a transposed v5 head; nothing in the model says which.
        raise ctx.refuse(
            f"output {spec.name!r} [1, {k}, {shape[2]}] has one value more than a box and the {span} labelled "
            "classes, and nothing in the model says whether it is an oriented box's angle (OBB head) or "
            "objectness (a v5 head)",
            "task",
        )
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
        raise ctx.refuse(
            f"output {spec.name!r} has {k} values per candidate: too few for {start} box values, "
            f"{extra} extra values and at least one class",
            "yolo_format",
        )
    if span and num_classes > span:
        raise ctx.refuse(
            f"output {spec.name!r} has {num_classes} values per candidate after the box "
            f"({fmt} layout{f', {extra} extra values' if extra else ''}) but the labels name {span} "
            "classes: the other values (mask coefficients, keypoints) are not explained by the model's "
            "metadata (task, kpt_shape) or a protos output, or the label file is short",
            "label_path (one name per class)",
        )
    decoder = YoloDecoder(
        spec.name,
        spec,
        num_classes,
        cfg,
        ctx.metadata.describe_tensors(),
        extras,
        attrs_first=attrs_first,
        has_objectness=fmt == "v5",
    )
    xywh, cls_scores, _ = decoder.rows(ctx.outputs)
    if xywh.size and float(xywh[:, 2:].min()) < -TOL:
        raise ctx.refuse(f"output {spec.name!r} has negative box widths or heights: not YOLO centre/size boxes", None)
    if per_cell:
        _check_grid(ctx, spec.name, xywh, per_cell, strides)
    if (
        fmt == "v5"
        and per_cell == 1
        and cfg.yolo_format == "auto"
        and not (ctx.hints.ultralytics or cfg.preprocessing_set)
    ):
        raise ctx.refuse(
            f"output {spec.name!r} has objectness and one box per grid cell (an anchor-free head with decoding) "
            "and no metadata: YOLOX's export (tools/export_onnx.py) makes this layout and takes BGR 0-255 "
            "images at the top left of their letterbox, others take RGB in [0, 1] centred, and the tensors "
            "cannot tell which (the wrong one finds nothing); set [input_bgr=true input_range=byte "
            "letterbox_position=top_left] for YOLOX, or yolo_format=v5 for RGB in [0, 1] centred",
            "input_bgr, input_range, letterbox_position (YOLOX) or yolo_format",
        )
    if not span and not ctx.task and not extra:
        _check_last_class(ctx, spec.name, cls_scores)
    return decoder


def _check_last_class(ctx: Context, name: str, cls_scores: np.ndarray) -> None:
    """With nothing saying how many values are classes: a last "class" that scores every candidate of the grey
    trial image far above the others is no class score (an OBB head's angle, say) — refused, not guessed at."""
    if cls_scores.shape[1] < 2 or not len(cls_scores):
        return
    medians = np.median(cls_scores, axis=0)
    last, others = float(medians[-1]), float(np.quantile(medians[:-1], 0.99))
    if last > 0.2 and last > 5 * max(others, 1e-3):
        raise ctx.refuse(
            f"the last of the {cls_scores.shape[1]} values after the box in {name!r} scores the grey trial image at "
            f"{last:.2f} on every candidate (median), where the other classes score at most {others:.3f}: it is "
            "no class score (an oriented box's angle?), and the model has no task metadata or label file to say",
            "task",
        )


def _split_yolo(ctx: Context, boxes: str, grid: tuple[int, tuple[int, ...]]) -> SplitYoloDecoder | None:
    n = ctx.shape(boxes)[1]
    scores = next(o for o in ctx.outputs if o != boxes)
    shape = ctx.shape(scores)
    if len(shape) != 3 or shape[0] != 1 or n not in shape[1:]:
        return None
    scores_first = shape[2] == n and shape[1] != n
    num_classes = shape[1] if scores_first else shape[2]
    if ctx.span and num_classes > ctx.span:
        raise ctx.refuse(
            f"{scores!r} scores {num_classes} classes but the labels name {ctx.span}", "label_path (one name per class)"
        )
    decoder = SplitYoloDecoder(
        boxes,
        scores,
        {n_: ctx.spec(n_) for n_ in ctx.outputs},
        scores_first,
        num_classes,
        ctx.config,
        ctx.metadata.describe_tensors(),
    )
    xywh, _, _ = decoder.rows(ctx.outputs)
    if xywh.size and float(xywh[:, 2:].min()) < -TOL:
        raise ctx.refuse(f"boxes in {boxes!r} are not x_min, y_min, x_max, y_max corners (negative sizes)", None)
    _check_grid(ctx, boxes, xywh, *grid)
    return decoder


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
        raise ctx.refuse(
            f"the box centres in {name!r} do not follow the YOLO grid of a {h} x {w} input (median "
            f"distance from their cell {median:.1f} strides; decoded YOLO boxes sit within one or two): "
            "these are not decoded boxes (a raw head such as YOLOX exported without "
            "decode_in_inference, or another kind of output); export the model with its box decoding",
            None,
        )
