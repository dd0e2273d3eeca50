"""Tensor size limits (core/runtimes/limits.py): ONNX shape inference over the graph without its weights, per input
shape (cached), the refusal text, outputs checked after a run, and LiteRT tensor sizes on the bundled model."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from ml_model_service.core.loading.bundled import BUNDLED_DIR
from ml_model_service.core.runtimes.limits import (
    MAX_MODEL_TENSOR_BYTES,
    OnnxShapes,
    TensorSizeError,
    check_outputs,
    over_cap,
    tflite_oversize,
    tflite_sizes,
)
from ml_model_service.core.runtimes.registry import open_backend

FLOATS_OVER_CAP = MAX_MODEL_TENSOR_BYTES // 4 + 1


def tiled_model() -> onnx.ModelProto:
    """y = Tile(x, 1000) + w: an output 1000 times its dynamic input; w a 2000-value weight (a large initializer)."""
    graph = helper.make_graph(
        [helper.make_node("Tile", ["x", "reps"], ["t"]), helper.make_node("Add", ["t", "w"], ["y"])],
        "tiled",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [
            numpy_helper.from_array(np.array([1000], np.int64), "reps"),
            numpy_helper.from_array(np.zeros(2000, np.float32), "w"),
        ],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def test_the_graph_is_checked_without_its_weights_and_per_input_shape():
    shapes = OnnxShapes(onnx, tiled_model())
    assert shapes.weights == {"w"} and not shapes.external
    assert [t.name for t in shapes.graph.graph.initializer] == ["reps"]  # the small one kept for inference
    assert "w" in [v.name for v in shapes.graph.graph.input]  # the large one by type and shape only
    assert shapes.check({"x": (2,)}) is True  # y: 2000 floats, known
    with pytest.raises(
        TensorSizeError, match=r"for input shapes \{'x': \(600000,\)\}: tensor 't' of shape \[600000000\]"
    ):
        shapes.check({"x": (600_000,)})  # 2.4 GB once tiled; x itself is 2.4 MB
    assert len(shapes._cache) == 2  # noqa: SLF001 - one result per input-shape signature
    shapes.remember({"x": (5,)}, ("said elsewhere", False))
    with pytest.raises(TensorSizeError, match="said elsewhere"):
        shapes.check({"x": (5,)})  # the remembered result is used, not worked out again


def test_unknown_output_sizes_are_reported_as_unknown():
    graph = helper.make_graph(
        [helper.make_node("NonZero", ["x"], ["y"])],
        "nonzero",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
        [helper.make_tensor_value_info("y", TensorProto.INT64, None)],
    )
    shapes = OnnxShapes(onnx, helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]))
    assert shapes.check({"x": (4,)}) is False  # NonZero's count depends on the values: checked after the run


def test_outputs_made_anyway_are_refused_after_the_run():
    check_outputs(["a"], [np.zeros(10, np.float32)])
    big = np.broadcast_to(np.zeros(1, np.float32), (FLOATS_OVER_CAP,))  # reports its full size, allocates none
    with pytest.raises(TensorSizeError, match="output 'big' .* only known after the run"):
        check_outputs(["small", "big"], [np.zeros(1), big])


def test_refusal_text_and_tflite_sizes():
    text = over_cap("tensor 'x'", (2, np.int64(3)), "uint8", MAX_MODEL_TENSOR_BYTES + 1)
    assert text.startswith("tensor 'x' of shape [2, 3] (uint8) would need ")
    assert f"above the limit of {MAX_MODEL_TENSOR_BYTES} bytes" in text
    assert tflite_oversize([("t", [1], "uint8", 1), ("big", [9], "float32", MAX_MODEL_TENSOR_BYTES + 4)]) == over_cap(
        "big", [9], "float32", MAX_MODEL_TENSOR_BYTES + 4
    )
    assert tflite_oversize([("t", [1], "uint8", MAX_MODEL_TENSOR_BYTES)]) is None  # at the cap is allowed
    backend = open_backend(BUNDLED_DIR / "efficientnet_lite0.tflite", providers=["cpu"], num_threads=1)
    sizes = tflite_sizes(backend.interpreter)
    assert sizes and all(
        nbytes == int(np.prod(shape)) * np.dtype(dtype).itemsize
        for _, shape, dtype, nbytes in sizes
        if dtype in ("uint8", "int8", "float32", "int32")
    )
    assert tflite_oversize(sizes) is None
