"""core/settings/params.py: a Param coerces the forms users type (a comma-separated list, 1 for true, an int
for a float)."""

from __future__ import annotations

from ml_model_service.core.settings.configs import vision_config
from ml_model_service.core.settings.tables import VISION_PARAMS, by_name, defaults, validate
from ml_model_service.core.settings.typed import VisionSettings

P = by_name(VISION_PARAMS)


def test_the_forms_users_type_are_coerced():
    assert P["execution_providers"].coerce("cpu") == ["cpu"]
    assert P["execution_providers"].coerce("cuda, cpu") == ["cuda", "cpu"]
    assert P["use_depth"].coerce(1) is True and P["use_depth"].coerce("false") is False
    assert P["confidence_threshold"].coerce(1) == 1.0 and P["classes"].coerce(None) == []
    assert P["input_mean"].coerce([0, 0, 0]) == [0.0, 0.0, 0.0]
    assert validate(defaults(VISION_PARAMS), VISION_PARAMS) == ""
    assert vision_config(VisionSettings.of(defaults(VISION_PARAMS))).filters.confidence_threshold == 0.5
