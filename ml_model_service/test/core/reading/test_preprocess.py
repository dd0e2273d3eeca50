"""core/reading/preprocess.py: Hugging Face's resize rule, the value range and padding corner, open input layouts."""

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
