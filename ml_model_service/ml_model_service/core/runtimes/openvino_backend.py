"""OpenVINO backend: ONNX, OpenVINO IR (.xml + .bin) and TFLite files on the CPU (or another OpenVINO
device where present), with the suite's thread policy (one thread per core unless `num_threads`)."""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path

import numpy as np
import yaml

from ..metadata import TensorSpec, load_yaml_bounded
from .backend import Backend, ModelLoadError
from .threads import default_threads

#: OpenVINO device names accepted in `execution_providers` (the first one present is used; else the CPU).
OPENVINO_DEVICES = {
    "cpu": "CPU",
    "gpu": "GPU",
    "npu": "NPU",
    "auto": "AUTO",
    "openvino": "CPU",
    "openvino_cpu": "CPU",
    "openvino_gpu": "GPU",
    "openvino_npu": "NPU",
}


def pick_device(providers: list[str] | tuple[str, ...], available: list[str]) -> tuple[str, list[str]]:
    """(device, warnings): the first requested OpenVINO device this machine has, else CPU."""
    warnings: list[str] = []
    for name in providers or ():
        device = OPENVINO_DEVICES.get(name.strip().lower())
        if device is None:
            continue  # onnxruntime names (cuda, tensorrt) mean nothing here
        if device == "AUTO" or any(d == device or d.startswith(device + ".") for d in available):
            return device, warnings
        warnings.append(f"OpenVINO device {device} is not present here (available: {available})")
    return "CPU", warnings


class OpenvinoBackend(Backend):
    """An OpenVINO compiled model. One infer request per calling thread, so calls run concurrently."""

    kind = "openvino"

    def __init__(
        self, path: Path, providers: list[str] | tuple[str, ...] = (), num_threads: int = 0, precision: str = ""
    ) -> None:
        """`precision`: OpenVINO's INFERENCE_PRECISION_HINT ("" = its default: bf16 on CPUs with AVX512-BF16 or
        AMX, which is faster and rounds differently from onnxruntime's f32; "f32" keeps float32)."""
        super().__init__()
        try:
            import openvino as ov
        except ImportError as exc:
            raise ModelLoadError("backend openvino needs the openvino package (pip install openvino)") from exc
        core = ov.Core()
        device, self.warnings = pick_device(providers, core.available_devices)
        config: dict[str, str | int] = {"PERFORMANCE_HINT": "LATENCY"}
        if device == "CPU":
            config["INFERENCE_NUM_THREADS"] = default_threads(num_threads)
        if precision:
            config["INFERENCE_PRECISION_HINT"] = precision
        try:
            model = core.read_model(str(path))
            self.compiled = core.compile_model(model, device, config)
        except Exception as exc:  # OpenVINO raises RuntimeError subclasses with long C++ traces
            first = " ".join(str(exc).split())[:400]
            raise ModelLoadError(f"OpenVINO could not load {path}: {first}") from exc
        self.info = {
            "backend": "openvino",
            "execution_providers": f"OpenVINO {device}",
            "openvino_version": ov.get_version().split("-")[0],
        }
        with contextlib.suppress(Exception):  # not every device reports it
            hint = self.compiled.get_property("INFERENCE_PRECISION_HINT")
            self.info["inference_precision"] = str(getattr(hint, "get_type_name", lambda: hint)())
        self.description = ""
        self.embedded_metadata = _onnx_metadata(path) if path.suffix.lower() == ".onnx" else _ir_metadata(path)
        self.inputs = [self._spec(p, f"input{i}") for i, p in enumerate(self.compiled.inputs)]
        self.outputs = [self._spec(p, f"output{i}") for i, p in enumerate(self.compiled.outputs)]
        self._ports = {spec.name: port for spec, port in zip(self.outputs, self.compiled.outputs)}
        self._in_ports = {spec.name: port for spec, port in zip(self.inputs, self.compiled.inputs)}
        self._local = threading.local()

    @staticmethod
    def _spec(port, unnamed: str) -> TensorSpec:
        """The port's spec; a port without tensor names (Ultralytics' IR outputs) is named by its position,
        as ONNX exports name them (input0, output0...)."""
        name = port.any_name if port.get_names() else unnamed
        try:
            dtype = np.dtype(port.get_element_type().to_dtype()).name
        except Exception as exc:  # noqa: BLE001 - element types numpy lacks (bf16, i4...)
            raise ModelLoadError(
                f"tensor {name!r} has OpenVINO type {port.get_element_type()}, which this service cannot carry"
            ) from exc
        shape = [d.get_length() if d.is_static else -1 for d in port.get_partial_shape()]
        return TensorSpec(name=name, data_type=dtype, shape=shape)

    def infer(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        request = getattr(self._local, "request", None)
        if request is None:
            request = self._local.request = self.compiled.create_infer_request()
        # share_outputs=False (the default): OpenVINO hands over copies of the request's output buffers (the next
        # call reuses those), so they are the caller's without another copy
        feed = {self._in_ports.get(name, name): np.ascontiguousarray(a) for name, a in inputs.items()}
        results = request.infer(feed, share_inputs=True)
        return {name: results[port] for name, port in self._ports.items()}


#: Largest metadata.yaml read beside an IR model.
MAX_IR_METADATA_BYTES = 1 << 20


def _ir_metadata(path: Path) -> dict[str, str]:
    """The `metadata.yaml` an exporter writes beside an IR model (Ultralytics: names, imgsz, task, args...), as
    the strings an ONNX export embeds. Read only from the model's own folder (no symlink out), up to 1 MiB."""
    meta = path.parent / "metadata.yaml"
    try:
        if not meta.is_file() or meta.resolve().parent != path.resolve().parent:
            return {}
        if meta.stat().st_size > MAX_IR_METADATA_BYTES:
            return {}
        data = load_yaml_bounded(meta.read_text(encoding="utf-8"))
    except (OSError, ValueError, yaml.YAMLError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {str(k): v if isinstance(v, str) else repr(v) for k, v in data.items()}


def _onnx_metadata(path: Path) -> dict[str, str]:
    """An ONNX file's metadata_props (labels, Ultralytics names/imgsz) without loading its weights."""
    try:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        options.intra_op_num_threads = 1
        meta = ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"]).get_modelmeta()
        return dict(meta.custom_metadata_map or {})
    except Exception:  # noqa: BLE001 - metadata is optional; the model itself loaded in OpenVINO
        return {}
