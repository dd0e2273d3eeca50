"""Dynamic batching of concurrent calls (Triton's idea), ROS-free: callers on several threads each hand in one
request's inputs; requests that wait together for the same model go through one inference call, their inputs
stacked on the batch axis and the outputs split back, where the model takes a batch.

A request batches with others when the model's every input has an open batch axis (-1 first), and every request
has the same input names, types and shapes but for the batch axis. The first caller to find no call running leads:
it waits up to `wait_s` for others (0: takes what is waiting now, the calls that queued while the last one ran),
runs up to `max_batch` requests at once and hands each caller its part. An output without the batch as its
first axis cannot be split: that model then runs one request a call. A failed batched call is retried one request
at a time, so one caller's bad inputs fail that caller alone.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

Tensors = dict[str, np.ndarray]


@dataclass(eq=False)  # one request is only ever itself: `==` on its tensors would compare arrays
class _Request:
    model: Any
    inputs: Tensors
    key: tuple
    done: bool = False
    outputs: Tensors | None = None
    error: BaseException | None = None


@dataclass
class BatchStats:
    """What the batcher did: calls made, requests they carried, the largest batch."""

    calls: int = 0
    requests: int = 0
    largest: int = 0
    unsplittable: set[int] = field(default_factory=set)  # ids of models whose outputs cannot be split


def infer_stacked(infer: Callable[[Tensors], Tensors], requests: list[Tensors]) -> list[Tensors] | None:
    """`infer` once on `requests` stacked on the batch axis (each may hold several rows), its outputs split back
    into each request's rows; None when an output does not have the whole batch as its first axis."""
    sizes = [len(next(iter(r.values()))) for r in requests]
    outputs = infer({name: np.concatenate([r[name] for r in requests]) for name in requests[0]})
    if not all(v.ndim and v.shape[0] == sum(sizes) for v in outputs.values()):
        return None
    bounds = np.cumsum([0, *sizes]).tolist()
    return [{k: v[a:b] for k, v in outputs.items()} for a, b in zip(bounds, bounds[1:])]


def batch_key(model: Any, inputs: Tensors) -> tuple | None:
    """What requests must share to be stacked; None when `model` has an input without an open batch axis."""
    specs = {s.name: s for s in model.metadata.inputs}
    key = []
    for name in sorted(inputs):
        spec, array = specs.get(name), inputs[name]
        if spec is None or not spec.shape or spec.shape[0] != -1 or array.ndim != len(spec.shape):
            return None
        key.append((name, array.dtype.str, array.shape[1:]))
    return (id(model), *key)


class DynamicBatcher:
    """`infer(model, inputs)` from many threads: `model.infer` on stacked inputs where requests wait together."""

    def __init__(self, max_batch: int, wait_s: float = 0.0) -> None:
        self.max_batch = max(1, int(max_batch))
        self.wait_s = max(0.0, float(wait_s))
        self._cond = threading.Condition()
        self._pending: list[_Request] = []
        self._running = False
        self.stats = BatchStats()

    def infer(self, model: Any, inputs: Tensors) -> Tensors:
        """The outputs of `model` for `inputs`, perhaps computed in one call with other callers' requests."""
        key = batch_key(model, inputs) if self.max_batch > 1 else None
        if key is None or id(model) in self.stats.unsplittable:
            return model.infer(inputs)
        request = _Request(model, inputs, key)
        with self._cond:
            self._pending.append(request)
            self._cond.notify_all()  # a leader waiting to fill its batch counts it
            while not request.done:
                if self._running:
                    self._cond.wait()
                    continue
                self._running = True
                try:
                    batch = self._gather()
                    self._cond.release()
                    try:
                        self._run(batch)
                    finally:
                        self._cond.acquire()
                finally:  # (a failure while gathering must not leave every later caller waiting)
                    self._running = False
                    self._cond.notify_all()
        if request.error is not None:
            raise request.error
        assert request.outputs is not None
        return request.outputs

    def _gather(self) -> list[_Request]:
        """The leading caller's batch (lock held): requests like the first waiting one, oldest first, waiting up to
        wait_s for the batch to fill."""
        first = self._pending[0]
        deadline = time.monotonic() + self.wait_s
        while self.wait_s > 0:
            like = sum(r.key == first.key for r in self._pending)
            left = deadline - time.monotonic()
            if like >= self.max_batch or left <= 0:
                break
            self._cond.wait(left)
        batch = [r for r in self._pending if r.key == first.key][: self.max_batch]
        for r in batch:
            self._pending.remove(r)
        return batch

    def _run(self, batch: list[_Request]) -> None:
        """One call for the batch (one call each where that fails or cannot be split)."""
        model = batch[0].model
        if len(batch) > 1:
            try:
                split = infer_stacked(model.infer, [r.inputs for r in batch])
            except Exception:  # noqa: BLE001 - one request's inputs may be at fault: each is run alone below
                split = None
            else:
                if split is None:
                    self.stats.unsplittable.add(id(model))
            if split is not None:
                for r, outputs in zip(batch, split):
                    r.outputs, r.done = outputs, True
                self._count(len(batch))
                return
        for r in batch:
            try:
                r.outputs = model.infer(r.inputs)
            except BaseException as exc:  # noqa: BLE001 - the caller gets its own error
                r.error = exc
            r.done = True
            self._count(1)

    def _count(self, n: int) -> None:
        self.stats.calls += 1
        self.stats.requests += n
        self.stats.largest = max(self.stats.largest, n)
