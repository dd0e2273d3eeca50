"""Calls made at the same moment from several threads, for tests of concurrency."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def at_once(fn: Callable[[int], T], n: int, timeout: float = 90.0) -> list[T | BaseException]:
    """fn(0) ... fn(n - 1), each on a thread of its own, released together by a barrier; their results in
    order, the exception a call raised in its place, a TimeoutError for one still running after `timeout` s."""
    results: list[T | BaseException] = [TimeoutError(f"call {i} still running after {timeout:.0f} s") for i in range(n)]
    barrier = threading.Barrier(n)

    def one(i: int) -> None:
        barrier.wait()
        try:
            results[i] = fn(i)
        except BaseException as exc:  # noqa: BLE001 - the caller checks what each call gave
            results[i] = exc

    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + timeout
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    return results
