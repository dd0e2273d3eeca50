"""LiteRT (TFLite) on the CPU through XNNPACK, its tensors and convolution workspaces bounded before it
allocates them (`limits.tflite_sizes`), at load and for each new input shape."""

from __future__ import annotations

import math
import threading
from pathlib import Path

import numpy as np

from ..metadata import TensorSpec
from . import limits
from .backend import Backend, ModelLoadError
from .limits import SHAPE_CHECK_CACHE, TensorSizeError
from .threads import default_threads, pin_new_threads


class TfliteBackend(Backend):
    """LiteRT (TFLite) interpreter on the CPU. An interpreter is not thread-safe: calls are serialised."""

    kind = "tflite"

    def __init__(
        self,
        path: Path,
        num_threads: int = 0,
        providers: list[str] | tuple[str, ...] = (),  # noqa: ARG002
        pin_threads: bool = True,
    ) -> None:
        super().__init__()
        try:
            from ai_edge_litert.interpreter import Interpreter, OpResolverType
        except ImportError:  # the older runtime package, where installed
            from tflite_runtime.interpreter import Interpreter, OpResolverType  # type: ignore[no-redef]
        threads = default_threads(num_threads)
        self._path, self._interpreter_cls = path, Interpreter
        self._no_delegates = OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        self._probed: dict[tuple, str | None] = {}

        def build():
            interpreter = Interpreter(model_path=str(path), num_threads=threads)
            problem = limits.tflite_oversize(limits.tflite_sizes(interpreter))
            if problem is not None:  # before allocate_tensors, where LiteRT and XNNPACK allocate
                raise ModelLoadError(f"{path.name}: {problem}")
            interpreter.allocate_tensors()
            return interpreter

        try:
            # XNNPACK's pool threads, like onnxruntime's, are kept off the caller's core (`pin_threads`; why:
            # threads.pool_cores)
            if pin_threads and threads > 1:
                self.interpreter, pool_cores = pin_new_threads(build)
            else:
                self.interpreter, pool_cores = build(), "any"
        except ModelLoadError:
            raise
        except Exception as exc:
            raise ModelLoadError(f"TFLite could not load {path}: {exc}") from exc
        # LiteRT runs on the CPU here (XNNPACK); `providers` only applies to onnxruntime.
        self.info = {
            "backend": "tflite",
            "execution_providers": "CPU (XNNPACK)",
            "threads": str(threads),
            "pool_cores": pool_cores,
        }
        self.description = ""
        self._lock = threading.Lock()
        self._in = self.interpreter.get_input_details()
        self._out = self.interpreter.get_output_details()
        self.inputs = [self._spec(d) for d in self._in]
        self.outputs = [self._spec(d) for d in self._out]

    @staticmethod
    def _spec(detail: dict) -> TensorSpec:
        signature = detail.get("shape_signature")
        shape = [int(d) for d in (signature if signature is not None and len(signature) else detail["shape"])]
        extra = {}
        scale, zero_point = detail.get("quantization", (0.0, 0))
        if scale:
            extra = {"quantization_scale": repr(float(scale)), "quantization_zero_point": str(int(zero_point))}
        return TensorSpec(name=detail["name"], data_type=np.dtype(detail["dtype"]).name, shape=shape, extra=extra)

    def infer(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run once, resizing inputs to the arrays' shapes where they differ; raises TensorSizeError, before
        LiteRT allocates, for a resize that would make a tensor above MAX_MODEL_TENSOR_BYTES."""
        with self._lock:
            resized = {
                d["index"]: inputs[d["name"]].shape for d in self._in if tuple(d["shape"]) != inputs[d["name"]].shape
            }
            if resized:
                self._resize(resized)
            for detail in self._in:
                self.interpreter.set_tensor(detail["index"], np.ascontiguousarray(inputs[detail["name"]]))
            self.interpreter.invoke()
            return {d["name"]: np.array(self.interpreter.get_tensor(d["index"])) for d in self._out}

    def _resize(self, shapes: dict[int, tuple[int, ...]]) -> None:
        """Resize inputs (tensor index → shape) and allocate, after checking every tensor and convolution
        workspace the new shapes make. LiteRT works the shapes out only while it allocates, and XNNPACK then
        writes its buffers, so the check allocates in a throwaway interpreter without delegates first: its
        arena is planned but never touched (a 12000x12000 plan costs no resident memory)."""
        for index, shape in shapes.items():
            detail = next(d for d in self._in if d["index"] == index)
            dtype = np.dtype(detail["dtype"])
            nbytes = math.prod(shape) * dtype.itemsize
            if nbytes > limits.MAX_MODEL_TENSOR_BYTES:
                raise TensorSizeError(limits.over_cap(f"input {detail['name']!r}", shape, dtype.name, nbytes))
        problem = self._probe(shapes)
        if problem is not None:
            raise TensorSizeError(f"inputs resized to {[list(v) for v in shapes.values()]}: {problem}")
        old = {d["index"]: tuple(int(v) for v in d["shape"]) for d in self._in}
        self._apply(shapes)
        problem = limits.tflite_oversize(limits.tflite_sizes(self.interpreter))
        if problem is not None:  # the throwaway interpreter could not tell: put the old shapes back
            self._apply(old)
            raise TensorSizeError(f"inputs resized to {[list(v) for v in shapes.values()]}: {problem}")

    def _probe(self, shapes: dict[int, tuple[int, ...]]) -> str | None:
        """What `limits.tflite_oversize` says of the model's own tensors at these input shapes, from a throwaway
        interpreter without delegates (its kernels' scratch tensors, which XNNPACK does not use, left out);
        None where this runtime cannot make one (the allocation itself is checked then)."""
        key = tuple(sorted(shapes.items()))
        if key in self._probed:
            return self._probed[key]
        try:
            probe = self._interpreter_cls(model_path=str(self._path), experimental_op_resolver_type=self._no_delegates)
        except Exception:  # an older runtime without the option
            return None
        count = len(probe.get_tensor_details())
        problem: str | None
        try:
            for index, shape in shapes.items():
                probe.resize_tensor_input(index, shape)
            probe.allocate_tensors()
        except Exception as exc:  # LiteRT's own limits (e.g. 32-bit element counts) refuse such shapes too
            problem = f"LiteRT cannot allocate them ({exc})"
        else:
            problem = limits.tflite_oversize(limits.tflite_sizes(probe, count))
        if len(self._probed) >= SHAPE_CHECK_CACHE:
            self._probed.pop(next(iter(self._probed)))
        self._probed[key] = problem
        return problem

    def _apply(self, shapes: dict[int, tuple[int, ...]]) -> None:
        for index, shape in shapes.items():
            self.interpreter.resize_tensor_input(index, shape)
        self.interpreter.allocate_tensors()
        self._in = self.interpreter.get_input_details()
        self._out = self.interpreter.get_output_details()
