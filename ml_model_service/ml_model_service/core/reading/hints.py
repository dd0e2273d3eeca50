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
    nms: bool = False  # exported with the exporter's NMS (Ultralytics args.nms): [1, max_det, 6+] rows
    kpt_shape: tuple[int, ...] | None = None
    kpt_names: tuple[str, ...] = ()  # pose models: each keypoint's name, where the model says them
    family: str | None = None  # "yolo" (Ultralytics YOLO), "rtdetr" (Ultralytics RT-DETR) or None
    bundled: str | None = None  # name of a bundled model
    raw: dict[str, str] = field(default_factory=dict)

    @property
    def ultralytics(self) -> bool:
        return self.family is not None


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
    hints.nms = isinstance(args, dict) and _flag(str(args.get("nms"))) is True
    if str(props.get("head", "")).startswith("RTDETR"):
        hints.family = "rtdetr"
    kpt = _literal(props.get("kpt_shape"))
    if isinstance(kpt, (list, tuple)) and kpt and all(isinstance(k, int) for k in kpt):
        hints.kpt_shape = tuple(kpt)
    names = _literal(props.get("kpt_names"))
    if isinstance(names, dict):  # Ultralytics: {class id: [keypoint names]}
        names = next(iter(names.values()), None)
    if isinstance(names, (list, tuple)) and all(isinstance(n, str) for n in names):
        hints.kpt_names = tuple(names)
    if metadata.name in BUNDLED_CLASSIFIER_NAMES and "efficientnet-lite0" in description:
        hints.bundled = "efficientnet_lite0"
    return hints
