#!/usr/bin/env python3
"""The multi-camera row of `make bench`: one vision node with K cameras against K single-camera nodes, one run.

K cameras (default 4) publish a 640x480 photograph together at 7.5 Hz (best effort, depth 1, like camera
drivers), first into one node with `cameras: [cam0, ...]` and the bundled SSD (a batch-1 model: the frames
run in turn), then into K single-camera nodes started together; per camera the frames answered / sent and the
latency stamp → `detections` received; per setup the node CPU per answered frame (all of each process's
threads) against the CPU of one single-threaded raw run of the same model measured in the same run (before
and after the node windows), and the resident memory (RSS) after the window. `python3 scripts/bench_multicam.py
--seconds 20` runs this row alone; `benchmark.py` runs it after its node rows.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("ROS_DOMAIN_ID", str(random.randint(101, 199)))
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

MULTICAM_HZ = 7.5
TARGETS = {"answered": 0.95, "median_ms": 24.0, "cpu_ratio": 1.4, "rss_mib": 320.0}


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def raw_single_cpu_ms(frame: np.ndarray, runs: int = 60) -> float:
    """CPU ms of one single-threaded raw run of the bundled SSD, paced at the cameras' combined rate."""
    from benchmark import PacedLoop, raw_call

    from ml_model_service.core.loading.model import Model
    from ml_model_service.core.reading.vision import VisionModel

    model = Model("ssd_mobilenet_v2_coco", providers=["cpu"], num_threads=1)
    inputs, _ = VisionModel(model, model.labels)._tensor(frame)
    loop = PacedLoop(raw_call(model, inputs), 30.0, own_thread=True)
    loop.block(runs)
    return loop.result().cpu_ms


def streams_together(cameras, nodes, rate: float, seconds: float) -> tuple[dict[str, list[int]], float]:
    """Every camera publishes at `rate` for `seconds`, frames sent together; stamps per camera and the CPU
    seconds of all `nodes` over the window."""
    period, count = 1.0 / rate, max(1, round(rate * seconds))
    stamps: dict[str, list[int]] = {c.ns: [] for c in cameras}
    cpu0 = [n.cpu() for n in nodes]
    start = time.perf_counter()
    for i in range(count):
        delay = start + i * period - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        for c in cameras:
            stamps[c.ns].append(c.publish())
    time.sleep(max(0.0, start + count * period - time.perf_counter()))
    return stamps, sum(n.cpu() - c0 for n, c0 in zip(nodes, cpu0))


def measure(nodes, cameras, seconds: float) -> dict:
    """Warm up until every camera is answered, then the timed window; the figures of the setup."""
    from bench_stream import BenchError

    for c, node in zip(cameras, nodes * len(cameras) if len(nodes) == 1 else nodes):
        c.listen(vision=node)
    deadline = time.monotonic() + 60
    while True:
        stamps, _ = streams_together(cameras, nodes, MULTICAM_HZ, 2.0)
        if all(any(s in c.arrivals for s in stamps[c.ns]) for c in cameras):
            break
        if time.monotonic() > deadline:
            raise BenchError("not every camera was answered within 60 s")
    stamps, cpu = streams_together(cameras, nodes, MULTICAM_HZ, seconds)
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


def multicam_rows(frame: np.ndarray, seconds: float, k: int = 4) -> list[str]:
    """Markdown rows: one node with k cameras, then k single-camera nodes, one run."""
    from bench_stream import Camera, Client, NodeProcess

    tmp = Path(tempfile.mkdtemp(prefix="bench-multicam-"))
    base = f"/mc_{os.getpid()}"
    names = [f"cam{i}" for i in range(k)]
    raw_before = raw_single_cpu_ms(frame)
    client = Client()
    figures = {}
    try:
        for setup in ("one node", f"{k} nodes"):
            if setup == "one node":
                nodes = [NodeProcess.start("vision_service", tmp, {"cameras": names}, f"{base}/one")]
                cameras = [Camera(client, f"{base}/one/{n}", frame) for n in names]
            else:
                nodes = [NodeProcess.start("vision_service", tmp, {}, f"{base}/{n}") for n in names]
                cameras = [Camera(client, f"{base}/{n}", frame) for n in names]
            try:
                for node in nodes:
                    client.wait_ready(node)
                time.sleep(2.0)
                print(f"[bench] {setup}: {k} cameras at {MULTICAM_HZ} Hz, {seconds:.0f} s", flush=True)
                figures[setup] = measure(nodes, cameras, seconds)
            finally:
                for c in cameras:
                    c.close()
                for node in nodes:
                    node.stop()
    finally:
        client.close()
    raw = (raw_before + raw_single_cpu_ms(frame)) / 2
    rows = [
        f"| {k} cameras × 640x480 at {MULTICAM_HZ} Hz, bundled SSD | one node, `cameras` ({k}) | {k} single-camera "
        "nodes | target (one node) |",
        "|---|---|---|---|",
    ]
    one, many = figures["one node"], figures[f"{k} nodes"]

    def answered(f: dict) -> str:
        return ", ".join(f"{a}/{s}" for a, s, _ in f["per_camera"].values()) + (
            f" (least {min(a / s for a, s, _ in f['per_camera'].values()):.2f})"
        )

    rows.append(f"| frames answered / sent, per camera | {answered(one)} | {answered(many)} | ≥ 0.95 each |")
    rows.append(
        f"| latency stamp → `detections`: median (p95) | {one['median_ms']:.1f} ms ({one['p95_ms']:.1f}) | "
        f"{many['median_ms']:.1f} ms ({many['p95_ms']:.1f}) | ≤ 24 ms |"
    )
    rows.append(
        f"| node CPU per answered frame ÷ one single-threaded raw run ({raw:.1f} ms) | "
        f"{one['cpu_per_frame_ms']:.1f} ms = {one['cpu_per_frame_ms'] / raw:.2f}x | "
        f"{many['cpu_per_frame_ms']:.1f} ms = {many['cpu_per_frame_ms'] / raw:.2f}x | ≤ 1.4x |"
    )
    rows.append(
        f"| resident memory (RSS), all node processes | {one['rss_mib']:.0f} MiB | {many['rss_mib']:.0f} MiB "
        "| ≤ 320 MiB |"
    )
    verdict = (
        min(a / s for a, s, _ in one["per_camera"].values()) >= TARGETS["answered"]
        and one["median_ms"] <= TARGETS["median_ms"]
        and one["cpu_per_frame_ms"] / raw <= TARGETS["cpu_ratio"]
        and one["rss_mib"] <= TARGETS["rss_mib"]
    )
    rows.append(f"\none node with {k} cameras: {'every target met' if verdict else 'a target MISSED'}")
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each timed window")
    parser.add_argument("--cameras", type=int, default=4, help="cameras (K)")
    args = parser.parse_args()
    from benchmark import machine, photograph

    print(f"machine: {machine()}; load average {os.getloadavg()[0]:.2f}")
    rows = multicam_rows(photograph(), args.seconds, args.cameras)
    print("\n".join(rows))
    print(f"(load average at the end {os.getloadavg()[0]:.2f})")
    return 0 if "every target met" in rows[-1] else 1


if __name__ == "__main__":
    sys.exit(main())
