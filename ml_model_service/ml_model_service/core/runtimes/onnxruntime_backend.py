"""onnxruntime: an ONNX file on the CPU, CUDA or TensorRT (`execution_providers`), its tensors bounded by
ONNX shape inference before each new input shape runs (`limits.OnnxShapes`)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..metadata import TensorSpec
from . import limits
from .backend import DEFAULT_PROVIDERS, Backend, ModelLoadError, resolve_providers
from .limits import PROTOBUF_MAX_BYTES
from .threads import default_threads, pool_affinity, pool_cores

_ONNX_TYPES = {
    "tensor(float)": "float32",
    "tensor(double)": "float64",
    "tensor(float16)": "float16",
    "tensor(uint8)": "uint8",
    "tensor(int8)": "int8",
    "tensor(uint16)": "uint16",
    "tensor(int16)": "int16",
    "tensor(uint32)": "uint32",
    "tensor(int32)": "int32",
    "tensor(uint64)": "uint64",
    "tensor(int64)": "int64",
    "tensor(bool)": "bool",
}


class OnnxBackend(Backend):
    """onnxruntime InferenceSession; session.run is thread-safe, so calls run concurrently."""

    kind = "onnx"

    def __init__(
        self,
        path: Path,
        providers: list[str] | tuple[str, ...] = DEFAULT_PROVIDERS,
        num_threads: int = 0,
        pin_threads: bool = True,
    ) -> None:
        super().__init__()
        import onnxruntime as ort

        threads = default_threads(num_threads)
        chosen, self.warnings = resolve_providers(list(providers), ort.get_available_providers())
        model, self._shapes, load_scan = self._read(path)
        self.session, pool = self._session(ort, model, path, threads, chosen, pin_threads)
        self._shrink = ort.RunOptions()  # for runs whose sizes depend on the input's values
        self._shrink.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
        del model
        in_use = self.session.get_providers()
        self.info = {
            "backend": "onnxruntime",
            "execution_providers": ",".join(in_use),
            "threads": str(threads),
            "pool_cores": pool,
        }
        if len(in_use) < len(chosen):
            missing = [p for p in chosen if p not in in_use]
            self.warnings.append(f"execution provider(s) {missing} failed to initialise; using {in_use}")
        meta = self.session.get_modelmeta()
        self.embedded_metadata = dict(meta.custom_metadata_map or {})
        self.description = meta.description or meta.graph_description or ""
        self.inputs = [self._spec(t) for t in self.session.get_inputs()]
        self.outputs = [self._spec(t) for t in self.session.get_outputs()]
        self._output_names = [t.name for t in self.outputs]
        if self._shapes is None:  # no ONNX shape inference here: at least the sizes the model declares
            for spec in (*self.inputs, *self.outputs):
                nbytes = math.prod(spec.shape) * np.dtype(spec.data_type).itemsize
                if all(d >= 0 for d in spec.shape) and nbytes > limits.MAX_MODEL_TENSOR_BYTES:
                    problem = limits.over_cap(f"tensor {spec.name!r}", spec.shape, spec.data_type, nbytes)
                    raise ModelLoadError(f"{path.name}: {problem}")
        elif all(d >= 0 for spec in self.inputs for d in spec.shape):  # fixed inputs: the load's scan is every run's
            self._shapes.remember({spec.name: tuple(spec.shape) for spec in self.inputs}, load_scan)

    def _read(self, path: Path) -> tuple[bytes | str, limits.OnnxShapes | None, tuple[str | None, bool]]:
        """The model for onnxruntime (the file's bytes, read once; its path where weights lie in external files),
        the shape checker of its graph and its scan for the declared input shapes. A graph that declares or makes,
        for those shapes, a tensor above MAX_MODEL_TENSOR_BYTES (e.g. a constant onnxruntime would fold at load)
        is refused. Without the onnx package, no checker: onnxruntime reads the path, outputs are checked after
        runs."""
        try:
            import onnx
        except ImportError:
            self.warnings.append(
                "the onnx package is not installed: tensor sizes are checked after each run, not before"
            )
            return str(path), None, (None, False)
        try:
            size = path.stat().st_size
            if size > PROTOBUF_MAX_BYTES:
                raise ModelLoadError(
                    f"{path.name} is {size} bytes, above protobuf's limit of {PROTOBUF_MAX_BYTES} "
                    "bytes for one ONNX file (keep the weights in external data files)"
                )
            data = path.read_bytes()
        except OSError as exc:
            raise ModelLoadError(f"cannot read {path}: {exc}") from exc
        try:
            shapes = limits.OnnxShapes(onnx, onnx.ModelProto.FromString(data))
        except Exception as exc:  # protobuf's DecodeError and friends
            raise ModelLoadError(f"onnxruntime could not load {path}: not an ONNX model ({exc})") from exc
        load_scan = shapes.scan(None)
        if load_scan[0] is not None:
            raise ModelLoadError(f"{path.name}: {load_scan[0]}")
        return (str(path) if shapes.external else data), shapes, load_scan

    @staticmethod
    def _options(ort, threads: int, affinity: str):
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        # The CPU memory arena: without it every large tensor is a fresh allocation (and page faults) in every
        # run, and a YOLO11n at 640 took 1.3-1.5x the CPU per run on the AMD EPYC VM (the small SSD does not
        # care). A run whose sizes shape inference could not know before it (they depend on the input's values,
        # e.g. NonMaxSuppression) shrinks the arena when it ends (`infer`), so such a run, made large by its
        # input, does not keep its memory; the sizes of the others are bounded before they run.
        options.enable_cpu_mem_arena = True
        # The pool spins while a run hands work between its threads, and stops spinning when the run ends:
        # a pool spinning between camera frames costs more CPU than the inference itself, and one that never
        # spins wakes a sleeping core for every operator, which can make a run as slow as with one thread.
        options.add_session_config_entry("session.force_spinning_stop", "1")
        options.add_session_config_entry("session.inter_op.allow_spinning", "0")
        if affinity:
            options.add_session_config_entry("session.intra_op_thread_affinities", affinity)
        options.log_severity_level = 3
        return options

    def _session(self, ort, model: bytes | str, path: Path, threads: int, providers: list[str], pin: bool):
        """The session for `model` (bytes or a path) and where its pool threads run ("any": unpinned): pinned
        (`pool_affinity`) when asked, unpinned with a warning where this machine refuses the pinning."""
        affinity = pool_affinity(threads) if pin else ""
        for attempt in [affinity, ""] if affinity else [""]:
            try:
                session = ort.InferenceSession(
                    model, sess_options=self._options(ort, threads, attempt), providers=providers
                )
            except Exception as exc:  # onnxruntime raises several exception types for bad files
                if attempt and "affinit" in str(exc).lower():
                    self.warnings.append(f"onnxruntime's pool threads could not be pinned ({exc}); unpinned")
                    continue
                raise ModelLoadError(f"onnxruntime could not load {path}: {exc}") from exc
            return session, (",".join(map(str, pool_cores(threads - 1))) if attempt else "any")
        raise AssertionError("unreachable: the unpinned attempt returns or raises")

    @staticmethod
    def _spec(node) -> TensorSpec:
        dtype = _ONNX_TYPES.get(node.type)
        if dtype is None:
            raise ModelLoadError(f"tensor {node.name!r} has type {node.type}, which this service cannot carry")
        shape = [d if isinstance(d, int) and d >= 0 else -1 for d in (node.shape or [])]
        return TensorSpec(name=node.name, data_type=dtype, shape=shape)

    def infer(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run once; raises TensorSizeError, before the run, when shape inference finds a tensor above
        MAX_MODEL_TENSOR_BYTES for these input shapes, and after it for an output that came out above it."""
        known = self._shapes is not None and self._shapes.check({name: array.shape for name, array in inputs.items()})
        results = self.session.run(self._output_names, inputs, None if known else self._shrink)
        limits.check_outputs(self._output_names, results)
        return dict(zip(self._output_names, results))
