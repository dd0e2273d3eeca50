"""The vision service's core: an RGB image in, named and filtered detections or classifications, or a class map,
out.

Works with any model runner that has `metadata` (ModelMetadata) and `infer(dict) -> dict`: a local
`Model`, or a client of a remote model service.
"""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from typing import Protocol

import numpy as np

from ..loading.labels import Labels
from ..metadata import ModelMetadata, TensorSpec
from .decoders.base import DETECTION_ROLES, DetectionDecoder, RawDetections
from .decoders.boxes import rotated_corners
from .decoders.classifier import ClassifierDecoder
from .decoders.registry import find_decoder
from .decoders.segmentation import SegmentationDecoder
from .hints import read_hints
from .input_plan import VisionConfig, choose_resize_mode, preprocess_config
from .masks import polygon_mask
from .preprocess import (
    RESIZE_MODES,
    InputLayout,
    PreprocessConfig,
    RoleError,
    Transform,
    infer_one,
    preprocess,
    size_inputs,
)
from .results import Classification, Detection, FilterConfig, Segmentation
from .runtime_check import differences

__all__ = ["Classification", "Detection", "FilterConfig", "ModelRunner", "Segmentation", "VisionConfig", "VisionModel"]


class ModelRunner(Protocol):
    """Anything that can describe and run a model."""

    metadata: ModelMetadata

    def infer(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]: ...


#: Side of the trial image for open input dimensions without a size (a multiple of every YOLO stride).
TRIAL_SIDE = 320
#: Longest one model run may be projected to take before an open-dimension input size is refused (seconds), and
#: the input size (pixels) up to which it is not projected (1280 x 1280: what detectors are trained at, at most).
MAX_RUN_S, BUDGET_FREE_PIXELS = 5.0, 1280 * 1280


class VisionModel:
    """A model understood as a detector, a classifier or a segmenter, found from its metadata and a trial run."""

    def __init__(self, runner: ModelRunner, labels: Labels | None, config: VisionConfig | None = None) -> None:
        self.runner = runner
        self.labels = labels
        self.config = config or VisionConfig()
        self.warnings: list[str] = []
        #: Each thread's last input tensor, refilled by its next frame (`_tensor(scratch=True)`).
        self._scratch = threading.local()
        metadata = runner.metadata
        describe = metadata.describe_tensors()
        self._check_config(metadata, describe)
        self.hints = read_hints(metadata, runner)
        spec = self._image_input(metadata)
        self.size_inputs = size_inputs(metadata, spec, describe)
        try:
            self.layout = InputLayout.from_spec(spec)
        except RoleError as exc:
            raise RoleError(f"{exc}. Model tensors: {describe}") from exc
        self._pre = preprocess_config(self.config, self.hints, self.layout, describe, self.warnings)
        trial_hw = self._trial_size(spec, describe)
        trial = self._trial_run(trial_hw, describe)
        pre, default = self.config.preprocess, PreprocessConfig()
        fed = (pre.bgr, pre.input_range, pre.pad_corner) != (default.bgr, default.input_range, default.pad_corner)
        decoding = replace(self.config.decoder, preprocessing_set=fed)
        self.decoder = find_decoder(
            metadata, trial, decoding, labels, self.hints, trial_hw, size_input=bool(self.size_inputs)
        )
        self._choose_resize_mode()
        self._check_any_size(trial_hw, describe)
        self._check_runtime()
        self._warn(spec, trial)

    def _check_config(self, metadata: ModelMetadata, describe: str) -> None:
        if not metadata.inputs:
            raise RoleError(f"the model has no inputs; tensors: {describe}")
        if self.config.resize_mode not in ("auto", *RESIZE_MODES):
            raise RoleError(f"resize_mode {self.config.resize_mode!r} is not one of auto, {', '.join(RESIZE_MODES)}")

    def _trial_size(self, spec: TensorSpec, describe: str) -> tuple[int, int]:
        """The model input size of the trial run: the fixed dimensions, else input_size (or the model's imgsz),
        else TRIAL_SIDE; refused above max_input_pixels."""
        trial_hw = (
            self.layout.height if self.layout.height > 0 else (self._pre.input_size or (TRIAL_SIDE,) * 2)[0],
            self.layout.width if self.layout.width > 0 else (self._pre.input_size or (TRIAL_SIDE,) * 2)[1],
        )
        if trial_hw[0] * trial_hw[1] > self._pre.max_input_pixels:
            raise RoleError(
                f"model input {spec.name!r} is {trial_hw[0]} x {trial_hw[1]} = {trial_hw[0] * trial_hw[1]} "
                f"pixels, above max_input_pixels ({self._pre.max_input_pixels}); refused before "
                f"allocating it. Model tensors: {describe}"
            )
        return trial_hw

    def _trial_run(self, trial_hw: tuple[int, int], describe: str) -> dict[str, np.ndarray]:
        """The model's outputs for a grey image of the trial size (what the decoder is chosen from)."""
        self._check_run_time(trial_hw)
        try:
            return self.run(self._tensor(np.full((*trial_hw, 3), 114, np.uint8))[0])
        except Exception as exc:
            hint = (
                "set input_size (the size the model was trained at)" if not self.layout.fixed else "no option can help"
            )
            raise RoleError(
                f"trial run at {trial_hw[0]} x {trial_hw[1]} failed: {exc}; {hint}. Model tensors: {describe}"
            ) from exc

    def _check_runtime(self) -> None:
        """`backend: auto`'s choice of another runtime than the file's own stands only where its decoded answers
        on photographs are the same (`runtime_check`); else the model runs on its file's own runtime."""
        reference_backend = getattr(self.runner, "reference_backend", None)
        reference = reference_backend() if reference_backend is not None else None
        if reference is None:
            return
        why = differences(self, reference.infer)
        if why:
            self.runner.fall_back(reference, why)  # type: ignore[attr-defined]

    def _check_any_size(self, trial_hw: tuple[int, int], describe: str) -> None:
        """An input that follows each image's own size (open dimensions, no size or resize rule, not rounded to a
        stride) must run at any size: many models need multiples of their stride (RT-DETR, D-FINE), and a camera
        image of another size would fail each frame with the runtime's error. Tried at an odd size here; refused
        with the option that works (the trial run's size, which just ran)."""
        pre = self._pre
        if self.layout.fixed or pre.input_size or pre.shortest_edge > 0 or pre.letterbox:
            return
        odd = (trial_hw[0] - 27, trial_hw[1] + 37)
        try:
            self.run(self._tensor(np.full((*odd, 3), 114, np.uint8))[0])
        except Exception as exc:  # noqa: BLE001 - the runtime's error, reported with the option that helps
            raise RoleError(
                f"input {self.layout.name!r} has open dimensions, and nothing gives a size (no input_size, no "
                f"imgsz metadata, no preprocessor_config.json), so each image would be fed at its own size; but "
                f"the model fails at {odd[0]} x {odd[1]} ({str(exc).splitlines()[0][:200]}) and runs at "
                f"{trial_hw[0]} x {trial_hw[1]}: set input_size to the size it was trained at (input_size: "
                f"[{trial_hw[0]}, {trial_hw[1]}] was tried and runs). Model tensors: {describe}"
            ) from exc

    def _check_run_time(self, trial_hw: tuple[int, int]) -> None:
        """Refuse an open-dimension input size whose one run would take longer than MAX_RUN_S here, projected from
        runs at TRIAL_SIDE (a 4096 x 4096 input_size made a 30 ms model take 33 s a frame, and the trial run
        itself held the node that long)."""
        pixels = trial_hw[0] * trial_hw[1]
        if self.layout.fixed or pixels <= BUDGET_FREE_PIXELS:
            return
        wanted, self._pre.input_size = self._pre.input_size, (TRIAL_SIDE, TRIAL_SIDE)
        try:
            inputs = self._tensor(np.full((TRIAL_SIDE, TRIAL_SIDE, 3), 114, np.uint8))[0]
            took = []
            for _ in range(2):  # the second run: without the first run's allocations
                started = time.perf_counter()
                self.run(inputs)
                took.append(time.perf_counter() - started)
        except Exception:  # noqa: BLE001 - a model that cannot run at the small size: the trial run decides
            return
        finally:
            self._pre.input_size = wanted
        projected = took[-1] * pixels / (TRIAL_SIDE * TRIAL_SIDE)
        if projected > MAX_RUN_S:
            raise RoleError(
                f"an input of {trial_hw[0]} x {trial_hw[1]} would take about {projected:.0f} s a run on this "
                f"machine ({1000 * took[-1]:.0f} ms at {TRIAL_SIDE} x {TRIAL_SIDE}), above the {MAX_RUN_S:.0f} s "
                "a run allowed; set a smaller input_size"
            )

    def _choose_resize_mode(self) -> None:
        """`resize_mode` auto made concrete for the decoder found, and applied to the preprocessing."""
        self.resize_mode = choose_resize_mode(self.config, self.role, self.hints, self._pre)

    def _warn(self, spec: TensorSpec, trial: dict[str, np.ndarray]) -> None:
        """Warnings about what the model and its labels leave open or disagree on."""
        labels = self.labels
        if not self.layout.fixed and self._pre.input_size is None and self.role in ("yolo", "end2end", "classifier"):
            self.warnings.append(
                f"input {spec.name!r} has open dimensions {list(spec.shape)} and neither input_size "
                "nor the model's imgsz metadata gives a size: it follows each image (rounded up to "
                "the stride); set input_size to the size the model was trained at"
            )
        if isinstance(self.decoder, SegmentationDecoder) and labels and self.decoder.num_classes > labels.span:
            self.warnings.append(
                f"the model scores {self.decoder.num_classes} classes but the labels cover {labels.span}; "
                "unlabelled indices are named by number"
            )
        if isinstance(self.decoder, ClassifierDecoder) and labels:
            size = self.decoder.score_count(trial)
            if size != labels.span:
                self.warnings.append(
                    f"the classifier gives {size} scores but the labels cover {labels.span} "
                    "classes; unlabelled indices are named by number"
                )
        n_classes = self.decoder.num_classes
        if labels and n_classes and n_classes < labels.span:
            self.warnings.append(
                f"the model scores {n_classes} classes but the labels cover {labels.span}; check "
                "that the label file belongs to this model"
            )

    def _image_input(self, metadata: ModelMetadata) -> TensorSpec:
        wanted = [n for n, role in self.config.remap_input_names.items() if role == "image"]
        for name in wanted:
            spec = next((s for s in metadata.inputs if s.name == name), None)
            if spec is None:
                raise RoleError(
                    f"remap_input_names names {name!r}, which is not an input of the model. Model "
                    f"tensors: {metadata.describe_tensors()}"
                )
            return spec
        return next((s for s in metadata.inputs if len(s.shape) in (3, 4)), metadata.inputs[0])

    @property
    def role(self) -> str:
        return self.decoder.role

    @property
    def detections_supported(self) -> bool:
        return self.role in DETECTION_ROLES

    @property
    def classifications_supported(self) -> bool:
        return self.role == "classifier"

    @property
    def segmentation_supported(self) -> bool:
        return self.role == "segmenter"

    @property
    def input_hw(self) -> tuple[int, int] | None:
        """The model input size when it does not follow the image."""
        if self.layout.fixed:
            return self.layout.height, self.layout.width
        return self._pre.input_size

    def _tensor(self, rgb: np.ndarray, scratch: bool = False):
        """The model's inputs for one image, and the transform back. `scratch`: into this thread's tensor of the
        last frame (a new one costs 0.5 ms more at 640 x 640 after an inference has left the caches cold); only
        for inputs used up before the thread's next frame."""
        out = getattr(self._scratch, "tensor", None) if scratch else None
        tensor, transform = preprocess(rgb, self.layout, self._pre, out)
        if scratch:
            self._scratch.tensor = tensor
        inputs = {self.layout.name: tensor}
        for spec in self.size_inputs:
            # Filled with the size of the model input, so boxes come back in model-input pixels and map to the
            # source image like any other detector's (whatever the resize mode; [w, h] order is moot when square).
            size = np.array([transform.input_width, transform.input_height], dtype=spec.data_type)
            inputs[spec.name] = size.reshape([1, 2] if len(spec.shape) == 2 else [2])
        return inputs, transform

    def class_name(self, index: int) -> str:
        return self.labels.name(index) if self.labels else str(int(index))

    def _outputs(self, rgb: np.ndarray, supported: bool, kind: str) -> tuple[dict[str, np.ndarray], Transform]:
        """The model's outputs for one image and the transform back; refused unless `supported` (the model is a
        `kind`)."""
        if not supported:
            raise RoleError(f"the model is a {self.role}, not a {kind}")
        inputs, transform = self._tensor(rgb, scratch=True)
        return self.run(inputs), transform

    def detect_raw(self, rgb: np.ndarray) -> RawDetections:
        """Unfiltered detections in source pixels."""
        return self.decode_detections(*self._outputs(rgb, self.detections_supported, "detector"))

    def decode_detections(self, outputs: dict[str, np.ndarray], transform: Transform) -> RawDetections:
        """A detector's outputs for one image → its candidates that the result filters can keep, after NMS."""
        decoder = self.decoder
        assert isinstance(decoder, DetectionDecoder)
        decoder.config.keep_floor = self.config.filters.floor  # the filters change at run time
        return decoder.decode(outputs, transform)

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The runner on one image's inputs (`preprocess.infer_one`: a fixed batch of N > 1 padded)."""
        return infer_one(self.runner.infer, self.layout, inputs)

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        """Detections kept by the filters, best first."""
        return self.keep_detections(self.detect_raw(rgb), rgb.shape[1], rgb.shape[0])

    def keep_detections(self, raw: RawDetections, width: int, height: int) -> list[Detection]:
        """Decoded detections of a width x height image → those the filters keep (with masks), best first."""
        found = []
        masks = raw.masks if self.config.masks else None
        for i, (box, score, cls) in enumerate(zip(raw.boxes, np.clip(raw.scores, 0.0, 1.0), raw.classes)):
            name = self.class_name(cls)  # (clip: rounding only)
            if self.config.filters.keep(name, float(score)) and box[2] > box[0] and box[3] > box[1]:
                x0, y0, x1, y1 = (float(v) for v in box)
                det = Detection(int(cls), name, float(score), x0, y0, x1, y1)
                if raw.rotated is not None:
                    det.rotated = tuple(float(v) for v in raw.rotated[i])  # type: ignore[assignment]
                    if self.config.masks:  # the rotated region: what 3D clouds and instance masks take
                        corners = rotated_corners(raw.rotated[i : i + 1])[0]
                        det.mask = polygon_mask(corners, det.box, width, height)
                if raw.keypoints is not None:
                    det.keypoints = raw.keypoints[i]
                if masks is not None:
                    det.mask = masks.mask(i, det.box, self.config.mask_threshold)
                found.append(det)
        found.sort(key=lambda d: -d.confidence)
        return found

    @property
    def segments(self) -> bool:
        """Whether the model gives instance masks."""
        return self.decoder.segments

    @property
    def keypoint_shape(self) -> tuple[int, int] | None:
        """Pose models: (keypoints, values per keypoint); None otherwise."""
        extras = getattr(self.decoder, "extras", None)
        return getattr(extras, "keypoints", None)

    @property
    def keypoint_names(self) -> tuple[str, ...]:
        """The keypoints' names where the model says them (as many as it has keypoints), else ()."""
        shape = self.keypoint_shape
        names = self.hints.kpt_names
        return names if shape and len(names) == shape[0] else ()

    def segment(self, rgb: np.ndarray) -> Segmentation:
        """The class of every pixel of the image."""
        return self.decode_segmentation(*self._outputs(rgb, self.segmentation_supported, "segmenter"))

    def decode_segmentation(self, outputs: dict[str, np.ndarray], transform: Transform) -> Segmentation:
        """A segmenter's outputs for one image → its class map at the image's size."""
        decoder = self.decoder
        assert isinstance(decoder, SegmentationDecoder)
        return Segmentation(decoder.decode(outputs, transform), self.class_name)

    def classify(self, rgb: np.ndarray, n: int = 5) -> list[Classification]:
        """Top n classifications kept by the filters (n <= 0: all)."""
        outputs, _ = self._outputs(rgb, self.classifications_supported, "classifier")
        return self.keep_classifications(outputs, n)

    def keep_classifications(self, outputs: dict[str, np.ndarray], n: int = 5) -> list[Classification]:
        """A classifier's outputs for one image → the top n kept by the filters."""
        probs = np.clip(self.decoder.decode(outputs), 0.0, 1.0)  # type: ignore[attr-defined]
        order = np.argsort(-probs, kind="stable")
        results = []
        for i in order:
            name = self.class_name(int(i))
            if self.config.filters.keep(name, float(probs[i])):
                results.append(Classification(int(i), name, float(probs[i])))
                if 0 < n <= len(results):
                    break
        return results
