"""Several cameras, one model, one worker thread (the vision node's `cameras` parameter).

Each camera is a `CameraStream`: its own subscriptions (`<camera>/image`, `<camera>/depth`,
`<camera>/camera_info`), pairing, tracker, decode budget, counters and status (a /diagnostics entry of its
own), publishers (`<camera>/detections`, ...) and its own values (the node's, with its `<camera>.<name>`
overrides). Their per-frame work is the single camera's (`Worker._receive`, `Worker._process`: one code path
for one camera or many); only the thread differs: `MultiWorker` waits on every camera's subscriptions in one
wait set, hands each camera's latest frame to the fair scheduler (`core/frames/scheduler.py`: oldest-waiting
first, one frame per camera in flight) and serves what it picks, several cameras' frames through one
inference call where the model takes a batch (`core/reading/batch.py`), one after the other otherwise.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from rclpy.guard_condition import GuardCondition
from rclpy.node import Node

from ..core.frames.health import TopicState
from ..core.frames.imaging import DecodeBudgetError, ImageError
from ..core.frames.pairing import Pairer
from ..core.frames.pipeline import Given
from ..core.frames.scheduler import FairScheduler
from ..core.reading.batch import batch_support, classify_batch, detect_batch, segment_batch
from ..core.settings.camera_table import camera_values
from . import direct
from .camera_input import CameraInput
from .frames import TargetFrame
from .model_source import ModelSource
from .outputs import Outputs
from .processing import Frame
from .status import ERROR, OK, WARN, Status
from .worker import Worker

#: a camera whose frame has waited this long for the model is reported (WARN; ERROR at 3 x)
NOT_SERVED_S = 1.0


@dataclass
class CameraStream:
    """One camera of several: what it owns (see the module docstring)."""

    name: str
    image_topic: str
    values: Callable[[], dict[str, Any]]
    pairer: Pairer
    status: Status | None = None
    outputs: Outputs | None = None
    camera: CameraInput | None = None
    worker: Worker | None = None
    demand_until: float = 0.0

    @property
    def subscribed(self) -> bool:
        return bool(self.camera and self.camera.subscribed)


class Cameras:
    """The node's cameras: built at start-up (pairers, status), configure (publishers), activate (subscriptions
    and the worker thread); their demand for frames and their health."""

    def __init__(
        self,
        node: Node,
        names: list[str],
        node_values: Callable[[], dict[str, Any]],
        overrides: dict[str, Any],
        counters: list[str],
        fields: Callable[[], dict[str, str]],
    ) -> None:
        self.node, self.overrides = node, overrides
        self.worker: MultiWorker | None = None
        self.streams: list[CameraStream] = []
        for name in names:

            def values(name: str = name) -> dict[str, Any]:
                return camera_values(name, node_values(), self.overrides)

            v = values()
            topic = node.resolve_topic_name(f"{name}/image") + ("/compressed" if v["use_compressed"] else "")
            stream = CameraStream(name, topic, values, Pairer(v["sync_slop"], capacity=8 if v["use_depth"] else 1))
            stream.status = Status(
                node,
                topic,
                counters,
                lambda s=stream: self.states(s),
                lambda s=stream: {
                    **fields(),
                    "camera": s.name,
                    "subscribed": str(bool(s.camera and s.camera.subscribed)).lower(),
                    **({"class_shares": s.worker.class_shares} if s.worker and s.worker.class_shares else {}),
                },
                name=f"{node.get_fully_qualified_name()}/{name}",
                publish=False,
            )
            self.streams.append(stream)
        self.by_name = {s.name: s for s in self.streams}
        self.model_state: Callable[[], list[tuple[bytes, str]]] = list

    # --- lifecycle --------------------------------------------------------------------------------
    def configure(self, on_listeners_changed: Callable[[], None]) -> None:
        for s in self.streams:
            s.outputs = Outputs(self.node, on_listeners_changed, prefix=f"{s.name}/", label_info=False)

    def activate(self, source: ModelSource, frames: TargetFrame | None, node_values: Callable[[], dict]) -> None:
        for s in self.streams:
            v = s.values()
            s.camera = CameraInput(
                self.node,
                s.image_topic,
                v["use_compressed"],
                v["use_depth"],
                v["image_qos"] == "reliable",
                prefix=f"{s.name}/",
            )
            s.worker = Worker(s.camera, s.pairer, source, s.outputs, s.status, s.values, self.node.get_logger(), frames)
        self.worker = MultiWorker(self.node, self.streams, source, node_values)
        self.worker.start()

    def stop(self) -> None:
        if self.worker is not None:
            self.worker.stop()
        self.worker = None
        for s in self.streams:
            s.camera = s.worker = None
            s.pairer.clear()

    def destroy_outputs(self) -> None:
        for s in self.streams:
            if s.outputs is not None:
                s.outputs.destroy()
            s.outputs = None

    def values_changed(self) -> None:
        for s in self.streams:
            s.pairer.slop = s.values()["sync_slop"]

    def restart_timeline(self) -> None:
        for s in self.streams:
            if s.worker is not None:
                s.worker.restart_timeline()
            s.pairer.clear()

    # --- demand -----------------------------------------------------------------------------------
    def on_demand(self, stream: CameraStream, seconds: float) -> None:
        stream.demand_until = time.monotonic() + seconds
        self.update_demand()

    def update_demand(self) -> None:
        now = time.monotonic()
        for s in self.streams:
            if s.camera is None or s.outputs is None:
                continue
            wanted = bool(s.values()["always_on"] or s.outputs.listened() or now < s.demand_until)
            if wanted != s.camera.wanted:
                s.camera.wanted = wanted
                if not wanted:
                    s.pairer.clear()
                s.camera.wake()

    # --- health -----------------------------------------------------------------------------------
    def states(self, s: CameraStream, with_model: bool = True) -> list[tuple[bytes, str]]:
        """One camera's states (its /diagnostics entry)."""
        if s.camera is None or s.worker is None:
            return self.model_state() if with_model else []
        states = list(self.model_state()) if with_model else []
        if s.worker.depth_state:
            states.append((WARN, f"3D failing: {s.worker.depth_state}"))
        topic = TopicState(
            subscribed=s.camera.subscribed,
            publishers=self.node.count_publishers(s.image_topic),
            qos_problem=s.camera.qos_problem,
        )
        states += [(bytes([level]), text) for level, text in s.worker.health.assess(s.image_topic, topic)]
        waited = self.worker.scheduler.waited(s.name) if self.worker is not None else 0.0
        if waited >= NOT_SERVED_S:
            level = ERROR if waited >= 3 * NOT_SERVED_S else WARN
            states.append((level, f"its frame has waited {waited:.1f} s for the model (not served)"))
        if not s.camera.subscribed and with_model:
            states.append((OK, "idle: nobody subscribes to its results (subscribed on demand)"))
        return states

    def summary(self) -> list[tuple[bytes, str]]:
        """The node's states from its cameras: every camera's problems, named."""
        out: list[tuple[bytes, str]] = []
        for s in self.streams:
            out += [(level, f"{s.name}: {text}") for level, text in self.states(s, with_model=False) if level != OK]
        idle = [s.name for s in self.streams if s.camera is not None and not s.camera.subscribed]
        if idle:
            out.append((OK, f"idle cameras (nobody subscribes to their results): {', '.join(idle)}"))
        return out


class MultiWorker(threading.Thread):
    """Waits on every camera at once; serves their latest frames fairly, batched where the model allows."""

    def __init__(
        self, node: Node, streams: list[CameraStream], source: ModelSource, values: Callable[[], dict[str, Any]]
    ) -> None:
        super().__init__(name="vision_worker", daemon=True)
        self.node, self.streams, self.source, self.values = node, streams, source, values
        self.by_name = {s.name: s for s in streams}
        self.scheduler: FairScheduler[Frame] = FairScheduler([s.name for s in streams])
        self.stopping = False
        self._subscribed = {s.name: False for s in streams}
        self.calls = self.frames = 0  # inference calls made for the stream, frames they carried
        self.log = node.get_logger()
        # Calls run one per core at once (each frame on its own camera's state; with num_threads 0 the model runs
        # each call on one thread, common.load_model): frames that arrive together are not queued behind each
        # other, and a single-threaded call costs the least CPU per frame.
        self.parallel = max(1, min(os.cpu_count() or 1, len(streams)))
        self._pool: ThreadPoolExecutor | None = None
        self._running = 0
        self._lock = threading.Lock()
        self._guard = GuardCondition(None, None, context=node.context)

    def stop(self) -> None:
        self.stopping = True
        for s in self.streams:
            if s.camera is not None:
                s.camera.stopping = True
                s.camera.wake()
        if self.is_alive():
            self.join(5.0)

    def run(self) -> None:
        self._pool = ThreadPoolExecutor(self.parallel, thread_name_prefix="vision_infer")
        while not self.stopping:
            try:
                self._take(self._timeout())
                self._serve()
            except Exception as exc:  # keep the worker alive whatever a frame holds
                if self.stopping or not self.node.context.ok():
                    break  # the node is shutting down under the wait
                self.log.error(f"frame dropped: {type(exc).__name__}: {exc}", throttle_duration_sec=2.0)
                time.sleep(0.01)
        self._pool.shutdown(wait=True)
        for s in self.streams:
            if s.camera is not None:
                s.camera.close()

    def limit(self) -> int:
        """Frames one inference call may carry now."""
        vision = self.source.vision
        if vision is None or self.values()["object_mode"] == "obstacles":
            return 1
        wanted = self.values()["max_batch"] or -(-len(self.streams) // self.parallel)  # a batch per core
        return max(1, min(wanted, batch_support(vision).size))

    def _timeout(self) -> float | None:
        """How long the wait for frames may block: until a batch is due, or a camera's pairing deadline."""
        now = time.monotonic()
        due = self.scheduler.due(self.limit(), self.values()["batch_wait"])
        waits = [] if due is None else [due]
        for s in self.streams:
            deadline = s.pairer.deadline() if s.camera is not None and s.camera.use_depth else None
            if deadline is not None:
                waits.append(max(0.0, deadline - now))
        return min(waits) if waits else None

    def _take(self, timeout: float | None) -> None:
        """Wait for any camera (or a wake-up), then store what each camera's subscriptions hold."""
        subscriptions, guards = [], [self._guard]
        for s in self.streams:
            subs, guard = s.camera.prepare()
            subscriptions += subs
            guards.append(guard)
        if self.stopping:
            return
        ready = direct.wait(self.node, timeout, subscriptions=subscriptions, guards=guards)
        now = self.scheduler.clock()  # frames taken in one wake-up arrived together
        for s in self.streams:
            worker, camera = s.worker, s.camera
            if camera.subscribed != self._subscribed[s.name]:
                self._subscribed[s.name] = camera.subscribed
                worker.health.subscribed(camera.subscribed)
                if not camera.subscribed:
                    self.scheduler.drop(s.name)
            taken = camera.take(ready)
            for reason in taken.malformed:
                worker._drop("malformed", reason)
            frame = worker._receive(taken)
            if frame is not None and self.scheduler.offer(s.name, frame, now) is not None:
                s.status.count("skipped")  # a newer frame of this camera came before the model was free

    def _serve(self) -> None:
        """Start what is due (batches of several cameras where the model takes them, else single frames), up to
        `parallel` calls at once."""
        limit = self.limit()
        while self._running < self.parallel and self.scheduler.due(limit, self.values()["batch_wait"]) == 0.0:
            batch = self.scheduler.take(limit)
            if not batch:
                return
            with self._lock:
                self._running += 1
            assert self._pool is not None
            self._pool.submit(self._run, batch)

    def _run(self, batch: list[tuple[str, Frame]]) -> None:
        """One batch (or frame) through the model and its cameras' pipelines, on a pool thread."""
        try:
            if len(batch) == 1:
                self.by_name[batch[0][0]].worker._process(batch[0][1])
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
                self.frames += len(batch)
            self._guard.trigger()  # the waiting loop may start the next

    def _batched(self, batch: list[tuple[str, Frame]]) -> None:
        """Several cameras' frames, one inference call; each then goes through its own camera's pipeline."""
        vision = self.source.vision
        ready: list[tuple[CameraStream, Frame]] = []
        rgbs = []
        for name, frame in batch:
            s = self.by_name[name]
            try:
                rgbs.append(frame.rgb(s.values()["max_image_pixels"]))
                ready.append((s, frame))
            except ImageError as exc:
                s.worker._drop("decode_budget" if isinstance(exc, DecodeBudgetError) else "errors", str(exc))
        if vision is None or not ready:
            for s, frame in ready:
                s.worker._process(frame)
            return
        try:
            given: list[Given]
            if vision.detections_supported:
                given = [(d, None, None) for d in detect_batch(vision, rgbs)]
            elif vision.segmentation_supported:
                given = [(None, None, m) for m in segment_batch(vision, rgbs)]
            else:
                given = [(None, c, None) for c in classify_batch(vision, rgbs, self.values()["top_n"])]
        except Exception as exc:  # the batched call failed: each frame on its own path, which reports why
            self.log.warning(f"batched inference failed, frames run one by one: {exc}", throttle_duration_sec=5.0)
            given = [(None, None, None)] * len(ready)
        for (s, frame), results in zip(ready, given):
            s.worker._process(frame, results)
