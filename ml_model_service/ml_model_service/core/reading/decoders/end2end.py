"""End-to-end detectors: `[1, N, 6(+extra)]` rows of box, score, class (+ mask coefficients with a protos
output, keypoints, or an OBB angle), already past NMS: YOLO26/YOLOv10/`nms=True` exports (corner boxes in input
pixels; OBB rows centre boxes) and Ultralytics RT-DETR (normalised centre boxes)."""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass

import numpy as np

from ..preprocess import Transform
from .base import Context, RawDetections
from .boxes import grid_counts, input_pixels, to_corners, top
from .rows import RowDecoder, oriented_boxes
from .scores import TOL, check_class_ids, check_probabilities, dequantize, tolerance


@dataclass(eq=False)
class EndToEndDecoder(RowDecoder):
    """`[1, N, 6+E]` rows: box (corners or centre/size), score, class id, E extra values (mask coefficients,
    keypoints, an OBB angle; see `Extras`); no NMS needed."""

    role = "end2end"

    _: KW_ONLY
    box_format: str  # xyxy | cxcywh
    units: str  # box units (DecoderConfig.box_units)

    def rows(self, outputs: dict[str, np.ndarray]) -> np.ndarray:
        rows = dequantize(np.asarray(outputs[self.tensor]), self.spec)[0].astype(np.float64)
        check_probabilities(
            rows[:, 4], f"scores (value 4 of each row of {self.tensor!r})", None, self.describe, tolerance(self.spec)
        )
        check_class_ids(
            rows[:, 5], f"class ids (value 5 of each row of {self.tensor!r})", None, self.describe, self.num_classes
        )
        return rows

    def decode(self, outputs: dict[str, np.ndarray], transform: Transform) -> RawDetections:
        rows = self.rows(outputs)
        if self.oriented:
            keep = np.flatnonzero(rows[:, 4] >= self.config.prefilter)
            keep = keep[np.argsort(-rows[keep, 4], kind="stable")][: max(self.config.max_detections, 0)]
            if not len(keep):
                return RawDetections.empty()
            xywh = input_pixels(rows[keep, :4], self.units, transform)
            rotated, envelope = oriented_boxes(xywh, rows[keep, 6], transform)
            return RawDetections(
                envelope, rows[keep, 4], np.rint(rows[keep, 5]).astype(np.int64), rows=keep, rotated=rotated
            )
        found = top(
            to_corners(rows[:, :4], self.box_format),
            rows[:, 4],
            np.rint(rows[:, 5]),
            self.config,
            transform,
            self.units,
        )
        if found.rows is None:
            return found
        return self.finish(found, rows[found.rows, 6:], outputs, transform)


def recognise(ctx: Context) -> EndToEndDecoder | None:
    """End-to-end rows `[1, N, 6(+extra)]` of box, score and class id, claimed by the model's metadata or by
    their structure alone."""
    cfg, hints = ctx.config, ctx.hints
    name = ctx.metadata.outputs[0].name
    shape = ctx.shape(name)
    if len(shape) != 3 or shape[0] != 1 or shape[2] < 6 or shape[1] < 1:
        return None
    # Ultralytics writes end2end: False for RT-DETR and for nms=True exports, whose rows are past NMS all the same.
    past_nms = bool(hints.end2end) or hints.nms or hints.family == "rtdetr"
    if hints.end2end is False and not past_nms and cfg.model_type != "end2end":
        return None
    rows = dequantize(np.asarray(ctx.outputs[name]), ctx.spec(name))[0].astype(np.float64)
    extras = ctx.extras(name)
    extra, protos = extras.count, extras.protos
    others = [n for n in ctx.outputs if n != name and (protos is None or n != protos.name)]
    if others and cfg.model_type != "end2end":
        return None
    if hints.family == "rtdetr" and ctx.span and shape[2] == 4 + ctx.span and shape[2] != 6 + extra:
        return None  # older Ultralytics RT-DETR [1, 300, 4+C]: the detr decoder reads it
    whole = rows.size == 0 or bool(np.all(np.abs(rows[:, 5] - np.rint(rows[:, 5])) < 1e-3))
    claimed = (
        cfg.model_type == "end2end"
        or bool(hints.end2end)
        or hints.nms
        or (hints.family == "rtdetr" and shape[2] == 6 and (ctx.span != 2 or whole))
    )
    if not claimed:
        # Structure alone: rows of box, score in [0, 1], whole class id, not a raw YOLO grid of candidates.
        on_grid = shape[1] in grid_counts(*ctx.input_hw)
        scores_ok = rows.size == 0 or (rows[:, 4].min() >= -TOL and rows[:, 4].max() <= 1 + TOL)
        if on_grid or not whole or not scores_ok or shape[2] != 6 + extra:
            return None
    if shape[2] != 6 + extra:
        raise ctx.refuse(
            f"output {name!r} has {shape[2]} values per row; an end-to-end output has 6 (box, score, "
            f"class) plus {extra} explained by the model's task metadata",
            None,
        )
    box_format = cfg.box_format
    if extras.angle:
        box_format = "cxcywh"  # oriented rows: centre, size, score, class, angle
    elif box_format == "auto":
        if hints.family == "rtdetr":
            box_format = "cxcywh"
        elif hints.end2end or hints.nms or hints.family == "yolo":
            box_format = "xyxy"
        else:
            raise ctx.refuse(
                f"output {name!r} [1, {shape[1]}, {shape[2]}] reads as end-to-end rows (box, score, "
                "class id) but the model does not say how its boxes are written: xyxy for YOLO26, "
                "YOLOv10 and nms=True exports (corners in input pixels), cxcywh for RT-DETR "
                "(normalised centre/size)",
                "box_format",
            )
    units = cfg.box_units
    if units == "auto":
        units = "proportional" if hints.family == "rtdetr" else "auto"  # TFLite YOLO exports normalise boxes
    decoder = EndToEndDecoder(
        name,
        ctx.spec(name),
        ctx.span if hints.ultralytics else 0,
        cfg,
        ctx.metadata.describe_tensors(),
        extras,
        box_format=box_format,
        units=units,
    )
    decoder.rows(ctx.outputs)  # the trial run's rows pass the checks
    return decoder
