"""ONNX graphs built for the batching tests, whose outputs depend on each image of a batch (an end-to-end
detector, a slow chain of MatMuls), and a model wrapper that records the batch size of every call."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ml_model_service.core.loading.model import Model

SIDE = 64
LABELS = ["a", "b", "c"]


class Counting:
    """The real model, with the batch size of every call recorded."""

    def __init__(self, model: Model) -> None:
        self.model, self.metadata = model, model.metadata
        self.batches: list[int] = []

    def infer(self, inputs):
        self.batches.append(next(iter(inputs.values())).shape[0])
        return self.model.infer(inputs)


def save_graph(path: Path, nodes, inputs, outputs, inits) -> Path:
    graph = helper.make_graph(nodes, path.stem, inputs, outputs, inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    (path.with_suffix(".txt")).write_text("\n".join(LABELS) + "\n")
    return path


def end2end_model(path: Path, batch) -> Path:
    """[B, 3, SIDE, SIDE] float → [B, 3, 6] rows x0, y0, x1, y1, score, class; score = mean brightness."""
    rows = np.array([[4, 4, 30, 30, 0, 0], [20, 10, 60, 50, 0, 1], [2, 40, 20, 62, 0, 2]], np.float32)
    weight = np.zeros_like(rows)
    weight[:, 4] = [1.0, 0.8, 0.6]
    nodes = [
        helper.make_node("Flatten", ["images"], ["flat"], axis=1),
        helper.make_node("ReduceMean", ["flat"], ["m1"], axes=[1], keepdims=1),  # [B, 1]
        helper.make_node("Reshape", ["m1", "shape"], ["m"]),  # [B, 1, 1]
        helper.make_node("Mul", ["m", "w"], ["mw"]),
        helper.make_node("Add", ["mw", "rows"], ["output0"]),
    ]
    inits = [
        numpy_helper.from_array(weight[None], "w"),
        numpy_helper.from_array(rows[None], "rows"),
        numpy_helper.from_array(np.array([-1, 1, 1], np.int64), "shape"),
    ]
    ins = [helper.make_tensor_value_info("images", TensorProto.FLOAT, [batch, 3, SIDE, SIDE])]
    outs = [helper.make_tensor_value_info("output0", TensorProto.FLOAT, [batch, 3, 6])]
    return save_graph(path, nodes, ins, outs, inits)


def scaled_model(path: Path, matmuls: int = 30) -> Path:
    """[B, 512] float → [B, 512]: x times 2 through a chain of MatMuls (slow enough that calls queue)."""
    nodes, prev = [], "x"
    for i in range(matmuls):
        nodes.append(helper.make_node("MatMul", [prev, "w" if i else "w2"], [f"h{i}"]))
        prev = f"h{i}"
    nodes.append(helper.make_node("Identity", [prev], ["y"]))
    graph = helper.make_graph(
        nodes,
        "scaled",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 512])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 512])],
        [
            numpy_helper.from_array(np.eye(512, dtype=np.float32), "w"),
            numpy_helper.from_array(2 * np.eye(512, dtype=np.float32), "w2"),
        ],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    return path
