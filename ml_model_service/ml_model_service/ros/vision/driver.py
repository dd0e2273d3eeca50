"""The thread that drives a vision node's cameras: one, or several sharing one model.

It waits on every camera's subscriptions in one wait set (`direct.wait`: woken by a frame, a wake-up or a
pairing deadline; no polling, no timeout while idle), hands what each camera's subscriptions hold to that
camera (`CameraPipeline.receive`) and its latest frame to the fair scheduler (`core/frames/scheduler.py`:
oldest-waiting first, one frame per camera in flight). What the scheduler picks is run: several cameras' frames
through one inference call where the model takes a batch (`core/reading/batch.py`), else one by one. With one
camera (or one core) a frame runs inline on this thread, as soon as it is taken; with several, up to one call per
core runs at once on a pool, so frames that arrive together are not queued behind each other.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from rclpy.guard_condition import GuardCondition
from rclpy.node import Node

from ...core.frames.imaging import DecodeBudgetError, ImageError
from ...core.frames.pipeline import Given
from ...core.frames.scheduler import FairScheduler
from ...core.reading.batch import batch_support, classify_batch, detect_batch, segment_batch
from ...core.settings.typed import ObjectMode, VisionSettings
from .. import direct
from .camera import CameraPipeline
from .frame import Frame
from .model_source import ModelSource


class Driver(threading.Thread):
    """Waits on every camera at once; runs their latest frames fairly, batched where the model allows."""

    def __init__(
        self, node: Node, cameras: list[CameraPipeline], source: ModelSource, settings: Callable[[], VisionSettings]
    ) -> None:
        super().__init__(name="vision_worker", daemon=True)
        self.node, self.cameras, self.source, self.settings = node, cameras, source, settings
        self.by_name = {c.name: c for c in cameras}
        self.scheduler: FairScheduler[Frame] = FairScheduler([c.name for c in cameras])
        self.stopping = False
        self.calls = self.served = 0  # inference calls made for the stream, frames they carried
        self.log = node.get_logger()
        # With num_threads 0 and several cameras, the model runs each call on one thread (loading.load_model): a
        # single-threaded call costs the least CPU per frame, and calls run one per core.
        self.parallel = max(1, min(os.cpu_count() or 1, len(cameras)))
        self._pool: ThreadPoolExecutor | None = None
        self._running = 0
        self._lock = threading.Lock()
        self._guard = GuardCondition(None, None, context=node.context)

    def stop(self) -> None:
        self.stopping = True
        for c in self.cameras:
            if c.input is not None:
                c.input.stopping = True
                c.input.wake()
        if self.is_alive():
            self.join(5.0)

    def run(self) -> None:
        if self.parallel > 1:
            self._pool = ThreadPoolExecutor(self.parallel, thread_name_prefix="vision_infer")
        while not self.stopping:
            try:
                self._take(self._timeout())
                self._serve()
            except Exception as exc:  # keep the driver alive whatever a frame holds
                if self.stopping or not self.node.context.ok():
                    break  # the node is shutting down under the wait
                self.log.error(f"frame dropped: {type(exc).__name__}: {exc}", throttle_duration_sec=2.0)
                time.sleep(0.01)  # a wait that keeps failing must not spin a core
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        for c in self.cameras:
            if c.input is not None:
                c.input.close()

    def limit(self) -> int:
        """Frames one inference call may carry now."""
        vision = self.source.vision
        if vision is None or self.settings().object_mode is ObjectMode.OBSTACLES:
            return 1
        wanted = self.settings().max_batch or -(-len(self.cameras) // self.parallel)  # a batch per core
        wanted = min(wanted, len(self.cameras))  # one frame per camera at most: a single camera never batches
        return 1 if wanted <= 1 else min(wanted, batch_support(vision).size)

    def _timeout(self) -> float | None:
        """How long the wait for frames may block: until a batch is due, or a camera's pairing deadline."""
        now = time.monotonic()
        due = self.scheduler.due(self.limit(), self.settings().batch_wait)
        waits = [] if due is None else [due]
        for c in self.cameras:
            deadline = c.deadline()
            if deadline is not None:
                waits.append(max(0.0, deadline - now))
        return min(waits) if waits else None

    def _take(self, timeout: float | None) -> None:
        """Wait for any camera (or a wake-up), then give each camera what its subscriptions hold."""
        subscriptions, guards = [], [self._guard]
        for c in self.cameras:
            assert c.input is not None
            subs, guard = c.input.prepare()
            c.note_subscription()
            subscriptions += subs
            guards.append(guard)
        if self.stopping:
            return
        ready = direct.wait(self.node, timeout, subscriptions=subscriptions, guards=guards)
        now = self.scheduler.clock()  # frames taken in one wake-up arrived together
        for c in self.cameras:
            assert c.input is not None
            try:
                frame = c.receive(c.input.take(ready))
            except Exception as exc:  # what a camera's messages hold never stops the others
                c.drop("errors", f"{type(exc).__name__}: {exc}")
                continue
            if not c.subscribed:
                self.scheduler.drop(c.name)
            if frame is not None and self.scheduler.offer(c.name, frame, now) is not None:
                c.status.count("skipped")  # a newer frame of this camera came before the model was free

    def _serve(self) -> None:
        """Run what is due (batches of several cameras where the model takes them, else single frames): inline
        with one call at a time, else on the pool, up to `parallel` calls at once."""
        limit = self.limit()
        while self._running < self.parallel and self.scheduler.due(limit, self.settings().batch_wait) == 0.0:
            batch = self.scheduler.take(limit)
            if not batch:
                return
            with self._lock:
                self._running += 1
            if self._pool is None:
                self._run(batch)
            else:
                self._pool.submit(self._run, batch)

    def _run(self, batch: list[tuple[str, Frame]]) -> None:
        """One batch (or frame) through the model and its cameras' pipelines."""
        try:
            if len(batch) == 1:
                self.by_name[batch[0][0]].process(batch[0][1])
            else:
                self._batched(batch)
        except Exception as exc:  # keep serving whatever a frame holds
            self.log.error(f"frame dropped: {type(exc).__name__}: {exc}", throttle_duration_sec=2.0)
        finally:
            for name, _ in batch:
                self.scheduler.done(name)
            with self._lock:
                self._running -= 1
                self.calls += 1
                self.served += len(batch)
            if self._pool is not None:
                self._guard.trigger()  # the waiting loop may start the next

    def _batched(self, batch: list[tuple[str, Frame]]) -> None:
        """Several cameras' frames, one inference call; each then goes through its own camera's pipeline."""
        vision = self.source.vision
        ready: list[tuple[CameraPipeline, Frame]] = []
        rgbs = []
        for name, frame in batch:
            c = self.by_name[name]
            try:
                rgbs.append(frame.rgb(c.settings().max_image_pixels))
                ready.append((c, frame))
            except ImageError as exc:
                c.drop("decode_budget" if isinstance(exc, DecodeBudgetError) else "errors", str(exc))
        if vision is None or not ready:
            for c, frame in ready:
                c.process(frame)
            return
        try:
            given: list[Given]
            if vision.detections_supported:
                given = [(d, None, None) for d in detect_batch(vision, rgbs)]
            elif vision.segmentation_supported:
                given = [(None, None, m) for m in segment_batch(vision, rgbs)]
            else:
                given = [(None, c, None) for c in classify_batch(vision, rgbs, self.settings().top_n)]
        except Exception as exc:  # the batched call failed: each frame on its own path, which reports why
            self.log.warning(f"batched inference failed, frames run one by one: {exc}", throttle_duration_sec=5.0)
            given = [(None, None, None)] * len(ready)
        for (c, frame), results in zip(ready, given):
            c.process(frame, results)
