"""Which runtime opens a model file: the one named in `backend`, or for `auto` the one its extension implies."""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from pathlib import Path

from .backend import DEFAULT_PROVIDERS, Backend, ModelLoadError, resolve_providers
from .choice import ChoiceCache, choose
from .litert_backend import TfliteBackend
from .onnxruntime_backend import OnnxBackend
from .openvino_backend import OpenvinoBackend
from .threads import default_threads


def _openvino_backend(
    path: Path,
    providers: list[str] | tuple[str, ...] = (),
    num_threads: int = 0,
    pin_threads: bool = True,  # noqa: ARG001  OpenVINO pins its own threads
) -> Backend:
    return OpenvinoBackend(path, providers=providers, num_threads=num_threads)


def _openvino_f32(
    path: Path,
    providers: list[str] | tuple[str, ...] = (),
    num_threads: int = 0,
    pin_threads: bool = True,  # noqa: ARG001
) -> Backend:
    """OpenVINO kept at float32 (`backend: auto` tries it where OpenVINO's default bf16 changes the outputs)."""
    backend = OpenvinoBackend(path, providers=providers, num_threads=num_threads, precision="f32")
    backend.kind = "openvino"
    return backend


BACKENDS: dict[str, Callable[..., Backend]] = {
    ".onnx": OnnxBackend,
    ".tflite": TfliteBackend,
    ".xml": _openvino_backend,
}
#: Backend names accepted in `backend` (besides auto).
BACKEND_NAMES: dict[str, Callable[..., Backend]] = {
    "onnx": OnnxBackend,
    "onnxruntime": OnnxBackend,
    "tflite": TfliteBackend,
    "litert": TfliteBackend,
    "openvino": _openvino_backend,
}
BACKEND_CHOICES = ("auto", "onnx", "tflite", "openvino")


#: Model formats no backend here reads, by extension, and how their users make one that is read.
OTHER_FORMATS = {
    (".pt", ".pth", ".torchscript", ".ptl", ".safetensors", ".ckpt"): (
        "a PyTorch file (weights or TorchScript)",
        "export it to ONNX (torch.onnx.export; Ultralytics: `yolo export format=onnx`; Hugging Face: "
        "`optimum-cli export onnx`) and load the .onnx file",
    ),
    (".pb", ".h5", ".keras", ".savedmodel"): (
        "a TensorFlow / Keras model",
        "convert it to TFLite (tf.lite.TFLiteConverter) or ONNX (tf2onnx), or to OpenVINO IR (ovc)",
    ),
    (".engine", ".plan", ".trt"): (
        "a TensorRT engine (built for one GPU)",
        "load the ONNX file it was built from, with the TensorRT execution provider where there is one",
    ),
}


def unsupported_format(path: Path) -> str:
    """Why `path` is not opened, and what its users do instead."""
    for suffixes, (what, how) in OTHER_FORMATS.items():
        if path.suffix.lower() in suffixes or (not path.suffix and zipfile.is_zipfile(path) and ".pt" in suffixes):
            return f"{path.name} is {what}, which no backend here reads; {how}"
    return (
        f"cannot tell the format of {path.name} from its extension; model files are .onnx (onnxruntime), "
        ".tflite (LiteRT) or .xml + .bin (OpenVINO IR); set backend to onnx, tflite or openvino for a file "
        "of one of these formats with another name"
    )


def open_backend(
    path: Path,
    backend: str = "auto",
    providers: list[str] | tuple[str, ...] = DEFAULT_PROVIDERS,
    num_threads: int = 0,
    pin_threads: bool = True,
) -> Backend:
    """Open a model file with the backend named, or the one its extension implies ('auto': .onnx →
    onnxruntime, .tflite → LiteRT, .xml (OpenVINO IR) → OpenVINO). `pin_threads`: onnxruntime's and LiteRT's
    pool threads stay on their own cores (`pool_cores`)."""
    if not path.is_file():
        raise ModelLoadError(f"model file not found: {path}")
    if backend == "openvino_f32":  # one of `backend: auto`'s candidates (choice.CANDIDATES)
        return _openvino_f32(path, providers, num_threads, pin_threads)
    if backend in ("", "auto"):
        cls = BACKENDS.get(path.suffix.lower())
        if cls is None:
            raise ModelLoadError(unsupported_format(path))
    else:
        cls = BACKEND_NAMES.get(backend.lower())
        if cls is None:
            raise ModelLoadError(f"unknown backend {backend!r}; expected one of {', '.join(BACKEND_CHOICES)}")
    return cls(path, providers=providers, num_threads=num_threads, pin_threads=pin_threads)


def open_fastest(
    path: Path,
    providers: list[str] | tuple[str, ...] = DEFAULT_PROVIDERS,
    num_threads: int = 0,
    pin_threads: bool = True,
    cache: ChoiceCache | None = None,
    digest: str | None = None,
) -> Backend:
    """`backend: auto` for a model file: the fastest runtime here that reproduces the outputs of the one its
    extension implies, measured at the first load and cached (`choice`); its info says which and why."""
    if not path.is_file():
        raise ModelLoadError(f"model file not found: {path}")
    if path.suffix.lower() not in BACKENDS:
        return open_backend(path, "auto", providers, num_threads, pin_threads)  # refused, with the reason

    def opener(name: str) -> Backend:
        return open_backend(path, name, providers, num_threads, pin_threads)

    # the settings the choice depends on, as they resolve here (the default ["cuda", "cpu"] on a machine without a
    # GPU is ["cpu"]; 0 threads is one per core), so that equal set-ups share one measurement
    try:
        import onnxruntime as ort

        resolved = resolve_providers(list(providers), ort.get_available_providers())[0]
    except ImportError:
        resolved = list(providers)
    backend, _ = choose(path, opener, default_threads(num_threads), resolved, cache, digest)
    return backend
