"""The vision node's typed settings made the core's configuration objects (core/settings/configs.py)."""

from __future__ import annotations

import pytest

from ml_model_service.core.frames.pointcloud import CloudConfig
from ml_model_service.core.reading.decoders.base import DecoderConfig
from ml_model_service.core.settings.configs import cloud_config, filter_config, tracker_config, vision_config
from ml_model_service.core.settings.typed import VisionSettings


def test_vision_config_carries_each_setting_to_its_part():
    s = VisionSettings.of(
        {
            "input_mean": [0.5, 0.4, 0.3],
            "input_std": [0.2, 0.2, 0.2],
            "input_bgr": True,
            "iou_threshold": 0.3,
            "max_detections": 7,
            "agnostic_nms": True,
            "remap_output_names": ["out:boxes"],
            "remap_input_names": ["pixels:images"],
            "confidence_threshold": 0.25,
            "label_confidences": ["person:0.8", "a:b:0.6"],
            "classes": ["person", "car"],
            "mask_threshold": 0.7,
        }
    )
    config = vision_config(s)
    assert config.preprocess.mean == pytest.approx((0.5, 0.4, 0.3)) and config.preprocess.bgr is True
    assert config.preprocess.std == pytest.approx((0.2, 0.2, 0.2))
    assert isinstance(config.decoder, DecoderConfig)
    assert (config.decoder.iou_threshold, config.decoder.max_detections, config.decoder.agnostic_nms) == (0.3, 7, True)
    assert config.decoder.remap_output_names == {"out": "boxes"}
    assert config.remap_input_names == {"pixels": "images"}
    # the last ':' separates, so a label may hold ':'; values become floats
    assert config.filters.label_confidences == {"person": 0.8, "a:b": 0.6}
    assert config.filters.confidence_threshold == 0.25 and config.filters.classes == ["person", "car"]
    assert config.mask_threshold == 0.7


def test_defaults_give_the_core_defaults_and_malformed_pairs_are_refused():
    s = VisionSettings.of({})
    config = vision_config(s)
    assert config.decoder == DecoderConfig(model_type=s.model_type)
    assert config.filters.label_confidences == {} and config.filters.classes == []
    with pytest.raises(ValueError, match="remap_output_names: entry 'nocolon'"):
        vision_config(VisionSettings.of({"remap_output_names": ["nocolon"]}))
    with pytest.raises(ValueError, match="label_confidences"):
        filter_config(VisionSettings.of({"label_confidences": [":0.5"]}))


def test_cloud_and_tracker_configs():
    s = VisionSettings.of({"min_depth": 0.5, "max_depth": 4.0, "voxel_size": 0.05})
    cloud = cloud_config(s)
    assert isinstance(cloud, CloudConfig)
    assert (cloud.min_depth, cloud.max_depth, cloud.voxel_size) == (0.5, 4.0, 0.05)
    assert cloud.mean_k == CloudConfig().mean_k == s.mean_k
    assert tracker_config(s) is None  # tracking off: no tracker
    on = tracker_config(
        VisionSettings.of({"tracking": True, "tracker_max_age": 9, "tracker_min_iou": 0.4, "tracker_min_hits": 2})
    )
    assert on is not None
    assert (on.max_age, on.min_iou, on.min_hits, on.class_aware) == (9, 0.4, 2, True)
