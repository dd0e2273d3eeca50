"""Real detection exports made by frameworks other than Ultralytics, each with the framework's own post-processing
of the exported file on the photos as the reference:

- Hugging Face transformers' DETR family (exporters/make_hf_detection.py, in `build/hf-exporters-venv`:
  optimum's `optimum-cli export onnx` for DETR, YOLOS, RT-DETR, RT-DETRv2 and D-FINE; `torch.onnx.export` with the
  config and image processor saved beside it for Conditional, Deformable and DAB-DETR), each a folder as the
  exporter leaves it;
- RF-DETR (its own export) and YOLOX (its tools/export_onnx.py, with decoding)
  (exporters/make_rfdetr_yolox.py, in `build/rfdetr-yolox-venv`).

Cached beside the other exports under ~/.cache/ml_model_service/exports/fw-<key> (MMS_EXPORTS_CACHE moves it),
keyed by the script and its environment's pins; made under the same lock.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import cv2

from ..paths import EXPORTERS, SCRIPTS
from .exports import REQUIREMENTS, ROOT, _cache, made_once, photo_files


@dataclass(frozen=True)
class Maker:
    """A script that makes exports, the environment it runs in and its pins."""

    script: Path
    venv: str
    requirements: Path

    @property
    def python(self) -> Path:
        return ROOT / "build" / self.venv / "bin" / "python"


HF = Maker(EXPORTERS / "make_hf_detection.py", "hf-exporters-venv", SCRIPTS / "requirements-hf-exporters.txt")
#: The Hugging Face detectors and what exports each, as the framework's docs say.
HF_DETECTORS = (
    "detr",
    "yolos",
    "rt_detr",
    "rt_detr_v2",
    "d_fine",
    "conditional_detr",
    "deformable_detr",
    "dab_detr",
)
RFDETR_YOLOX = Maker(EXPORTERS / "make_rfdetr_yolox.py", "rfdetr-yolox-venv", SCRIPTS / "requirements-rfdetr-yolox.txt")
#: YOLOX's source (its PyPI sdist; setup.py builds C++ ops the export does not use), fetched by the bootstrap.
YOLOX_SRC = ROOT / "build" / "rfdetr-yolox-venv" / "yolox-0.3.0"
#: RF-DETR's exports (the COCO head; a fine-tuned head of five classes with its label file) and YOLOX-s with
#: decoding. RF-DETR's reference resizes float tensors, ours uint8 images: its photos are given at its input size.
RFDETR_YOLOX_MODELS = {"rfdetr-coco": (384, 384), "rfdetr-finetuned": (384, 384), "yolox": None}
TIMEOUT_S = 900


@dataclass
class FrameworkExport:
    """An export (`path`: the folder or the model file a user gives), the framework's detections on each photo
    (`predictions[i]`: xyxy, cls, conf in the photo's pixels) and the reference's facts (`info`)."""

    path: Path
    folder: Path
    info: dict
    photos: list[Path]

    @property
    def predictions(self) -> list[dict]:
        return list(self.info["predictions"])

    @property
    def threshold(self) -> float:
        return float(self.info["threshold"])


def _folder(maker: Maker, name: str) -> Path:
    key = hashlib.sha256(maker.script.read_bytes() + maker.requirements.read_bytes() + REQUIREMENTS.read_bytes())
    return _cache().parent / f"fw-{key.hexdigest()[:16]}" / name


def sized_photos(size: tuple[int, int]) -> list[Path]:
    """The photos resized to (height, width) with OpenCV's INTER_AREA, so that no resampling differs."""
    paths = []
    for path in photo_files():
        sized = path.parent.parent / f"photos-{size[0]}x{size[1]}" / path.name
        if not sized.exists():
            sized.parent.mkdir(parents=True, exist_ok=True)
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            assert image is not None, f"unreadable photo: {path}"
            cv2.imwrite(str(sized), cv2.resize(image, (size[1], size[0]), interpolation=cv2.INTER_AREA))
        paths.append(sized)
    return paths


def framework_export(maker: Maker, name: str, size: tuple[int, int] | None = None, *args: str) -> FrameworkExport:
    """The export `name` of `maker`, made once and cached, on the photos (at `size`, (height, width), if given);
    `args`: more arguments of the script."""
    if not maker.python.exists():
        raise RuntimeError(f"no environment at {maker.python}: run scripts/bootstrap.sh (without MMS_EXPORTERS=0)")
    photos = sized_photos(size) if size else photo_files()
    out = _folder(maker, name)
    cmd = [str(maker.python), str(maker.script), "--model", name, "--out", str(out), "--photos"]
    info = made_once(out, cmd + [str(p) for p in photos] + list(args), f"export of {name}", TIMEOUT_S)
    model = out / info["file"] if info.get("file") else out
    return FrameworkExport(path=model, folder=out, info=info, photos=photos)


def hf_detector(name: str) -> FrameworkExport:
    """A Hugging Face detector's export folder (one of HF_DETECTORS)."""
    if name not in HF_DETECTORS:
        raise ValueError(f"unknown Hugging Face detector {name!r}: one of {', '.join(HF_DETECTORS)}")
    return framework_export(HF, name)


def rfdetr_or_yolox(name: str) -> FrameworkExport:
    """RF-DETR's or YOLOX's export (one of RFDETR_YOLOX_MODELS)."""
    if name not in RFDETR_YOLOX_MODELS:
        raise ValueError(f"unknown export {name!r}: one of {', '.join(RFDETR_YOLOX_MODELS)}")
    extra = ("--yolox-src", str(YOLOX_SRC)) if name == "yolox" else ()
    return framework_export(RFDETR_YOLOX, name, RFDETR_YOLOX_MODELS[name], *extra)
