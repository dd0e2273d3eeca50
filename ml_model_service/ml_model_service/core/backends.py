"""Inference backends: onnxruntime (CPU, CUDA, TensorRT), TFLite (LiteRT) and OpenVINO (core/openvino_backend),
behind one interface. Models on inference servers are in core/oip_backend."""
from __future__ import annotations

import contextlib
import os
import threading
from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np

from .metadata import TensorSpec

#: Short provider names accepted in `execution_providers`, mapped to onnxruntime's names.
PROVIDER_ALIASES = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "gpu": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
    "trt": "TensorrtExecutionProvider",
    "openvino": "OpenVINOExecutionProvider",
    "coreml": "CoreMLExecutionProvider",
}
DEFAULT_PROVIDERS = ("cuda", "cpu")

_ONNX_TYPES = {
    "tensor(float)": "float32", "tensor(double)": "float64", "tensor(float16)": "float16",
    "tensor(uint8)": "uint8", "tensor(int8)": "int8", "tensor(uint16)": "uint16", "tensor(int16)": "int16",
    "tensor(uint32)": "uint32", "tensor(int32)": "int32", "tensor(uint64)": "uint64", "tensor(int64)": "int64",
    "tensor(bool)": "bool",
}


def default_threads(num_threads: int = 0) -> int:
    """The thread policy shared by every backend: `num_threads` when set, else one per CPU core."""
    return num_threads if num_threads > 0 else max(1, len(os.sched_getaffinity(0)) if hasattr(
        os, "sched_getaffinity") else (os.cpu_count() or 1))


def allowed_cores() -> list[int]:
    """The CPU cores this process may run on (its main thread's affinity, not a pinned caller's), in order."""
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(os.getpid()))
    return list(range(os.cpu_count() or 1))


def caller_core() -> int | None:
    """The core kept for the thread that calls the model (the vision node's worker pins itself there): the
    first allowed core. None when there is only one (nothing to keep apart)."""
    cores = allowed_cores()
    return cores[0] if len(cores) > 1 else None


def pin_caller(pin: bool) -> str:
    """Put the calling thread on `caller_core()` (pin) or back on every allowed core; what it is now ("" when
    there is nothing to pin to). Raises OSError where the affinity cannot be set."""
    if not hasattr(os, "sched_setaffinity"):
        return ""
    home = caller_core()
    if pin and home is None:
        return ""  # one core: nothing to keep apart
    cpus = {home} if pin else set(allowed_cores())
    os.sched_setaffinity(0, cpus)  # 0: this thread only
    return f"pinned to CPU {home}" if pin else "free to run on any allowed core"


def pool_pinned(backend: object) -> bool:
    """Whether `backend` (any runtime's, or None) keeps its pool threads off `caller_core()`: then the thread
    that calls it belongs there (`pin_caller`). OpenVINO (it places its own threads), models on servers and
    remote models say no, and their callers stay free."""
    return getattr(backend, "info", {}).get("pool_cores", "any") != "any"


def pool_cores(count: int) -> list[int]:
    """The cores for `count` runtime pool threads: one per allowed core other than `caller_core()`, in turn
    when there are more threads than cores; [] when there is only one core.

    Why: a pool thread that is free to run anywhere is woken onto the core of the thread that woke it, which
    is busy running the model; measured on a 2-core VM at 10 Hz, a 2-thread onnxruntime run took 18 ms that
    way (21.5 ms with the caller pinned) against 11.1 ms with the pool thread kept on the other core, and 21.3
    against 23.2 ms of CPU per run at 30 Hz; LiteRT's 15.9 against 9.3 ms."""
    others = allowed_cores()[1:]
    return [others[i % len(others)] for i in range(count)] if others else []


def pool_affinity(threads: int) -> str:
    """onnxruntime's `session.intra_op_thread_affinities` for a pool of `threads` (the caller included): its
    `threads - 1` pool threads on `pool_cores` ("" when there is no pool or only one core). Ids are 1-based."""
    return ";".join(str(core + 1) for core in pool_cores(threads - 1)) if threads > 1 else ""


def _thread_ids() -> set[int]:
    try:
        return {int(t) for t in os.listdir("/proc/self/task")}
    except OSError:  # not Linux
        return set()


def pin_new_threads(build):
    """`build()`, then the threads it started (LiteRT's pool: it has no affinity option) pinned one per
    allowed core other than `caller_core()`, as `pool_affinity` does for onnxruntime. Returns (result, the
    cores used as text, "any" when none were pinned). A thread another part of the process happened to start
    meanwhile is pinned too: harmless, it only loses the caller's core."""
    before = _thread_ids()
    result = build()
    started = sorted(_thread_ids() - before)
    cores = pool_cores(len(started))
    if not started or not cores or not hasattr(os, "sched_setaffinity"):
        return result, "any"
    try:
        for tid, core in zip(started, cores):
            os.sched_setaffinity(tid, {core})
    except OSError:  # a thread that ended, or a machine that refuses: leave them all free
        for tid in started:
            with contextlib.suppress(OSError):
                os.sched_setaffinity(tid, set(allowed_cores()))
        return result, "any"
    return result, ",".join(map(str, cores))


class ModelLoadError(RuntimeError):
    """A model file that is missing, unreadable or not a model this backend can run."""


class Backend(ABC):
    """One loaded model file. `infer` takes and returns arrays by tensor name, outputs in model order."""

    kind: str = ""

    def __init__(self) -> None:
        self.inputs: list[TensorSpec] = []
        self.outputs: list[TensorSpec] = []
        self.info: dict[str, str] = {}
        self.warnings: list[str] = []
        self.embedded_metadata: dict[str, str] = {}

    @abstractmethod
    def infer(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run once on validated inputs."""


def resolve_providers(requested: list[str] | tuple[str, ...], available: list[str]) -> tuple[list[str], list[str]]:
    """Map requested provider names (short or full) to the available ones; returns (providers, warnings)."""
    chosen: list[str] = []
    warnings: list[str] = []
    for name in requested or DEFAULT_PROVIDERS:
        full = PROVIDER_ALIASES.get(name.strip().lower(), name.strip())
        if full in available:
            if full not in chosen:
                chosen.append(full)
        else:
            warnings.append(f"execution provider {full} is not available here (available: {available})")
    if not chosen or chosen == ["AzureExecutionProvider"]:
        chosen = ["CPUExecutionProvider"]
    if chosen == ["CPUExecutionProvider"] and any(
        PROVIDER_ALIASES.get(n.strip().lower(), n) != "CPUExecutionProvider" for n in requested or DEFAULT_PROVIDERS
    ):
        warnings.append("no GPU execution provider could be used: running on the CPU")
    return chosen, warnings


class OnnxBackend(Backend):
    """onnxruntime InferenceSession; session.run is thread-safe, so calls run concurrently."""

    kind = "onnx"

    def __init__(self, path: Path, providers: list[str] | tuple[str, ...] = DEFAULT_PROVIDERS,
                 num_threads: int = 0, pin_threads: bool = True) -> None:
        super().__init__()
        import onnxruntime as ort

        threads = default_threads(num_threads)
        chosen, self.warnings = resolve_providers(list(providers), ort.get_available_providers())
        self.session, pool = self._session(ort, path, threads, chosen, pin_threads)
        in_use = self.session.get_providers()
        self.info = {"backend": "onnxruntime", "execution_providers": ",".join(in_use),
                     "threads": str(threads), "pool_cores": pool}
        if len(in_use) < len(chosen):
            missing = [p for p in chosen if p not in in_use]
            self.warnings.append(f"execution provider(s) {missing} failed to initialise; using {in_use}")
        meta = self.session.get_modelmeta()
        self.embedded_metadata = dict(meta.custom_metadata_map or {})
        self.description = meta.description or meta.graph_description or ""
        self.inputs = [self._spec(t) for t in self.session.get_inputs()]
        self.outputs = [self._spec(t) for t in self.session.get_outputs()]
        self._output_names = [t.name for t in self.outputs]

    @staticmethod
    def _options(ort, threads: int, affinity: str):
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        # The pool spins while a run hands work between its threads, and stops spinning when the run ends:
        # a pool spinning between camera frames costs more CPU than the inference itself (measured: 42 vs
        # 18.5 ms CPU per 30 Hz frame, 2 threads), and one that never spins wakes a sleeping core for every
        # operator, which on this VM made a run at 10 Hz as slow as one thread (31 vs 19 ms at 30 Hz).
        options.add_session_config_entry("session.force_spinning_stop", "1")
        options.add_session_config_entry("session.inter_op.allow_spinning", "0")
        if affinity:
            options.add_session_config_entry("session.intra_op_thread_affinities", affinity)
        options.log_severity_level = 3
        return options

    def _session(self, ort, path: Path, threads: int, providers: list[str], pin: bool):
        """The session and where its pool threads run ("any": unpinned): pinned (`pool_affinity`) when asked,
        unpinned with a warning where this machine refuses the pinning."""
        affinity = pool_affinity(threads) if pin else ""
        for attempt in ([affinity, ""] if affinity else [""]):
            try:
                session = ort.InferenceSession(str(path), sess_options=self._options(ort, threads, attempt),
                                               providers=providers)
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
        results = self.session.run(self._output_names, inputs)
        return dict(zip(self._output_names, results))


class TfliteBackend(Backend):
    """LiteRT (TFLite) interpreter on the CPU. An interpreter is not thread-safe: calls are serialised."""

    kind = "tflite"

    def __init__(self, path: Path, num_threads: int = 0, providers: list[str] | tuple[str, ...] = (),  # noqa: ARG002
                 pin_threads: bool = True) -> None:
        super().__init__()
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError:  # the older runtime package, where installed
            from tflite_runtime.interpreter import Interpreter  # type: ignore[no-redef]
        threads = default_threads(num_threads)

        def build():
            interpreter = Interpreter(model_path=str(path), num_threads=threads)
            interpreter.allocate_tensors()
            return interpreter

        try:
            # XNNPACK's pool threads, like onnxruntime's, are kept off the caller's core (`pin_threads`):
            # 2-core VM, 10 Hz: 15.9 ms per run free, 9.3 ms with the pool on the other core
            if pin_threads and threads > 1:
                self.interpreter, pool_cores = pin_new_threads(build)
            else:
                self.interpreter, pool_cores = build(), "any"
        except Exception as exc:
            raise ModelLoadError(f"TFLite could not load {path}: {exc}") from exc
        # LiteRT runs on the CPU here (XNNPACK); `providers` only applies to onnxruntime.
        self.info = {"backend": "tflite", "execution_providers": "CPU (XNNPACK)", "threads": str(threads),
                     "pool_cores": pool_cores}
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
        with self._lock:
            for detail in self._in:
                array = inputs[detail["name"]]
                if tuple(detail["shape"]) != array.shape:
                    self.interpreter.resize_tensor_input(detail["index"], array.shape)
                    self.interpreter.allocate_tensors()
                    self._in = self.interpreter.get_input_details()
                    self._out = self.interpreter.get_output_details()
                    detail = next(d for d in self._in if d["name"] == detail["name"])
                self.interpreter.set_tensor(detail["index"], np.ascontiguousarray(array))
            self.interpreter.invoke()
            return {d["name"]: np.array(self.interpreter.get_tensor(d["index"])) for d in self._out}


def _openvino_backend(path: Path, providers: list[str] | tuple[str, ...] = (), num_threads: int = 0,
                      pin_threads: bool = True) -> Backend:  # noqa: ARG001  OpenVINO pins its own threads
    from .openvino_backend import OpenvinoBackend

    return OpenvinoBackend(path, providers=providers, num_threads=num_threads)


BACKENDS = {".onnx": OnnxBackend, ".tflite": TfliteBackend, ".xml": _openvino_backend}
#: Backend names accepted in `backend` (besides auto).
BACKEND_NAMES = {"onnx": OnnxBackend, "onnxruntime": OnnxBackend, "tflite": TfliteBackend,
                 "litert": TfliteBackend, "openvino": _openvino_backend}
BACKEND_CHOICES = ("auto", "onnx", "tflite", "openvino")


def open_backend(path: Path, backend: str = "auto", providers: list[str] | tuple[str, ...] = DEFAULT_PROVIDERS,
                 num_threads: int = 0, pin_threads: bool = True) -> Backend:
    """Open a model file with the backend named, or the one its extension implies ('auto': .onnx →
    onnxruntime, .tflite → LiteRT, .xml (OpenVINO IR) → OpenVINO). `pin_threads`: onnxruntime's and LiteRT's
    pool threads stay on their own cores (`pool_cores`)."""
    if not path.is_file():
        raise ModelLoadError(f"model file not found: {path}")
    if backend in ("", "auto"):
        cls = BACKENDS.get(path.suffix.lower())
        if cls is None:
            raise ModelLoadError(f"cannot tell the backend of {path} from its extension; set backend to onnx, "
                                 "tflite or openvino")
    else:
        cls = BACKEND_NAMES.get(backend.lower())
        if cls is None:
            raise ModelLoadError(f"unknown backend {backend!r}; expected one of {', '.join(BACKEND_CHOICES)}")
    return cls(path, providers=providers, num_threads=num_threads, pin_threads=pin_threads)
