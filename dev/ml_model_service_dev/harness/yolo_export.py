"""The benchmark's YOLO11n ONNX export at 640 (harness.exports: Ultralytics' yaml architecture, calibrated random
weights, no weights downloaded) with about 1000 candidates past the NMS pre-filter on a photo, as a trained
model gives on a busy scene; and the exporters Python for the Ultralytics peer of the benchmark."""

from __future__ import annotations

import subprocess
from pathlib import Path

from .exports import EXPORTERS_PYTHON, export


def exporters_python() -> tuple[Path | None, str]:
    """(the exporters environment's python, "") or (None, why there is none)."""
    if EXPORTERS_PYTHON.is_file():
        check = subprocess.run(
            [str(EXPORTERS_PYTHON), "-c", "import torch, ultralytics"], capture_output=True, text=True, timeout=120
        )
        if check.returncode == 0:
            return EXPORTERS_PYTHON, ""
    return None, f"no exporters environment with torch and ultralytics at {EXPORTERS_PYTHON} (scripts/bootstrap.sh)"


def yolo11n_onnx(imgsz: int = 640, candidates: int = 1000) -> tuple[Path | None, str]:
    """(the calibrated YOLO11n export, "") or (None, why it cannot be made here)."""
    python, why = exporters_python()
    if python is None:
        return None, why
    try:
        return export("yolo11n.yaml", imgsz, candidates=candidates).path, ""
    except RuntimeError as exc:
        return None, str(exc)[-800:]
