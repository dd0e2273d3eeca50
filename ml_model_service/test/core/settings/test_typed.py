"""The typed views generated from the parameter table (core/settings/typed.py)."""

from __future__ import annotations

from dataclasses import fields
from enum import Enum
from pathlib import Path

import pytest

from ml_model_service.core.settings import typed
from ml_model_service.core.settings.files import typed_module
from ml_model_service.core.settings.tables import MODEL_SERVICE_PARAMS, VISION_PARAMS, defaults
from ml_model_service.core.settings.typed import ModelServiceSettings, VisionSettings


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
