"""A real Ultralytics YOLO11n ONNX export at 640 (architecture only, random weights calibrated on photographs by
scripts/export_yolo.py; no weights are downloaded), made in the exporters environment and cached under
~/.cache/ml_model_service/exports, and the exporters Python for the Ultralytics peer of the benchmark."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import tempfile
from pathlib import Path

import cv2

from .photos import photo

ROOT = Path(__file__).resolve().parents[3]
EXPORTER = ROOT / "scripts" / "export_yolo.py"
PROBE = Path.home() / ".cache" / "ml_model_service" / "exporters-probe" / "bin" / "python"
CALIBRATION_PHOTOS = ("motorcycle", "astronaut", "coffee", "chelsea")


def exporters_python() -> tuple[Path | None, str]:
    """(the exporters environment's python, "") or (None, why there is none): build/exporters-venv, else the
    probe environment, where torch and ultralytics import."""
    for candidate in (ROOT / "build" / "exporters-venv" / "bin" / "python", PROBE):
        if candidate.is_file():
            check = subprocess.run(
                [str(candidate), "-c", "import torch, ultralytics"], capture_output=True, text=True, timeout=120
            )
            if check.returncode == 0:
                return candidate, ""
    return None, f"no exporters environment with torch and ultralytics (looked for build/exporters-venv and {PROBE})"


def yolo11n_onnx(imgsz: int = 640, candidates: int = 1000) -> tuple[Path | None, str]:
    """(the calibrated YOLO11n export, "") or (None, why it cannot be made here). Cached by the exporter's text
    and the arguments: a changed exporter makes a new file."""
    key = hashlib.sha256(EXPORTER.read_bytes() + f"{imgsz},{candidates}".encode()).hexdigest()[:12]
    folder = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ml_model_service" / "exports"
    target = folder / f"yolo11n-{imgsz}-{key}.onnx"
    if target.is_file():
        return target, ""
    python, why = exporters_python()
    if python is None:
        return None, why
    with tempfile.TemporaryDirectory(prefix="yolo-export-") as tmp:
        photos = []
        for name in CALIBRATION_PHOTOS:  # the first as the benchmark's frame (640x480): its candidate count is set
            rgb = photo(name)
            if not photos:
                rgb = cv2.resize(rgb, (640, 480), interpolation=cv2.INTER_AREA)
            photos.append(str(Path(tmp) / f"{name}.png"))
            cv2.imwrite(photos[-1], cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        env = {**os.environ, "YOLO_OFFLINE": "1", "YOLO_CONFIG_DIR": tmp}
        run = subprocess.run(
            [str(python), str(EXPORTER), "--out", tmp, "--imgsz", str(imgsz), "--candidates", str(candidates), *photos],
            capture_output=True,
            text=True,
            timeout=600,
            env=env,
        )
        if run.returncode != 0:
            return None, f"the export failed: {run.stderr.strip()[-800:]}"
        made = Path(json.loads(run.stdout.strip().splitlines()[-1])["file"])
        folder.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(".part")
        partial.write_bytes(made.read_bytes())
        partial.replace(target)
    return target, ""
