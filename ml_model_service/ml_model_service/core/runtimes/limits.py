"""How large a model's tensors may be, checked before a runtime allocates them: the cap per tensor, the ONNX
shape-inference guard (every tensor a graph would make for given input shapes, without its weights) and the
LiteRT tensor and convolution-workspace sizes. A model that declares too much is refused at load
(`ModelLoadError`), a request whose shapes would make too much before its run (`TensorSizeError`).

The cap is read from this module at each check (`limits.MAX_MODEL_TENSOR_BYTES`), so it has one value for
every runtime.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict

import numpy as np

from ..tensors import TensorError
from . import shape_helper

#: Largest tensor a model may declare or make (bytes, each tensor): larger ones are refused before the runtime
#: allocates them, at load (`ModelLoadError`) or, where they follow from a request's input shapes, before the
#: run (`TensorSizeError`). Per tensor, not a total: runtimes reuse memory between tensors, so a total over-counts
#: (YOLOv8n at 1280x1280 declares 884 MiB of tensors altogether, its largest 25 MiB; the bundled models' largest
#: is 8.2 MiB). 512 MiB is 20 times YOLOv8n's largest at 1280 and twice a request tensor's limit
#: (tensors.MAX_TENSOR_BYTES); a 12000x12000 RGB float image (1.7 GB) is refused.
MAX_MODEL_TENSOR_BYTES = 512 * 1024 * 1024
#: Input-shape signatures whose size check OnnxBackend keeps (the oldest is dropped first).
SHAPE_CHECK_CACHE = 32
#: protobuf cannot parse a message of 2 GiB or more: an ONNX file that large is refused before it is read.
PROTOBUF_MAX_BYTES = 2**31 - 1
#: Initializers of up to this many elements stay in the graph ONNX shape inference sees (shapes, axes, pads:
#: what data propagation reads); larger ones (weights) are replaced by their type and shape.
_SHAPE_INITIALIZER_ELEMENTS = 1024
#: LiteRT convolutions whose XNNPACK indirection buffer (a pointer per kernel tap per output pixel) is counted.
_TFLITE_CONVOLUTIONS = {
    "CONV_2D": (1, 3),
    "DEPTHWISE_CONV_2D": (1, 3),
    "TRANSPOSE_CONV": (1, 3),
    "CONV_3D": (0, 3),
    "CONV_3D_TRANSPOSE": (0, 3),
}  # weight dims that are kernel taps


class TensorSizeError(TensorError):
    """A run refused because a tensor the model would make for these inputs is above MAX_MODEL_TENSOR_BYTES."""


def over_cap(what: str, shape, dtype: str, nbytes: int) -> str:
    """The refusal text for a tensor above MAX_MODEL_TENSOR_BYTES."""
    return (
        f"{what} of shape {[int(d) for d in shape]} ({dtype}) would need {nbytes} bytes, above the limit of "
        f"{MAX_MODEL_TENSOR_BYTES} bytes per tensor (MAX_MODEL_TENSOR_BYTES)"
    )


def _onnx_type(onnx, elem_type: int) -> tuple[str, int]:
    """(numpy name, bytes per element) of an ONNX tensor type; 8 bytes for strings and types numpy lacks."""
    try:
        dtype = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(elem_type))
    except (KeyError, TypeError, ValueError):
        return f"onnx type {elem_type}", 8
    return ("string", 8) if dtype.kind == "O" else (dtype.name, max(dtype.itemsize, 1))


def _onnx_bytes(onnx, value) -> tuple[list[int], str, int] | None:
    """(shape, type, bytes) of a ValueInfoProto whose tensor shape is fully known; None otherwise."""
    if not value.type.HasField("tensor_type"):
        return None
    tensor = value.type.tensor_type
    if not tensor.HasField("shape"):
        return None
    shape = []
    for dim in tensor.shape.dim:
        if not dim.HasField("dim_value") or dim.dim_value < 0:
            return None
        shape.append(dim.dim_value)
    dtype, itemsize = _onnx_type(onnx, tensor.elem_type)
    return shape, dtype, math.prod(shape) * itemsize


class OnnxShapes:
    """ONNX shape inference over a model's graph without its weights: the size of every tensor the model would
    make for given input shapes, checked against MAX_MODEL_TENSOR_BYTES before onnxruntime allocates them.
    Results are kept per input-shape signature (at most SHAPE_CHECK_CACHE of them)."""

    def __init__(self, onnx, full) -> None:
        self._onnx = onnx
        self.graph, self.weights, self.external = self._graph_only(onnx, full)
        self._cache: OrderedDict[tuple, tuple[str | None, bool]] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def _graph_only(onnx, full):
        """(the graph with its weights replaced by their type and shape, the weights' names, whether any
        initializer keeps its data in an external file)."""
        model = onnx.ModelProto()
        model.ir_version = full.ir_version
        model.opset_import.extend(full.opset_import)
        model.functions.extend(full.functions)
        graph, source = model.graph, full.graph
        graph.name = source.name
        graph.input.extend(source.input)
        graph.output.extend(source.output)
        graph.sparse_initializer.extend(source.sparse_initializer)
        declared = {v.name for v in source.input}
        weights: set[str] = set()
        external = False
        for tensor in source.initializer:
            outside = tensor.data_location == onnx.TensorProto.EXTERNAL
            external |= outside
            if math.prod(tensor.dims) <= _SHAPE_INITIALIZER_ELEMENTS and not outside:
                graph.initializer.append(tensor)
                continue
            weights.add(tensor.name)
            if tensor.name not in declared:
                graph.input.append(onnx.helper.make_tensor_value_info(tensor.name, tensor.data_type, list(tensor.dims)))
        for node in source.node:
            value = next((a.t for a in node.attribute if a.name == "value" and a.HasField("t")), None)
            if (
                node.op_type == "Constant"
                and node.domain in ("", "ai.onnx")
                and value is not None
                and math.prod(value.dims) > _SHAPE_INITIALIZER_ELEMENTS
                and len(node.output) == 1
            ):
                weights.add(node.output[0])
                graph.input.append(
                    onnx.helper.make_tensor_value_info(node.output[0], value.data_type, list(value.dims))
                )
            else:
                graph.node.append(node)
        return model, weights, external

    def scan(self, shapes: dict[str, tuple[int, ...]] | None) -> tuple[str | None, bool]:
        """(the first tensor known to be above the cap, described, or None; whether every output's size is
        known) for these input shapes (None: the shapes the model declares)."""
        model = self.graph
        if shapes is not None:
            model = self._onnx.ModelProto()
            model.CopyFrom(self.graph)
            for value in model.graph.input:
                if value.name in shapes and value.type.HasField("tensor_type"):
                    dims = value.type.tensor_type.shape.dim
                    del dims[:]
                    for size in shapes[value.name]:
                        dims.add().dim_value = int(size)
        try:  # in a helper process with a memory and time budget (shape_helper)
            inferred = self._onnx.ModelProto.FromString(shape_helper.HELPER.infer(model.SerializeToString()))
        except shape_helper.BudgetExceeded as exc:  # a graph that would take the node's memory to check: refused
            return str(exc), False
        except Exception:  # a graph ONNX cannot follow: onnxruntime decides; the outputs are checked after the run
            return None, False
        outputs = {v.name for v in inferred.graph.output}
        known = set()
        kinds = [
            ("input", inferred.graph.input),
            ("tensor", inferred.graph.value_info),
            ("output", inferred.graph.output),
        ]
        for kind, values in kinds:
            for value in values:
                need = _onnx_bytes(self._onnx, value)
                if need is None or value.name in self.weights:
                    continue
                if value.name in outputs:
                    known.add(value.name)
                if need[2] > MAX_MODEL_TENSOR_BYTES:
                    return over_cap(f"{kind} {value.name!r}", *need), value.name in outputs
        return None, known == outputs

    def check(self, shapes: dict[str, tuple[int, ...]]) -> bool:
        """Raise TensorSizeError when a tensor the model would make for these input shapes is above the cap;
        returns whether every output's size was known (otherwise the outputs are checked after the run)."""
        key = tuple(sorted((name, tuple(int(d) for d in shape)) for name, shape in shapes.items()))
        with self._lock:
            found = self._cache.get(key)
            if found is not None:
                self._cache.move_to_end(key)
        if found is None:
            found = self.scan(dict(key))
            with self._lock:
                self._cache[key] = found
                while len(self._cache) > SHAPE_CHECK_CACHE:
                    self._cache.popitem(last=False)
        problem, outputs_known = found
        if problem is not None:
            raise TensorSizeError(f"for input shapes {dict(key)}: {problem}")
        return outputs_known

    def remember(self, shapes: dict[str, tuple[int, ...]], result: tuple[str | None, bool]) -> None:
        """Keep a result worked out elsewhere (the load's scan, for a model whose inputs are all fixed)."""
        key = tuple(sorted((name, tuple(int(d) for d in shape)) for name, shape in shapes.items()))
        with self._lock:
            self._cache[key] = result


def check_outputs(names: list[str], results: list) -> None:
    """Refuse outputs above the cap that a run made anyway (sizes that depend on input values)."""
    for name, array in zip(names, results):
        nbytes = getattr(array, "nbytes", 0)
        if nbytes > MAX_MODEL_TENSOR_BYTES:
            raise TensorSizeError(
                over_cap(f"output {name!r}", array.shape, array.dtype.name, nbytes)
                + "; its size depends on the input values, so it was only known after the run"
            )


def tflite_sizes(interpreter, model_tensors: int | None = None) -> list[tuple[str, list[int], str, int]]:
    """(what, shape, type, bytes) of every tensor of a LiteRT interpreter, constants included (their shapes are
    known before allocate_tensors), and of each convolution's XNNPACK indirection buffer (8 bytes per kernel tap
    per output pixel: 72 bytes a pixel for a 3x3 kernel, 10 GB for a 12000x12000 output). `model_tensors`: count
    only the main subgraph's first tensors (the model's, not kernels' scratch tensors added while allocating)."""
    try:
        subgraphs = int(interpreter._interpreter.NumSubgraphs())
    except (AttributeError, TypeError):
        subgraphs = 1
    sizes = []
    for subgraph in range(max(1, subgraphs)):
        try:
            details = interpreter.get_tensor_details(subgraph) if subgraph else interpreter.get_tensor_details()
        except (TypeError, ValueError):  # an older runtime: the main subgraph only
            break
        if subgraph == 0 and model_tensors is not None:
            details = [d for d in details if int(d["index"]) < model_tensors]
        for d in details:
            dtype = np.dtype(d["dtype"])
            sizes.append(
                (
                    f"tensor {d['name']!r}",
                    [int(v) for v in d["shape"]],
                    dtype.name,
                    math.prod(int(v) for v in d["shape"]) * dtype.itemsize,
                )
            )
        if subgraph == 0:
            sizes += _tflite_workspaces(interpreter, details)
    return sizes


def _tflite_workspaces(interpreter, details: list[dict]) -> list[tuple[str, list[int], str, int]]:
    """The indirection buffers of the main subgraph's convolutions (see `tflite_sizes`)."""
    try:
        ops = interpreter._get_ops_details()
    except (AttributeError, ValueError, RuntimeError):
        return []
    by_index = {int(d["index"]): d for d in details}
    found = []
    for op in ops:
        taps_from = _TFLITE_CONVOLUTIONS.get(op.get("op_name", ""))
        weights = by_index.get(int(op["inputs"][1])) if taps_from and len(op["inputs"]) > 1 else None
        output = by_index.get(int(op["outputs"][0])) if weights is not None and len(op["outputs"]) else None
        if output is None or len(output["shape"]) < 2:
            continue
        taps = math.prod(int(v) for v in weights["shape"][taps_from[0] : taps_from[1]])  # type: ignore[misc,index]
        pixels = math.prod(int(v) for v in output["shape"][:-1])
        found.append(
            (
                f"the {op['op_name']} operator {op['index']}'s workspace (a pointer per kernel tap per output "
                f"pixel of {output['name']!r})",
                [pixels, taps],
                "pointer",
                pixels * taps * 8,
            )
        )
    return found


def tflite_oversize(sizes) -> str | None:
    """The first of `tflite_sizes` above MAX_MODEL_TENSOR_BYTES, described; None when all fit."""
    for what, shape, dtype, nbytes in sizes:
        if nbytes > MAX_MODEL_TENSOR_BYTES:
            return over_cap(what, shape, dtype, nbytes)
    return None
