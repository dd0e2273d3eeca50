"""What a model says about itself: Ultralytics export metadata (`names`, `imgsz`, `stride`, `task`,
`end2end`, `kpt_shape`, `description`, `args`), read from `ModelMetadata.properties` (the ONNX
custom_metadata_map, also carried to remote vision nodes), plus the identity of the bundled models.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field

from ..metadata import ModelMetadata
from .preprocess import parse_size


def model_properties(metadata: ModelMetadata, runner: object | None = None) -> dict[str, str]:
    """The model's own metadata: `metadata.properties`, else (a local model) its backend's embedded map."""
    props = getattr(metadata, "properties", None) or {}
    if not props and runner is not None:
        props = getattr(getattr(runner, "backend", None), "embedded_metadata", None) or {}
    return {str(k): str(v) for k, v in dict(props).items()}


def _literal(text: str | None):
    if text is None:
        return None
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _flag(text: str | None) -> bool | None:
    if text is None:
        return None
    return str(text).strip().lower() in ("true", "1", "yes")


@dataclass
class ModelHints:
    """Facts from the model's metadata that decide how it is read; None where the model does not say."""

    imgsz: tuple[int, int] | None = None  # (height, width)
    stride: int | None = None
    task: str | None = None  # detect, segment, pose, obb, classify
    end2end: bool | None = None  # NMS-free / NMS-included [1, N, 6+] output
    kpt_shape: tuple[int, ...] | None = None
    family: str | None = None  # "yolo" (Ultralytics YOLO), "rtdetr" (Ultralytics RT-DETR) or None
    bundled: str | None = None  # name of a bundled model
    raw: dict[str, str] = field(default_factory=dict)

    @property
    def ultralytics(self) -> bool:
        return self.family is not None

    @property
    def extra_per_box(self) -> int:
        """Values after the classes in each row that are not classes (keypoints)."""
        if self.kpt_shape:
            n = 1
            for d in self.kpt_shape:
                n *= int(d)
            return n
        return 0


BUNDLED_CLASSIFIER_NAMES = ("efficientnet_lite0_qdq", "efficientnet_lite0")


def read_hints(metadata: ModelMetadata, runner: object | None = None) -> ModelHints:
    """ModelHints from the metadata (and, for a local model, its embedded map)."""
    props = model_properties(metadata, runner)
    hints = ModelHints(raw=props)
    description = f"{props.get('description', '')} {metadata.description or ''}".lower()
    author = props.get("author", "").lower()
    if "ultralytics" in author or "ultralytics" in description or ("names" in props and "stride" in props):
        flat = (description + " " + metadata.name.lower()).replace("-", "").replace("_", "")
        hints.family = "rtdetr" if "rtdetr" in flat else "yolo"
    try:
        hints.imgsz = parse_size(props.get("imgsz"))
    except ValueError:
        hints.imgsz = None
    stride = _literal(props.get("stride"))
    if isinstance(stride, (int, float)) and stride > 0:
        hints.stride = int(stride)
    task = props.get("task")
    hints.task = task.strip().lower() if task else None
    hints.end2end = _flag(props.get("end2end"))
    args = _literal(props.get("args"))
    if hints.end2end is None and isinstance(args, dict) and args.get("nms"):
        hints.end2end = True
    kpt = _literal(props.get("kpt_shape"))
    if isinstance(kpt, (list, tuple)) and kpt and all(isinstance(k, int) for k in kpt):
        hints.kpt_shape = tuple(kpt)
    if metadata.name in BUNDLED_CLASSIFIER_NAMES and "efficientnet-lite0" in description:
        hints.bundled = "efficientnet_lite0"
    return hints
