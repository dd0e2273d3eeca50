"""SSD-style detectors: boxes + scores (+ category, + count) tensors, as TFLite's detection post-processing,
torchvision (boxes/labels/scores, Mask R-CNN's per-detection masks) and the official RT-DETR/D-FINE exports
(with `orig_target_sizes`) emit."""

from __future__ import annotations

import numpy as np

from ...metadata import TensorSpec
from ..masks import MaskSource, direct_maps
from ..preprocess import RoleError, Transform
from .base import (
    DETR_LOGIT_NAMES,
    NAME_HINTS,
    Context,
    DecoderConfig,
    DetectionDecoder,
    RawDetections,
    Refused,
)
from .boxes import input_pixels
from .scores import check_class_ids, check_probabilities, dequantize, tolerance

#: TFLite's detection post-processing writes y_min, x_min, y_max, x_max.
TFLITE_BOX_ORDER = (1, 0, 3, 2)


class SsdDecoder(DetectionDecoder):
    """Boxes + scores (+ category, + count) tensors, as TFLite's detection post-processing emits."""

    role = "detector"

    def __init__(
        self,
        tensors: dict[str, str],
        specs: dict[str, TensorSpec],
        config: DecoderConfig,
        box_order: tuple[int, ...],
        describe: str,
        masks_output: str | None = None,
    ) -> None:
        self.tensors = tensors  # role -> tensor name
        self.specs = specs
        self.config = config
        self.box_order = box_order
        self.describe = describe
        self.masks_output = masks_output  # per-detection masks [N, 1, h, w] (torchvision Mask R-CNN)

    @property
    def segments(self) -> bool:
        return bool(self.masks_output)

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
        check_probabilities(
            scores,
            f"scores in {self.tensors['score']!r}",
            "remap_output_names",
            self.describe,
            tolerance(self.specs.get(self.tensors["score"])),
        )
        if "category" in self.tensors:
            check_class_ids(classes, f"classes in {self.tensors['category']!r}", "remap_output_names", self.describe)
        return boxes[:n], scores, np.rint(classes).astype(np.int64)

    def decode(self, outputs: dict[str, np.ndarray], transform: Transform) -> RawDetections:
        boxes, scores, classes = self.read(outputs)
        boxes = input_pixels(boxes[:, list(self.box_order)], self.config.box_units, transform)
        masks = None
        if self.masks_output is not None:
            maps = direct_maps(
                dequantize(outputs[self.masks_output], self.specs.get(self.masks_output)),
                len(np.asarray(outputs[self.masks_output])),
            )
            if maps is not None and len(maps) >= len(scores):
                masks = MaskSource(transform, maps=maps[: len(scores)])
        return RawDetections(transform.to_source(boxes), scores, classes, masks)


def recognise(ctx: Context) -> SsdDecoder | None:
    """An SSD-style detector: a boxes tensor with per-box scores (and classes, a count)."""
    metadata, outputs, config = ctx.metadata, ctx.outputs, ctx.config
    roles = ctx.by_role()
    shapes = {name: np.asarray(arr).shape for name, arr in outputs.items()}
    if "location" not in roles:
        cands = [n for n, s in shapes.items() if len(s) in (2, 3) and s[-1] == 4 and (len(s) == 2 or s[0] == 1)]
        cands.sort(key=lambda n: n.lower() in DETR_LOGIT_NAMES + NAME_HINTS["probability"])
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
            raise ctx.refuse(
                f"found box tensor {roles['location']!r} but no score tensor of shape [1, {n_boxes}], "
                f"[{n_boxes}] or [1, {n_boxes}, C] (per-anchor outputs such as SCRFD's need anchor "
                "decoding the model does not carry)",
                None,
            )
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
    # per-detection masks (torchvision Mask R-CNN's [N, 1, H, W])
    masks_output = next(
        (name for name in free if name not in roles.values() and direct_maps(outputs[name], n_boxes) is not None), None
    )
    decoder = SsdDecoder(
        roles, {o.name: o for o in metadata.outputs}, config, box_order, metadata.describe_tensors(), masks_output
    )
    try:
        decoder.read(outputs)
    except Refused as exc:
        raise ctx.refuse(str(exc).split("; ")[0], "remap_output_names") from exc
    return decoder
