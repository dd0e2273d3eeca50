"""core/settings/tables.py: the checks that combine values (each value alone is checked by its Param)."""

from __future__ import annotations

from ml_model_service.core.settings.params import defaults
from ml_model_service.core.settings.tables import VISION_PARAMS, validate


def test_tracker_values_are_checked_together_even_when_one_is_given():
    """A change may carry one of the two tracker values; the other is the table's default (no KeyError)."""
    assert validate({"tracker_min_hits": 50}, VISION_PARAMS) == "tracker_min_hits 50 must be at most tracker_max_age 30"
    assert validate({"tracker_max_age": 2, "tracker_min_hits": 3}, VISION_PARAMS).startswith("tracker_min_hits 3")
    assert validate({"tracker_max_age": 1}, VISION_PARAMS) == ""


def test_depth_range_must_be_a_range():
    values = defaults(VISION_PARAMS)
    assert validate({**values, "min_depth": 2.0, "max_depth": 1.0}, VISION_PARAMS).startswith("min_depth 2.0")
    assert validate(values, VISION_PARAMS) == ""
