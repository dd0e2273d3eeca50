"""Where runtime threads run: how many a runtime gets (`default_threads`), and which CPU cores they and the
thread that calls the model use (`pin_threads`, `pin_worker`).

A pool thread that is free to run anywhere is woken onto the core of the thread that woke it, which is busy
running the model; so the pool threads are kept off the first allowed core (`pool_cores`) and the caller is
pinned there (`pin_caller`). onnxruntime takes the placement as an option (`pool_affinity`); LiteRT has none,
so its new threads are pinned after they start (`pin_new_threads`).
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def default_threads(num_threads: int = 0) -> int:
    """The thread policy shared by every backend: one per CPU core this process may use, or `num_threads` when
    set, at most that many (more threads than cores only wait on each other: 256 on 2 cores made a 30 ms run
    take up to 11 s)."""
    cores = len(allowed_cores())
    return min(num_threads, cores) if num_threads > 0 else cores


def allowed_cores() -> list[int]:
    """The CPU cores this process may run on (its main thread's affinity, not a pinned caller's), in order."""
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(os.getpid()))
    return list(range(os.cpu_count() or 1))


def caller_core() -> int | None:
    """The core kept for the thread that calls the model (the vision node's worker pins itself there): the
    first allowed core. None when there is only one (nothing to keep apart)."""
    cores = allowed_cores()
    return cores[0] if len(cores) > 1 else None


def pin_caller(pin: bool) -> str:
    """Put the calling thread on `caller_core()` (pin) or back on every allowed core; what it is now ("" when
    there is nothing to pin to). Raises OSError where the affinity cannot be set."""
    if not hasattr(os, "sched_setaffinity"):
        return ""
    home = caller_core()
    if pin and home is None:
        return ""  # one core: nothing to keep apart
    cpus: set[int] = {home} if pin and home is not None else set(allowed_cores())
    os.sched_setaffinity(0, cpus)  # 0: this thread only
    return f"pinned to CPU {home}" if pin else "free to run on any allowed core"


def pool_pinned(backend: object) -> bool:
    """Whether `backend` (any runtime's, or None) keeps its pool threads off `caller_core()`: then the thread
    that calls it belongs there (`pin_caller`). OpenVINO (it places its own threads), models on servers and
    remote models say no, and their callers stay free."""
    return getattr(backend, "info", {}).get("pool_cores", "any") != "any"


def pool_cores(count: int) -> list[int]:
    """The cores for `count` runtime pool threads: one per allowed core other than `caller_core()`, in turn
    when there are more threads than cores; [] when there is only one core.

    Why: a pool thread that is free to run anywhere is woken onto the core of the thread that woke it, which
    is busy running the model, so the two take turns on one core; a run is markedly faster, for onnxruntime and
    LiteRT alike, with the pool threads kept on the other cores (and no dearer in CPU)."""
    others = allowed_cores()[1:]
    return [others[i % len(others)] for i in range(count)] if others else []


def pool_affinity(threads: int) -> str:
    """onnxruntime's `session.intra_op_thread_affinities` for a pool of `threads` (the caller included): its
    `threads - 1` pool threads on `pool_cores` ("" when there is no pool or only one core). Ids are 1-based."""
    return ";".join(str(core + 1) for core in pool_cores(threads - 1)) if threads > 1 else ""


def _thread_ids() -> set[int]:
    try:
        return {int(t) for t in os.listdir("/proc/self/task")}
    except OSError:  # not Linux
        return set()


def pin_new_threads(build):
    """`build()`, then the threads it started (LiteRT's pool: it has no affinity option) pinned one per
    allowed core other than `caller_core()`, as `pool_affinity` does for onnxruntime. Returns (result, the
    cores used as text, "any" when none were pinned). A thread another part of the process happened to start
    meanwhile is pinned too: harmless, it only loses the caller's core."""
    before = _thread_ids()
    result = build()
    started = sorted(_thread_ids() - before)
    cores = pool_cores(len(started))
    if not started or not cores or not hasattr(os, "sched_setaffinity"):
        return result, "any"
    try:
        for tid, core in zip(started, cores):
            os.sched_setaffinity(tid, {core})
    except OSError:  # a thread that ended, or a machine that refuses: leave them all free
        for tid in started:
            with contextlib.suppress(OSError):
                os.sched_setaffinity(tid, set(allowed_cores()))
        return result, "any"
    return result, ",".join(map(str, cores))


class CallerPinning:
    """`pin_caller` for each thread that runs frames, tracked per thread: each one is pinned (or freed) when
    the setting asks, and a call that may start threads runs unpinned (`unpinned`). `log(text, warn)`. Not
    `enabled` where frames run on several threads at once (they would all share the one caller core)."""

    def __init__(self, log: Callable[[str, bool], object], enabled: bool = True) -> None:
        self._log, self.enabled = log, enabled
        self._local = threading.local()

    @property
    def pinned(self) -> bool:
        """Whether the calling thread is pinned now."""
        return bool(getattr(self._local, "pinned", False))

    def want(self, pin: bool) -> None:
        """Pin the calling thread (or free it) if it is not already so."""
        if self.enabled and pin != self.pinned:
            self._local.pinned = pin
            where = self._set(pin)
            if where:
                self._log(f"{threading.current_thread().name} thread {where}", False)

    def _set(self, pin: bool) -> str:
        try:
            return pin_caller(pin)
        except (OSError, ValueError) as exc:
            self._log(
                f"pin_worker: the CPU affinity of {threading.current_thread().name} could not be set: {exc}", True
            )
            return ""

    def unpinned(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(*args)` with the calling thread free to run on any core: a model it builds (a retry, a model changed
        on the service) may start threads (runtime pools, gRPC), which inherit their creator's CPU affinity."""
        if not self.pinned:
            return fn(*args)
        self._set(False)
        try:
            return fn(*args)
        finally:
            self._set(True)
