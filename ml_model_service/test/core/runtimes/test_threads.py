"""Inference thread placement (ROS-free): runtime pool threads one per core apart from the caller's core
(`pin_threads`), the caller on that core (`pin_caller`), and nothing pinned where there is one core or
pinning is switched off. Checked on the real runtimes' threads, from /proc."""

from __future__ import annotations

import contextlib
import os
import threading

import pytest

from ml_model_service.core.loading.model import Model
from ml_model_service.core.runtimes.threads import (
    allowed_cores,
    caller_core,
    pin_caller,
    pool_affinity,
    pool_cores,
    pool_pinned,
)

pytestmark = pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="CPU affinity is Linux-only")


def _affinities() -> dict[int, set[int]]:
    """Allowed CPUs of each thread of this process."""
    out = {}
    for tid in os.listdir("/proc/self/task"):
        with contextlib.suppress(OSError):  # a thread that just ended
            out[int(tid)] = os.sched_getaffinity(int(tid))
    return out


def _started_by(build):
    before = set(_affinities())
    result = build()
    after = _affinities()
    return result, {tid: cpus for tid, cpus in after.items() if tid not in before}


def test_pool_cores_leave_the_first_core_to_the_caller():
    cores = allowed_cores()
    if len(cores) == 1:
        assert caller_core() is None and pool_cores(3) == [] and pool_affinity(2) == ""
        return
    assert caller_core() == cores[0]
    assert pool_cores(len(cores) - 1) == cores[1:]  # one per other core
    many = pool_cores(2 * len(cores))  # more threads than cores: in turn, never the caller's
    assert len(many) == 2 * len(cores) and set(many) == set(cores[1:])
    assert pool_affinity(1) == ""  # no pool
    assert pool_affinity(2) == str(cores[1] + 1)  # onnxruntime's ids are 1-based
    assert pool_affinity(3).count(";") == 1


@pytest.mark.parametrize("name", ["ssd_mobilenet_v2_coco", "ssd_mobilenet_v2_coco_tflite"])
def test_runtime_pool_threads_are_pinned_off_the_callers_core(name):
    cores = allowed_cores()
    model, started = _started_by(lambda: Model(name, providers=["cpu"], num_threads=len(cores) + 1))
    pinned = [cpus for cpus in started.values() if len(cpus) == 1]
    if len(cores) == 1:
        assert not pool_pinned(model.backend) and not pinned
        return
    assert pool_pinned(model.backend), model.backend.info
    assert model.backend.info.get("threads", str(len(cores))) == str(len(cores))  # capped at the cores
    assert len(pinned) >= len(cores) - 1, started  # threads - 1 pool threads, each on one core
    assert all(cpus <= set(cores[1:]) for cpus in pinned), started  # never on the caller's core
    free, started = _started_by(lambda: Model(name, providers=["cpu"], num_threads=2, pin_threads=False))
    assert not pool_pinned(free.backend) and all(cpus == set(cores) for cpus in started.values()), started
    single, started = _started_by(lambda: Model(name, providers=["cpu"], num_threads=1))
    assert not pool_pinned(single.backend)  # no pool, nothing to keep apart


def test_pin_caller_pins_the_calling_thread_only_and_frees_it():
    seen = {}

    def caller() -> None:
        seen["pinned"] = (pin_caller(True), os.sched_getaffinity(0))
        seen["freed"] = (pin_caller(False), os.sched_getaffinity(0))

    thread = threading.Thread(target=caller)
    thread.start()
    thread.join(10)
    cores = set(allowed_cores())
    if len(cores) == 1:
        assert seen["pinned"][0] == ""
    else:
        assert seen["pinned"] == (f"pinned to CPU {caller_core()}", {caller_core()})
    assert seen["freed"] == ("free to run on any allowed core", cores)
    assert os.sched_getaffinity(0) == cores  # this thread untouched


def test_thread_counts_are_capped_at_the_cores_available():
    from ml_model_service.core.runtimes.threads import allowed_cores, default_threads

    cores = len(allowed_cores())
    assert default_threads(0) == cores
    assert default_threads(256) == cores  # 256 threads on 2 cores made a 30 ms run take up to 11 s
    assert default_threads(1) == 1
