"""core/reading/preprocess.py: the one-pass input tensor (letterbox, normalisation, layout), Hugging Face's resize
rule, the value range and padding corner, open input layouts."""

from __future__ import annotations

import numpy as np
import pytest

from ml_model_service.core.metadata import TensorSpec
from ml_model_service.core.reading.preprocess import InputLayout, PreprocessConfig, edge_size, preprocess


@pytest.mark.parametrize(
    ("size", "edges", "want"),
    [
        ((426, 640), (800, 1333), (800, 1201)),  # the shorter side to 800
        ((500, 741), (800, 1333), (800, 1185)),
        ((300, 1000), (800, 1333), (400, 1333)),  # the longer side bound: HF's rounding (raw 399.9 -> 400)
        ((1000, 300), (800, 0), (2666, 800)),  # no bound: portrait
        ((800, 900), (800, 1333), (800, 900)),  # already there
    ],
)
def test_edge_size_is_hugging_faces_rule(size, edges, want):
    assert edge_size(*size, *edges) == want


def test_byte_range_and_top_left_letterbox_feed_yolox_as_its_preproc_does():
    """YOLOX's preproc: BGR 0-255 values, the resized image at the top left of a 114 canvas."""
    layout = InputLayout("images", "float32", True, 64, 64, 3)
    rgb = np.zeros((32, 64, 3), np.uint8)
    rgb[..., 0] = 200  # red
    pre = PreprocessConfig(letterbox=True, pad_corner="top_left", input_range="byte", bgr=True)
    tensor, transform = preprocess(rgb, layout, pre)
    assert (transform.pad_x, transform.pad_y) == (0, 0)
    assert np.all(tensor[0, 2, :32] == 200) and np.all(tensor[0, 0, :32] == 0)  # BGR: red is the last channel
    assert np.all(tensor[0, :, 32:] == 114)  # the bars: below the image, in 0-255
    centred, _ = preprocess(rgb, layout, PreprocessConfig(letterbox=True))
    assert centred[0, 0, 16, 0] == pytest.approx(200 / 255) and centred[0, 0, 0, 0] == pytest.approx(114 / 255)


def test_open_input_tensors_with_all_axes_open_are_nchw():
    layout = InputLayout.from_spec(TensorSpec("pixel_values", "float32", [-1, -1, -1, -1]))
    assert layout.nchw and layout.channels == 3


def test_preprocess_nchw_values():
    layout = InputLayout.from_spec(type("S", (), {"name": "x", "data_type": "float32", "shape": [1, 3, 4, 6]})())
    rgb = np.zeros((8, 12, 3), np.uint8)
    rgb[..., 0] = 255
    tensor, transform = preprocess(rgb, layout, PreprocessConfig(mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5)))
    assert tensor.shape == (1, 3, 4, 6) and tensor.dtype == np.float32
    assert np.allclose(tensor[0, 0], 1.0) and np.allclose(tensor[0, 1:], -1.0)
    assert transform.scale_x == 0.5 and transform.scale_y == 0.5


@pytest.mark.parametrize("dtype", ["float32", "float16", "uint8", "int8"])
@pytest.mark.parametrize("shape", [[1, 3, 64, 64], [1, 64, 64, 3], [3, 64, 64], [1, 1, 64, 64]])
@pytest.mark.parametrize("norm", [((0, 0, 0), (1, 1, 1), False), ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225), True)])
def test_input_tensor_is_the_padded_canvas_normalised(dtype, shape, norm):
    """The one-pass tensor (letterbox bars, scaling, layout, BGR swap) against OpenCV's padded uint8 canvas
    normalised in float64, the way it was made before (copyMakeBorder, then blobFromImage)."""
    import cv2

    mean, std, bgr = norm
    layout = InputLayout.from_spec(type("S", (), {"name": "x", "data_type": dtype, "shape": shape})())
    rgb = np.random.default_rng(1).integers(0, 256, (30, 50, 3), dtype=np.uint8)
    config = PreprocessConfig(mean=mean, std=std, bgr=bgr, letterbox=True)
    tensor, transform = preprocess(rgb, layout, config)
    image = cv2.resize(rgb, (64, round(30 * 64 / 50)), interpolation=cv2.INTER_LINEAR)
    bottom = 64 - image.shape[0] - int(transform.pad_y)
    canvas = cv2.copyMakeBorder(image, int(transform.pad_y), bottom, 0, 0, cv2.BORDER_CONSTANT, value=(114,) * 3)
    if layout.channels == 1:
        canvas = cv2.cvtColor(canvas, cv2.COLOR_RGB2GRAY)[..., None]
    elif bgr:
        canvas = canvas[..., ::-1]
    c = layout.channels
    expected = (canvas.astype(np.float64) / 255 - np.array(mean[:c])) / np.array(std[:c])  # (H, W, C)
    if dtype in ("uint8", "int8"):  # integer inputs: the pixel values, int8 shifted by 128
        expected = canvas.astype(np.float64) - (128 if dtype == "int8" else 0)
    expected = expected.transpose(2, 0, 1) if layout.nchw else expected
    expected = expected[None] if layout.batched else expected
    assert tensor.dtype == np.dtype(dtype) and tensor.shape == expected.shape and tensor.flags.c_contiguous
    np.testing.assert_allclose(tensor.astype(np.float64), expected, atol=1e-5 if dtype == "float32" else 4e-3)
    stale = np.full_like(tensor, 7)  # an earlier frame's tensor, refilled: every value rewritten
    again, _ = preprocess(rgb, layout, config, stale)
    assert np.array_equal(again, tensor) and (again is stale or dtype in ("uint8", "int8"))


def test_open_input_dimensions_follow_the_image():
    layout = InputLayout.from_spec(type("S", (), {"name": "x", "data_type": "float32", "shape": [1, 3, -1, -1]})())
    rgb = np.zeros((500, 741, 3), np.uint8)
    tensor, _ = preprocess(rgb, layout, PreprocessConfig())
    assert tensor.shape == (1, 3, 500, 741)
    tensor, transform = preprocess(rgb, layout, PreprocessConfig(letterbox=True))
    assert tensor.shape == (1, 3, 512, 768)  # YOLO stride 32
    assert transform.scale_x == transform.scale_y == pytest.approx(min(768 / 741, 512 / 500))
    corner = transform.to_source(np.array([[transform.pad_x, transform.pad_y, 768 - transform.pad_x, 512.0]]))
    np.testing.assert_allclose(corner[0], [0, 0, 741, 500], atol=1.0)
