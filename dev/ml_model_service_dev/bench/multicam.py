"""The multi-camera row of `make bench`: one vision node with K cameras against K single-camera nodes, one run.

K cameras (default 4) publish a 640x480 photograph at 7.5 Hz each, in the same run (best effort, depth 1,
like camera drivers): `staggered` (their frames evenly spread over the period, as free-running cameras
drift) and `aligned` (every camera's frame at the same instant: synchronised cameras, the worst case for a
model that runs one frame at a time). First into one node with `cameras: [cam0, ...]` and the bundled SSD
(a batch-1 model: the frames run in turn), then into K single-camera nodes started together. Per camera:
frames answered / sent and the latency stamp → `detections` received; per setup: node CPU per answered frame
(all threads of every node process) against the CPU of one single-threaded raw run of the same model in the
same run (before and after the node windows), and the resident memory (RSS) after the window.
`python3 -m ml_model_service_dev.bench.multicam --seconds 20` runs this row alone; `make bench` runs it after its
node rows. Options: --seconds, --cameras, --setups (one, many or both).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from ..system import isolate_dds, rss_mib
from .common import PacedLoop, machine, photograph
from .peer import raw_call

MULTICAM_HZ = 7.5
TARGETS = {"answered": 0.95, "median_ms": 24.0, "cpu_ratio": 1.4, "rss_mib": 320.0}


def raw_single_cpu_ms(frame: np.ndarray, runs: int = 60) -> float:
    """CPU ms of one single-threaded raw run of the bundled SSD, paced at the cameras' combined rate."""
    from ml_model_service.core.loading.model import Model
    from ml_model_service.core.reading.vision import VisionModel

    model = Model("ssd_mobilenet_v2_coco", providers=["cpu"], num_threads=1)
    inputs, _ = VisionModel(model, model.labels)._tensor(frame)
    loop = PacedLoop(raw_call(model, inputs), 30.0, own_thread=True)
    loop.block(runs)
    return loop.result().cpu_ms


def streams_together(cameras, nodes, rate: float, seconds: float, aligned: bool) -> tuple[dict[str, list[int]], float]:
    """Every camera publishes at `rate` for `seconds` (all at once, or each offset by period / K); stamps
    per camera and the CPU seconds of all `nodes` over the window."""
    period, count = 1.0 / rate, max(1, round(rate * seconds))
    stamps: dict[str, list[int]] = {c.ns: [] for c in cameras}
    offsets = [0.0 if aligned else j * period / len(cameras) for j in range(len(cameras))]
    sends = sorted((i * period + offsets[j], j) for i in range(count) for j in range(len(cameras)))
    cpu0 = [n.cpu() for n in nodes]
    start = time.perf_counter()
    for at, j in sends:
        delay = start + at - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        stamps[cameras[j].ns].append(cameras[j].publish())
    time.sleep(max(0.0, start + count * period - time.perf_counter()))
    return stamps, sum(n.cpu() - c0 for n, c0 in zip(nodes, cpu0))


def measure(nodes, cameras, seconds: float, aligned: bool, rate: float = MULTICAM_HZ) -> dict:
    """Warm up until every camera is answered, then the timed window; the figures of the setup."""
    from .stream import BenchError

    for c, node in zip(cameras, nodes * len(cameras) if len(nodes) == 1 else nodes):
        if c.sub is None:
            c.listen(vision=node)
    deadline = time.monotonic() + 60
    while True:
        stamps, _ = streams_together(cameras, nodes, rate, 2.0, aligned)
        if all(any(s in c.arrivals for s in stamps[c.ns]) for c in cameras):
            break
        if time.monotonic() > deadline:
            raise BenchError("not every camera was answered within 60 s")
    stamps, cpu = streams_together(cameras, nodes, rate, seconds, aligned)
    time.sleep(1.0)
    for n in nodes:
        n.check()
    per_camera, latencies = {}, []
    for c in cameras:
        lat = [(c.arrivals[s] - s) / 1e6 for s in stamps[c.ns] if s in c.arrivals]
        per_camera[c.ns] = (len(lat), len(stamps[c.ns]), statistics.median(lat) if lat else float("nan"))
        latencies += lat
    answered = sum(a for a, _, _ in per_camera.values())
    return {
        "per_camera": per_camera,
        "median_ms": statistics.median(latencies) if latencies else float("nan"),
        "p95_ms": float(np.percentile(latencies, 95)) if latencies else float("nan"),
        "cpu_per_frame_ms": 1000 * cpu / answered if answered else float("nan"),
        "rss_mib": sum(rss_mib(n.proc.pid) for n in nodes),
    }


def multicam_rows(frame: np.ndarray, seconds: float, k: int = 4, setups: str = "both") -> list[str]:
    """Markdown rows: one node with k cameras, then k single-camera nodes, one run."""
    from .stream import Camera, Client, NodeProcess

    tmp = Path(tempfile.mkdtemp(prefix="bench-multicam-"))
    base = f"/mc_{os.getpid()}"
    names = [f"cam{i}" for i in range(k)]
    raw_before = raw_single_cpu_ms(frame)
    client = Client()
    figures = {}
    try:
        for setup in ("reference", "one node", f"{k} nodes"):
            if (setups == "one" and setup == f"{k} nodes") or (setups == "many" and setup == "one node"):
                continue
            if setup == "reference":  # one camera carrying all k cameras' frames: the single-camera path's cost
                nodes = [NodeProcess.start("vision_service", tmp, {}, f"{base}/ref")]
                cameras = [Camera(client, f"{base}/ref", frame)]
            elif setup == "one node":
                nodes = [NodeProcess.start("vision_service", tmp, {"cameras": names}, f"{base}/one")]
                cameras = [Camera(client, f"{base}/one/{n}", frame) for n in names]
            else:
                nodes = [NodeProcess.start("vision_service", tmp, {}, f"{base}/{n}") for n in names]
                cameras = [Camera(client, f"{base}/{n}", frame) for n in names]
            try:
                for node in nodes:
                    client.wait_ready(node)
                time.sleep(2.0)
                if setup == "reference":
                    print(f"[bench] reference: 1 camera at {k * MULTICAM_HZ:g} Hz, {seconds:.0f} s", flush=True)
                    figures[(setup, "")] = measure(nodes, cameras, seconds, False, k * MULTICAM_HZ)
                    continue
                for phase in ("staggered", "aligned"):
                    print(f"[bench] {setup}: {k} cameras at {MULTICAM_HZ} Hz, {phase}, {seconds:.0f} s", flush=True)
                    figures[(setup, phase)] = measure(nodes, cameras, seconds, phase == "aligned")
            finally:
                for c in cameras:
                    c.close()
                for node in nodes:
                    node.stop()
    finally:
        client.close()
    raw = (raw_before + raw_single_cpu_ms(frame)) / 2
    every = [(s, p) for s in ("one node", f"{k} nodes") for p in ("staggered", "aligned")] + [("reference", "")]
    columns = [c for c in every if c in figures]
    titles = {"one node": "one node, `cameras`, ", f"{k} nodes": f"{k} single-camera nodes, ", "reference": ""}
    rows = [
        f"| {k} cameras × 640x480 at {MULTICAM_HZ} Hz, bundled SSD | "
        + " | ".join(
            f"{titles[setup]}{phase}" if setup != "reference" else f"reference: 1 camera at {k * MULTICAM_HZ:g} Hz"
            for setup, phase in columns
        )
        + " | target (one node) |",
        "|---" * (len(columns) + 2) + "|",
    ]

    def least(f: dict) -> float:
        return min(a / s for a, s, _ in f["per_camera"].values())

    def row(title: str, cell, target: str) -> None:
        rows.append(f"| {title} | " + " | ".join(cell(figures[c]) for c in columns) + f" | {target} |")

    row(
        "frames answered / sent, per camera",
        lambda f: ", ".join(f"{a}/{s}" for a, s, _ in f["per_camera"].values()) + f" (least {least(f):.2f})",
        "≥ 0.95 each",
    )
    row(
        "latency stamp → `detections`: median (p95)",
        lambda f: f"{f['median_ms']:.1f} ms ({f['p95_ms']:.1f})",
        "≤ 24 ms",
    )
    row(
        f"node CPU per answered frame ÷ one single-threaded raw run ({raw:.1f} ms)",
        lambda f: f"{f['cpu_per_frame_ms']:.1f} ms = {f['cpu_per_frame_ms'] / raw:.2f}x",
        "≤ 1.4x",
    )
    row("resident memory (RSS), all node processes", lambda f: f"{f['rss_mib']:.0f} MiB", "≤ 320 MiB")
    for phase in ("staggered", "aligned") if setups != "many" else ():
        one = figures[("one node", phase)]
        met = (
            least(one) >= TARGETS["answered"]
            and one["median_ms"] <= TARGETS["median_ms"]
            and one["cpu_per_frame_ms"] / raw <= TARGETS["cpu_ratio"]
            and one["rss_mib"] <= TARGETS["rss_mib"]
        )
        rows.append(f"\none node with {k} cameras, {phase}: {'every target met' if met else 'a target MISSED'}")
    return rows


def batching_rows(frames: int = 4, rounds: int = 40, backend: str = "onnx") -> list[str]:
    """Markdown rows: a model with a dynamic batch axis (the real YOLOv8n `dynamic=True` export, harness.exports)
    on `frames` 640x480 photographs, one call for all against one call each, in turn, same run and threads."""
    from ml_model_service.core.loading.model import Model
    from ml_model_service.core.reading.batch import batch_support, detect_batch
    from ml_model_service.core.reading.vision import VisionModel

    from ..harness.exports import export
    from ..harness.photos import photo

    try:
        path = export("yolov8n.yaml", 640, dynamic=True).path
    except RuntimeError as exc:
        return [f"batching row skipped: {str(exc)[:200]}"]
    names = ("motorcycle", "astronaut", "coffee", "chelsea")
    rgbs = [cv2.resize(photo(names[i % 4]), (640, 480), interpolation=cv2.INTER_AREA) for i in range(frames)]
    model = Model(str(path), providers=["cpu"], backend=backend)
    vision = VisionModel(model, model.labels)
    size = batch_support(vision).size
    same = detect_batch(vision, rgbs) == [vision.detect(r) for r in rgbs]
    turn, batched = [], []
    for _ in range(rounds):  # alternating, so both see the same machine
        t = time.perf_counter()
        for r in rgbs:
            vision.detect(r)
        turn.append(time.perf_counter() - t)
        t = time.perf_counter()
        detect_batch(vision, rgbs)
        batched.append(time.perf_counter() - t)
    a, b = statistics.median(turn), statistics.median(batched)
    return [
        f"| YOLOv8n `dynamic=True` at 640, {frames} frames of 640x480 | in turn ({frames} calls) | batched (1 call) |",
        "|---|---|---|",
        f"| frames per second (median of {rounds} rounds) | {frames / a:.1f} | {frames / b:.1f} ({a / b:.2f}x) |",
        f"| same detections as one frame a call | — | {'yes' if same else 'NO'} (batch size {size}) |",
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each timed window")
    parser.add_argument("--cameras", type=int, default=4, help="cameras (K)")
    parser.add_argument("--setups", choices=("one", "many", "both"), default="both", help="which setups to run")
    parser.add_argument("--batching", action="store_true", help="only the batching row (no nodes)")
    args = parser.parse_args()
    if args.batching:
        print("\n".join(batching_rows()))
        return 0
    isolate_dds()
    print(f"machine: {machine()}; load average {os.getloadavg()[0]:.2f}")
    rows = multicam_rows(photograph(), args.seconds, args.cameras, args.setups)
    print("\n".join(rows))
    print(f"(load average at the end {os.getloadavg()[0]:.2f})")
    return 0 if "MISSED" not in "".join(rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
