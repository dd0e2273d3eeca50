#!/usr/bin/env python3
"""Export an Ultralytics YOLO architecture (no weights: none are ever downloaded) to ONNX with calibrated random
weights, so that it behaves like a trained model where speed is concerned: BatchNorm statistics taken from real
photographs (without them every candidate scores the same and every box is the same size), and the class layer
shifted so that about `--candidates` of the candidates score above `--threshold` (default: the decoders' NMS
pre-filter, nms_score_threshold 0.05) on the first photograph: what NMS gets from a trained model on a busy
scene. The other photographs only add to the BatchNorm statistics. Runs in the exporters environment (torch,
ultralytics, onnx):

    build/exporters-venv/bin/python scripts/export_yolo.py --out DIR [--model yolo11n.yaml] [--imgsz 640]
        [--candidates 1000] [--threshold 0.05] photo1.png photo2.png ...

Prints one JSON object: the file, and the candidate counts above the threshold per photograph.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path

os.environ.setdefault("YOLO_OFFLINE", "1")


def letterbox(path: str, size: int):
    """A photograph as the float NCHW tensor Ultralytics feeds (RGB, [0, 1], letterboxed with 114 grey)."""
    import cv2
    import numpy as np

    bgr = cv2.imread(path)
    h, w = bgr.shape[:2]
    scale = min(size / h, size / w)
    nh, nw = round(h * scale), round(w * scale)
    canvas = np.full((size, size, 3), 114, np.uint8)
    top, left = (size - nh) // 2, (size - nw) // 2
    canvas[top : top + nh, left : left + nw] = cv2.resize(bgr, (nw, nh), interpolation=cv2.INTER_LINEAR)
    return canvas[..., ::-1].transpose(2, 0, 1).astype(np.float32)[None] / 255.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("photos", nargs="+")
    parser.add_argument("--out", required=True)
    parser.add_argument("--model", default="yolo11n.yaml")
    parser.add_argument("--imgsz", type=int, default=640)
    parser.add_argument("--candidates", type=int, default=1000)
    parser.add_argument("--threshold", type=float, default=0.05)
    args = parser.parse_args()
    import torch
    from ultralytics import YOLO

    torch.manual_seed(0)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    os.chdir(out)  # Ultralytics writes next to the working directory
    yolo = YOLO(args.model)
    net = yolo.model
    batch = torch.from_numpy(__import__("numpy").concatenate([letterbox(p, args.imgsz) for p in args.photos]))
    bns = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None  # a cumulative average over the calibration batches
    net.train()
    with torch.no_grad():
        for _ in range(2):
            net(batch)
    net.eval()
    head = net.model[-1]
    last = [branch[-1] for branch in head.cv3]  # each level's final class convolution
    with torch.no_grad():
        for conv in last:
            conv.bias.zero_()
        scores = net(batch)[0][:, 4:, :]  # (photos, classes, candidates), after the sigmoid
        logits = torch.logit(scores.clamp(1e-6, 1 - 1e-6)).amax(dim=1)  # best class per candidate
        spread = float(logits.std())
        gain = 1.5 / max(spread, 1e-6)  # logits spread like a trained head's: few far above the threshold
        for conv in last:
            conv.weight.mul_(gain)
        logits = logits * gain
        k = min(args.candidates, logits.shape[1])
        kth = float(logits[0].topk(k).values[-1])  # the count is set on the first photograph
        shift = math.log(args.threshold / (1 - args.threshold)) - kth
        for conv in last:
            conv.bias.fill_(shift)
        counts = [int(c) for c in (net(batch)[0][:, 4:, :].amax(dim=1) > args.threshold).sum(dim=1)]
    file = yolo.export(format="onnx", imgsz=args.imgsz)
    print(json.dumps({"file": str(Path(file).resolve()), "candidates_above_threshold": counts}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
