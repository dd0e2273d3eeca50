"""Classifier decoding (core/reading/decoders/classifier.py): probabilities as given, logits through softmax (or
sigmoid for one value), a leading background score left out."""

from __future__ import annotations

import numpy as np
import pytest

from ml_model_service.core.reading.decoders.classifier import ClassifierDecoder


def test_probabilities_logits_and_a_background_score():
    plain = ClassifierDecoder("p", None, 0)
    np.testing.assert_allclose(plain.decode({"p": np.array([[0.2, 0.8]])}), [0.2, 0.8])
    logits = np.array([[1.0, 2.0, 3.0]])
    expected = np.exp(logits[0]) / np.exp(logits[0]).sum()
    np.testing.assert_allclose(plain.decode({"p": logits}), expected)
    assert plain.decode({"p": np.array([[2.0]])}) == pytest.approx([1 / (1 + np.exp(-2.0))])
    background = ClassifierDecoder("p", None, 1)
    outputs = {"p": np.array([[0.5, 0.3, 0.2]])}
    np.testing.assert_allclose(background.decode(outputs), [0.3, 0.2])
    assert background.score_count(outputs) == 2 and plain.score_count(outputs) == 3
