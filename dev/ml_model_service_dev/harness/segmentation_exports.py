"""Real semantic-segmentation exports made by their frameworks (exporters/make_segmentation.py, run in the
exporters environment `build/exporters-venv`), with the framework's own class maps on the same file as the
reference: torchvision's LRASPP and DeepLabV3 (MobileNetV3) and an argmax-ending LRASPP, and Hugging Face
transformers' SegFormer (an export folder: model.onnx, config.json, preprocessor_config.json).

Cached beside the detection exports (harness.exports) under ~/.cache/ml_model_service/exports/seg-<key>
(MMS_EXPORTS_CACHE moves it), keyed by the script and the exporters' pinned requirements; made under the same lock.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..paths import EXPORTERS
from .exports import EXPORTERS_PYTHON, REQUIREMENTS, _cache, made_once, photo_files

SCRIPT = EXPORTERS / "make_segmentation.py"
#: The models make_segmentation.py makes.
SEGMENTATION_MODELS = ("lraspp", "deeplabv3", "lraspp-argmax", "segformer")
TIMEOUT_S = 900


def _seg_cache() -> Path:
    key = hashlib.sha256(SCRIPT.read_bytes() + REQUIREMENTS.read_bytes()).hexdigest()[:16]
    return _cache().parent / f"seg-{key}"


def _read_map(path: Path) -> np.ndarray:
    found = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if found is None:
        raise FileNotFoundError(path)
    return found.astype(np.int64)


def _rgb(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert bgr is not None, f"unreadable photo: {path}"
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


@dataclass
class SegExport:
    """A segmentation export and the framework's class maps on each photo.

    `path`: model.onnx (torchvision) or the export folder (segformer). `photos`: the photos fed, already at the
    model's input size (cv2 INTER_LINEAR), so both sides see the same pixels; `native_photos` (segformer): the
    photos at their own sizes, whose reference used the image processor's own resize."""

    path: Path
    folder: Path
    info: dict
    photos: list[Path]
    native_photos: list[Path]
    labels: list[str]

    @property
    def input_size(self) -> tuple[int, int]:
        """(height, width) of the model's input."""
        return tuple(self.info["input_size"])

    def image(self, index: int) -> np.ndarray:
        """Photo `index` (at the model's input size) as RGB uint8."""
        return _rgb(self.photos[index])

    def native_image(self, index: int) -> np.ndarray:
        return _rgb(self.native_photos[index])

    def reference(self, index: int) -> np.ndarray:
        """The framework's class map [H, W] (int64 class ids) on photo `index`, made from the ONNX file."""
        return _read_map(self.folder / self.info["reference"][index])

    def native_reference(self, index: int) -> np.ndarray:
        """segformer: the class map on the native photo `index` (the image processor's resize, the logits
        upsampled to the photo's size)."""
        if "native_reference" not in self.info:
            raise ValueError(f"{self.info['model']} has no native-photo references")
        return _read_map(self.folder / self.info["native_reference"][index])


def segmentation_export(name: str) -> SegExport:
    """The export `name` (one of SEGMENTATION_MODELS), made once and cached."""
    if name not in SEGMENTATION_MODELS:
        raise ValueError(f"unknown segmentation export {name!r}: one of {', '.join(SEGMENTATION_MODELS)}")
    if not EXPORTERS_PYTHON.exists():
        raise RuntimeError(
            f"no exporters environment at {EXPORTERS_PYTHON}: run scripts/bootstrap.sh (without MMS_EXPORTERS=0)"
        )
    photos = photo_files()
    out = _seg_cache() / name
    cmd = [str(EXPORTERS_PYTHON), str(SCRIPT), "--model", name, "--out", str(out), "--photos"]
    info = made_once(out, cmd + [str(p) for p in photos], f"segmentation export of {name}", TIMEOUT_S)
    return SegExport(
        path=out if name == "segformer" else out / info["file"],
        folder=out,
        info=info,
        photos=[out / p for p in info["photos"]],
        native_photos=[out / p for p in info.get("native_photos", [])],
        labels=list(info["labels"]),
    )
