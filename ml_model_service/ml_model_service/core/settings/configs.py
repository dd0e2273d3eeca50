"""The vision node's settings made the core's configuration objects (decoding, preprocessing, filters, 3D
clouds)."""

from __future__ import annotations

from dataclasses import fields
from typing import Any, TypeVar

from ..frames.pointcloud import CloudConfig
from ..frames.tracking import TrackerConfig
from ..reading.decoders.base import DecoderConfig
from ..reading.input_plan import VisionConfig
from ..reading.preprocess import PreprocessConfig
from ..reading.results import FilterConfig
from .params import parse_pairs
from .typed import VisionSettings

T = TypeVar("T")


def named_fields(cls: type[T], s: VisionSettings, **given: Any) -> T:
    """`cls` (a dataclass) with every field a setting of the same name sets, and `given`; its other fields keep
    their defaults."""
    values = {
        f.name: getattr(s, f.name)
        for f in fields(cls)  # type: ignore[arg-type]
        if hasattr(s, f.name) and f.name not in given
    }
    return cls(**values, **given)


def filter_config(s: VisionSettings) -> FilterConfig:
    confidences = {k: float(v) for k, v in parse_pairs(s.label_confidences, "label_confidences").items()}
    return FilterConfig(
        confidence_threshold=s.confidence_threshold, label_confidences=confidences, classes=list(s.classes)
    )


def vision_config(s: VisionSettings) -> VisionConfig:
    """VisionConfig from the settings (raises ValueError on malformed entries)."""
    return VisionConfig(
        preprocess=PreprocessConfig(
            mean=s.input_mean,
            std=s.input_std,
            bgr=s.input_bgr,
            pad_corner=s.letterbox_position,
            input_range=s.input_range,
        ),
        decoder=named_fields(
            DecoderConfig, s, remap_output_names=parse_pairs(s.remap_output_names, "remap_output_names")
        ),
        filters=filter_config(s),
        resize_mode=s.resize_mode,
        remap_input_names=parse_pairs(s.remap_input_names, "remap_input_names"),
        input_size=s.input_size,
        shortest_edge=s.input_shortest_edge,
        crop_fraction=s.crop_fraction,
        mask_threshold=s.mask_threshold,
        max_input_pixels=s.max_input_pixels,
    )


def cloud_config(s: VisionSettings) -> CloudConfig:
    """CloudConfig from the settings."""
    return named_fields(CloudConfig, s)


def tracker_config(s: VisionSettings) -> TrackerConfig | None:
    """The tracker's settings; None when tracking is off."""
    if not s.tracking:
        return None
    return TrackerConfig(
        max_age=s.tracker_max_age,
        min_iou=s.tracker_min_iou,
        min_hits=s.tracker_min_hits,
        class_aware=s.tracker_class_aware,
    )
