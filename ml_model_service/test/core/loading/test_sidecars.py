"""core/loading/sidecars.py: a Hugging Face folder's config.json and preprocessor_config.json as `hf.` properties,
and id2label as class names (not transformers' LABEL_n placeholders)."""

from __future__ import annotations

import json

import pytest

from ml_model_service.core.loading.sidecars import sidecar_labels, sidecar_properties


def test_sidecars_give_properties_and_labels(tmp_path):
    assert sidecar_properties(tmp_path) == {}
    (tmp_path / "config.json").write_text(
        json.dumps({"id2label": {"0": "cat", "1": "dog"}, "architectures": ["DetrForObjectDetection"]})
    )
    (tmp_path / "preprocessor_config.json").write_text(json.dumps({"image_mean": [0.5, 0.5, 0.5], "other": 1}))
    props = sidecar_properties(tmp_path)
    assert props["hf.architectures"] == "DetrForObjectDetection"
    assert json.loads(props["hf.image_mean"]) == [0.5, 0.5, 0.5] and "hf.other" not in props
    assert props["hf.sidecars"] == "config.json, preprocessor_config.json"
    labels = sidecar_labels(props, "m")
    assert labels.names == {0: "cat", 1: "dog"}


def test_placeholder_and_malformed_labels():
    assert sidecar_labels({"hf.id2label": json.dumps({"0": "LABEL_0", "1": "LABEL_1"})}, "m") is None
    assert sidecar_labels({}, "m") is None
    with pytest.raises(ValueError, match="not a whole number"):
        sidecar_labels({"hf.id2label": json.dumps({"x": "cat"})}, "m")
