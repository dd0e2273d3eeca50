"""core/metadata.py: bounded YAML reading of embedded metadata."""

from __future__ import annotations

import pytest

from ml_model_service.core.metadata import load_yaml_bounded


def test_yaml_alias_bombs_are_refused_small():
    lines, previous = ['a: &a ["x","x","x","x","x","x","x","x","x"]'], "a"
    for name in "bcdefghij":
        lines.append(f"{name}: &{name} [" + ",".join([f"*{previous}"] * 9) + "]")
        previous = name
    with pytest.raises(ValueError, match="expands to more than"):
        load_yaml_bounded("\n".join(lines))
    assert load_yaml_bounded("names: {0: cat}\nimgsz: [640, 640]") == {"names": {0: "cat"}, "imgsz": [640, 640]}
