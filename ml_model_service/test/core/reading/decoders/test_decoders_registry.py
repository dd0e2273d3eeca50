"""Choosing a decoder (core/reading/decoders/registry.py): option values checked, the layouts tried in order on a
real model's metadata and trial outputs, a forced model_type, and a model that fits no role refused with what was
tried."""

from __future__ import annotations

import numpy as np
import pytest

from ml_model_service.core.loading.model import Model
from ml_model_service.core.reading.decoders.base import DecoderConfig
from ml_model_service.core.reading.decoders.classifier import ClassifierDecoder
from ml_model_service.core.reading.decoders.registry import NOT_FOUND, RECOGNISERS, check_config, find_decoder
from ml_model_service.core.reading.preprocess import RoleError

from conftest import constant_model


def test_option_values_outside_their_choices_are_refused():
    check_config(DecoderConfig())
    with pytest.raises(RoleError, match="box_format 'xyxyz' is not one of"):
        check_config(DecoderConfig(box_format="xyxyz"))
    with pytest.raises(RoleError, match="model_type 'nope' is not one of"):
        find_decoder(None, {}, DecoderConfig(model_type="nope"), None)  # refused before anything is read


def test_a_score_vector_is_found_as_a_classifier_and_a_forced_type_is_the_only_one_tried(tmp_path):
    probs = np.array([[0.1, 0.7, 0.2]], np.float32)
    model = Model(str(constant_model(tmp_path / "c.onnx", [1, 3, 8, 8], {"probability": probs})), providers=["cpu"])
    outputs = {"probability": probs}
    decoder = find_decoder(model.metadata, outputs, DecoderConfig(), None)
    assert isinstance(decoder, ClassifierDecoder) and decoder.role == "classifier"
    np.testing.assert_allclose(decoder.decode(outputs), [0.1, 0.7, 0.2], atol=1e-6)
    with pytest.raises(RoleError, match=r"fits no vision role") as err:
        find_decoder(model.metadata, outputs, DecoderConfig(model_type="yolo"), None)
    assert "yolo: " + NOT_FOUND["yolo"] in str(err.value) and "classifier: " not in str(err.value)


def test_a_model_that_fits_no_role_names_every_layout_tried(tmp_path):
    pair = {"a": np.zeros((1, 3, 5), np.float32), "b": np.zeros((1, 7), np.float32)}
    model = Model(str(constant_model(tmp_path / "none.onnx", [1, 3, 8, 8], pair)), providers=["cpu"])
    with pytest.raises(RoleError) as err:
        find_decoder(model.metadata, pair, DecoderConfig(), None)
    text = str(err.value)
    assert "Trial-run outputs: a: float32 [1, 3, 5]; b: float32 [1, 7]" in text
    for role in RECOGNISERS:
        assert f"{role}: {NOT_FOUND[role]}" in text
