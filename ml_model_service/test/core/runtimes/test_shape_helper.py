"""ONNX shape inference in the capped helper process (core/runtimes/shape_helper.py): shapes inferred there, bytes
ONNX cannot read a ValueError, and the helper started again after it was ended."""

from __future__ import annotations

import onnx
import pytest
from onnx import TensorProto, helper

from ml_model_service.core.runtimes.shape_helper import ShapeHelper


def concat_model() -> bytes:
    graph = helper.make_graph(
        [helper.make_node("Concat", ["x", "x"], ["c"], axis=1), helper.make_node("Relu", ["c"], ["y"])],
        "concat",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]).SerializeToString()


def dims(value: onnx.ValueInfoProto) -> list[int]:
    return [d.dim_value for d in value.type.tensor_type.shape.dim]


def test_shapes_are_inferred_in_the_helper_and_it_restarts_after_close():
    shapes = ShapeHelper()
    try:
        inferred = onnx.ModelProto.FromString(shapes.infer(concat_model()))
        assert {v.name: dims(v) for v in inferred.graph.value_info} == {"c": [2, 6]}
        assert dims(inferred.graph.output[0]) == [2, 6]
        first = shapes._proc  # noqa: SLF001 - the helper process
        assert first is not None and first.poll() is None
        shapes.infer(concat_model())
        assert shapes._proc is first  # noqa: SLF001 - one helper serves the later uses
        shapes.close()
        assert first.poll() is not None and shapes._proc is None  # noqa: SLF001
        assert dims(onnx.ModelProto.FromString(shapes.infer(concat_model())).graph.output[0]) == [2, 6]
    finally:
        shapes.close()


def test_bytes_onnx_cannot_read_are_a_value_error_and_the_helper_serves_on():
    shapes = ShapeHelper()
    try:
        with pytest.raises(ValueError, match="onnx.ModelProto"):
            shapes.infer(b"\xff\xff\xff not a model")
        assert dims(onnx.ModelProto.FromString(shapes.infer(concat_model())).graph.output[0]) == [2, 6]
    finally:
        shapes.close()
