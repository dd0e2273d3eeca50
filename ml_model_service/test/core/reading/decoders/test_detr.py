"""core/reading/decoders/detr.py: DETR-family outputs built here with known logits: normalised centre/size
boxes mapped to the source image, the score activation each family takes (softmax with a no-object class,
sigmoid with one box carrying several classes, probabilities as they are), the single-tensor RT-DETR layout,
and the refusals of logits nothing explains and of boxes that are not DETR's."""

from __future__ import annotations

import numpy as np
import pytest

from ml_model_service.core.loading.labels import Labels
from ml_model_service.core.metadata import ModelMetadata, TensorSpec
from ml_model_service.core.reading.decoders.base import Context, DecoderConfig, Refused
from ml_model_service.core.reading.decoders.detr import DetrDecoder, recognise
from ml_model_service.core.reading.hints import ModelHints
from ml_model_service.core.reading.preprocess import Transform

LABELS = Labels.from_list(["cat", "dog", "bird"])
#: A 200 x 100 source image stretched to the 64 x 64 input.
STRETCH = Transform(64 / 200, 64 / 100, 0.0, 0.0, 64, 64, 200, 100)
#: Normalised centre/size boxes of five queries.
QUERY_BOXES = np.array(
    [[0.5, 0.5, 0.2, 0.4], [0.25, 0.25, 0.1, 0.1], [0.7, 0.6, 0.2, 0.2], [0.1, 0.9, 0.2, 0.2], [0.5, 0.5, 1.0, 1.0]],
    np.float32,
)


def corners(cx: float, cy: float, w: float, h: float) -> list[float]:
    """A normalised centre box as corners in STRETCH's source pixels (200 x 100)."""
    return [(cx - w / 2) * 200, (cy - h / 2) * 100, (cx + w / 2) * 200, (cy + h / 2) * 100]


def context(
    outputs: dict[str, np.ndarray],
    labels: Labels | None = LABELS,
    hints: ModelHints | None = None,
    config: DecoderConfig | None = None,
) -> Context:
    metadata = ModelMetadata(
        "m",
        "onnx",
        inputs=[TensorSpec("pixel_values", "float32", [1, 3, 64, 64])],
        outputs=[TensorSpec(name, str(a.dtype), list(a.shape)) for name, a in outputs.items()],
    )
    return Context(metadata, outputs, config or DecoderConfig(), labels, hints or ModelHints(), (64, 64))


def detr(ctx: Context) -> DetrDecoder:
    decoder = recognise(ctx)
    assert isinstance(decoder, DetrDecoder)
    return decoder


def test_softmax_logits_with_a_no_object_class() -> None:
    """Hugging Face DETR: `logits` [1, Q, C + 1] (one score more than the labels: softmax, the last class is
    no-object), one class per query; a query that is mostly no-object scores under the threshold."""
    logits = np.zeros((1, 5, 4), np.float32)
    logits[0, 0] = (5, 0, 0, 0)
    logits[0, 1] = (0, 0, 0, 6)  # no-object: 1 / (3 + e^6) for each real class
    logits[0, 2] = (0, 1, 3, 0)
    logits[0, 3] = (0, 0, 0, 9)
    logits[0, 4] = (0, 0, 0, 9)
    outputs = {"pred_boxes": QUERY_BOXES[None], "logits": logits}
    decoder = detr(context(outputs))
    assert (decoder.activation, decoder.no_object, decoder.box_format) == ("softmax", True, "cxcywh")
    found = decoder.decode(outputs, STRETCH)
    assert found.rows.tolist() == [0, 2] and found.classes.tolist() == [0, 2]
    expected = [np.exp(5) / (np.exp(5) + 3), np.exp(3) / (np.exp(3) + np.exp(1) + 2)]  # 0.980, 0.831
    np.testing.assert_allclose(found.scores, expected, rtol=1e-5)
    np.testing.assert_allclose(found.boxes, [corners(*QUERY_BOXES[0]), corners(*QUERY_BOXES[2])], atol=1e-3)
    assert corners(*QUERY_BOXES[0]) == pytest.approx([80, 30, 120, 70])


def test_sigmoid_logits_score_each_class_on_its_own() -> None:
    """RF-DETR (`dets` / `labels`): sigmoid per class, so one query over the threshold in two classes gives two
    detections of the same box (as the frameworks' post-processing keeps them)."""
    labels = np.full((1, 5, 3), -6.0, np.float32)  # sigmoid(-6) = 0.0025: nothing
    labels[0, 3] = (2.0, 1.5, -6.0)
    outputs = {"dets": QUERY_BOXES[None], "labels": labels}
    decoder = detr(context(outputs))
    assert (decoder.activation, decoder.no_object) == ("sigmoid", False)
    found = decoder.decode(outputs, STRETCH)
    assert found.rows.tolist() == [3, 3] and found.classes.tolist() == [0, 1]
    np.testing.assert_allclose(found.scores, 1 / (1 + np.exp([-2.0, -1.5])), rtol=1e-6)
    np.testing.assert_allclose(found.boxes, [corners(*QUERY_BOXES[3])] * 2, atol=1e-3)
    np.testing.assert_allclose(found.boxes[0], [0, 80, 40, 100], atol=1e-3)  # by hand


def test_probabilities_are_read_as_they_are_and_max_detections_keeps_the_best() -> None:
    scores = np.zeros((1, 5, 3), np.float32)
    scores[0, :, 1] = (0.2, 0.9, 0.5, 0.04, 0.7)
    outputs = {"pred_boxes": QUERY_BOXES[None], "logits": scores}
    decoder = detr(context(outputs, config=DecoderConfig(max_detections=3)))
    assert decoder.activation == "none"
    found = decoder.decode(outputs, STRETCH)
    assert found.rows.tolist() == [1, 4, 2] and found.scores.tolist() == pytest.approx([0.9, 0.7, 0.5])


def test_single_tensor_rtdetr_rows() -> None:
    """Older Ultralytics RT-DETR: one [1, Q, 4 + C] tensor of boxes and sigmoid scores."""
    rows = np.zeros((1, 5, 7), np.float32)
    rows[0, :, :4] = QUERY_BOXES
    rows[0, 2, 4 + 2] = 0.85
    outputs = {"output0": rows}
    decoder = detr(context(outputs, hints=ModelHints(family="rtdetr")))
    assert decoder.scores is None and decoder.activation == "none"
    found = decoder.decode(outputs, STRETCH)
    assert found.rows.tolist() == [2] and found.classes.tolist() == [2]
    np.testing.assert_allclose(found.boxes, [corners(*QUERY_BOXES[2])], atol=1e-3)


def test_nothing_above_the_threshold_is_an_empty_result() -> None:
    outputs = {"pred_boxes": QUERY_BOXES[None], "logits": np.full((1, 5, 4), -3.0, np.float32)}
    found = detr(context(outputs, config=DecoderConfig(score_activation="sigmoid"))).decode(outputs, STRETCH)
    assert found.boxes.shape == (0, 4) and found.scores.shape == (0,) and found.classes.dtype == np.int64


def test_logits_nothing_explains_and_anchor_encodings_are_refused() -> None:
    """Logits with no labels or metadata to tell sigmoid from softmax: refused, naming score_activation (which,
    set, reads them); boxes outside [0, 1] beside logits are anchor encodings: refused, no option helps."""
    logits = np.random.default_rng(0).normal(0, 3, (1, 5, 6)).astype(np.float32)
    outputs = {"pred_boxes": QUERY_BOXES[None], "pred_logits": logits}
    with pytest.raises(Refused, match=r"class scores 'pred_logits' are logits \(6 per query\)") as exc:
        recognise(context(outputs, labels=None))
    assert exc.value.option == "score_activation"
    forced = detr(context(outputs, labels=None, config=DecoderConfig(score_activation="softmax")))
    assert (forced.activation, forced.no_object) == ("softmax", True)  # DETR's softmax: the last is no-object

    anchors = {"pred_boxes": (QUERY_BOXES * 40)[None], "pred_logits": logits}
    with pytest.raises(Refused, match=r"boxes in 'pred_boxes' range from .* anchor-relative encodings") as exc:
        recognise(context(anchors))
    assert exc.value.option is None and "Model tensors: input pixel_values" in str(exc.value)


def test_models_with_a_size_input_are_left_to_the_detector() -> None:
    """Official RT-DETR/D-FINE exports (an orig_target_sizes input) give decoded boxes: not read as DETR."""
    outputs = {"pred_boxes": QUERY_BOXES[None], "logits": np.zeros((1, 5, 4), np.float32)}
    ctx = context(outputs)
    ctx.size_input = True
    assert recognise(ctx) is None
