"""core/reading/decoders/yolo.py: raw YOLO heads read from hand-built tensors of a 64 x 64 input (84 candidates
on the stride 8/16/32 grid), whose right answer is worked out here: v8 `[1, 4+C, N]` and v5 `[1, N, 5+C]`
layouts, split boxes + scores, NMS, the score threshold, keypoints mapped to the source image, and the
refusals of outputs that are not what the layout says."""

from __future__ import annotations

import numpy as np
import pytest

from ml_model_service.core.loading.labels import Labels
from ml_model_service.core.metadata import ModelMetadata, TensorSpec
from ml_model_service.core.reading.decoders.base import Context, DecoderConfig, Refused
from ml_model_service.core.reading.decoders.boxes import anchor_centres
from ml_model_service.core.reading.decoders.yolo import SplitYoloDecoder, YoloDecoder, recognise
from ml_model_service.core.reading.hints import ModelHints
from ml_model_service.core.reading.preprocess import Transform

SIZE = 64  # model input: 64 x 64
GRID = 8 * 8 + 4 * 4 + 2 * 2  # candidates of a stride 8/16/32 head at 64 x 64
LABELS = Labels.from_list(["a", "b", "c"])
#: A 128 x 96 source image letterboxed into 64 x 64: scale 0.5, 8 px bars above and below.
LETTERBOX = Transform(0.5, 0.5, 0.0, 8.0, SIZE, SIZE, 128, 96)

# Candidates (index in the head, cx, cy, w, h in input pixels, class, score); each sits on its own grid cell.
# 27: stride 8, row 3, col 3 (centre 28, 28); 28: col 4 (36, 28); 35: row 4, col 3 (28, 36); 70: stride 16,
# row 1, col 2 (40, 24); 5: stride 8, row 0, col 5 (44, 4).
BEST = (27, 28.0, 28.0, 20.0, 16.0, 1, 0.9)
DUPLICATE = (28, 30.0, 29.0, 20.0, 16.0, 1, 0.8)  # overlaps BEST (IoU ~0.7), same class: NMS drops it
OTHER_CLASS = (35, 28.0, 28.0, 20.0, 16.0, 2, 0.7)  # BEST's box, another class: kept unless NMS is agnostic
APART = (70, 40.0, 24.0, 12.0, 12.0, 0, 0.6)
WEAK = (5, 44.0, 4.0, 8.0, 8.0, 0, 0.04)  # under nms_score_threshold (0.05)
CANDIDATES = [BEST, DUPLICATE, OTHER_CLASS, APART, WEAK]


def source_box(cx: float, cy: float, w: float, h: float) -> list[float]:
    """A centre box in model-input pixels, as x_min, y_min, x_max, y_max in LETTERBOX's source pixels."""
    return [(cx - w / 2) / 0.5, (cy - h / 2 - 8) / 0.5, (cx + w / 2) / 0.5, (cy + h / 2 - 8) / 0.5]


def empty_boxes(per_cell: int = 1) -> np.ndarray:
    """(N, 4) boxes of empty candidates, each on its grid cell and a stride wide, as a real head's are."""
    cells = anchor_centres(SIZE, SIZE, per_cell, (8, 16, 32))
    return np.column_stack([cells[:, :2], cells[:, 2], cells[:, 2]]).astype(np.float32)


def v8_head(candidates: list = CANDIDATES, classes: int = 3, extra: int = 0) -> np.ndarray:
    """[1, 4 + classes + extra, 84]: v8/v11 layout, attributes first."""
    out = np.zeros((1, 4 + classes + extra, GRID), np.float32)
    out[0, :4] = empty_boxes().T
    for j, cx, cy, w, h, c, s in candidates:
        out[0, :4, j] = (cx, cy, w, h)
        out[0, 4 + c, j] = s
    return out


def context(
    outputs: dict[str, np.ndarray],
    labels: Labels | None = LABELS,
    config: DecoderConfig | None = None,
    hints: ModelHints | None = None,
) -> Context:
    """What `recognise` reads: the outputs of a trial run of a 64 x 64 float model, and its metadata."""
    metadata = ModelMetadata(
        "m",
        "onnx",
        inputs=[TensorSpec("images", "float32", [1, 3, SIZE, SIZE])],
        outputs=[TensorSpec(name, str(a.dtype), list(a.shape)) for name, a in outputs.items()],
    )
    return Context(metadata, outputs, config or DecoderConfig(), labels, hints or ModelHints(), (SIZE, SIZE))


def decoder_for(ctx: Context) -> YoloDecoder:
    decoder = recognise(ctx)
    assert isinstance(decoder, YoloDecoder)
    return decoder


def test_v8_head_decodes_with_per_class_nms_threshold_and_letterbox() -> None:
    """Centre boxes on the grid → source corners; NMS per class drops the duplicate; the weak one is dropped."""
    outputs = {"output0": v8_head()}
    decoder = decoder_for(context(outputs))
    assert (decoder.attrs_first, decoder.has_objectness, decoder.num_classes) == (True, False, 3)
    found = decoder.decode(outputs, LETTERBOX)
    kept = [BEST, OTHER_CLASS, APART]  # best first
    assert found.rows.tolist() == [c[0] for c in kept]
    assert found.classes.tolist() == [c[5] for c in kept] and found.classes.dtype == np.int64
    np.testing.assert_allclose(found.scores, [c[6] for c in kept], rtol=1e-6)
    np.testing.assert_allclose(found.boxes, [source_box(*c[1:5]) for c in kept], atol=1e-4)
    assert source_box(*BEST[1:5]) == [36.0, 24.0, 76.0, 56.0]  # the arithmetic above, by hand

    agnostic = decoder_for(context(outputs, config=DecoderConfig(agnostic_nms=True))).decode(outputs, LETTERBOX)
    assert agnostic.rows.tolist() == [BEST[0], APART[0]]  # the other class's box under BEST goes too
    floor = decoder_for(context(outputs, config=DecoderConfig(keep_floor=0.65))).decode(outputs, LETTERBOX)
    assert floor.rows.tolist() == [BEST[0], OTHER_CLASS[0]]
    top1 = decoder_for(context(outputs, config=DecoderConfig(max_detections=1))).decode(outputs, LETTERBOX)
    assert top1.rows.tolist() == [BEST[0]]


def test_proportional_boxes_are_read_as_fractions_of_the_input() -> None:
    """Boxes within [0, 1.5] (TFLite exports normalise them) scale to the input size: the same detections."""
    pixels = {"output0": v8_head()}
    fractions = pixels["output0"].copy()
    fractions[0, :4] /= SIZE
    expected = decoder_for(context(pixels)).decode(pixels, LETTERBOX)
    found = decoder_for(context({"output0": fractions})).decode({"output0": fractions}, LETTERBOX)
    np.testing.assert_allclose(found.boxes, expected.boxes, atol=1e-4)
    assert found.rows.tolist() == expected.rows.tolist()


def test_v5_rows_multiply_class_scores_by_objectness() -> None:
    """[1, 3 x 84, 5 + C]: three anchors per cell; a row's score is objectness times its class score."""
    out = np.zeros((1, 3 * GRID, 5 + 3), np.float32)
    out[0, :, :4] = empty_boxes(per_cell=3)
    out[0, 27, :5] = (28, 28, 20, 16, 0.8)
    out[0, 27, 5 + 2] = 0.5  # 0.8 x 0.5 = 0.4
    out[0, 36, :5] = (36, 36, 8, 8, 0.03)
    out[0, 36, 5 + 0] = 0.95  # a confident class under a low objectness: 0.0285, under the threshold
    outputs = {"output0": out}
    decoder = decoder_for(context(outputs))
    assert (decoder.attrs_first, decoder.has_objectness, decoder.num_classes) == (False, True, 3)
    found = decoder.decode(outputs, LETTERBOX)
    assert found.rows.tolist() == [27] and found.classes.tolist() == [2]
    assert found.scores[0] == pytest.approx(0.4, rel=1e-6)
    np.testing.assert_allclose(found.boxes, [source_box(28, 28, 20, 16)], atol=1e-4)


@pytest.mark.parametrize("scores_first", [False, True])
def test_split_boxes_and_scores_read_corner_boxes(scores_first: bool) -> None:
    """YOLO-NAS / PP-YOLOE: corner boxes [1, N, 4] and scores [1, N, C] or [1, C, N]: as the v8 head."""
    head = v8_head()[0]  # (7, N)
    xywh = head[:4].T
    corners = np.column_stack([xywh[:, :2] - xywh[:, 2:] / 2, xywh[:, :2] + xywh[:, 2:] / 2])[None]
    scores = head[4:] if scores_first else head[4:].T
    outputs = {"boxes": corners.astype(np.float32), "scores": scores[None].astype(np.float32)}
    decoder = recognise(context(outputs))
    assert isinstance(decoder, SplitYoloDecoder) and decoder.scores_first is scores_first
    found = decoder.decode(outputs, LETTERBOX)
    kept = [BEST, OTHER_CLASS, APART]
    assert found.rows.tolist() == [c[0] for c in kept] and found.classes.tolist() == [c[5] for c in kept]
    np.testing.assert_allclose(found.boxes, [source_box(*c[1:5]) for c in kept], atol=1e-4)


def test_pose_keypoints_follow_their_box_to_the_source_image() -> None:
    """A pose head (task and kpt_shape in the metadata): each row's keypoints x, y, score in source pixels."""
    out = v8_head([(27, 28.0, 28.0, 20.0, 16.0, 0, 0.9)], classes=1, extra=3)
    out[0, 5:8, 27] = (30.0, 30.0, 0.75)
    outputs = {"output0": out}
    hints = ModelHints(task="pose", kpt_shape=(1, 3), family="yolo")
    decoder = decoder_for(context(outputs, labels=Labels.from_list(["person"]), hints=hints))
    assert decoder.num_classes == 1 and decoder.extras.keypoints == (1, 3)
    found = decoder.decode(outputs, LETTERBOX)
    assert found.keypoints is not None and found.keypoints.shape == (1, 1, 3)
    np.testing.assert_allclose(found.keypoints[0, 0], [30 / 0.5, (30 - 8) / 0.5, 0.75], atol=1e-5)


def test_nothing_above_the_threshold_is_an_empty_result() -> None:
    outputs = {"output0": v8_head([WEAK])}
    found = decoder_for(context(outputs)).decode(outputs, LETTERBOX)
    assert found.boxes.shape == (0, 4) and found.scores.shape == (0,) and found.classes.dtype == np.int64


def test_outputs_without_a_yolo_grid_or_batch_of_one_are_not_yolo() -> None:
    """`recognise` returns None (another layout may read them) for counts off the grid and batches of two."""
    assert recognise(context({"output0": np.zeros((1, 7, 100), np.float32)})) is None
    assert recognise(context({"output0": np.repeat(v8_head(), 2, axis=0)})) is None


def test_refusals_name_the_tensor_and_the_option_that_helps() -> None:
    """Outputs with YOLO's structure that fail its checks are refused, not guessed at."""
    logits = v8_head()
    logits[0, 4 + 1, 27] = 3.2  # a logit, not a probability
    with pytest.raises(Refused, match=r"class scores \(values 4-6 of each row of 'output0'\) range .* 3\.2") as exc:
        recognise(context({"output0": logits}))
    assert exc.value.option is None

    # [1, 5 + C, N] with C labels: the fifth value is an OBB angle or v5 objectness, and nothing says which
    with pytest.raises(Refused, match=r"one value more than a box and the 3 labelled classes") as exc:
        recognise(context({"output0": v8_head(extra=1)}))
    assert exc.value.option == "task"

    # one box per cell with objectness (YOLOX's layout) and no metadata: how to feed it is unknown
    rows = np.zeros((1, GRID, 8), np.float32)
    rows[0, :, :4] = empty_boxes()
    with pytest.raises(Refused, match="YOLOX") as exc:
        recognise(context({"output0": rows}))
    assert "yolo_format" in str(exc.value.option)
    assert recognise(context({"output0": rows}, config=DecoderConfig(yolo_format="v5"))) is not None

    with pytest.raises(Refused, match=r"7 values per candidate after the box .* the labels name 2") as exc:
        recognise(context({"output0": v8_head(classes=7)}, labels=Labels.from_list(["a", "b"])))
    assert exc.value.option == "label_path (one name per class)"

    off_grid = v8_head()
    off_grid[0, :2] = off_grid[0, :2, ::-1]  # every centre on another candidate's cell
    with pytest.raises(Refused, match="do not follow the YOLO grid of a 64 x 64 input"):
        recognise(context({"output0": off_grid}))
