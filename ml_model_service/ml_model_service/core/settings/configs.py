"""Parameter values made the core's configuration objects (decoding, preprocessing, filters, 3D clouds)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..frames.pointcloud import CloudConfig
from ..frames.tracking import TrackerConfig
from ..reading.decoders.base import DecoderConfig
from ..reading.input_plan import VisionConfig
from ..reading.preprocess import PreprocessConfig
from ..reading.results import FilterConfig
from .params import parse_pairs
from .tables import value_of


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
        decoder=DecoderConfig(
            model_type=p["model_type"],
            remap_output_names=parse_pairs(p["remap_output_names"], "remap_output_names"),
            box_order=tuple(p["box_order"]),
            box_units=p["box_units"],
            yolo_format=p["yolo_format"],
            iou_threshold=p["iou_threshold"],
            max_detections=p["max_detections"],
            agnostic_nms=p["agnostic_nms"],
            box_format=p["box_format"],
            score_activation=p["score_activation"],
            task=p["task"],
            keypoint_shape=tuple(p["keypoint_shape"]),
            segmentation_layout=p["segmentation_layout"],
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
    return CloudConfig(
        min_depth=p["min_depth"],
        max_depth=p["max_depth"],
        depth_band=p["depth_band"],
        mean_k=p["mean_k"],
        sigma=p["sigma"],
        min_points=p["min_points"],
        max_points_per_object=p["max_points_per_object"],
        voxel_size=p["voxel_size"],
        plane_min_points=p["plane_min_points"],
        plane_max_distance=p["plane_max_distance"],
        ground_normal=tuple(p["ground_normal"]),
        ground_angle_tolerance_deg=p["ground_angle_tolerance_deg"],
        cluster_radius=p["cluster_radius"],
        cluster_min_points=p["cluster_min_points"],
    )


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
