"""A loaded model: backend + labels + Viam-style metadata, and where models are found (the bundled ones are
listed in `bundled`).

A model reference is a file path, the name of a model in a model repository (a folder holding
`<name>/` folders with one model file and optional `labels.txt`, or `<name>.onnx` / `<name>.tflite`
files with `<name>.txt` beside them), the name of a bundled model, or a model on an Open Inference
Protocol server (`grpc://HOST:PORT/MODEL[/VERSION]`, `http://...`; only servers the policy allows).
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from ..metadata import (
    LABEL_TYPE_TENSOR_AXIS,
    LABEL_TYPE_TENSOR_VALUE,
    AssociatedFile,
    ModelMetadata,
    TensorSpec,
)
from ..runtimes.backend import DEFAULT_PROVIDERS, Backend, ModelLoadError
from ..runtimes.choice import CANDIDATES
from ..runtimes.choice_cache import RUNTIME_NAMES
from ..runtimes.oip_backend import DEFAULT_TIMEOUT_S, OipBackend, is_server_ref, parse_server_ref
from ..runtimes.registry import open_backend, open_fastest
from ..tensors import check_inputs
from . import snapshot
from .bundled import BUNDLED, BUNDLED_DIR, DEFAULT_DETECTOR
from .labels import Labels, embedded_labels
from .sidecars import sidecar_labels, sidecar_properties
from .trust import ModelPolicy

MODEL_SUFFIXES = (".onnx", ".tflite", ".xml")
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+-]*$")


def _labels_beside(model: Path, policy: ModelPolicy) -> Path | None:
    """A label file next to the model (inside the allowed folders; a symlink leading out is ignored)."""
    for candidate in (
        model.parent / "labels.txt",
        model.with_suffix(".txt"),
        model.parent / f"{model.stem}_labels.txt",
        model.parent / f"{model.stem}.labels.txt",
    ):
        if candidate.is_file() and policy.allows(candidate):
            return candidate
    return None


def resolve_model(
    ref: str, repository: str | Path | None = None, policy: ModelPolicy | None = None
) -> tuple[Path, Path | None, str]:
    """(model file, label file or None, description) for a path, a repository name or a bundled name.

    Paths are resolved (`..`, symlinks) and must lie inside the policy's allowed folders; any path
    that cannot be used gets the same refusal whether or not it exists."""
    policy = policy or ModelPolicy.unrestricted()
    ref = (ref or DEFAULT_DETECTOR).strip()
    path = Path(ref).expanduser()
    if path.suffix.lower() in MODEL_SUFFIXES or "/" in ref or ref.startswith((".", "~")) or not _NAME.match(ref):
        if policy.allows(path) and path.is_dir():  # an exporter's model folder (Ultralytics' *_openvino_model/)
            real = _model_in_folder(policy.check_folder(path, "model folder"), ref, policy)
        else:
            real = policy.resolve(ref, "model")
        return real, _labels_beside(real, policy), ""
    if repository:
        repo = policy.check_folder(repository)
        folder = repo / ref
        if folder.is_dir() and policy.allows(folder):
            real = _model_in_folder(policy.check_folder(folder, "model folder"), ref, policy)
            return real, _labels_beside(real, policy), ""
        for suffix in MODEL_SUFFIXES:
            candidate = repo / f"{ref}{suffix}"
            if candidate.is_file() and policy.allows(candidate):
                real = policy.resolve(candidate, "model")
                return real, _labels_beside(real, policy), ""
    if ref in BUNDLED:
        b = BUNDLED[ref]
        return policy.resolve(BUNDLED_DIR / b.file, "model"), BUNDLED_DIR / b.labels, b.description
    names = sorted(BUNDLED) + (repository_models(repository) if repository else [])
    raise ModelLoadError(f"no model file, repository model or bundled model named {ref!r}; known names: {names}")


def _model_in_folder(folder: Path, ref: str, policy: ModelPolicy) -> Path:
    """The one model file of a model folder (an .onnx, a .tflite or an OpenVINO IR .xml)."""
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in MODEL_SUFFIXES)
    if len(files) != 1:
        raise ModelLoadError(
            f"model folder {ref!r} must hold exactly one .onnx, .tflite or OpenVINO .xml file, has "
            f"{[p.name for p in files]}"
        )
    return policy.resolve(files[0], "model")


def repository_models(repository: str | Path) -> list[str]:
    """Names of the models in a repository folder."""
    repo = Path(repository).expanduser()
    if not repo.is_dir():
        return []
    names = [p.name for p in repo.iterdir() if p.is_dir() and any(q.suffix in MODEL_SUFFIXES for q in p.iterdir())]
    names += [p.stem for p in repo.iterdir() if p.is_file() and p.suffix in MODEL_SUFFIXES]
    return sorted(names)


class Model:
    """A model ready to serve: validated `infer`, labels, and metadata with the label names.

    `policy` says which folders files may come from (default: unrestricted, for the operator's own
    command line; nodes pass `ModelPolicy.at_start`). Model and label files listed in a SHA256SUMS
    (always, for the bundled models) are verified before use."""

    def __init__(
        self,
        ref: str = "",
        label_path: str = "",
        *,
        repository: str | Path | None = None,
        backend: str = "auto",
        providers: list[str] | tuple[str, ...] = DEFAULT_PROVIDERS,
        num_threads: int = 0,
        policy: ModelPolicy | None = None,
        server_timeout: float = DEFAULT_TIMEOUT_S,
        pin_threads: bool = True,
    ) -> None:
        self.policy = policy or ModelPolicy.unrestricted()
        self.server = None
        self.sidecars: dict[str, str] = {}  # an exporter's configuration beside the model (`sidecars`)
        self.loaded: Path | None = None  # the private copy the runtime loaded (None: a model on a server)
        if is_server_ref(ref):
            # A model on an inference server: the policy must allow the server; nothing is read from disk.
            self.server = parse_server_ref(ref)
            self.policy.check_server(self.server.address)
            if backend not in ("", "auto", "oip"):
                raise ModelLoadError(
                    f"backend {backend!r} runs model files; a model on a server ({self.server.url}) needs backend auto"
                )
            model_path, found_labels, description = Path(self.server.model), None, ""
            self.digest = None
            self.backend: Backend = OipBackend(self.server, server_timeout)
        else:
            model_path, found_labels, description = resolve_model(ref, repository, self.policy)
            # The runtime loads a private copy of the model's files, made from the bytes checked (`snapshot`).
            snapshot.remove_stale()
            copy = snapshot.take(model_path, self.policy)
            copy.keep_until(self)
            self.digest = self.policy.verify(model_path, "model", copy.digests[model_path])
            self.backend = self._open(copy.path, backend, providers, num_threads, pin_threads, copy.digest)
            self._settings = (providers, num_threads, pin_threads)
            self.loaded = copy.path
            self.sidecars = sidecar_properties(copy.path.parent)
        self.path = model_path
        self.warnings = list(self.backend.warnings)
        if label_path:
            self.labels: Labels | None = self.policy.read_labels(label_path)
        elif found_labels is not None:
            self.labels = self.policy.read_resolved_labels(
                self.policy.resolve(found_labels, "label"), source=str(found_labels)
            )
        else:
            self.labels = self._embedded_labels() or self._sidecar_labels()
        self.metadata = self._metadata(description or getattr(self.backend, "description", ""))

    @staticmethod
    def _open(path: Path, backend: str, providers, num_threads: int, pin_threads: bool = True, digest: str = ""):
        """The backend for a file: the one named, or for `auto` the fastest measured here (`open_fastest`)."""
        if backend in ("", "auto"):
            return open_fastest(path, providers, num_threads, pin_threads, digest=digest or None)
        return open_backend(path, backend, providers, num_threads, pin_threads)

    def reference_backend(self) -> Backend | None:
        """The model file's own runtime (onnxruntime for .onnx, LiteRT for .tflite), opened afresh, where
        `backend: auto` chose another one for it; None where it did not."""
        choice = getattr(self.backend, "choice", None)
        names = CANDIDATES.get(self.loaded.suffix.lower(), ()) if self.loaded is not None else ()
        if choice is None or not names or choice.runtime == names[0] or self.loaded is None:
            return None
        return open_backend(self.loaded, names[0], *self._settings)

    def fall_back(self, reference: Backend, why: str) -> None:
        """Run on `reference` (from `reference_backend`) from now on: the runtime `backend: auto` chose gives
        other answers (`why`)."""
        chosen = self.backend
        name = RUNTIME_NAMES.get(chosen.choice.runtime, chosen.choice.runtime)  # type: ignore[attr-defined]
        reference.info["runtime_choice"] = f"{chosen.info.get('runtime_choice', '')}; {name} then not used: {why}"
        reference.choice = chosen.choice  # type: ignore[attr-defined]
        self.backend = reference
        self.warnings.append(f"backend auto: {name} not used: {why}")
        if self.metadata.outputs:
            self.metadata.outputs[0].extra.update(reference.info)

    def _embedded_labels(self) -> Labels | None:
        """Labels the model carries (ONNX metadata, TFLite zip), within the label size limit. Labels that are
        there but cannot be read raise ModelLoadError with the reason."""
        limit = self.policy.max_label_bytes
        meta = {k: v for k, v in self.backend.embedded_metadata.items() if len(v) <= limit}
        try:
            loaded = self.loaded or self.path
            if self.loaded is not None and loaded.suffix == ".tflite" and zipfile.is_zipfile(loaded):
                with zipfile.ZipFile(loaded) as archive:
                    if any(i.file_size > limit for i in archive.infolist() if i.filename.endswith(".txt")):
                        self.warnings.append(
                            f"labels embedded in {self.path.name} are above the limit of {limit} bytes; ignored"
                        )
                        return None
            return embedded_labels(loaded, meta, limit, shown=self.path)
        except (ValueError, zipfile.BadZipFile, OSError) as exc:
            raise ModelLoadError(f"{self.path.name}: the labels it carries cannot be read: {exc}") from exc

    def _sidecar_labels(self) -> Labels | None:
        """The class names of a Hugging Face `config.json` beside the model."""
        try:
            return sidecar_labels(self.sidecars, str(self.path.parent / "config.json"))
        except ValueError as exc:
            raise ModelLoadError(str(exc)) from exc

    def _metadata(self, description: str) -> ModelMetadata:
        inputs = [
            TensorSpec(s.name, s.data_type, list(s.shape), s.description, [], dict(s.extra))
            for s in self.backend.inputs
        ]
        outputs = [
            TensorSpec(s.name, s.data_type, list(s.shape), s.description, [], dict(s.extra))
            for s in self.backend.outputs
        ]
        if outputs:
            outputs[0].extra.update(self.backend.info)
            if self.labels:
                outputs[0].extra["labels"] = self.labels.source
                target, label_type = _label_target(outputs, self.labels)
                target.associated_files.append(
                    AssociatedFile(self.labels.source, f"{len(self.labels)} class labels", label_type)
                )
        return ModelMetadata(
            name=self.path.stem,
            type=self.backend.kind,
            description=description,
            inputs=inputs,
            outputs=outputs,
            label_names=dict(self.labels.names) if self.labels else {},
            properties={**self.sidecars, **self.backend.embedded_metadata},
        )

    def infer(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Check the inputs against the model (names, types, shapes), run, return outputs in model order.
        A model on a server raises InferenceServerError (a RuntimeError) when the server cannot answer."""
        check_inputs(self.metadata.inputs, inputs)
        return self.backend.infer(dict(inputs))

    def ready(self) -> bool:
        """Whether the model can answer now: always for a local file; one short probe for a server."""
        probe = getattr(self.backend, "ready", None)
        return bool(probe()) if callable(probe) else True


def _label_target(outputs: list[TensorSpec], labels: Labels) -> tuple[TensorSpec, int]:
    """The output a label file describes: class scores along an axis, else a class-index tensor."""
    for spec in outputs:
        if spec.shape and spec.shape[-1] in (labels.span, len(labels), labels.span + 1):
            return spec, LABEL_TYPE_TENSOR_AXIS
    for spec in outputs:
        lowered = spec.name.lower()
        if any(k in lowered for k in ("class", "categor", "label")) or lowered.endswith(":1"):
            return spec, LABEL_TYPE_TENSOR_VALUE
    return outputs[0], LABEL_TYPE_TENSOR_VALUE
