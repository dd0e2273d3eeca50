"""Every bundled model on every CPU runtime that can run it (onnxruntime, LiteRT/TFLite, OpenVINO), in one
run: median inference time and the ratio to the fastest for that model, and which one `backend: auto`
uses (marked *). Runs are interleaved (round robin, several rounds) so that load from other processes on
a shared machine falls on every runtime alike (many short rounds track changing load best); compare
ratios, not absolute times, across machines.

    python3 -m ml_model_service_dev.bench.runtimes [--rounds 40] [--iters 5] [--threads 0] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from ml_model_service.core.loading.bundled import BUNDLED, BUNDLED_DIR
from ml_model_service.core.loading.model import Model
from ml_model_service.core.runtimes.backend import ModelLoadError
from ml_model_service.core.runtimes.registry import open_backend
from ml_model_service.core.runtimes.threads import default_threads

#: Model families: name → the bundled names holding its files.
FAMILIES = {
    "ssd_mobilenet_v2_coco (detector)": ("ssd_mobilenet_v2_coco", "ssd_mobilenet_v2_coco_tflite"),
    "efficientnet_lite0 (classifier)": ("efficientnet_lite0", "efficientnet_lite0_tflite"),
}
#: openvino_f32: OpenVINO kept at float32 (what `backend: auto` measures where OpenVINO's default bf16 changes
#: the outputs).
RUNTIMES = {".onnx": ("onnx", "openvino", "openvino_f32"), ".tflite": ("tflite", "openvino", "openvino_f32")}


def candidates(threads: int) -> list[dict]:
    """Every (family, file, runtime) that loads here."""
    rows: list[dict] = []
    for family, names in FAMILIES.items():
        for name in names:
            path = BUNDLED_DIR / BUNDLED[name].file
            for runtime in RUNTIMES[path.suffix]:
                row: dict[str, Any] = {"model": family, "bundled": name, "file": path.name, "runtime": runtime}
                try:
                    backend = open_backend(path, runtime, ["cpu"], threads)
                except ModelLoadError as exc:
                    text = " ".join(str(exc).split())
                    row["error"] = text[text.rfind(":", 0, len(text) - 2) + 1 :].strip()[-160:]
                    rows.append(row)
                    continue
                rng = np.random.default_rng(0)
                feeds = {
                    s.name: rng.integers(0, 256, [d if d > 0 else 1 for d in s.shape]).astype(s.data_type)
                    for s in backend.inputs
                }
                for _ in range(5):  # warm-up (lazy allocation, first-run compilation)
                    backend.infer(feeds)
                row.update(backend=backend, feeds=feeds, times=[])
                rows.append(row)
    return rows


def run(rows: list[dict], rounds: int, iters: int) -> None:
    """Round robin: each round runs every candidate `iters` times, in a rotating order."""
    live = [r for r in rows if "backend" in r]
    for k in range(rounds):
        order = live[k % len(live) :] + live[: k % len(live)]
        for row in order:
            for _ in range(iters):
                t = time.perf_counter()
                row["backend"].infer(row["feeds"])
                row["times"].append((time.perf_counter() - t) * 1000)


def _auto_here(name: str) -> str:
    """The runtime `backend: auto` uses for bundled `name` on this machine, as Model resolves it (the fastest
    measured here whose outputs match the file's own runtime's; runtimes.choice)."""
    backend = Model(name, providers=["cpu"]).backend
    choice = getattr(backend, "choice", None)
    return choice.runtime if choice is not None else backend.kind


def report(rows: list[dict], threads: int) -> list[dict]:
    """Print the table; returns the rows as plain dicts."""
    out = []
    print(
        f"CPU runtimes, {threads} thread(s); median ms over interleaved runs; ratio to the fastest for the model; "
        "* = what backend auto uses for the bundled name"
    )
    for family, names in FAMILIES.items():
        mine = [r for r in rows if r["model"] == family]
        chosen = {(n, _auto_here(n)) for n in names}
        timed = [r for r in mine if r.get("times")]
        best = min(statistics.median(r["times"]) for r in timed)
        print(f"\n{family}")
        for r in sorted(mine, key=lambda r: statistics.median(r["times"]) if r.get("times") else 1e9):
            if not r.get("times"):
                print(f"   {r['runtime']:<12} {r['file']:<48} cannot run it: {r['error']}")
                out.append({k: v for k, v in r.items() if k in ("model", "file", "runtime", "error")})
                continue
            auto = (r["bundled"], r["runtime"]) in chosen
            med = statistics.median(r["times"])
            print(
                f" {'*' if auto else ' '} {r['runtime']:<12} {r['file']:<48} {med:7.2f} ms  x{med / best:4.2f}"
                f"{'  (auto for ' + r['bundled'] + ')' if auto else ''}"
            )
            out.append(
                {
                    "model": family,
                    "file": r["file"],
                    "runtime": r["runtime"],
                    "median_ms": round(med, 3),
                    "ratio": round(med / best, 3),
                    "auto_for": r["bundled"] if auto else "",
                    "runs": len(r["times"]),
                }
            )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--iters", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="0 = one per core (the suite's default)")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv)
    threads = default_threads(args.threads)
    rows = candidates(args.threads)
    run(rows, args.rounds, args.iters)
    out = report(rows, threads)
    if args.json:
        Path(args.json).write_text(json.dumps({"threads": threads, "rows": out}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
