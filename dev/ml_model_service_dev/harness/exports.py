"""Real exports made by their exporters (exporters/make_export.py, run in the exporters environment
`build/exporters-venv`), with the exporter's own predictions on the same file as the reference.

Exports are cached under ~/.cache/ml_model_service/exports/<key> (MMS_EXPORTS_CACHE moves it), keyed by the
exporters' pinned requirements and the export script, so a second run (and CI after its first) reuses them.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..paths import EXPORTERS, REPO, SCRIPTS
from .photos import photo

ROOT = REPO
SCRIPT = EXPORTERS / "make_export.py"
REQUIREMENTS = SCRIPTS / "requirements-exporters.txt"
EXPORTERS_PYTHON = Path(os.environ.get("EXPORTERS_PYTHON", ROOT / "build" / "exporters-venv" / "bin" / "python"))
#: The photos every export is predicted on (scikit-image's; the first is the Middlebury motorcycle).
PHOTOS = ("motorcycle", "astronaut", "coffee", "chelsea")
#: The keypoint names a COCO-pose dataset gives its models (Ultralytics' coco-pose.yaml), for pose exports.
COCO_KEYPOINTS = [
    "nose",
    "left_eye",
    "right_eye",
    "left_ear",
    "right_ear",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
]


def _cache() -> Path:
    key = hashlib.sha256(SCRIPT.read_bytes() + REQUIREMENTS.read_bytes()).hexdigest()[:16]
    base = os.environ.get("MMS_EXPORTS_CACHE") or Path.home() / ".cache" / "ml_model_service" / "exports"
    return Path(base) / key


@dataclass
class Export:
    """An exported model (file or folder), and the exporter's predictions on each photo."""

    path: Path
    reference: dict
    photo_paths: list[Path]

    @property
    def task(self) -> str:
        return self.reference["task"]

    def image(self, index: int) -> np.ndarray:
        """Photo `index` as RGB, read from the same PNG the exporter predicted on."""
        bgr = cv2.imread(str(self.photo_paths[index]))
        assert bgr is not None, f"unreadable photo: {self.photo_paths[index]}"
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

    def expected(self, index: int) -> dict:
        return self.reference["photos"][index]


def photo_files() -> list[Path]:
    folder = _cache() / "photos"
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{name}.png" for name in PHOTOS]
    for name, path in zip(PHOTOS, paths):
        if not path.exists():
            cv2.imwrite(str(path), cv2.cvtColor(photo(name), cv2.COLOR_RGB2BGR))
    return paths


def made_once(out: Path, cmd: list[str], what: str, timeout: float) -> dict:
    """`cmd` run (under the exports' lock) unless `out` holds its reference.json already; that reference. Raises
    RuntimeError naming `what` when the run fails or overruns `timeout` seconds."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(_cache() / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (out / "reference.json").exists():
            try:
                done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
            except subprocess.TimeoutExpired as exc:
                raise RuntimeError(f"{what} took over {timeout:.0f} s") from exc
            if done.returncode or not (out / "reference.json").exists():
                raise RuntimeError(
                    f"{what} failed (exit {done.returncode}): {done.stderr[-3000:]}{done.stdout[-1000:]}"
                )
    return json.loads((out / "reference.json").read_text())


def export(arch: str, imgsz: int = 640, candidates: int = 0, **export_args: object) -> Export:
    """`arch` (an Ultralytics yaml: yolo11n.yaml, yolo11n-pose.yaml, rtdetr-l.yaml...) exported with
    `export_args` (format defaults to onnx), made once and cached. `candidates`: its class layers shifted so that
    many candidates of the first photo pass 0.05 (for the benchmark's NMS load); 0: as calibrated."""
    if not EXPORTERS_PYTHON.exists():
        raise RuntimeError(
            f"no exporters environment at {EXPORTERS_PYTHON}: run scripts/bootstrap.sh (without MMS_EXPORTERS=0)"
        )
    args = [f"{k}={v}" for k, v in sorted(export_args.items())]
    name = "-".join([Path(arch).stem, str(imgsz), *[a.replace("=", "_") for a in args]])
    name += f"-c{candidates}" if candidates else ""
    out = _cache() / name
    photos = photo_files()
    cmd = [str(EXPORTERS_PYTHON), str(SCRIPT), "--arch", arch, "--out", str(out), "--imgsz", str(imgsz)]
    cmd += ["--photos", *map(str, photos)]
    for a in args:
        cmd += ["--export-arg", a]
    if candidates:
        cmd += ["--candidates", str(candidates)]
    if "pose" in arch:
        cmd += ["--kpt-names", *COCO_KEYPOINTS]
    reference = made_once(out, cmd, f"export of {name}", 900)
    return Export(out / reference["file"], reference, photos)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    x0, y0 = max(a[0], b[0]), max(a[1], b[1])
    x1, y1 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _rotated_iou(a: tuple, b: tuple) -> float:
    """IoU of two oriented boxes (x, y, w, h, theta); a negative side (an untrained head's) is the same rectangle."""
    a, b = (*a[:2], abs(a[2]), abs(a[3]), a[4]), (*b[:2], abs(b[2]), abs(b[3]), b[4])
    ra = ((a[0], a[1]), (a[2], a[3]), float(np.degrees(a[4])))
    rb = ((b[0], b[1]), (b[2], b[3]), float(np.degrees(b[4])))
    kind, region = cv2.rotatedRectangleIntersection(ra, rb)
    inter = cv2.contourArea(region) if region is not None and len(region) > 2 else 0.0
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def _angle_gap(a: float, b: float) -> float:
    """Difference of two box angles, modulo the half turn that gives the same rectangle."""
    d = (a - b) % np.pi
    return float(min(d, np.pi - d))


#: Acceptance tolerances (issue 22): box IoU, score, theta (rad), keypoints (px).
MIN_IOU, SCORE_TOL, THETA_TOL, KPT_TOL = 0.8, 0.01, 0.05, 2.0


def compare(ours: list[dict], expected: dict, size: tuple[int, int], threshold: float = 0.25) -> list[str]:
    """What differs between our detections (CLI JSON objects) and the exporter's on one photo: each of the
    exporter's detections must be ours too (same class, box IoU, score, theta, keypoints), and ours no more
    (detections within SCORE_TOL of the threshold may fall on either side). `size`: the photo's (width, height);
    the exporter's boxes are taken within it, as ours are (Ultralytics' RT-DETR leaves them past the border)."""
    problems: list[str] = []
    ref_boxes = np.asarray(expected.get("xyxy", []), np.float64).reshape(-1, 4)
    ref_boxes = np.clip(ref_boxes, 0, [size[0], size[1], size[0], size[1]])
    used: set[int] = set()
    for i, box in enumerate(ref_boxes):
        cls, conf = expected["cls"][i], expected["conf"][i]
        if "xywhr" not in expected and (box[2] <= box[0] or box[3] <= box[1]):
            continue  # an inverted box (an untrained head's): no object, which ours drop
        best, best_iou = None, 0.0
        for j, det in enumerate(ours):
            if j in used or det["class_id"] != cls:
                continue
            if "xywhr" in expected and float(np.abs(np.asarray(expected["xywhr"][i][2:4])).min()) < 3:
                ref_c = np.asarray(expected["xywhr"][i][:2])
                iou = 1.0 if "theta" in det and np.abs(ref_c - [det["center_x"], det["center_y"]]).max() <= 0.5 else 0.0
            elif "xywhr" in expected:
                iou = _rotated_iou(
                    tuple(expected["xywhr"][i]),
                    (det["center_x"], det["center_y"], det["size_x"], det["size_y"], det["theta"])
                    if "theta" in det
                    else (0, 0, 0, 0, 0),
                )
            else:
                got = np.array([det["x_min"], det["y_min"], det["x_max"], det["y_max"]])
                # (boxes a few pixels wide: IoU is dominated by the JSON's 0.1 px rounding; within 0.5 px is the same)
                iou = 1.0 if float(np.abs(got - box).max()) <= 0.5 else _iou(box, got)
            if iou > best_iou:
                best, best_iou = j, iou
        if best is None or best_iou < MIN_IOU:
            if conf > threshold + SCORE_TOL:
                problems.append(f"exporter's #{i} (class {cls}, {conf:.3f}, {box.round(1).tolist()}) not found")
            continue
        used.add(best)
        det = ours[best]
        if abs(det["confidence"] - conf) > SCORE_TOL:
            problems.append(f"#{i}: score {det['confidence']} vs the exporter's {conf:.4f}")
        if "xywhr" in expected and _angle_gap(det["theta"], expected["xywhr"][i][4]) > THETA_TOL:
            problems.append(f"#{i}: theta {det['theta']} vs the exporter's {expected['xywhr'][i][4]:.4f}")
        if "keypoints" in expected:
            ref_kpts = np.asarray(expected["keypoints"][i], np.float64)
            got = np.asarray(det.get("keypoints", []), np.float64)
            if got.shape != ref_kpts.shape:
                problems.append(f"#{i}: keypoints {got.shape} vs the exporter's {ref_kpts.shape}")
            else:
                gap = float(np.abs(got[:, :2] - ref_kpts[:, :2]).max())
                if gap > KPT_TOL or float(np.abs(got[:, 2:] - ref_kpts[:, 2:]).max(initial=0)) > SCORE_TOL:
                    problems.append(f"#{i}: keypoints differ by up to {gap:.2f} px")
    for j, det in enumerate(ours):
        if j not in used and det["confidence"] > threshold + SCORE_TOL:
            problems.append(f"ours #{j} ({det['class_id']}, {det['confidence']}) is not the exporter's")
    return problems
