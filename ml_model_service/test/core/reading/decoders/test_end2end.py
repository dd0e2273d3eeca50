"""core/reading/decoders/end2end.py: `[1, N, 6(+extra)]` rows already past NMS, built here: YOLO26 / YOLOv10
corner boxes in input pixels (no NMS of its own: overlapping rows stay), Ultralytics RT-DETR normalised centre
boxes, oriented boxes (OBB rows), and the refusals of rows whose box format, class ids, scores or width the
model does not explain."""

from __future__ import annotations

import numpy as np
import pytest

from ml_model_service.core.loading.labels import Labels
from ml_model_service.core.metadata import ModelMetadata, TensorSpec
from ml_model_service.core.reading.decoders.base import Context, DecoderConfig, Refused
from ml_model_service.core.reading.decoders.end2end import EndToEndDecoder, recognise
from ml_model_service.core.reading.hints import ModelHints
from ml_model_service.core.reading.preprocess import Transform

LABELS = Labels.from_list(["person", "car", "dog"])
YOLO26 = ModelHints(end2end=True, family="yolo", task="detect")
#: A 128 x 96 source image letterboxed into 64 x 64: scale 0.5, 8 px bars above and below.
LETTERBOX = Transform(0.5, 0.5, 0.0, 8.0, 64, 64, 128, 96)


def context(
    rows: np.ndarray,
    hints: ModelHints | None = YOLO26,
    labels: Labels | None = LABELS,
    config: DecoderConfig | None = None,
) -> Context:
    metadata = ModelMetadata(
        "m",
        "onnx",
        inputs=[TensorSpec("images", "float32", [1, 3, 64, 64])],
        outputs=[TensorSpec("output0", "float32", list(rows.shape))],
    )
    return Context(
        metadata, {"output0": rows}, config or DecoderConfig(), labels, hints or ModelHints(), input_hw=(64, 64)
    )


def end2end(ctx: Context) -> EndToEndDecoder:
    decoder = recognise(ctx)
    assert isinstance(decoder, EndToEndDecoder)
    return decoder


def yolo26_rows() -> np.ndarray:
    """[1, 10, 6] rows x_min, y_min, x_max, y_max (input pixels), score, class; zero rows pad to max_det."""
    rows = np.zeros((1, 10, 6), np.float32)
    rows[0, 0] = (18, 20, 38, 36, 0.6, 1)
    rows[0, 1] = (20, 21, 40, 37, 0.9, 1)  # overlaps row 0 in the same class: kept (the model ran NMS)
    rows[0, 2] = (0, 8, 64, 56, 0.03, 0)  # under nms_score_threshold
    rows[0, 3] = (40, 30, 60, 50, 0.75, 2)
    return rows


def test_yolo26_corner_rows_are_kept_as_they_are_best_first() -> None:
    rows = yolo26_rows()
    decoder = end2end(context(rows))
    assert (decoder.box_format, decoder.units, decoder.num_classes) == ("xyxy", "auto", 3)
    found = decoder.decode({"output0": rows}, LETTERBOX)
    assert found.rows.tolist() == [1, 3, 0] and found.classes.tolist() == [1, 2, 1]
    np.testing.assert_allclose(found.scores, [0.9, 0.75, 0.6], rtol=1e-6)
    # source = (input - pad) / 0.5
    np.testing.assert_allclose(found.boxes, [[40, 26, 80, 58], [80, 44, 120, 84], [36, 24, 76, 56]], atol=1e-4)
    top2 = end2end(context(rows, config=DecoderConfig(max_detections=2))).decode({"output0": rows}, LETTERBOX)
    assert top2.rows.tolist() == [1, 3]


def test_rtdetr_rows_are_normalised_centre_boxes() -> None:
    """Ultralytics RT-DETR: cx, cy, w, h as fractions of the input, whatever their values."""
    rows = np.zeros((1, 4, 6), np.float32)
    rows[0, 0] = (0.5, 0.5, 0.2, 0.4, 0.8, 2)
    stretch = Transform(64 / 200, 64 / 100, 0.0, 0.0, 64, 64, 200, 100)  # a 200 x 100 image stretched
    decoder = end2end(context(rows, hints=ModelHints(family="rtdetr")))
    assert (decoder.box_format, decoder.units) == ("cxcywh", "proportional")
    found = decoder.decode({"output0": rows}, stretch)
    assert found.classes.tolist() == [2] and found.scores.tolist() == pytest.approx([0.8])
    np.testing.assert_allclose(found.boxes, [[80, 30, 120, 70]], atol=1e-3)


def test_oriented_rows_give_rotated_boxes_and_their_envelopes() -> None:
    """OBB rows: cx, cy, w, h, score, class, angle (radians); a box turned a quarter turn has an envelope of
    its height by its width, both in source pixels."""
    rows = np.zeros((1, 3, 7), np.float32)
    rows[0, 0] = (32, 32, 20, 10, 0.9, 1, np.pi / 2)
    decoder = end2end(context(rows, hints=ModelHints(end2end=True, family="yolo", task="obb")))
    assert decoder.oriented and decoder.box_format == "cxcywh"
    found = decoder.decode({"output0": rows}, LETTERBOX)
    assert found.rotated is not None and found.rotated.shape == (1, 5)
    cx, cy, w, h, theta = found.rotated[0]
    assert (cx, cy, w, h) == pytest.approx((64, 48, 40, 20), abs=1e-4)
    assert abs(np.cos(theta)) == pytest.approx(0, abs=1e-6)  # still across, in the source's axes
    np.testing.assert_allclose(found.boxes, [[54, 28, 74, 68]], atol=1e-4)


def test_all_rows_under_the_threshold_is_an_empty_result() -> None:
    rows = np.zeros((1, 10, 6), np.float32)
    found = end2end(context(rows)).decode({"output0": rows}, LETTERBOX)
    assert found.boxes.shape == (0, 4) and found.scores.shape == (0,) and found.classes.dtype == np.int64


def test_rows_the_model_does_not_explain_are_refused() -> None:
    """Rows without metadata: the box format is asked for (box_format); fractional or unknown class ids, scores
    out of [0, 1] and rows wider than 6 + extra are refused, naming the row values."""
    plain = yolo26_rows()
    with pytest.raises(Refused, match=r"does not say how its boxes are written") as exc:
        recognise(context(plain, hints=None))
    assert exc.value.option == "box_format"
    assert end2end(context(plain, hints=None, config=DecoderConfig(box_format="xyxy"))).box_format == "xyxy"

    fractional = yolo26_rows()
    fractional[0, 3, 5] = 1.5
    with pytest.raises(Refused, match=r"class ids \(value 5 of each row of 'output0'\) hold 1 values"):
        recognise(context(fractional))
    unknown = yolo26_rows()
    unknown[0, 3, 5] = 3  # three labels: ids 0-2
    with pytest.raises(Refused, match=r"3 classes"):
        recognise(context(unknown))
    percent = yolo26_rows()
    percent[0, 1, 4] = 90
    with pytest.raises(Refused, match=r"scores \(value 4 of each row of 'output0'\) range from 0 to 90"):
        recognise(context(percent))
    with pytest.raises(Refused, match=r"has 7 values per row; an end-to-end output has 6") as exc:
        recognise(context(np.zeros((1, 10, 7), np.float32)))
    assert exc.value.option is None


def test_models_that_say_they_are_not_end_to_end_are_left_to_others() -> None:
    """end2end: False in the metadata (and no NMS in the export), or a batch of two: not this layout."""
    assert recognise(context(yolo26_rows(), hints=ModelHints(end2end=False, family="yolo"))) is None
    assert recognise(context(np.repeat(yolo26_rows(), 2, axis=0))) is None
