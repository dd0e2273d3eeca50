"""What every export script here does around its export (make_segmentation.py, make_hf_detection.py,
make_rfdetr_yolox.py, each run in its own environment with this folder on its path): its arguments, and a work
folder that becomes the output whole or not at all, with the reference's timing."""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np


def arguments(description: str, models: Sequence[str], required: bool = True) -> argparse.ArgumentParser:
    """`--model` (one of `models`), `--out` and `--photos`; the script adds its own."""
    parser = argparse.ArgumentParser(description=description.split("\n\n")[0])
    parser.add_argument("--model", required=required, choices=models)
    parser.add_argument("--out", required=required, type=Path)
    parser.add_argument("--photos", nargs="+", type=Path, required=required)
    return parser


def run(out: Path, make: Callable[[Path], dict], check: Callable[[dict], list[str]] | None = None) -> dict:
    """`make(work)` in a fresh work folder beside `out`, its reference (with `seconds`) written there as
    reference.json; the folder then replaces `out`, unless `check` finds failures (it is kept for a look)."""
    work = out.with_name(out.name + ".work")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    started = time.monotonic()
    reference = make(work)
    reference["seconds"] = round(time.monotonic() - started, 1)
    (work / "reference.json").write_text(json.dumps(reference, indent=1))
    failures = check(reference) if check else []
    if failures:
        raise SystemExit(f"{out.name}: " + "; ".join(failures) + f" (left in {work})")
    shutil.rmtree(out, ignore_errors=True)
    work.rename(out)  # whole or not at all
    return reference


def weights_digest(net: Any) -> str:
    """A short SHA-256 of a torch module's weights (the made model's identity in its reference)."""
    digest = hashlib.sha256()
    for key, value in sorted(net.state_dict().items()):
        digest.update(key.encode())
        digest.update(value.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def read_image(path: Path) -> np.ndarray:
    """The photo at `path` as cv2 reads it (BGR, cv2.IMREAD_COLOR), failing with its name where it cannot be read."""
    import cv2  # here: not every script's environment needs it

    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise SystemExit(f"cannot read the image {path}")
    return image
