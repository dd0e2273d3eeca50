"""A loaded model: backend + labels + Viam-style metadata, and where models are found.

A model reference is a file path, the name of a model in a model repository (a folder holding
`<name>/` folders with one model file and optional `labels.txt`, or `<name>.onnx` / `<name>.tflite`
files with `<name>.txt` beside them), or the name of a bundled model.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .backends import DEFAULT_PROVIDERS, ModelLoadError, open_backend
from .labels import Labels, embedded_labels, load_labels
from .metadata import (
    LABEL_TYPE_TENSOR_AXIS,
    LABEL_TYPE_TENSOR_VALUE,
    AssociatedFile,
    ModelMetadata,
    TensorSpec,
)
from .tensors import check_inputs

BUNDLED_DIR = Path(__file__).resolve().parent.parent / "models"
MODEL_SUFFIXES = (".onnx", ".tflite")


@dataclass(frozen=True)
class BundledModel:
    file: str
    labels: str
    description: str


#: Models shipped with the package (see models/PROVENANCE.md).
BUNDLED: dict[str, BundledModel] = {
    "ssd_mobilenet_v2_coco": BundledModel(
        "ssd_mobilenet_v2_coco_qdq.onnx", "coco_labels.txt",
        "SSD MobileNet V2 COCO detector (int8 QDQ ONNX, TFLite detection post-processing)"),
    "ssd_mobilenet_v2_coco_tflite": BundledModel(
        "mobilenet_ssd_v2_coco_quant_postprocess.tflite", "coco_labels.txt",
        "SSD MobileNet V2 COCO detector (int8 TFLite, Coral)"),
    "efficientnet_lite0": BundledModel(
        "efficientnet_lite0_qdq.onnx", "imagenet_labels.txt",
        "EfficientNet-Lite0 ImageNet classifier (int8 QDQ ONNX; uint8 softmax output, value/256)"),
    "efficientnet_lite0_tflite": BundledModel(
        "efficientnet_lite0.tflite", "imagenet_labels.txt", "EfficientNet-Lite0 ImageNet classifier (int8 TFLite)"),
}
DEFAULT_DETECTOR = "ssd_mobilenet_v2_coco"
DEFAULT_CLASSIFIER = "efficientnet_lite0"


def _labels_beside(model: Path) -> Path | None:
    for candidate in (model.parent / "labels.txt", model.with_suffix(".txt"),
                      model.parent / f"{model.stem}_labels.txt", model.parent / f"{model.stem}.labels.txt"):
        if candidate.is_file():
            return candidate
    return None


def resolve_model(ref: str, repository: str | Path | None = None) -> tuple[Path, Path | None, str]:
    """(model file, label file or None, description) for a path, a repository name or a bundled name."""
    ref = (ref or DEFAULT_DETECTOR).strip()
    path = Path(ref).expanduser()
    if path.suffix.lower() in MODEL_SUFFIXES or path.is_file() or "/" in ref:
        if not path.is_file():
            raise ModelLoadError(f"model file not found: {path}")
        return path, _labels_beside(path), ""
    if repository:
        repo = Path(repository).expanduser()
        folder = repo / ref
        if folder.is_dir():
            files = sorted(p for p in folder.iterdir() if p.suffix.lower() in MODEL_SUFFIXES)
            if len(files) != 1:
                raise ModelLoadError(f"model folder {folder} must hold exactly one .onnx or .tflite file, has {files}")
            return files[0], _labels_beside(files[0]), ""
        for suffix in MODEL_SUFFIXES:
            if (repo / f"{ref}{suffix}").is_file():
                return repo / f"{ref}{suffix}", _labels_beside(repo / f"{ref}{suffix}"), ""
    if ref in BUNDLED:
        b = BUNDLED[ref]
        return BUNDLED_DIR / b.file, BUNDLED_DIR / b.labels, b.description
    names = sorted(BUNDLED) + (repository_models(repository) if repository else [])
    raise ModelLoadError(f"no model file, repository model or bundled model named {ref!r}; known names: {names}")


def repository_models(repository: str | Path) -> list[str]:
    """Names of the models in a repository folder."""
    repo = Path(repository).expanduser()
    if not repo.is_dir():
        return []
    names = [p.name for p in repo.iterdir() if p.is_dir() and any(q.suffix in MODEL_SUFFIXES for q in p.iterdir())]
    names += [p.stem for p in repo.iterdir() if p.is_file() and p.suffix in MODEL_SUFFIXES]
    return sorted(names)


class Model:
    """A model ready to serve: validated `infer`, labels, and metadata with the label file attached."""

    def __init__(self, ref: str = "", label_path: str = "", *, repository: str | Path | None = None,
                 backend: str = "auto", providers: list[str] | tuple[str, ...] = DEFAULT_PROVIDERS,
                 num_threads: int = 0) -> None:
        model_path, found_labels, description = resolve_model(ref, repository)
        self.path = model_path
        self.backend = open_backend(model_path, backend, providers, num_threads)
        self.warnings = list(self.backend.warnings)
        label_file = Path(label_path).expanduser() if label_path else found_labels
        if label_file is not None:
            self.labels: Labels | None = load_labels(label_file)
        else:
            self.labels = embedded_labels(model_path, self.backend.embedded_metadata)
        self.metadata = self._metadata(description or self.backend.description)

    def _metadata(self, description: str) -> ModelMetadata:
        inputs = [TensorSpec(s.name, s.data_type, list(s.shape), s.description, [], dict(s.extra))
                  for s in self.backend.inputs]
        outputs = [TensorSpec(s.name, s.data_type, list(s.shape), s.description, [], dict(s.extra))
                   for s in self.backend.outputs]
        if outputs:
            outputs[0].extra.update(self.backend.info)
            if self.labels:
                outputs[0].extra["labels"] = self.labels.source
                target, label_type = _label_target(outputs, self.labels)
                target.associated_files.append(
                    AssociatedFile(self.labels.source, f"{len(self.labels)} class labels", label_type))
        return ModelMetadata(name=self.path.stem, type=self.backend.kind, description=description,
                             inputs=inputs, outputs=outputs)

    def infer(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Check the inputs against the model (names, types, shapes), run, return outputs in model order."""
        check_inputs(self.metadata.inputs, inputs)
        return self.backend.infer(dict(inputs))


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
