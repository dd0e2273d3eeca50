"""core/reading/hints.py: what a model's sidecars say about reading it."""

from __future__ import annotations

import pytest

from ml_model_service.core.metadata import ModelMetadata
from ml_model_service.core.reading.hints import read_hints


@pytest.mark.parametrize(
    ("architecture", "scores"),
    [
        ("DetrForObjectDetection", "softmax"),
        ("YolosForObjectDetection", "softmax"),
        ("DeformableDetrForObjectDetection", "sigmoid"),
        ("RTDetrV2ForObjectDetection", "sigmoid"),
        ("DFineForObjectDetection", "sigmoid"),
        ("ViTForImageClassification", None),
    ],
)
def test_the_architecture_says_how_detr_scores_are_read(architecture, scores):
    props = {"hf.architectures": architecture, "hf.sidecars": "config.json"}
    hints = read_hints(ModelMetadata(name="m", type="onnx", properties=props))
    assert hints.detr_scores == scores
