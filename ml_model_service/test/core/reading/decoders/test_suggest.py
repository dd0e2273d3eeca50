"""core/reading/decoders/suggest.py: the readings a refused model's output shapes allow, and which of them give a
decoder on the trial run."""

from __future__ import annotations

import numpy as np

from ml_model_service.core.metadata import ModelMetadata, TensorSpec
from ml_model_service.core.reading.decoders.base import Context, DecoderConfig
from ml_model_service.core.reading.decoders.registry import RECOGNISERS
from ml_model_service.core.reading.decoders.suggest import YOLOX, Suggestion, advice, candidates, working


def context(output: np.ndarray, input_hw: tuple[int, int] = (640, 640)) -> Context:
    spec = TensorSpec("out", "float32", list(output.shape))
    metadata = ModelMetadata("m", "onnx", inputs=[TensorSpec("images", "float32", [1, 3, *input_hw])], outputs=[spec])
    return Context(metadata, {"out": output}, DecoderConfig(), None, input_hw=input_hw)


def reads(found: list[Suggestion]) -> list[dict]:
    return [dict(s.values) for s in found]


def test_a_class_map_output_may_be_nchw_or_nhwc_and_a_one_channel_one_a_mask_of_logits():
    assert reads(candidates(context(np.zeros((1, 21, 64, 64), np.float32)))) == [
        {"model_type": "segmenter", "segmentation_layout": "nchw"},
        {"model_type": "segmenter", "segmentation_layout": "nhwc"},
    ]
    one = reads(candidates(context(np.zeros((1, 1, 64, 64), np.float32))))
    assert {"model_type": "segmenter", "score_activation": "sigmoid"} in one


def test_rows_off_the_grid_are_read_as_end_to_end_layouts_by_their_width():
    six = reads(candidates(context(np.zeros((1, 300, 6), np.float32))))
    assert {"model_type": "end2end", "box_format": "xyxy", "task": "detect"} in six
    assert any(s.get("box_units") == "proportional" for s in six)  # RT-DETR's normalised rows
    seven = reads(candidates(context(np.zeros((1, 300, 7), np.float32))))
    assert {"model_type": "end2end", "task": "obb"} in seven
    pose = reads(candidates(context(np.zeros((1, 300, 6 + 17 * 3), np.float32))))
    assert {"model_type": "end2end", "box_format": "xyxy", "task": "pose", "keypoint_shape": (17, 3)} in pose
    assert candidates(context(np.zeros((2, 300, 6), np.float32))) == []  # a batch of two: nothing to offer


def test_a_grid_head_without_labels_may_be_obb_pose_or_yolox():
    yolox = candidates(context(np.zeros((1, 8400, 85), np.float32)))
    assert YOLOX in yolox and {"task": "obb"} in reads(yolox)
    assert {"task": "pose", "keypoint_shape": (17, 3)} in reads(candidates(context(np.zeros((1, 56, 8400)))))


def test_only_the_readings_that_give_a_decoder_are_offered():
    rows = np.zeros((1, 300, 6), np.float32)
    rows[0, :3] = [[10, 10, 100, 100, 0.9, 1], [200, 200, 300, 320, 0.8, 2], [50, 60, 70, 90, 0.3, 0]]
    found = working(context(rows), RECOGNISERS)
    assert found and all(dict(s.values)["model_type"] == "end2end" for s in found)
    assert advice(found).startswith("Options that read it") and "model_type=end2end" in advice(found)
    assert advice([]) == "No option can help."


def test_a_suggestion_is_written_as_the_cli_takes_it():
    s = Suggestion((("task", "pose"), ("keypoint_shape", (17, 3))), "a pose head")
    assert s.text() == "[task=pose keypoint_shape=17,3] for a pose head"
