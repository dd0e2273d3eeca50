"""The base of the typed views (core/settings/view.py): values made a frozen view, and updated into a new one."""

from __future__ import annotations

from dataclasses import FrozenInstanceError

import pytest

from ml_model_service.core.settings.typed import ObjectMode, ResizeMode, VisionSettings


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
