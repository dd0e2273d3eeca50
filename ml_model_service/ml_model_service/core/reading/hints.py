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
from ..text import parse_bool
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
    """A metadata flag: True only where it says so (`core/text.py`); None when absent."""
    return None if text is None else parse_bool(text) is True


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
    #: The image processor's resize rule, where it has one: (shortest, longest or 0) edges that open dimensions
    #: follow, aspect kept (DETR family); or "center_crop" with its crop fraction (ConvNeXt, ResNet processors)
    edges: tuple[int, int] | None = None
    edge_multiple: int = 0  # ... each side then rounded down to a multiple of this (YOLOS' processor: 16)
    center_crop: float | None = None
    #: How a DETR-family head's class logits are read, from the architecture in config.json: "softmax" (the last
    #: class is no-object: DETR, YOLOS, Table Transformer) or "sigmoid" (the others); None: not said
    detr_scores: str | None = None
    #: The image processor's Pillow resampling filter (2: bilinear, 3: bicubic); 0: none said
    resample: int = 0
    #: An exporter known by its outputs' names where it leaves no metadata ("rfdetr"); None: not known
    exporter: str | None = None
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
    _architecture(props, hints)
    _exporter_conventions(metadata, hints)
    return hints


#: ImageNet's normalisation (of [0, 1] values), which RF-DETR's models take.
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def _exporter_conventions(metadata: ModelMetadata, hints: ModelHints) -> None:
    """What an exporter's own conventions say where it leaves no metadata: RF-DETR's export (outputs `dets` and
    `labels`) takes ImageNet-normalised RGB, and its class logits each take a sigmoid; a fine-tuned head has one
    slot more than the dataset's classes (the last, no-object)."""
    if {o.name for o in metadata.outputs} != {"dets", "labels"} or hints.ultralytics:
        return
    hints.exporter = "rfdetr"
    where = "RF-DETR's conventions (outputs dets, labels)"
    if hints.mean is None:
        hints.mean, hints.std = IMAGENET_MEAN, IMAGENET_STD
        hints.sources["normalisation"] = where
    hints.detr_scores = "sigmoid"
    hints.sources["score_activation"] = where


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
    _resize_rule(props, hints, where)
    resample = _json(props, "hf.resample")
    if isinstance(resample, int) and resample in (1, 2, 3) and "hf.size" in props:
        hints.resample = resample
        hints.sources["resample"] = f"{where} resample (Pillow's)"


#: Architectures whose class logits take a softmax with a trailing no-object class (the other DETR-family heads
#: in transformers take a sigmoid, read as top (query, class) pairs).
SOFTMAX_DETRS = ("DetrForObjectDetection", "YolosForObjectDetection", "TableTransformerForObjectDetection")


def _architecture(props: dict[str, str], hints: ModelHints) -> None:
    names = [a.strip() for a in props.get("hf.architectures", "").split(",") if a.strip()]
    detectors = [a for a in names if a.endswith("ForObjectDetection")]
    if detectors:
        hints.detr_scores = "softmax" if detectors[0] in SOFTMAX_DETRS else "sigmoid"
        hints.sources["score_activation"] = f"config.json architectures ({detectors[0]})"


def _int(value) -> int | None:
    return int(value) if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _resize_rule(props: dict[str, str], hints: ModelHints, where: str) -> None:
    """The processor's size and resize rule: a fixed size (stretch), shortest/longest edges (aspect kept), or a
    centre crop (shortest edge / crop_pct, or do_center_crop with crop_size)."""
    size = _json(props, "hf.size")
    if _json(props, "hf.do_resize") is False or not isinstance(size, dict) or hints.imgsz:
        return
    height, width, shortest = _int(size.get("height")), _int(size.get("width")), _int(size.get("shortest_edge"))
    crop = _json(props, "hf.crop_size")
    crop_h, crop_w = (_int(crop.get("height")), _int(crop.get("width"))) if isinstance(crop, dict) else (None, None)
    pct = _json(props, "hf.crop_pct")
    if height and width:
        hints.imgsz = (height, width)
    elif shortest and _json(props, "hf.do_center_crop") is True and crop_h and crop_w:
        hints.imgsz = (crop_h, crop_w)  # shorter side to `shortest`, then the centre crop_size
        hints.center_crop = min(1.0, min(crop_h, crop_w) / shortest)
    elif shortest and isinstance(pct, (int, float)) and 0 < pct <= 1:
        hints.imgsz = (shortest, shortest)  # ConvNeXt: shorter side to shortest / crop_pct, then the centre
        if shortest < 384:
            hints.center_crop = float(pct)
    elif shortest:
        hints.edges = (shortest, _int(size.get("longest_edge")) or 0)
        if str(_json(props, "hf.image_processor_type")).startswith("YolosImageProcessor"):
            hints.edge_multiple = 16  # its get_size_with_aspect_ratio(mod_size=16)
        hints.sources["input_shortest_edge"] = f"{where} size"
        return
    else:
        return
    hints.sources["imgsz"] = f"{where} size" + (" and crop" if hints.center_crop else "")
