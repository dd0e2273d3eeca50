"""Side by side with Ultralytics' predictor (what yolo_ros runs): a real YOLO11n export at 640 (harness.yolo_export:
architecture only, random weights calibrated so that about 1000 candidates pass the NMS pre-filter on the frame),
on a 640x480 photograph, in one run:

- Ultralytics `YOLO(file).predict` on the same ONNX file, in the exporters environment (bench/peer_ultralytics.py,
  a subprocess; skipped, with the reason, where there is none), with the same thresholds as ours (conf 0.5 =
  our confidence_threshold default and yolo_ros's threshold, iou 0.45, max_det 100): the same detections;
- our pipeline (`VisionModel.detect`: preprocessing, the runtime call, decoding and NMS, filters) on `backend: auto`
  and on each runtime (onnxruntime; OpenVINO at its default precision, bf16 on CPUs with AVX512-BF16 or AMX; OpenVINO
  at f32), and auto with one inference thread; with the runtime call alone on the same input;
- the bundled SSD's pipeline against its call.

Blocks of frames are taken in turn (every configuration, then again), back to back, our pipeline and its runtime
call alternating frame by frame; per-frame wall ms (median), CPU ms per frame (mean; the process, all its
threads), ratios. Compare ratios of one run; absolute figures move on a shared
machine.

    python3 -m ml_model_service_dev.bench.peer [--runs 20] [--blocks 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from ml_model_service.core.loading.model import Model
from ml_model_service.core.reading.vision import VisionModel

from ..harness.photos import photo
from ..harness.yolo_export import exporters_python, yolo11n_onnx

PEER = Path(__file__).resolve().parent / "peer_ultralytics.py"
#: Our defaults (confidence_threshold, iou_threshold, max_detections), given to Ultralytics alike.
NMS = {"conf": 0.5, "iou": 0.45, "max_det": 100}


def log(text: str) -> None:
    print(f"[peer {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def raw_call(model: Model, inputs: dict[str, np.ndarray]) -> Callable[[], object]:
    """The runtime's own call alone: session.run, interpreter.invoke (inputs set once) or an OpenVINO infer
    request."""
    backend = model.backend
    if hasattr(backend, "session"):
        session = backend.session
        names = [o.name for o in session.get_outputs()]
        return lambda: session.run(names, inputs)
    if hasattr(backend, "compiled"):  # OpenVINO: one infer request, as the backend keeps per thread
        request = backend.compiled.create_infer_request()
        return lambda: request.infer(inputs, share_inputs=True)
    if hasattr(backend, "interpreter"):
        interpreter = backend.interpreter
        for detail in interpreter.get_input_details():
            interpreter.set_tensor(detail["index"], np.ascontiguousarray(inputs[detail["name"]]))
        return interpreter.invoke
    raise RuntimeError(f"unknown backend {type(backend).__name__}: no session or interpreter")


class Worker:
    """One configuration in its own process (two OpenVINO models in one process slow each other down), driven
    over stdin/stdout: each request runs a block of frames and answers one JSON line."""

    def __init__(self, args: list[str], tmp: Path) -> None:
        env = {**os.environ, "YOLO_OFFLINE": "1", "YOLO_CONFIG_DIR": str(tmp)}
        self.proc = subprocess.Popen(
            args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=tmp, env=env
        )
        self.ready = json.loads(self._line())

    def _line(self) -> str:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"a benchmark worker ended (exit {self.proc.wait()}): {self.proc.args!r}")
        return line

    def request(self, n: int) -> dict:
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"{n}\n")
        self.proc.stdin.flush()
        return json.loads(self._line())

    def close(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.write("0\n")
            self.proc.stdin.close()
            self.proc.wait(30)


@dataclass
class Row:
    """One configuration's figures: per-frame wall and CPU ms, and its runtime call's ms (ours: the call alone,
    alternating with the pipeline frame by frame; Ultralytics: its own inference figure)."""

    label: str
    worker: Worker
    note: str = ""
    walls: list[float] = field(default_factory=list)
    cpus: list[float] = field(default_factory=list)
    calls: list[float] = field(default_factory=list)
    detections: int = 0

    def block(self, n: int) -> None:
        answer = self.worker.request(n)
        self.walls += answer["wall_ms"]
        self.cpus.append(answer["cpu_ms"])
        self.calls += answer.get("call_ms") or answer.get("inference_ms") or []
        self.detections = answer["detections"]

    @property
    def wall(self) -> float:
        return statistics.median(self.walls) if self.walls else float("nan")

    @property
    def cpu(self) -> float:
        return statistics.mean(self.cpus) if self.cpus else float("nan")

    @property
    def inner(self) -> float:
        return statistics.median(self.calls) if self.calls else float("nan")


def photograph() -> np.ndarray:
    return np.ascontiguousarray(cv2.resize(photo("motorcycle"), (640, 480), interpolation=cv2.INTER_AREA))


def worker_main(model_ref: str, backend: str, threads: int) -> int:
    """`--worker`: our pipeline (VisionModel.detect) and its runtime call alone, alternating frame by frame."""
    out, sys.stdout = sys.stdout, sys.stderr
    frame = photograph()
    started = time.perf_counter()
    model = Model(model_ref, providers=["cpu"], backend=backend, num_threads=threads)
    vision = VisionModel(model, model.labels)
    info = model.backend.info
    call = raw_call(model, vision._tensor(frame)[0])  # noqa: SLF001 - the call's input, as the pipeline makes it
    precision = info.get("inference_precision")
    ready = {
        "note": f"{info['backend']}{' ' + precision if precision else ''}",
        "choice": info.get("runtime_choice", ""),
        "load_s": round(time.perf_counter() - started, 2),
    }
    vision.detect(frame)
    call()
    print(json.dumps(ready), file=out, flush=True)
    for line in sys.stdin:
        n = int(line.strip() or 0)
        if n <= 0:
            break
        walls, cpus, calls, found = [], [], [], 0
        for _ in range(n):
            c0, t0 = time.process_time(), time.perf_counter()
            found = len(vision.detect(frame))
            t1, c1 = time.perf_counter(), time.process_time()
            call()
            calls.append((time.perf_counter() - t1) * 1000)
            walls.append((t1 - t0) * 1000)
            cpus.append((c1 - c0) * 1000)
        answer = {"wall_ms": walls, "cpu_ms": statistics.mean(cpus), "call_ms": calls, "detections": found}
        print(json.dumps(answer), file=out, flush=True)
    return 0


#: Our configurations: label, backend, inference threads (0: one per core).
OURS = (
    ("ours, `backend: auto` (the default)", "auto", 0),
    ("ours, onnxruntime", "onnx", 0),
    ("ours, OpenVINO (its default precision)", "openvino", 0),
    ("ours, OpenVINO f32", "openvino_f32", 0),
    ("ours, `backend: auto`, 1 inference thread", "auto", 1),
)


def measure(runs: int = 20, blocks: int = 3) -> tuple[list[Row], list[str]]:
    """Every configuration's row (blocks taken in turn, each in its own process) and notes (what was skipped,
    what auto chose and why)."""
    frame = photograph()
    notes: list[str] = []
    rows: list[Row] = []
    tmp = Path(tempfile.mkdtemp(prefix="bench-peer-"))
    yolo, why = yolo11n_onnx()
    me = [sys.executable, "-m", "ml_model_service_dev.bench.peer", "--worker"]
    try:
        if yolo is None:
            notes.append(f"YOLO11n rows skipped: {why}")
        else:
            python, why = exporters_python()
            if python is None:
                notes.append(f"Ultralytics row skipped: {why}")
            else:
                log("starting Ultralytics' predictor in the exporters environment")
                frame_file = tmp / "frame.npy"
                np.save(frame_file, np.ascontiguousarray(frame[..., ::-1]))  # BGR, as Ultralytics reads arrays
                args = [str(python), str(PEER), str(yolo), str(frame_file), "640", *(str(NMS[k]) for k in NMS)]
                worker = Worker(args, tmp)
                rows.append(Row(f"Ultralytics {worker.ready['ultralytics']} `predict`", worker, "onnxruntime"))
            for label, backend, threads in OURS:
                log(f"starting {label}")
                worker = Worker([*me, str(yolo), backend, str(threads)], tmp)
                rows.append(Row(label, worker, worker.ready["note"]))
                if worker.ready["choice"]:
                    notes.append(f"{label}: {worker.ready['choice']} (load {worker.ready['load_s']} s)")
        worker = Worker([*me, "ssd_mobilenet_v2_coco", "auto", "0"], tmp)
        rows.append(Row("bundled SSD MobileNet V2, `backend: auto`", worker, worker.ready["note"]))
        log(f"{blocks} blocks of {runs} frames of each of {len(rows)} configurations, in turn")
        for _ in range(blocks):
            for row in rows:
                row.block(runs)
    finally:
        for row in rows:
            row.worker.close()
    if rows and rows[0].label.startswith("Ultralytics"):
        ours = ", ".join(str(r.detections) for r in rows[1:] if not r.label.startswith("bundled"))
        notes.append(f"boxes kept on the frame (conf {NMS['conf']}): Ultralytics {rows[0].detections}; ours {ours}")
    return rows, notes


def report(rows: list[Row], notes: list[str]) -> None:
    """The markdown table: per frame, the call, ratios against the call and against Ultralytics."""
    peer = next((r for r in rows if r.label.startswith("Ultralytics")), None)
    print(
        "\n### Side by side: YOLO11n at 640 (ONNX export), a 640x480 photograph\n\n"
        "| pipeline | runtime | per frame: wall ms (CPU ms) | runtime call ms | frame ÷ call | "
        "Ultralytics ÷ this: wall (CPU) |\n|---|---|---|---|---|---|"
    )
    for r in rows:
        versus = (
            f"{peer.wall / r.wall:.2f}x ({peer.cpu / r.cpu:.2f}x)" if peer is not None and r is not peer else "1.00x"
        )
        if r.label.startswith("bundled"):
            versus = ""
        print(
            f"| {r.label} | {r.note} | {r.wall:.1f} ({r.cpu:.1f}) | {r.inner:.1f} | "
            f"{r.wall / r.inner:.2f}x | {versus} |"
        )
    print()
    for note in notes:
        print(f"- {note}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="frames per block")
    parser.add_argument("--blocks", type=int, default=3, help="blocks of each configuration, taken in turn")
    parser.add_argument("--worker", nargs=3, metavar=("MODEL", "BACKEND", "THREADS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker_main(args.worker[0], args.worker[1], int(args.worker[2]))
    rows, notes = measure(args.runs, args.blocks)
    report(rows, notes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
