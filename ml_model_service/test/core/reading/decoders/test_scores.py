"""core/reading/decoders/scores.py: quantised scores made probabilities, range and class-id checks, activations."""

from __future__ import annotations

import numpy as np
import pytest

from ml_model_service.core.metadata import TensorSpec
from ml_model_service.core.reading.decoders.base import Refused
from ml_model_service.core.reading.decoders.scores import (
    activate,
    check_class_ids,
    check_probabilities,
    dequantize,
    tolerance,
)


def test_dequantize_uses_the_models_parameters_else_the_tflite_convention():
    assert dequantize(np.array([0, 128, 255], np.uint8), None).tolist() == [0.0, 0.5, 255 / 256]
    assert dequantize(np.array([-128, 0], np.int8), None).tolist() == [0.0, 0.5]
    spec = TensorSpec("s", "uint8", [3], extra={"quantization_scale": 0.1, "quantization_zero_point": 10})
    np.testing.assert_allclose(dequantize(np.array([10, 20, 30], np.uint8), spec), [0.0, 1.0, 2.0])
    floats = np.array([0.25], np.float32)
    assert dequantize(floats, spec) is floats  # floats pass unchanged
    assert tolerance(spec) == pytest.approx(0.1) and tolerance(None) == pytest.approx(1e-3)


def test_scores_outside_zero_to_one_and_non_ids_are_refused():
    check_probabilities(np.array([0.0, 1.0005]), "scores", None, "t")  # fp16 rounding is allowed
    with pytest.raises(Refused, match="outside \\[0, 1\\]"):
        check_probabilities(np.array([0.2, 37.0]), "scores", None, "t")
    with pytest.raises(Refused, match="outside"):
        check_probabilities(np.array([np.nan]), "scores", None, "t")
    check_class_ids(np.array([0.0, 3.0, 79.0]), "classes", None, "t", limit=80)
    with pytest.raises(Refused, match="1 values that are not class ids"):
        check_class_ids(np.array([0.0, 2.5]), "classes", None, "t")
    with pytest.raises(Refused, match="80 classes"):
        check_class_ids(np.array([80.0]), "classes", None, "t", limit=80)


def test_activations():
    logits = np.array([[0.0, np.log(3.0)]])
    np.testing.assert_allclose(activate(logits, "softmax"), [[0.25, 0.75]])
    np.testing.assert_allclose(activate(np.array([0.0, 1000.0]), "sigmoid"), [0.5, 1.0])
    assert activate(logits, "none") is logits
