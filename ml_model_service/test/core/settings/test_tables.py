"""core/settings/tables.py: the checks that combine values (each value alone is checked by its Param)."""

from __future__ import annotations

import pytest

from ml_model_service.core.settings.params import FILTERS, LIVE, MODEL, RUNNER, defaults
from ml_model_service.core.settings.tables import VISION_PARAMS, changed_tier, validate


def test_tracker_values_are_checked_together_even_when_one_is_given():
    """A change may carry one of the two tracker values; the other is the table's default (no KeyError)."""
    assert validate({"tracker_min_hits": 50}, VISION_PARAMS) == "tracker_min_hits 50 must be at most tracker_max_age 30"
    assert validate({"tracker_max_age": 2, "tracker_min_hits": 3}, VISION_PARAMS).startswith("tracker_min_hits 3")
    assert validate({"tracker_max_age": 1}, VISION_PARAMS) == ""


def test_depth_range_must_be_a_range():
    values = defaults(VISION_PARAMS)
    assert validate({**values, "min_depth": 2.0, "max_depth": 1.0}, VISION_PARAMS).startswith("min_depth 2.0")
    assert validate(values, VISION_PARAMS) == ""


@pytest.mark.parametrize(
    "name, value, words",
    [
        ("resize_mode", "bogus_mode", "not one of auto, stretch, letterbox"),
        ("box_units", "inches", "not one of"),
        ("model_type", "panoptic", "not one of"),
        ("backend", "pytorch", "not one of"),
        ("image_qos", "fast", "not one of"),
        ("object_mode", "walls", "not one of"),
        ("yolo_format", "v99", "not one of"),
        ("input_mean", [0.5, 0.5], "exactly 3 values"),
        ("input_std", [1.0, 0.0, 1.0], "non-zero"),
        ("box_order", [0, 1, 2], "permutation"),
        ("box_order", [0, 0, 2, 3], "permutation"),
        ("input_size", [0], "positive"),
        ("model_type", "mask", "not one of"),
        ("ground_normal", [0.0, 1.0], "exactly 3 values"),
        ("confidence_threshold", 1.5, "outside"),
        ("label_confidences", ["person"], "key:value"),
        ("label_confidences", ["person:high"], "not a number"),
        ("remap_output_names", ["out:colour"], "role"),
        ("execution_providers", "cpu", "list of str"),
        ("use_depth", "yes please", "must be a bool"),
    ],
)
def test_bad_values_are_refused_with_a_reason(name, value, words):
    values = {**defaults(VISION_PARAMS), name: value}
    assert words in validate(values, VISION_PARAMS)


def test_each_change_applies_the_cheapest_tier_that_covers_it():
    old = defaults(VISION_PARAMS)
    assert changed_tier(old, {**old, "confidence_threshold": 0.7}, VISION_PARAMS) == FILTERS
    assert changed_tier(old, {**old, "classes": ["cat"], "top_n": 2}, VISION_PARAMS) == FILTERS
    assert changed_tier(old, {**old, "top_n": 2}, VISION_PARAMS) == LIVE
    assert changed_tier(old, {**old, "resize_mode": "letterbox", "top_n": 1}, VISION_PARAMS) == MODEL
    assert changed_tier(old, {**old, "model_path": "x.onnx", "iou_threshold": 0.3}, VISION_PARAMS) == RUNNER
    assert changed_tier(old, dict(old), VISION_PARAMS) is None
    for p in VISION_PARAMS:  # every parameter states what a change does
        assert p.constraints()
