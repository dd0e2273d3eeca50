"""core/reading/decoders/ssd.py: SSD-style boxes + scores (+ classes, + count) tensors. The bundled SSD
MobileNet V2 (ONNX, TFLite detection post-processing) runs on a real photograph and its outputs are read by
hand and by the decoder: roles from the TFLite output order, y/x box order, the count tensor, refusals of
outputs that are not scores or class ids; torchvision's 2-D corner boxes are built here."""

from __future__ import annotations

import numpy as np
import pytest

from ml_model_service.core.loading.labels import Labels
from ml_model_service.core.loading.model import Model
from ml_model_service.core.metadata import ModelMetadata, TensorSpec
from ml_model_service.core.reading.decoders.base import Context, DecoderConfig, Refused
from ml_model_service.core.reading.decoders.ssd import TFLITE_BOX_ORDER, SsdDecoder, recognise
from ml_model_service.core.reading.preprocess import InputLayout, PreprocessConfig, RoleError, Transform, preprocess
from ml_model_service_dev.harness.photos import photo

BOXES, CLASSES, SCORES, COUNT = (
    "TFLite_Detection_PostProcess",
    "TFLite_Detection_PostProcess:1",
    "TFLite_Detection_PostProcess:2",
    "TFLite_Detection_PostProcess:3",
)
#: The model, its outputs for one photograph and the transform back to the photograph's pixels.
SsdRun = tuple[Model, dict[str, np.ndarray], Transform]


@pytest.fixture(scope="module")
def ssd_run() -> SsdRun:
    """The bundled SSD on onnxruntime, its outputs for the motorcycle photograph (741 x 500, stretched to
    300 x 300) and the transform back."""
    model = Model("ssd_mobilenet_v2_coco", backend="onnx", providers=["cpu"])
    layout = InputLayout.from_spec(model.metadata.inputs[0])
    tensor, transform = preprocess(photo("motorcycle"), layout, PreprocessConfig())
    return model, model.infer({layout.name: tensor}), transform


def ssd_decoder(model: Model, outputs: dict[str, np.ndarray], config: DecoderConfig | None = None) -> SsdDecoder:
    ctx = Context(model.metadata, outputs, config or DecoderConfig(), model.labels, input_hw=(300, 300))
    decoder = recognise(ctx)
    assert isinstance(decoder, SsdDecoder)
    return decoder


def test_tflite_postprocess_outputs_decode_to_source_pixels(ssd_run: SsdRun) -> None:
    """Roles in TFLite's order (boxes, classes, scores, count); boxes y_min, x_min, y_max, x_max as fractions of
    the input, mapped to the 741 x 500 photograph; the motorcycle found at 0.98."""
    model, outputs, transform = ssd_run
    decoder = ssd_decoder(model, outputs)
    assert decoder.tensors == {"location": BOXES, "category": CLASSES, "score": SCORES, "count": COUNT}
    assert decoder.box_order == TFLITE_BOX_ORDER
    found = decoder.decode(outputs, transform)
    count = int(outputs[COUNT][0])
    assert len(found.scores) == count and 0 < count <= 20
    np.testing.assert_array_equal(found.scores, outputs[SCORES][0, :count].astype(np.float64))
    np.testing.assert_array_equal(found.classes, outputs[CLASSES][0, :count].astype(np.int64))
    y0, x0, y1, x1 = outputs[BOXES][0, 0].astype(np.float64)
    expected = np.clip([x0 * 741, y0 * 500, x1 * 741, y1 * 500], 0, [741, 500, 741, 500])
    np.testing.assert_allclose(found.boxes[0], expected, atol=1e-3)
    assert model.labels.name(int(found.classes[0])) == "motorcycle" and found.scores[0] > 0.9
    assert found.boxes[0, 2] - found.boxes[0, 0] > 741 / 2  # the motorcycle fills most of the picture

    # box_order set: x_min, y_min, x_max, y_max read from those positions instead
    as_xyxy = ssd_decoder(model, outputs, DecoderConfig(box_order=(0, 1, 2, 3))).decode(outputs, transform)
    np.testing.assert_allclose(as_xyxy.boxes[0], np.clip([y0 * 741, x0 * 500, y1 * 741, x1 * 500], 0, None), atol=1e-3)


def test_the_count_tensor_bounds_the_rows_read(ssd_run: SsdRun) -> None:
    """Rows past `count` are padding: not read; a count of 0 is an empty result."""
    model, outputs, transform = ssd_run
    decoder = ssd_decoder(model, outputs)
    two = decoder.decode({**outputs, COUNT: np.array([2.0], np.float32)}, transform)
    assert len(two.scores) == 2 and two.classes.tolist() == outputs[CLASSES][0, :2].astype(int).tolist()
    none = decoder.decode({**outputs, COUNT: np.array([0.0], np.float32)}, transform)
    assert none.boxes.shape == (0, 4) and none.scores.shape == (0,) and none.classes.dtype == np.int64


def test_scores_and_class_ids_that_are_not_are_refused(ssd_run: SsdRun) -> None:
    """Percentages are not rescaled and fractional class ids not rounded: the tensor is named, and the one
    option that can help (remap_output_names)."""
    model, outputs, _ = ssd_run
    percent = {**outputs, SCORES: outputs[SCORES] * 100}
    with pytest.raises(Refused, match=rf"scores in '{SCORES}' range from .* outside \[0, 1\]") as exc:
        ssd_decoder(model, percent)
    assert exc.value.option == "remap_output_names" and "Model tensors: input normalized_input_image_tensor" in str(
        exc.value
    )
    fractional = {**outputs, CLASSES: outputs[CLASSES] + 0.5}
    with pytest.raises(Refused, match=rf"classes in '{CLASSES}' hold \d+ values that are not class ids"):
        ssd_decoder(model, fractional)
    # the scores read as classes and the classes as scores: class ids up to 89 are no scores
    swapped = DecoderConfig(remap_output_names={CLASSES: "score", SCORES: "category"})
    with pytest.raises(Refused, match=rf"scores in '{CLASSES}'"):
        ssd_decoder(model, outputs, swapped)


def hand_built(outputs: dict[str, np.ndarray]) -> Context:
    metadata = ModelMetadata(
        "m",
        "onnx",
        inputs=[TensorSpec("image", "float32", [3, 100, 100])],
        outputs=[TensorSpec(name, str(a.dtype), list(a.shape)) for name, a in outputs.items()],
    )
    return Context(metadata, outputs, DecoderConfig(box_order=TFLITE_BOX_ORDER), Labels.from_list(["x", "y"]))


def test_torchvision_2d_boxes_are_corners_in_input_pixels() -> None:
    """[N, 4] boxes beside [N] labels and scores (torchvision): x_min, y_min, x_max, y_max in input pixels,
    even where box_order names TFLite's order."""
    outputs: dict[str, np.ndarray] = {
        "boxes": np.array([[10, 20, 50, 60], [0, 0, 90, 40]], np.float32),
        "labels": np.array([1, 0], np.int64),
        "scores": np.array([0.8, 0.3], np.float32),
    }
    decoder = recognise(hand_built(outputs))
    assert isinstance(decoder, SsdDecoder) and decoder.box_order == (0, 1, 2, 3)
    stretch = Transform(0.5, 1.0, 0.0, 0.0, 100, 100, 200, 100)  # a 200 x 100 image stretched to 100 x 100
    found = decoder.decode(outputs, stretch)
    np.testing.assert_allclose(found.boxes, [[20, 20, 100, 60], [0, 0, 180, 40]])
    assert found.classes.tolist() == [1, 0] and found.scores.tolist() == pytest.approx([0.8, 0.3])


def test_layouts_it_cannot_read_are_refused_or_left_to_others() -> None:
    """Boxes with no per-box scores: refused (anchor outputs need decoding the model lacks); one box tensor
    alone: not this layout; a box_order that is no permutation: refused."""
    anchors = {"boxes": np.zeros((1, 50, 4), np.float32), "raw": np.zeros((1, 896, 16), np.float32)}
    with pytest.raises(Refused, match=r"found box tensor 'boxes' but no score tensor of shape \[1, 50\]"):
        recognise(hand_built(anchors))
    assert recognise(hand_built({"out": np.zeros((1, 50, 4), np.float32)})) is None
    outputs = {"boxes": np.zeros((1, 5, 4), np.float32), "scores": np.zeros((1, 5), np.float32)}
    ctx = hand_built(outputs)
    ctx.config = DecoderConfig(box_order=(0, 1, 1, 3))
    with pytest.raises(RoleError, match=r"box_order \[0, 1, 1, 3\] is not a permutation of 0..3"):
        recognise(ctx)
