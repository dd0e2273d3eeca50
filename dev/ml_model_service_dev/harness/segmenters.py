"""A real ONNX segmenter with a known answer: each pixel's class is the nearest of a few colours (a 1 x 1
convolution: -|x - c|^2 is linear in x), so the class map of a synthetic scene is known exactly."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .scenes import Box3D

#: The colours `render` paints: its wall, its floor and a box's default colour.
#: (A fourth, black "unknown" class: three classes at the input's size would be an RGB image as likely.)
SCENE_COLOURS = {
    "wall": (90, 110, 140),
    "floor": (120, 120, 100),
    "box": Box3D((0, 0, 0), (0, 0, 0)).colour,
    "unknown": (0, 0, 0),
}


def colour_segmenter(
    path: Path,
    colours: dict[str, tuple[int, int, int]] = SCENE_COLOURS,
    size: tuple[int | str, int | str] = (240, 320),
    batch: int | str = 1,
    channels: int | str = 3,
) -> Path:
    """An NCHW float model [batch, channels, h, w] -> `out` [batch, C, h, w] scoring each pixel by its nearest
    colour (input in [0, 1], the default normalisation; a name for a dimension leaves it open, "N" for a dynamic
    batch); labels.txt beside it names the classes in order."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    centres = np.array(list(colours.values()), np.float32) / 255.0
    weight = (2.0 * centres * 20.0).reshape(len(colours), 3, 1, 1).astype(np.float32)
    bias = (-(centres**2).sum(axis=1) * 20.0).astype(np.float32)
    h, w = size
    graph = helper.make_graph(
        [helper.make_node("Conv", ["input", "weight", "bias"], ["out"])],
        "colour_segmenter",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [batch, channels, h, w])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [batch, len(colours), h, w])],
        [numpy_helper.from_array(weight, "weight"), numpy_helper.from_array(bias, "bias")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, path)
    (Path(path).parent / "labels.txt").write_text("\n".join(colours) + "\n")
    return Path(path)


def nearest_colour(rgb: np.ndarray, colours: dict[str, tuple[int, int, int]] = SCENE_COLOURS) -> np.ndarray:
    """The class map `colour_segmenter` should give at the image's own size (index of the nearest colour)."""
    centres = np.array(list(colours.values()), np.float64)
    return np.argmin(((rgb[..., None, :].astype(np.float64) - centres) ** 2).sum(-1), axis=-1)
