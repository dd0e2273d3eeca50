"""What the benchmark's rows share: progress lines, the photograph, the machine's description, the load other
processes put on it, and paced and timed loops."""

from __future__ import annotations

import os
import platform
import resource
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from ml_model_service.core.runtimes.threads import default_threads

from ..harness.photos import photo
from ..system import cpu_name

CAMERA_HZ = 30.0


def log(text: str) -> None:
    """Progress, on stderr (stdout is the tables)."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def photograph() -> np.ndarray:
    """A real photograph (scikit-image's bundled Middlebury motorcycle), 640x480 RGB."""
    return np.ascontiguousarray(cv2.resize(photo("motorcycle"), (640, 480), interpolation=cv2.INTER_AREA))


def machine() -> str:
    """The CPU, its usable cores, the runtimes' versions and thread policy, the load at start."""
    name = cpu_name() or platform.processor() or platform.machine()
    import onnxruntime

    try:
        from importlib.metadata import version

        litert = f"LiteRT {version('ai-edge-litert')}"
    except Exception:
        litert = "LiteRT ?"
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = os.getloadavg()
    return (
        f"{name}, {usable} cores usable ({os.cpu_count()} online), no GPU used; onnxruntime "
        f"{onnxruntime.__version__} CPU, {litert}; default thread policy = {default_threads()} threads; "
        f"load average at start {load[0]:.2f}"
    )


class OtherLoad:
    """How many cores other processes (not this benchmark nor the nodes it started) used over a section,
    from /proc/stat and getrusage: figures taken while it is high are not to be trusted."""

    def __init__(self) -> None:
        self.start = (self._machine_busy(), self._ours(), time.monotonic())

    @staticmethod
    def _machine_busy() -> float:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:9]]
        return (v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / os.sysconf("SC_CLK_TCK")  # all but idle, iowait

    @staticmethod
    def _ours() -> float:
        own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime  # children count once reaped

    def cores(self) -> float:
        busy, ours, t = self.start
        return max(0.0, (self._machine_busy() - busy) - (self._ours() - ours)) / (time.monotonic() - t)


def load_note(cores: float) -> str:
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    if cores < 0.1 * usable:
        return f"other processes used {cores:.2f} cores meanwhile (quiet machine)"
    return (
        f"**other processes used {cores:.2f} of {usable} cores meanwhile: wall times, frame rates and the "
        "verdicts below are not reliable; rerun on a quiet machine.**"
    )


@dataclass
class Paced:
    """A paced loop: median and p95 wall ms of one call, CPU ms of this process per call (idle included)."""

    wall_ms: float
    p95_ms: float
    cpu_ms: float


class PacedLoop:
    """One call run on a camera clock (`rate` Hz, sleeping between calls like a camera-driven node), in
    blocks. CPU is this process's (all threads) from the first measured tick to the end of the block's
    last period, so pool threads that spin or wake while idle are paid for as a node would pay them; with
    `own_thread` (a single-threaded run, which never leaves the calling thread) it is that thread's alone,
    so the benchmark's own ROS threads are not counted as the model's."""

    def __init__(self, fn: Callable[[], object], rate: float = CAMERA_HZ, own_thread: bool = False) -> None:
        self.fn, self.period = fn, 1.0 / rate
        self.clock = time.thread_time if own_thread else time.process_time
        self.walls: list[float] = []
        self.cpu_s = 0.0

    def block(self, runs: int, warmup: int = 2) -> None:
        """`warmup` unmeasured ticks, then `runs` measured ones."""
        start = time.perf_counter()
        cpu0 = 0.0
        for i in range(warmup + runs):
            delay = start + i * self.period - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            if i == warmup:
                cpu0 = self.clock()
            t0 = time.perf_counter()
            self.fn()
            if i >= warmup:
                self.walls.append(time.perf_counter() - t0)
        delay = start + (warmup + runs) * self.period - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        self.cpu_s += self.clock() - cpu0

    def result(self) -> Paced:
        return Paced(
            1000 * statistics.median(self.walls),
            1000 * float(np.percentile(self.walls, 95)),
            1000 * self.cpu_s / len(self.walls),
        )


def timed(fn: Callable[[], object], repeat: int, warmup: int = 3) -> float:
    """Median milliseconds of `fn` over `repeat` back-to-back runs."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1000)
    return statistics.median(samples)


def timed_in_turn(fns: list[Callable[[], object]], repeat: int, warmup: int = 3) -> list[float]:
    """Median milliseconds of each of `fns`, called in turn (so that load changes fall on all alike)."""
    samples: list[list[float]] = [[] for _ in fns]
    for i in range(warmup + repeat):
        for fn, own in zip(fns, samples):
            t0 = time.perf_counter()
            fn()
            if i >= warmup:
                own.append((time.perf_counter() - t0) * 1000)
    return [statistics.median(own) for own in samples]
