#!/usr/bin/env python3
"""The Ultralytics peer of `make bench`: Ultralytics' predictor (what yolo_ros runs) on an exported ONNX file, in
the exporters environment, driven by bench/peer.py over stdin/stdout so that its blocks of frames can be
taken in turn with ours:

    python peer_ultralytics.py MODEL.onnx FRAME.npy IMGSZ CONF IOU MAX_DET

Each stdin line `N` runs N frames back to back and answers one JSON line: per-frame wall ms, Ultralytics' own
inference ms (its runtime call) per frame, this process's CPU ms per frame, detections on the last frame.
"""

from __future__ import annotations

import json
import os
import sys
import time

os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("YOLO_VERBOSE", "False")


def main() -> int:
    model_path, frame_path, imgsz, conf, iou, max_det = sys.argv[1:7]
    out, sys.stdout = sys.stdout, sys.stderr  # Ultralytics' own messages go to stderr; stdout is the protocol
    import numpy as np
    from ultralytics import YOLO

    frame = np.load(frame_path)  # BGR, as Ultralytics takes numpy images
    model = YOLO(model_path, task="detect")
    args = dict(imgsz=int(imgsz), conf=float(conf), iou=float(iou), max_det=int(max_det), verbose=False)
    for _ in range(3):
        model.predict(frame, **args)
    print(json.dumps({"ready": True, "ultralytics": __import__("ultralytics").__version__}), file=out, flush=True)
    for line in sys.stdin:
        runs = int(line.strip() or 0)
        if runs <= 0:
            break
        walls, calls, found = [], [], 0
        cpu0 = time.process_time()
        for _ in range(runs):
            t0 = time.perf_counter()
            result = model.predict(frame, **args)[0]
            walls.append((time.perf_counter() - t0) * 1000)
            calls.append(float(result.speed["inference"]))
            found = len(result.boxes)
        cpu = (time.process_time() - cpu0) * 1000 / runs
        answer = {"wall_ms": walls, "inference_ms": calls, "cpu_ms": cpu, "detections": found}  # its own figures
        print(json.dumps(answer), file=out, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
