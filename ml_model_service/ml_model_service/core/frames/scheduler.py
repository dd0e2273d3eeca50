"""Fair serving of several cameras by one model, ROS-free.

Each camera has at most one frame waiting (its latest: a newer frame replaces the waiting one, which the
caller counts as skipped) and at most one frame in flight. Waiting cameras are served oldest-waiting first,
where a camera's wait starts with the first frame it has waiting since it was last served (a frame that
replaces another keeps that start), so a fast camera cannot push a slow one back and no camera starves:
with K cameras, a waiting camera is served within K picks. Frames offered at the same moment (`now`, as a
thread that takes several cameras' frames in one wake-up gives it) go least recently served first, so when
the model cannot keep up, the frames lost are spread over the cameras rather than always the last one's.

`take(limit)` hands out up to `limit` frames of different cameras for one inference call (a batch) and marks
them in flight until `done(camera)`. `due(now, limit, fill_wait)` says how long to wait before taking: 0 when
a batch is full, or its oldest frame has waited `fill_wait` seconds; never longer than that.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass
class Waiting(Generic[T]):
    """A camera's waiting frame and since when the camera has been waiting (seconds, the scheduler's clock)."""

    item: T
    since: float


class FairScheduler(Generic[T]):
    """The latest frame of each camera, served oldest-waiting first, one in flight per camera (thread-safe)."""

    def __init__(self, cameras: Sequence[str], clock: Callable[[], float] = time.monotonic) -> None:
        if len(set(cameras)) != len(cameras):
            raise ValueError(f"camera names must be unique: {list(cameras)}")
        self.cameras = list(cameras)
        self.clock = clock
        self._waiting: dict[str, Waiting[T]] = {}
        self._in_flight: set[str] = set()
        self._lock = threading.Lock()
        self.served = dict.fromkeys(self.cameras, 0)
        self.replaced = dict.fromkeys(self.cameras, 0)
        self._picks = 0
        self._last_pick = dict.fromkeys(self.cameras, -1)  # the pick number that last served each camera

    def _known(self, camera: str) -> None:
        if camera not in self.served:
            raise KeyError(f"unknown camera {camera!r}; cameras: {', '.join(self.cameras)}")

    def offer(self, camera: str, item: T, now: float | None = None) -> T | None:
        """`item` becomes the camera's waiting frame (arrived at `now`, default the clock); the frame it
        replaced (None if none)."""
        self._known(camera)
        with self._lock:
            old = self._waiting.get(camera)
            self._waiting[camera] = Waiting(item, old.since if old else self.clock() if now is None else now)
            if old is not None:
                self.replaced[camera] += 1
                return old.item
        return None

    def drop(self, camera: str) -> T | None:
        """Forget the camera's waiting frame (unsubscribed, timeline restarted); the frame dropped."""
        with self._lock:
            old = self._waiting.pop(camera, None)
        return old.item if old else None

    def ready(self) -> list[str]:
        """Cameras with a frame waiting and none in flight, oldest-waiting first."""
        with self._lock:
            return self._ready()

    def _ready(self) -> list[str]:
        ready = [c for c in self._waiting if c not in self._in_flight]
        return sorted(ready, key=lambda c: (self._waiting[c].since, self._last_pick[c], self.cameras.index(c)))

    def due(self, limit: int, fill_wait: float) -> float | None:
        """Seconds to wait before `take(limit)` (0: now); None when nothing can be taken."""
        with self._lock:
            ready = self._ready()
            if not ready:
                return None
            if len(ready) >= limit or fill_wait <= 0:
                return 0.0
            return max(0.0, self._waiting[ready[0]].since + fill_wait - self.clock())

    def take(self, limit: int = 1) -> list[tuple[str, T]]:
        """Up to `limit` waiting frames of different cameras, oldest-waiting first, now in flight."""
        with self._lock:
            chosen = self._ready()[: max(1, limit)]
            out = []
            for camera in chosen:
                out.append((camera, self._waiting.pop(camera).item))
                self._in_flight.add(camera)
                self.served[camera] += 1
                self._picks += 1
                self._last_pick[camera] = self._picks
            return out

    def done(self, camera: str) -> None:
        """The camera's frame in flight is finished (answered or failed)."""
        with self._lock:
            self._in_flight.discard(camera)

    def waited(self, camera: str) -> float:
        """Seconds the camera's frame has been waiting (0 when none waits)."""
        with self._lock:
            w = self._waiting.get(camera)
            return self.clock() - w.since if w else 0.0

    def in_flight(self) -> set[str]:
        with self._lock:
            return set(self._in_flight)
