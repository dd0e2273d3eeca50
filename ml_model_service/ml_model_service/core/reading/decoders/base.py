"""What every decoder shares: its options (`DecoderConfig`), what it gives (`RawDetections`, or class
probabilities), how it refuses outputs it cannot read (`Refused`), what it is chosen from (`Context`), and the
interface VisionModel calls (`Decoder`: `DetectionDecoder` or `ClassificationDecoder`)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from ...loading.labels import Labels
from ...metadata import ModelMetadata, TensorSpec
from ..hints import ModelHints
from ..masks import MaskSource
from ..preprocess import RoleError, Transform

ROLES = ("location", "score", "category", "count", "probability")
MODEL_TYPES = ("auto", "detector", "yolo", "end2end", "detr", "classifier", "segmenter")
DETECTION_ROLES = ("detector", "yolo", "end2end", "detr")
BOX_FORMATS = ("auto", "xyxy", "cxcywh")
BOX_UNITS = ("auto", "proportional", "pixels")
YOLO_FORMATS = ("auto", "v5", "v8")
#: What each box row carries after its classes: nothing (detect), mask coefficients (segment, with a protos
#: output), keypoints (pose: keypoint_shape values) or one rotation angle in radians (obb).
TASKS = ("auto", "detect", "segment", "pose", "obb")
SCORE_ACTIVATIONS = ("auto", "none", "sigmoid", "softmax")
#: Where a segmenter's class scores sit: auto (from the shapes), nchw [1, C, h, w] or nhwc [1, h, w, C].
SEGMENTATION_LAYOUTS = ("auto", "nchw", "nhwc")
#: Output names that usually hold each role.
NAME_HINTS = {
    "location": ("location", "boxes", "detection_boxes", "bboxes"),
    "score": ("score", "scores", "detection_scores", "confidence"),
    "category": ("category", "classes", "detection_classes", "labels", "class"),
    "count": ("count", "num_detections", "num"),
    "probability": ("probability", "probabilities", "prob", "softmax", "logits"),
}
#: Output names of DETR-family boxes and class logits.
DETR_BOX_NAMES = ("pred_boxes", "dets", "boxes", "bboxes")
DETR_LOGIT_NAMES = ("logits", "pred_logits", "labels", "scores")


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
    #: The lowest score the result filters can keep (`FilterConfig.floor`, set by VisionModel before each
    #: decode). Candidates below it are dropped before NMS: identical results, since a box can only suppress
    #: lower-scored ones, which the filters drop anyway, and far less NMS work (a busy YOLO frame's ~1000
    #: candidates at 0.05 are ~100 at 0.5).
    keep_floor: float = 0.0
    box_format: str = "auto"  # end2end/DETR boxes: auto | xyxy | cxcywh
    score_activation: str = "auto"  # DETR logits and classifiers: auto | none | sigmoid | softmax
    task: str = "auto"  # one of TASKS: what follows the classes in a YOLO / end-to-end row
    keypoint_shape: tuple[int, ...] = ()  # pose: (keypoints, values per keypoint: 2 or 3); () = the metadata's
    segmentation_layout: str = "auto"  # one of SEGMENTATION_LAYOUTS
    #: The user set how images are fed (input_bgr, input_range, letterbox_position): a layout whose exporters feed
    #: images in different ways is then read as set, not refused
    preprocessing_set: bool = False

    @property
    def prefilter(self) -> float:
        """The score a candidate must reach to be decoded at all."""
        return max(self.nms_score_threshold, self.keep_floor)


class Refused(RoleError):
    """The model's outputs were read and fail a check; `option` names the one option that can help (None:
    no option can)."""

    def __init__(self, message: str, option: str | None = None) -> None:
        super().__init__(message)
        self.option = option


def help_text(option: str | None) -> str:
    return f"set {option} to say how to read it" if option else "no option can help"


@dataclass
class RawDetections:
    """Boxes (N, 4) x_min, y_min, x_max, y_max in source pixels; scores (N,); class indices (N,)."""

    boxes: np.ndarray
    scores: np.ndarray
    classes: np.ndarray
    masks: MaskSource | None = None  # segmentation models: row i's mask (see reading.masks)
    rows: np.ndarray | None = None  # the decoder's candidate row of each detection (where it tracks them)
    rotated: np.ndarray | None = None  # oriented boxes (N, 5): centre x, centre y, width, height, theta (rad)
    keypoints: np.ndarray | None = None  # pose models (N, K, 3): x, y (source pixels), score

    @classmethod
    def empty(cls) -> RawDetections:
        return cls(np.zeros((0, 4)), np.zeros(0), np.zeros(0, dtype=np.int64))


@dataclass(frozen=True)
class Extras:
    """What each box row carries after its classes: `count` values, read as mask coefficients (`protos`), as
    keypoints (`keypoints`: (K, D)) or as one angle (`angle`); none of these: values ignored."""

    count: int = 0
    protos: Prototypes | None = None
    keypoints: tuple[int, int] | None = None
    angle: bool = False


@dataclass(frozen=True)
class Prototypes:
    """A segmentation head's prototype masks output: its name and spec, and the mask coefficients each box row
    carries after its classes (`count`)."""

    name: str
    spec: TensorSpec | None
    count: int


class Decoder:
    """What VisionModel reads of any decoder (which then is a `DetectionDecoder` or a `ClassificationDecoder`). A
    decoder is built complete by its family's `recognise(ctx)`."""

    role: ClassVar[str] = ""
    #: Classes the model scores, where its outputs say (0: unknown).
    num_classes: int = 0

    @property
    def segments(self) -> bool:
        """Whether the decoder gives instance masks."""
        return False


class DetectionDecoder(Decoder, ABC):
    #: Its decoding options (every detection decoder holds the one it was built with).
    config: DecoderConfig

    @abstractmethod
    def decode(self, outputs: dict[str, np.ndarray], transform: Transform) -> RawDetections:
        """Detections in source pixels (unfiltered)."""


class ClassificationDecoder(Decoder, ABC):
    @abstractmethod
    def decode(self, outputs: dict[str, np.ndarray]) -> np.ndarray:
        """Probabilities indexed like the labels."""


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

    def by_role(self) -> dict[str, str]:
        """Role -> output name, from remapping first, then exact or common names."""
        metadata, config = self.metadata, self.config
        found: dict[str, str] = {}
        for model_name, role in config.remap_output_names.items():
            if role not in ROLES:
                raise RoleError(f"remap_output_names maps {model_name!r} to unknown role {role!r}; roles are {ROLES}")
            if model_name not in {o.name for o in metadata.outputs}:
                raise RoleError(
                    f"remap_output_names names {model_name!r}, which is not an output of the model; "
                    f"tensors: {metadata.describe_tensors()}"
                )
            found[role] = model_name
        for role, hints in NAME_HINTS.items():
            if role in found:
                continue
            for spec in metadata.outputs:
                if spec.name.lower() in hints and spec.name not in found.values():
                    found[role] = spec.name
                    break
        return found

    def prototypes(self, exclude: str) -> tuple[str, int] | None:
        """A segmentation head's prototype masks output ([1, nm, h, w]): (name, nm)."""
        for name in self.outputs:
            shape = self.shape(name)
            if name != exclude and len(shape) == 4 and shape[0] == 1 and shape[1] > 1 and shape[2] > 1:
                if shape[1] == shape[2] and shape[3] < shape[1]:
                    return name, int(shape[3])  # NHWC (TFLite exports): [1, h, w, nm]
                return name, int(shape[1])
        return None

    @property
    def task(self) -> str:
        """The task the option or the model's metadata names ("" where neither does)."""
        if self.config.task != "auto":
            return self.config.task
        if self.hints.task in TASKS:
            return str(self.hints.task)
        return "pose" if self.hints.kpt_shape else ""

    def keypoint_shape(self) -> tuple[int, int] | None:
        shape = tuple(self.config.keypoint_shape) or tuple(self.hints.kpt_shape or ())
        if len(shape) == 2 and shape[0] > 0 and shape[1] in (2, 3):
            return int(shape[0]), int(shape[1])
        return None

    def extras(self, main: str) -> Extras:
        """What follows the classes in each row of `main`: from the task (option or metadata), a protos
        output, or nothing."""
        task = self.task
        protos = self.prototypes(main)
        if task == "obb":
            return Extras(1, angle=True)
        if task == "pose":
            kpt = self.keypoint_shape()
            if kpt is None:
                raise self.refuse(
                    "the model is a pose model but nothing says its keypoint layout; set keypoint_shape "
                    "(e.g. [17, 3]: 17 keypoints of x, y, visibility) to read it, or",
                    "keypoint_shape",
                )
            return Extras(kpt[0] * kpt[1], keypoints=kpt)
        if protos is not None and task in ("", "segment"):
            return Extras(protos[1], Prototypes(protos[0], self.spec(protos[0]), protos[1]))
        return Extras()
