"""How a model's input is planned (core/reading/input_plan.py): an exporter's resize rule and normalisation
read from its image processor, and the options for what no sidecar says (shortest edge, input size). The
resize rule itself and the value range are in test_preprocess.py, the sidecars' architecture in test_hints.py."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ml_model_service.core.metadata import ModelMetadata
from ml_model_service.core.reading.hints import read_hints
from ml_model_service.core.reading.input_plan import VisionConfig, choose_resize_mode, preprocess_config
from ml_model_service.core.reading.preprocess import InputLayout, edge_size, preprocess

OPEN = InputLayout("pixel_values", "float32", True, -1, -1, 3)


def hinted(**processor) -> object:
    props = {f"hf.{k}": json.dumps(v) for k, v in processor.items()}
    props["hf.sidecars"] = "preprocessor_config.json"
    return read_hints(ModelMetadata(name="m", type="onnx", properties=props))


def test_yolos_sizes_are_multiples_of_16():
    assert edge_size(500, 741, 800, 1333, 16) == (800, 1184)
    hints = hinted(
        do_resize=True, size={"shortest_edge": 800, "longest_edge": 1333}, image_processor_type="YolosImageProcessor"
    )
    assert preprocess_config(VisionConfig(), hints, OPEN, "", []).edge_multiple == 16


def test_a_detr_processor_gives_open_inputs_its_shortest_and_longest_edge():
    hints = hinted(do_resize=True, size={"shortest_edge": 800, "longest_edge": 1333}, image_mean=[0.5] * 3)
    assert hints.edges == (800, 1333) and hints.imgsz is None
    pre = preprocess_config(VisionConfig(), hints, OPEN, "", [])
    tensor, transform = preprocess(np.zeros((426, 640, 3), np.uint8), OPEN, pre)
    assert tensor.shape == (1, 3, 800, 1201)
    assert transform.scale_x == pytest.approx(1201 / 640) and transform.scale_y == pytest.approx(800 / 426)
    # the option wins over the sidecar, and input_size over both
    pre = preprocess_config(VisionConfig(shortest_edge=(320,)), hints, OPEN, "", [])
    assert (pre.shortest_edge, pre.longest_edge) == (320, 0)
    pre = preprocess_config(VisionConfig(input_size=(640,)), hints, OPEN, "", [])
    assert pre.input_size == (640, 640) and pre.shortest_edge == 0


@pytest.mark.parametrize(
    ("processor", "imgsz", "crop"),
    [
        ({"size": {"shortest_edge": 224}, "crop_pct": 0.875}, (224, 224), 0.875),  # ConvNeXt
        ({"size": {"shortest_edge": 384}, "crop_pct": 0.875}, (384, 384), None),  # ConvNeXt at 384: no crop
        (
            {"size": {"shortest_edge": 256}, "do_center_crop": True, "crop_size": {"height": 224, "width": 224}},
            (224, 224),
            0.875,
        ),  # ResNet, BEiT
        ({"size": {"height": 224, "width": 224}}, (224, 224), None),  # ViT: stretched
    ],
)
def test_classifier_processors_give_a_size_and_their_crop(processor, imgsz, crop):
    hints = hinted(do_resize=True, **processor)
    assert hints.imgsz == imgsz and hints.center_crop == crop
    pre = preprocess_config(VisionConfig(), hints, OPEN, "", [])
    mode = choose_resize_mode(VisionConfig(), "classifier", hints, pre)
    assert mode == ("center_crop" if crop else "stretch")
    if crop:
        assert pre.crop_fraction == crop
