"""Files generated from the parameter table (core/settings/files.py): the shipped parameter files and the
documented tables."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ml_model_service.core.settings.files import README_TABLES, shipped_parameter_files, update_readme
from ml_model_service.core.settings.tables import MODEL_SERVICE_PARAMS, VISION_PARAMS

PKG = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("name", ["model_service.yaml", "vision.yaml"])
def test_parameter_files_are_generated_from_the_table(name):
    """Every parameter with its default and description; regenerate with
    `python3 -m ml_model_service.core.settings ml_model_service/config`."""
    assert (PKG / "config" / name).read_text() == shipped_parameter_files()[name]
    values = yaml.safe_load((PKG / "config" / name).read_text())["/**"]["ros__parameters"]
    params = MODEL_SERVICE_PARAMS if name == "model_service.yaml" else VISION_PARAMS
    assert values == {p.name: p.default for p in params}


def test_documented_parameter_tables_are_generated_from_the_table():
    doc = PKG.parent / "docs" / "parameters.md"
    assert doc.read_text() == update_readme(str(doc), README_TABLES)
    for name in README_TABLES:
        assert f"<!-- params:{name} -->\n| parameter |" in doc.read_text()
