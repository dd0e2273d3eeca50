"""Parameter values made the core's configuration objects (decoding, preprocessing, filters, 3D clouds)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from typing import Any, TypeVar

from ..frames.pointcloud import CloudConfig
from ..frames.tracking import TrackerConfig
from ..reading.decoders.base import DecoderConfig
from ..reading.input_plan import VisionConfig
from ..reading.preprocess import PreprocessConfig
from ..reading.results import FilterConfig
from .params import parse_pairs
from .tables import value_of

T = TypeVar("T")


def named_fields(cls: type[T], p: Mapping[str, Any], **given: Any) -> T:
    """`cls` (a dataclass) with every field a parameter of the same name sets (lists made tuples), and `given`;
    its other fields keep their defaults."""
    values = {
        f.name: tuple(p[f.name]) if isinstance(p[f.name], list) else p[f.name]
        for f in fields(cls)  # type: ignore[arg-type]
        if f.name in p and f.name not in given
    }
    return cls(**values, **given)


def filter_config(p: Mapping[str, Any]) -> FilterConfig:
    confidences = {k: float(v) for k, v in parse_pairs(p["label_confidences"], "label_confidences").items()}
    return FilterConfig(
        confidence_threshold=p["confidence_threshold"], label_confidences=confidences, classes=list(p["classes"])
    )


def vision_config(p: Mapping[str, Any]) -> VisionConfig:
    """VisionConfig from parameter values (raises ValueError on malformed entries)."""
    return VisionConfig(
        preprocess=PreprocessConfig(
            mean=tuple(p["input_mean"]),
            std=tuple(p["input_std"]),
            bgr=p["input_bgr"],
            pad_corner=p["letterbox_position"],
            input_range=p["input_range"],
        ),
        decoder=named_fields(
            DecoderConfig, p, remap_output_names=parse_pairs(p["remap_output_names"], "remap_output_names")
        ),
        filters=filter_config(p),
        resize_mode=p["resize_mode"],
        remap_input_names=parse_pairs(p["remap_input_names"], "remap_input_names"),
        input_size=tuple(p["input_size"]),
        shortest_edge=tuple(p["input_shortest_edge"]),
        crop_fraction=p["crop_fraction"],
        mask_threshold=p["mask_threshold"],
        max_input_pixels=p["max_input_pixels"],
    )


def cloud_config(p: Mapping[str, Any]) -> CloudConfig:
    """CloudConfig from parameter values."""
    return named_fields(CloudConfig, p)


def tracker_config(p: Mapping[str, Any]) -> TrackerConfig | None:
    """The tracker settings from parameter values (the table's defaults where they lack one); None when
    tracking is off."""
    if not value_of(p, "tracking"):
        return None
    return TrackerConfig(
        max_age=int(value_of(p, "tracker_max_age")),
        min_iou=float(value_of(p, "tracker_min_iou")),
        min_hits=int(value_of(p, "tracker_min_hits")),
        class_aware=bool(value_of(p, "tracker_class_aware")),
    )
