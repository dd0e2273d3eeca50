"""Semantic segmentation, ROS-free: the class map against a full bilinear resize + argmax (PyTorch's
`align_corners=False` rule, written out), which layouts are read as segmenters and which never are, the CLI's
`segment` on a real ONNX segmenter, and a Hugging Face model folder's sidecars read without options."""

from __future__ import annotations

import json
import subprocess
import sys

import cv2
import numpy as np
import pytest

from ml_model_service.core.loading.labels import Labels
from ml_model_service.core.loading.model import Model
from ml_model_service.core.metadata import ModelMetadata, TensorSpec
from ml_model_service.core.reading.decoders import segmentation
from ml_model_service.core.reading.decoders.base import DecoderConfig, Refused
from ml_model_service.core.reading.decoders.registry import find_decoder
from ml_model_service.core.reading.preprocess import PreprocessConfig, RoleError, Transform
from ml_model_service.core.reading.vision import VisionModel
from ml_model_service_dev.harness.scenes import Box3D, render
from ml_model_service_dev.harness.segmenters import colour_segmenter, nearest_colour


def _axis(n_out: int, n_in: int, scale: float, pad: float, n_input: int):
    """PyTorch's bilinear source coordinates for `n_out` pixels (through a letterbox / stretch transform)."""
    src = np.maximum(((np.arange(n_out) + 0.5) * scale + pad) * n_in / n_input - 0.5, 0.0)
    i0 = np.minimum(np.floor(src).astype(int), n_in - 1)
    return i0, np.minimum(i0 + 1, n_in - 1), src - i0


def full_resize_argmax(scores: np.ndarray, t: Transform) -> np.ndarray:
    """Every class resized in full (float64), then argmax: the reference the exact shortcut must equal."""
    c, h, w = scores.shape
    y0, y1, wy = _axis(t.source_height, h, t.scale_y, t.pad_y, t.input_height)
    x0, x1, wx = _axis(t.source_width, w, t.scale_x, t.pad_x, t.input_width)
    s = scores.astype(np.float64)
    rows = s[:, y0] * (1 - wy)[None, :, None] + s[:, y1] * wy[None, :, None]
    full = rows[:, :, x0] * (1 - wx) + rows[:, :, x1] * wx
    return full.argmax(0)


def smooth_scores(classes: int, h: int, w: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    coarse = rng.normal(size=(h // 16 + 2, w // 16 + 2, classes)).astype(np.float32)
    planes = [cv2.resize(coarse[..., c], (w, h), interpolation=cv2.INTER_CUBIC) for c in range(classes)]
    return np.stack(planes) * 4


@pytest.mark.parametrize(
    ("classes", "map_hw", "input_hw", "source_hw", "letterbox"),
    [
        (21, (130, 130), (520, 520), (480, 640), False),  # DeepLab-style 1/4 map, a 4:3 image stretched
        (19, (128, 128), (512, 512), (512, 512), False),  # SegFormer at its own size
        (19, (128, 128), (512, 512), (427, 640), True),  # letterboxed: the bars are cut off the map
        (3, (60, 80), (240, 320), (700, 500), False),  # downscaled in one axis, upscaled in the other
        (300, (32, 32), (128, 128), (100, 90), False),  # more than 256 classes: uint16
    ],
)
def test_class_map_equals_full_bilinear_resize(classes, map_hw, input_hw, source_hw, letterbox):
    scores = smooth_scores(classes, *map_hw, seed=classes)
    (ih, iw), (sh, sw) = input_hw, source_hw
    if letterbox:
        r = min(iw / sw, ih / sh)
        t = Transform(r, r, (iw - sw * r) / 2, (ih - sh * r) / 2, iw, ih, sw, sh)
    else:
        t = Transform(iw / sw, ih / sh, 0.0, 0.0, iw, ih, sw, sh)
    ours = segmentation.resize_scores_argmax(scores, *segmentation.map_axes(t, *map_hw))
    assert ours.shape == source_hw and ours.dtype == (np.uint8 if classes <= 256 else np.uint16)
    reference = full_resize_argmax(scores, t)
    assert (ours == reference).mean() >= 0.9999, (ours != reference).sum()


def _metadata(outputs: dict[str, np.ndarray], input_shape=(1, 3, 512, 512)) -> ModelMetadata:
    return ModelMetadata(
        name="m",
        type="onnx",
        description="",
        inputs=[TensorSpec("x", "float32", list(input_shape))],
        outputs=[TensorSpec(n, str(a.dtype), list(a.shape)) for n, a in outputs.items()],
    )


def _find(outputs: dict[str, np.ndarray], labels: int = 0, **options):
    names = Labels.from_list([f"class {i}" for i in range(labels)]) if labels else None
    return find_decoder(_metadata(outputs), outputs, DecoderConfig(**options), names, input_hw=(512, 512))


RNG = np.random.default_rng(1)


@pytest.mark.parametrize(
    ("outputs", "layout", "classes"),
    [
        ({"logits": RNG.normal(size=(1, 19, 128, 128)).astype(np.float32)}, "nchw", 19),  # SegFormer, its id2label
        (  # torchvision: out beside aux
            {"out": RNG.normal(size=(1, 21, 512, 512)).astype(np.float32), "aux": np.zeros((1, 21, 512, 512))},
            "nchw",
            21,
        ),
        ({"y": RNG.normal(size=(1, 256, 256, 6)).astype(np.float32)}, "nhwc", 6),  # TFLite / Keras
        ({"mask": RNG.random((1, 512, 512, 1)).astype(np.float32)}, "nhwc", 1),  # a person mask
        ({"classes": RNG.integers(0, 5, (1, 512, 512))}, "index", 0),  # argmax in the graph
    ],
)
def test_segmentation_layouts_are_recognised(outputs, layout, classes):
    decoder = _find(outputs, labels=classes)
    assert isinstance(decoder, segmentation.SegmentationDecoder)
    assert (decoder.layout, decoder.num_classes) == (layout, classes)


@pytest.mark.parametrize(
    "outputs",
    [
        # YOLO-seg: rows of boxes beside prototype masks at 1/4 (the rows are no map)
        {"output0": RNG.random((1, 116, 5376)).astype(np.float32), "protos": RNG.random((1, 32, 128, 128))},
        # CenterNet: heat maps beside size maps of another channel count
        {"hm": RNG.random((1, 80, 128, 128)), "wh": RNG.random((1, 2, 128, 128))},
        # a YOLOv2-style head at 1/32
        {"grid": RNG.random((1, 125, 16, 16)).astype(np.float32)},
    ],
)
def test_detector_heads_are_never_read_as_segmenters(outputs):
    try:
        decoder = _find(outputs)
    except RoleError:
        return
    assert not isinstance(decoder, segmentation.SegmentationDecoder)


@pytest.mark.parametrize(
    "outputs",
    [
        {"out": RNG.random((1, 3, 512, 512)).astype(np.float32)},  # a picture of the input's size: image-to-image?
        {"features": RNG.random((1, 256, 64, 64)).astype(np.float32)},  # at 1/8, no label per channel: a backbone?
    ],
)
def test_maps_that_may_be_another_models_are_read_only_with_model_type(outputs):
    """Class scores the shapes cannot tell from an image-to-image model's picture or a backbone's features are
    refused, naming model_type=segmenter, which (tried at load) reads them."""
    with pytest.raises(RoleError, match=r"fits no vision role.*\[model_type=segmenter segmentation_layout=nchw\]"):
        _find(outputs)
    classes = next(iter(outputs.values())).shape[1]
    assert _find(outputs, model_type="segmenter").num_classes == classes
    if classes != 3:  # a label per channel says a smaller map holds class scores
        assert _find(outputs, labels=classes).num_classes == classes


def test_ambiguous_and_logit_maps_are_refused_with_options_that_read_them():
    square = {"m": RNG.random((1, 128, 128, 128)).astype(np.float32)}
    with pytest.raises(Refused, match="segmentation_layout=nchw.*segmentation_layout=nhwc"):
        _find(square, labels=128)
    assert _find(square, labels=128, segmentation_layout="nhwc").layout == "nhwc"
    logits = {"m": (5 * RNG.normal(size=(1, 512, 512, 1))).astype(np.float32)}
    with pytest.raises(Refused, match="score_activation=sigmoid"):
        _find(logits)
    decoder = _find(logits, score_activation="sigmoid")
    t = Transform(1, 1, 0, 0, 512, 512, 512, 512)
    assert np.array_equal(decoder.decode(logits, t), (logits["m"][0, :, :, 0] > 0).astype(np.uint8))


def test_cli_segments_a_scene_into_its_classes(tmp_path):
    model = colour_segmenter(tmp_path / "seg.onnx")
    scene = render([Box3D((-0.25, -0.3, 1.5), (0.25, 0.3, 1.9))])
    photo = tmp_path / "scene.png"
    cv2.imwrite(str(photo), cv2.cvtColor(scene.rgb, cv2.COLOR_RGB2BGR))
    out = subprocess.run(
        [sys.executable, "-m", "ml_model_service", "segment", "--model", str(model), "--out", str(tmp_path / "o")]
        + [str(photo)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    line = json.loads(out.stdout)
    classes = cv2.imread(line["segmentation"], cv2.IMREAD_UNCHANGED)
    assert classes.shape == scene.rgb.shape[:2] and classes.dtype == np.uint8
    expected = nearest_colour(scene.rgb)
    assert (classes == expected).mean() > 0.99  # (the model runs at 320 x 240: edges resampled)
    counts = {c["class_name"]: c["pixels"] for c in line["classes"]}
    assert set(counts) == {"wall", "floor", "box"} and sum(counts.values()) == classes.size
    assert counts["box"] == int((classes == 2).sum())
    assert cv2.imread(line["overlay"]).shape == scene.rgb.shape


def test_hugging_face_sidecars_give_labels_and_normalisation(tmp_path):
    """config.json's id2label and preprocessor_config.json's size and normalisation are read from the model's
    folder, with no option; the image processor's statistics replace the default [0, 1] input."""
    folder = tmp_path / "segformer"
    folder.mkdir()
    colour_segmenter(folder / "model.onnx")
    (folder / "labels.txt").unlink()
    names = {"0": "wall", "1": "floor", "2": "box", "3": "unknown"}
    (folder / "config.json").write_text(json.dumps({"id2label": names, "architectures": ["SegformerForX"]}))
    processor = {
        "do_resize": True,
        "size": {"height": 240, "width": 320},
        "do_rescale": True,
        "rescale_factor": 1 / 255,
        "do_normalize": True,
        "image_mean": [0.485, 0.456, 0.406],
        "image_std": [0.229, 0.224, 0.225],
    }
    (folder / "preprocessor_config.json").write_text(json.dumps(processor))
    model = Model(str(folder))
    assert model.labels is not None and model.labels.name(1) == "floor"
    vision = VisionModel(model, model.labels)
    assert vision.role == "segmenter"
    assert np.allclose(vision._pre.mean, processor["image_mean"]) and np.allclose(
        vision._pre.std, processor["image_std"]
    )
    assert vision.hints.sources["normalisation"] == "preprocessor_config.json"
    assert tuple(PreprocessConfig().mean) == (0.0, 0.0, 0.0)  # the default stays for models without sidecars
    # a sidecar too large or not JSON is ignored like a missing one
    (folder / "config.json").write_text("{not json")
    assert Model(str(folder)).labels is None


def test_every_axis_open_is_read_as_nchw(tmp_path):
    """An export that leaves every input axis open (optimum's) is a PyTorch model's NCHW input: fed at the image's
    size, it gives the map of that size."""
    model = Model(str(colour_segmenter(tmp_path / "open.onnx", size=("height", "width"), batch="N", channels="C")))
    vision = VisionModel(model, model.labels)
    assert vision.layout.nchw and vision.layout.channels == 3
    scene = render([Box3D((-0.25, -0.3, 1.5), (0.25, 0.3, 1.9))])
    assert np.array_equal(vision.segment(scene.rgb).classes, nearest_colour(scene.rgb))
