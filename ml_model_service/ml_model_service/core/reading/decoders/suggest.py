"""Options that read a refused model: readings its output shapes allow, each tried on the trial run, so a refusal
names only option sets that give a decoder (or says that none can help).

A suggestion is a set of parameter values and what it reads the model as. Options of the decoder are tried;
`resize_mode` is named with them where the layout needs it (it changes the preprocessing, not the decoding).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from .base import Context, Decoder
from .boxes import grid_counts


@dataclass(frozen=True)
class Suggestion:
    """Parameter values (as a user sets them) and what they read the model as."""

    values: tuple[tuple[str, Any], ...]
    reads_as: str

    def text(self) -> str:
        def show(v: Any) -> str:
            return ",".join(map(str, v)) if isinstance(v, (list, tuple)) else str(v)  # lists as the CLI takes them

        return f"[{' '.join(f'{k}={show(v)}' for k, v in self.values)}] for {self.reads_as}"


#: Keypoint layouts offered for a head whose class count nothing gives: COCO persons (17), hands (21), faces (5).
COMMON_KEYPOINTS = ((17, 3), (17, 2), (21, 3), (5, 3))
_DECODER_FIELDS = (
    "model_type",
    "box_format",
    "box_units",
    "task",
    "keypoint_shape",
    "yolo_format",
    "segmentation_layout",
    "score_activation",
)


def _pose(extra: int) -> list[tuple[tuple[str, Any], ...]]:
    found: list[tuple[tuple[str, Any], ...]] = []
    for d in (3, 2):
        if extra > 0 and extra % d == 0:
            found.append((("task", "pose"), ("keypoint_shape", (extra // d, d))))
    return found


def _segmentation(shape: tuple[int, ...]) -> list[Suggestion]:
    """A 4-D map output: read as NCHW or NHWC class scores, or as a one-channel mask of logits."""
    if len(shape) != 4 or shape[0] != 1:
        return []
    seg: tuple[tuple[str, Any], ...] = (("model_type", "segmenter"),)
    found = [
        Suggestion((*seg, ("segmentation_layout", "nchw")), f"NCHW class scores ({shape[1]} classes)"),
        Suggestion((*seg, ("segmentation_layout", "nhwc")), f"NHWC class scores ({shape[3]} classes)"),
    ]
    if 1 in (shape[1], shape[3]):
        found.append(Suggestion((*seg, ("score_activation", "sigmoid")), "a one-channel mask of logits"))
    return found


#: How YOLOX's export is fed (its preproc: BGR, 0-255, at the top left of its letterbox): options of the
#: preprocessing, which a decoder reads only as "the user said how images are fed" (`preprocessing_set`).
YOLOX = Suggestion(
    (("input_bgr", "true"), ("input_range", "byte"), ("letterbox_position", "top_left")),
    "YOLOX's export with decoding (BGR 0-255 images at the top left of their letterbox)",
)
_PREPROCESSING_FIELDS = ("input_bgr", "input_range", "letterbox_position")


def candidates(ctx: Context) -> list[Suggestion]:
    """Readings the first output's shape allows (untried)."""
    name = ctx.metadata.outputs[0].name
    shape = ctx.shape(name)
    if len(shape) == 4:
        return _segmentation(shape)
    if len(shape) != 3 or shape[0] != 1:
        return []
    found: list[Suggestion] = []
    counts = grid_counts(*ctx.input_hw)
    on_grid = shape[1] in counts or shape[2] in counts
    if not on_grid and shape[2] >= 6:
        e2e: tuple[tuple[str, Any], ...] = (("model_type", "end2end"),)
        k = shape[2]
        if k == 6:
            found.append(
                Suggestion(
                    (*e2e, ("box_format", "cxcywh"), ("box_units", "proportional"), ("resize_mode", "stretch")),
                    "RT-DETR (rows of normalised centre/size box, score, class id; stretched input)",
                )
            )
        if k == 6 or ctx.prototypes(name):
            found.append(
                Suggestion(
                    (*e2e, ("box_format", "xyxy"), ("task", "detect" if k == 6 else "segment")),
                    "YOLO26, YOLOv10 and nms=True exports (rows of corners in input pixels, score, class id)",
                )
            )
        if k == 7:
            found.append(
                Suggestion((*e2e, ("task", "obb")), "oriented boxes (rows of centre, size, score, class, angle)")
            )
        for pose in _pose(k - 6):
            found.append(
                Suggestion(
                    (*e2e, ("box_format", "xyxy"), *pose),
                    f"pose rows with {pose[1][1][0]} keypoints of {pose[1][1][1]} values after box, score, class",
                )
            )
    n = shape[2] if shape[2] in counts else shape[1]
    if on_grid and counts[n][0] == 1 and shape[1] == n and shape[2] >= 6:
        found.append(YOLOX)  # [1, cells, 5+C]: objectness, one box per cell
    if on_grid and not ctx.span:
        k = shape[1] if shape[2] in counts else shape[2]
        found.append(Suggestion((("task", "obb"),), f"an OBB head ({k - 5} classes, then an angle in radians)"))
        for kpt in COMMON_KEYPOINTS:
            if k - 4 - kpt[0] * kpt[1] >= 1:
                reads = f"a pose head ({k - 4 - kpt[0] * kpt[1]} classes, then {kpt[0]} keypoints of {kpt[1]} values)"
                found.append(Suggestion((("task", "pose"), ("keypoint_shape", kpt)), reads))
    if on_grid and ctx.span:
        k = shape[1] if shape[2] in counts else shape[2]
        extra = k - 4 - ctx.span
        if extra == 1:
            found.append(Suggestion((("task", "obb"),), "an OBB head (one angle in radians after the classes)"))
            found.append(Suggestion((("yolo_format", "v5"),), "a v5 head (objectness before the classes)"))
        for pose in _pose(extra):
            found.append(
                Suggestion(pose, f"a pose head ({pose[1][1][0]} keypoints of {pose[1][1][1]} values after the classes)")
            )
    return found


def working(ctx: Context, recognisers: dict[str, Callable[[Context], Decoder | None]]) -> list[Suggestion]:
    """The candidates that give a decoder on the trial run."""
    found = []
    for suggestion in candidates(ctx):
        values: dict[str, Any] = {k: v for k, v in suggestion.values if k in _DECODER_FIELDS}
        if any(k in _PREPROCESSING_FIELDS for k, _ in suggestion.values):
            values["preprocessing_set"] = True
        config = replace(ctx.config, **values)
        trial = replace(ctx, config=config)
        order = [config.model_type] if config.model_type != "auto" else list(recognisers)
        for role in order:
            try:
                decoder = recognisers[role](trial)
            except (ValueError, IndexError):
                break
            if decoder is not None:
                found.append(suggestion)
                break
    return found


def advice(found: list[Suggestion]) -> str:
    if not found:
        return "No option can help."
    return "Options that read it, each tried on the trial run: " + "; ".join(s.text() for s in found) + "."
