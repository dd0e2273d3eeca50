"""The typed views of the parameter table (core/settings/view.py and the generated typed.py)."""

from __future__ import annotations

from dataclasses import FrozenInstanceError, fields
from enum import Enum
from pathlib import Path

import pytest

from ml_model_service.core.settings import typed
from ml_model_service.core.settings.files import typed_module
from ml_model_service.core.settings.tables import MODEL_SERVICE_PARAMS, VISION_PARAMS, defaults
from ml_model_service.core.settings.typed import ModelServiceSettings, ObjectMode, ResizeMode, VisionSettings


def test_typed_module_is_generated_from_the_table():
    """Regenerate with `python3 -m ml_model_service.core.settings ml_model_service/config`."""
    assert Path(typed.__file__).read_text() == typed_module()


@pytest.mark.parametrize(
    "view, params", [(VisionSettings, VISION_PARAMS), (ModelServiceSettings, MODEL_SERVICE_PARAMS)]
)
def test_a_view_has_every_parameter_of_its_node_and_nothing_else(view, params):
    assert sorted(f.name for f in fields(view)) == sorted(p.name for p in params)
    s = view.of(defaults(params))
    for p in params:
        value = getattr(s, p.name)
        if p.choices:
            assert isinstance(value, Enum) and value == p.default and value.value in p.choices
        elif p.is_list:
            assert value == tuple(p.default)
        else:
            assert value == p.default and type(value) is type(p.default)


def test_values_become_enums_and_tuples_and_missing_ones_their_defaults():
    s = VisionSettings.of({"object_mode": "obstacles", "classes": ["person", "dog"], "resize_mode": "letterbox"})
    assert s.object_mode is ObjectMode.OBSTACLES and s.resize_mode is ResizeMode.LETTERBOX
    assert s.classes == ("person", "dog") and s.confidence_threshold == 0.5
    with pytest.raises(ValueError):
        VisionSettings.of({"object_mode": "everything"})  # not a choice of the table


def test_a_view_is_frozen_and_updated_into_a_new_one():
    s = VisionSettings.of({})
    with pytest.raises(FrozenInstanceError):
        s.top_n = 3  # type: ignore[misc]
    t = s.updated({"top_n": 3, "input_mean": [0.5, 0.5, 0.5], "object_mode": "obstacles"})
    assert (t.top_n, t.input_mean, t.object_mode) == (3, (0.5, 0.5, 0.5), ObjectMode.OBSTACLES)
    assert (s.top_n, s.object_mode) == (5, ObjectMode.DETECTIONS)
