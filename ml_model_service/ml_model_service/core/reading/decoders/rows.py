"""What YOLO and end-to-end rows share: the values after the classes (`Extras`: mask coefficients, keypoints or an
angle) read for the kept detections, and oriented boxes made source-image boxes."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ...metadata import TensorSpec
from ..masks import MaskSource, prototypes_from
from ..preprocess import Transform
from .base import DecoderConfig, DetectionDecoder, Extras, RawDetections
from .boxes import keypoints_to_source, rotated_to_source
from .scores import dequantize


@dataclass(eq=False)
class RowDecoder(DetectionDecoder):
    """A decoder of one tensor of box rows: which tensor, its spec, the classes it scores, the options, the
    model's tensors (for refusals) and what follows the classes in each row. Subclasses add their layout's
    fields keyword-only."""

    tensor: str
    spec: TensorSpec | None
    num_classes: int = field()  # required: `field()` keeps Decoder's class default (0) from becoming its default
    config: DecoderConfig
    describe: str
    extras: Extras = field(default_factory=Extras)

    @property
    def segments(self) -> bool:
        return self.extras.protos is not None

    @property
    def oriented(self) -> bool:
        return self.extras.angle

    def finish(
        self, found: RawDetections, extra: np.ndarray, outputs: dict[str, np.ndarray], transform: Transform
    ) -> RawDetections:
        """`found` given its masks or keypoints from `extra`, the values after the classes of its rows (in model
        input pixels; rotated boxes are made in `oriented_boxes`)."""
        extras = self.extras
        if not len(found.scores):
            return found
        if extras.protos is not None and extras.count:
            source = dequantize(np.asarray(outputs[extras.protos.name]), extras.protos.spec)
            protos = prototypes_from(source, extras.count)
            found.masks = MaskSource(transform, np.asarray(extra[:, : extras.count], np.float32), protos)
        if extras.keypoints is not None:
            found.keypoints = keypoints_to_source(extra[:, : extras.count], extras.keypoints, transform)
        return found


def oriented_boxes(xywh: np.ndarray, angle: np.ndarray, transform: Transform) -> tuple[np.ndarray, np.ndarray]:
    """Model-input centre boxes and angles → (source xywhr, source envelopes)."""
    return rotated_to_source(np.column_stack([xywh, angle]), transform)
