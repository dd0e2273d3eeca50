"""Inference backends: onnxruntime (CPU, CUDA, TensorRT), TFLite (LiteRT) and OpenVINO (core/openvino_backend),
behind one interface. Models on inference servers are in core/oip_backend."""
from __future__ import annotations

import contextlib
import math
import os
import threading
from abc import ABC, abstractmethod
from collections import OrderedDict
from pathlib import Path

import numpy as np

from .metadata import TensorSpec
from .tensors import TensorError

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
_TFLITE_CONVOLUTIONS = {"CONV_2D": (1, 3), "DEPTHWISE_CONV_2D": (1, 3), "TRANSPOSE_CONV": (1, 3),
                        "CONV_3D": (0, 3), "CONV_3D_TRANSPOSE": (0, 3)}  # weight dims that are kernel taps

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


class TensorSizeError(TensorError):
    """A run refused because a tensor the model would make for these inputs is above MAX_MODEL_TENSOR_BYTES."""


def _over_cap(what: str, shape, dtype: str, nbytes: int) -> str:
    """The refusal text for a tensor above MAX_MODEL_TENSOR_BYTES."""
    return (f"{what} of shape {[int(d) for d in shape]} ({dtype}) would need {nbytes} bytes, above the limit of "
            f"{MAX_MODEL_TENSOR_BYTES} bytes per tensor (MAX_MODEL_TENSOR_BYTES)")


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


class _OnnxShapes:
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
            if (node.op_type == "Constant" and node.domain in ("", "ai.onnx") and value is not None
                    and math.prod(value.dims) > _SHAPE_INITIALIZER_ELEMENTS and len(node.output) == 1):
                weights.add(node.output[0])
                graph.input.append(onnx.helper.make_tensor_value_info(node.output[0], value.data_type,
                                                                      list(value.dims)))
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
        try:
            inferred = self._onnx.shape_inference.infer_shapes(model, check_type=False, strict_mode=False,
                                                               data_prop=True)
        except Exception:  # a graph ONNX cannot follow: onnxruntime decides; the outputs are checked after the run
            return None, False
        outputs = {v.name for v in inferred.graph.output}
        known = set()
        kinds = [("input", inferred.graph.input), ("tensor", inferred.graph.value_info),
                 ("output", inferred.graph.output)]
        for kind, values in kinds:
            for value in values:
                size = _onnx_bytes(self._onnx, value)
                if size is None or value.name in self.weights:
                    continue
                if value.name in outputs:
                    known.add(value.name)
                if size[2] > MAX_MODEL_TENSOR_BYTES:
                    return _over_cap(f"{kind} {value.name!r}", *size), value.name in outputs
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


def _check_outputs(names: list[str], results: list) -> None:
    """Refuse outputs above the cap that a run made anyway (sizes that depend on input values)."""
    for name, array in zip(names, results):
        nbytes = getattr(array, "nbytes", 0)
        if nbytes > MAX_MODEL_TENSOR_BYTES:
            raise TensorSizeError(_over_cap(f"output {name!r}", array.shape, array.dtype.name, nbytes)
                                  + "; its size depends on the input values, so it was only known after the run")


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
    """Map requested provider names (short or full) to the available ones; returns (providers, warnings).
    The default preference (GPU if there is one, else the CPU) is not a request: a machine without a GPU
    runs it on the CPU without a warning (the providers in use are reported in the backend's info)."""
    chosen: list[str] = []
    warnings: list[str] = []
    preference = list(requested or DEFAULT_PROVIDERS)
    asked = preference != list(DEFAULT_PROVIDERS)
    for name in preference:
        full = PROVIDER_ALIASES.get(name.strip().lower(), name.strip())
        if full in available:
            if full not in chosen:
                chosen.append(full)
        elif asked:
            warnings.append(f"execution provider {full} is not available here (available: {available})")
    if not chosen or chosen == ["AzureExecutionProvider"]:
        chosen = ["CPUExecutionProvider"]
    if asked and chosen == ["CPUExecutionProvider"] and any(
        PROVIDER_ALIASES.get(n.strip().lower(), n) != "CPUExecutionProvider" for n in preference
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
        model, self._shapes, load_scan = self._read(path)
        self.session, pool = self._session(ort, model, path, threads, chosen, pin_threads)
        del model
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
        if self._shapes is None:  # no ONNX shape inference here: at least the sizes the model declares
            for spec in (*self.inputs, *self.outputs):
                nbytes = math.prod(spec.shape) * np.dtype(spec.data_type).itemsize
                if all(d >= 0 for d in spec.shape) and nbytes > MAX_MODEL_TENSOR_BYTES:
                    problem = _over_cap(f"tensor {spec.name!r}", spec.shape, spec.data_type, nbytes)
                    raise ModelLoadError(f"{path.name}: {problem}")
        elif all(d >= 0 for spec in self.inputs for d in spec.shape):  # fixed inputs: the load's scan is every run's
            self._shapes.remember({spec.name: tuple(spec.shape) for spec in self.inputs}, load_scan)

    def _read(self, path: Path) -> tuple[bytes | str, _OnnxShapes | None, tuple[str | None, bool]]:
        """The model for onnxruntime (the file's bytes, read once; its path where weights lie in external files),
        the shape checker of its graph and its scan for the declared input shapes. A graph that declares or makes,
        for those shapes, a tensor above MAX_MODEL_TENSOR_BYTES (e.g. a constant onnxruntime would fold at load)
        is refused. Without the onnx package, no checker: onnxruntime reads the path, outputs are checked after
        runs."""
        try:
            import onnx
        except ImportError:
            self.warnings.append("the onnx package is not installed: tensor sizes are checked after each run, "
                                 "not before")
            return str(path), None, (None, False)
        try:
            size = path.stat().st_size
            if size > PROTOBUF_MAX_BYTES:
                raise ModelLoadError(f"{path.name} is {size} bytes, above protobuf's limit of {PROTOBUF_MAX_BYTES} "
                                     "bytes for one ONNX file (keep the weights in external data files)")
            data = path.read_bytes()
        except OSError as exc:
            raise ModelLoadError(f"cannot read {path}: {exc}") from exc
        try:
            shapes = _OnnxShapes(onnx, onnx.ModelProto.FromString(data))
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
        # No CPU memory arena: what a run allocated goes back when the run ends, so one run made large by its
        # input values (a size shape inference could not know before it) does not keep its memory in the
        # arena (1 GiB Expand: RSS 1114 MB after the run with the arena, 58 MB without). Bundled SSD, 2 threads,
        # 6 x 200 runs alternating: 8.17 vs 8.12 ms a run (noise); the resident set 117 vs 94 MB.
        options.enable_cpu_mem_arena = False
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

    def _session(self, ort, model: bytes | str, path: Path, threads: int, providers: list[str], pin: bool):
        """The session for `model` (bytes or a path) and where its pool threads run ("any": unpinned): pinned
        (`pool_affinity`) when asked, unpinned with a warning where this machine refuses the pinning."""
        affinity = pool_affinity(threads) if pin else ""
        for attempt in ([affinity, ""] if affinity else [""]):
            try:
                session = ort.InferenceSession(model, sess_options=self._options(ort, threads, attempt),
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
        """Run once; raises TensorSizeError, before the run, when shape inference finds a tensor above
        MAX_MODEL_TENSOR_BYTES for these input shapes, and after it for an output that came out above it."""
        if self._shapes is not None:
            self._shapes.check({name: array.shape for name, array in inputs.items()})
        results = self.session.run(self._output_names, inputs)
        _check_outputs(self._output_names, results)
        return dict(zip(self._output_names, results))


class TfliteBackend(Backend):
    """LiteRT (TFLite) interpreter on the CPU. An interpreter is not thread-safe: calls are serialised."""

    kind = "tflite"

    def __init__(self, path: Path, num_threads: int = 0, providers: list[str] | tuple[str, ...] = (),  # noqa: ARG002
                 pin_threads: bool = True) -> None:
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
            problem = _tflite_oversize(_tflite_sizes(interpreter))
            if problem is not None:  # before allocate_tensors, where LiteRT and XNNPACK allocate
                raise ModelLoadError(f"{path.name}: {problem}")
            interpreter.allocate_tensors()
            return interpreter

        try:
            # XNNPACK's pool threads, like onnxruntime's, are kept off the caller's core (`pin_threads`):
            # 2-core VM, 10 Hz: 15.9 ms per run free, 9.3 ms with the pool on the other core
            if pin_threads and threads > 1:
                self.interpreter, pool_cores = pin_new_threads(build)
            else:
                self.interpreter, pool_cores = build(), "any"
        except ModelLoadError:
            raise
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
        """Run once, resizing inputs to the arrays' shapes where they differ; raises TensorSizeError, before
        LiteRT allocates, for a resize that would make a tensor above MAX_MODEL_TENSOR_BYTES."""
        with self._lock:
            resized = {d["index"]: inputs[d["name"]].shape for d in self._in
                       if tuple(d["shape"]) != inputs[d["name"]].shape}
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
            if nbytes > MAX_MODEL_TENSOR_BYTES:
                raise TensorSizeError(_over_cap(f"input {detail['name']!r}", shape, dtype.name, nbytes))
        problem = self._probe(shapes)
        if problem is not None:
            raise TensorSizeError(f"inputs resized to {[list(v) for v in shapes.values()]}: {problem}")
        old = {d["index"]: tuple(int(v) for v in d["shape"]) for d in self._in}
        self._apply(shapes)
        problem = _tflite_oversize(_tflite_sizes(self.interpreter))
        if problem is not None:  # the throwaway interpreter could not tell: put the old shapes back
            self._apply(old)
            raise TensorSizeError(f"inputs resized to {[list(v) for v in shapes.values()]}: {problem}")

    def _probe(self, shapes: dict[int, tuple[int, ...]]) -> str | None:
        """What `_tflite_oversize` says of the model's own tensors at these input shapes, from a throwaway
        interpreter without delegates (its kernels' scratch tensors, which XNNPACK does not use, left out);
        None where this runtime cannot make one (the allocation itself is checked then)."""
        key = tuple(sorted(shapes.items()))
        if key in self._probed:
            return self._probed[key]
        try:
            probe = self._interpreter_cls(model_path=str(self._path),
                                          experimental_op_resolver_type=self._no_delegates)
        except Exception:  # an older runtime without the option
            return None
        count = len(probe.get_tensor_details())
        try:
            for index, shape in shapes.items():
                probe.resize_tensor_input(index, shape)
            probe.allocate_tensors()
        except Exception as exc:  # LiteRT's own limits (e.g. 32-bit element counts) refuse such shapes too
            problem = f"LiteRT cannot allocate them ({exc})"
        else:
            problem = _tflite_oversize(_tflite_sizes(probe, count))
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


def _tflite_sizes(interpreter, model_tensors: int | None = None) -> list[tuple[str, list[int], str, int]]:
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
            sizes.append((f"tensor {d['name']!r}", [int(v) for v in d["shape"]], dtype.name,
                          math.prod(int(v) for v in d["shape"]) * dtype.itemsize))
        if subgraph == 0:
            sizes += _tflite_workspaces(interpreter, details)
    return sizes


def _tflite_workspaces(interpreter, details: list[dict]) -> list[tuple[str, list[int], str, int]]:
    """The indirection buffers of the main subgraph's convolutions (see `_tflite_sizes`)."""
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
        taps = math.prod(int(v) for v in weights["shape"][taps_from[0]:taps_from[1]])
        pixels = math.prod(int(v) for v in output["shape"][:-1])
        found.append((f"the {op['op_name']} operator {op['index']}'s workspace (a pointer per kernel tap per output "
                      f"pixel of {output['name']!r})", [pixels, taps], "pointer", pixels * taps * 8))
    return found


def _tflite_oversize(sizes) -> str | None:
    """The first of `_tflite_sizes` above MAX_MODEL_TENSOR_BYTES, described; None when all fit."""
    for what, shape, dtype, nbytes in sizes:
        if nbytes > MAX_MODEL_TENSOR_BYTES:
            return _over_cap(what, shape, dtype, nbytes)
    return None


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
