"""What a model says about itself: Ultralytics export metadata (`names`, `imgsz`, `stride`, `task`,
`end2end`, `kpt_shape`, `description`, `args`) and a Hugging Face image processor's settings (`hf.` keys:
`loading.sidecars`), read from `ModelMetadata.properties` (the ONNX custom_metadata_map and the sidecars, also
carried to remote vision nodes), plus the identity of the bundled models.
"""

from __future__ import annotations

import ast
import json
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
    #: Float inputs' normalisation as the pipeline applies it, (v/255 - mean) / std per RGB channel, where the
    #: model's image processor says (Hugging Face's preprocessor_config.json); None: it does not
    mean: tuple[float, float, float] | None = None
    std: tuple[float, float, float] | None = None
    #: Where each reading came from (reading -> file or metadata key), for `ml_model_cli metadata` and the logs.
    sources: dict[str, str] = field(default_factory=dict)
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
    if hints.imgsz is not None:
        hints.sources["imgsz"] = "metadata imgsz"
    _image_processor(props, hints)
    return hints


def _json(props: dict[str, str], key: str):
    try:
        return json.loads(props[key]) if key in props else None
    except ValueError:
        return None


def _triple(value) -> tuple[float, float, float] | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = [value] * 3
    if isinstance(value, list) and len(value) == 3 and all(isinstance(v, (int, float)) for v in value):
        return float(value[0]), float(value[1]), float(value[2])
    return None


def _image_processor(props: dict[str, str], hints: ModelHints) -> None:
    """A Hugging Face image processor's size and normalisation (`hf.` properties) as hints."""
    if "hf.sidecars" not in props or not any(k.startswith("hf.do_") or k == "hf.size" for k in props):
        return
    where = "preprocessor_config.json"
    rescale = _json(props, "hf.rescale_factor") if _json(props, "hf.do_rescale") is not False else 1.0
    rescale = float(rescale) if isinstance(rescale, (int, float)) and rescale > 0 else 1 / 255
    mean, std = (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)
    if _json(props, "hf.do_normalize") is not False:
        mean = _triple(_json(props, "hf.image_mean")) or mean
        std = _triple(_json(props, "hf.image_std")) or std
    # (v * rescale - mean) / std == (v / 255 - mean') / std' with mean' = mean / (255 rescale), std' likewise
    unit = 255.0 * rescale
    hints.mean = (mean[0] / unit, mean[1] / unit, mean[2] / unit)
    hints.std = (std[0] / unit, std[1] / unit, std[2] / unit)
    hints.sources["normalisation"] = where
    size = _json(props, "hf.size")
    resized = _json(props, "hf.do_resize") is not False and isinstance(size, dict)
    if resized and isinstance(size.get("height"), int) and isinstance(size.get("width"), int) and not hints.imgsz:
        hints.imgsz = (int(size["height"]), int(size["width"]))
        hints.sources["imgsz"] = f"{where} size"
