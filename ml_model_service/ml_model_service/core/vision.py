"""The vision service's core: an RGB image in, named and filtered detections or classifications out.

Works with any model runner that has `metadata` (ModelMetadata) and `infer(dict) -> dict`: a local
`Model`, or a client of a remote model service.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from .decoders import ClassifierDecoder, DecoderConfig, RawDetections, find_decoder
from .labels import Labels
from .metadata import ModelMetadata
from .preprocess import InputLayout, PreprocessConfig, RoleError, preprocess


class ModelRunner(Protocol):
    """Anything that can describe and run a model."""

    metadata: ModelMetadata

    def infer(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]: ...


@dataclass
class Detection:
    """One object: class, confidence and a box in source-image pixels."""

    class_index: int
    class_name: str
    confidence: float
    x_min: float
    y_min: float
    x_max: float
    y_max: float

    def to_dict(self) -> dict:
        return {"class_name": self.class_name, "confidence": round(self.confidence, 4),
                "x_min": round(self.x_min, 1), "y_min": round(self.y_min, 1),
                "x_max": round(self.x_max, 1), "y_max": round(self.y_max, 1)}


@dataclass
class Classification:
    class_index: int
    class_name: str
    confidence: float

    def to_dict(self) -> dict:
        return {"class_name": self.class_name, "confidence": round(self.confidence, 4)}


@dataclass
class FilterConfig:
    """Which results are kept."""

    confidence_threshold: float = 0.5
    label_confidences: dict[str, float] = field(default_factory=dict)  # listed labels only, each its minimum
    classes: list[str] = field(default_factory=list)  # keep only these (empty = all)

    def keep(self, name: str, score: float) -> bool:
        if self.classes and name not in self.classes:
            return False
        if self.label_confidences:
            minimum = self.label_confidences.get(name)
            return minimum is not None and score >= minimum
        return score >= self.confidence_threshold


@dataclass
class VisionConfig:
    """Everything that shapes how a model is read (see the vision node's parameters)."""

    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)
    decoder: DecoderConfig = field(default_factory=DecoderConfig)
    filters: FilterConfig = field(default_factory=FilterConfig)
    resize_mode: str = "auto"  # auto (letterbox for YOLO, stretch otherwise) | stretch | letterbox
    remap_input_names: dict[str, str] = field(default_factory=dict)  # model tensor name -> "image"


class VisionModel:
    """A model understood as a detector or a classifier, found from its metadata and a trial run."""

    def __init__(self, runner: ModelRunner, labels: Labels | None, config: VisionConfig | None = None) -> None:
        self.runner = runner
        self.labels = labels
        self.config = config or VisionConfig()
        self.warnings: list[str] = []
        metadata = runner.metadata
        if not metadata.inputs:
            raise RoleError(f"the model has no inputs; tensors: {metadata.describe_tensors()}")
        image_inputs = [n for n, role in self.config.remap_input_names.items() if role == "image"]
        spec = next((s for s in metadata.inputs if s.name in image_inputs), metadata.inputs[0])
        try:
            self.layout = InputLayout.from_spec(spec)
        except RoleError as exc:
            raise RoleError(f"{exc}. Model tensors: {metadata.describe_tensors()}") from exc
        self._pre = PreprocessConfig(**vars(self.config.preprocess))
        try:
            trial = runner.infer(self._tensor(np.full((48, 64, 3), 114, np.uint8))[0])
        except Exception as exc:
            raise RoleError(f"trial run on a small image failed: {exc}. Model tensors: "
                            f"{metadata.describe_tensors()}") from exc
        self.decoder = find_decoder(metadata, trial, self.config.decoder, labels)
        if self.config.resize_mode == "letterbox" or (self.config.resize_mode == "auto" and self.role == "yolo"):
            self._pre.letterbox = True
        if isinstance(self.decoder, ClassifierDecoder) and labels:
            size = int(np.prod(np.asarray(trial[self.decoder.tensor]).shape)) - self.decoder.background_offset
            if size != labels.span:
                self.warnings.append(f"the classifier gives {size} scores but the labels cover {labels.span} "
                                     "classes; unlabelled indices are named by number")

    @property
    def role(self) -> str:
        return self.decoder.role

    @property
    def detections_supported(self) -> bool:
        return self.role in ("detector", "yolo")

    @property
    def classifications_supported(self) -> bool:
        return self.role == "classifier"

    def _tensor(self, rgb: np.ndarray):
        tensor, transform = preprocess(rgb, self.layout, self._pre)
        return {self.layout.name: tensor}, transform

    def class_name(self, index: int) -> str:
        return self.labels.name(index) if self.labels else str(int(index))

    def detect_raw(self, rgb: np.ndarray) -> RawDetections:
        """Unfiltered detections in source pixels."""
        if not self.detections_supported:
            raise RoleError(f"the model is a {self.role}, not a detector")
        inputs, transform = self._tensor(rgb)
        return self.decoder.decode(self.runner.infer(inputs), transform)

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        """Detections kept by the filters, best first."""
        raw = self.detect_raw(rgb)
        found = []
        for box, score, cls in zip(raw.boxes, raw.scores, raw.classes):
            name = self.class_name(cls)
            if self.config.filters.keep(name, float(score)) and box[2] > box[0] and box[3] > box[1]:
                found.append(Detection(int(cls), name, float(score), *map(float, box)))
        found.sort(key=lambda d: -d.confidence)
        return found

    def classify(self, rgb: np.ndarray, n: int = 5) -> list[Classification]:
        """Top n classifications kept by the filters (n <= 0: all)."""
        if not self.classifications_supported:
            raise RoleError(f"the model is a {self.role}, not a classifier")
        inputs, _ = self._tensor(rgb)
        probs = self.decoder.decode(self.runner.infer(inputs))
        order = np.argsort(-probs, kind="stable")
        results = []
        for i in order:
            name = self.class_name(int(i))
            if self.config.filters.keep(name, float(probs[i])):
                results.append(Classification(int(i), name, float(probs[i])))
                if 0 < n <= len(results):
                    break
        return results
