"""Pairing colour frames with their depth frames by stamp, ROS-free (message_filters' approximate-time idea,
with the policy a live robot wants: the newest complete pair, never a backlog).

Colour and depth items arrive with stamps in seconds. `next_frame` answers what to process now:
- the newest colour frame newer than the last one handed out that has a depth frame within `slop`;
- else, once a colour frame has waited `patience` without depth, the newest such frame alone (2D only),
  with the reason its depth is missing;
- else nothing yet, and `deadline` says when waiting for depth runs out.
Frames passed over are counted as skipped. Buffers are bounded. Thread-safe; waiters are woken on arrival.

Time may jump back (a bag that loops, a simulation reset, a camera clock reset): a stamp more than
`JUMP_BACK_S` older than the newest one seen on its stream starts that stream's buffers again (and, for
colour, forgets which frames were handed out), and `add_colour` / `add_depth` say so, so the caller can log
it and restart what else depends on the timeline (tracking).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

JUMP_BACK_S = 1.0  # a stamp this much older than the newest seen means the timeline restarted


class PairingError(ValueError):
    """Why a colour frame has no depth frame."""


@dataclass
class Stamped:
    stamp: float  # seconds (header stamp)
    item: Any
    arrived: float = field(default_factory=time.monotonic)


@dataclass
class Next:
    """What to process: a colour item, its depth item (None: 2D only) and, then, why."""

    colour: Stamped
    depth: Stamped | None
    reason: str = ""
    skipped: int = 0


class Pairer:
    """Bounded colour/depth buffers, paired within `slop` seconds."""

    def __init__(self, slop: float, capacity: int = 15, patience: float | None = None) -> None:
        self.slop = slop
        self.patience = patience if patience is not None else max(0.2, 2 * slop)
        self._colour: deque[Stamped] = deque(maxlen=capacity)
        self._depth: deque[Stamped] = deque(maxlen=capacity)
        self._done = -float("inf")  # stamp of the newest colour frame handed out
        self.cond = threading.Condition()

    def add_colour(self, stamp: float, item: Any) -> float:
        """Buffer a colour frame; how far (s) time jumped back with it (0.0: it did not)."""
        with self.cond:
            newest = max(self._done, self._colour[-1].stamp if self._colour else -float("inf"))
            jump = newest - stamp if newest - stamp > JUMP_BACK_S else 0.0
            if jump:  # the old timeline's frames go; depth already on the new one stays
                self._colour.clear()
                self._depth = deque(
                    (d for d in self._depth if d.stamp <= stamp + JUMP_BACK_S), maxlen=self._depth.maxlen
                )
                self._done = -float("inf")
            self._colour.append(Stamped(stamp, item))
            self.cond.notify_all()
            return jump

    def add_depth(self, stamp: float, item: Any) -> float:
        """Buffer a depth frame; how far (s) time jumped back with it (0.0: it did not)."""
        with self.cond:
            newest = self._depth[-1].stamp if self._depth else -float("inf")
            jump = newest - stamp if newest - stamp > JUMP_BACK_S else 0.0
            if jump:
                self._depth.clear()
            self._depth.append(Stamped(stamp, item))
            self.cond.notify_all()
            return jump

    def depth_for(self, colour: Stamped) -> Stamped:
        """The depth frame taken with `colour` (nearest stamp within slop); PairingError says why not."""
        depths = list(self._depth)
        if not depths:
            raise PairingError("no depth image received yet")
        best = min(depths, key=lambda d: abs(d.stamp - colour.stamp))
        if abs(best.stamp - colour.stamp) <= self.slop:
            return best
        if colour.stamp == 0.0 or best.stamp == 0.0:
            raise PairingError(
                "colour or depth images carry no timestamp (stamp 0): they cannot be paired; "
                "set header.stamp in the camera driver"
            )
        raise PairingError(
            f"no depth image within sync_slop={self.slop} s of the colour frame (colour stamp "
            f"{colour.stamp:.3f}, nearest depth {best.stamp:.3f}; {len(depths)} buffered): "
            "check rates and clocks"
        )

    def newest_pair(self) -> tuple[Stamped, Stamped]:
        """The newest colour frame that has its depth, whether handed out or not; PairingError says why none."""
        with self.cond:
            if not self._colour:
                raise PairingError("no colour image received yet")
            for colour in reversed(self._colour):
                try:
                    return colour, self.depth_for(colour)
                except PairingError:
                    continue
            self.depth_for(self._colour[-1])  # raises the reason for the newest
            raise PairingError("no colour frame with a matching depth image")  # pragma: no cover

    def next_frame(self, now: float | None = None) -> Next | None:
        """What to process now (see the module docstring), or None."""
        now = time.monotonic() if now is None else now
        with self.cond:
            unseen = [c for c in self._colour if c.stamp > self._done]
            for i in range(len(unseen) - 1, -1, -1):
                try:
                    depth = self.depth_for(unseen[i])
                except PairingError:
                    continue
                self._done = unseen[i].stamp
                return Next(unseen[i], depth, skipped=i)
            stale = [c for c in unseen if now - c.arrived >= self.patience]
            if not stale:
                return None
            colour = stale[-1]
            self._done = colour.stamp
            try:
                self.depth_for(colour)
                reason = "no depth image"  # pragma: no cover (a pair would have been found above)
            except PairingError as exc:
                reason = str(exc)
            return Next(colour, None, reason, skipped=len(stale) - 1)

    def deadline(self) -> float | None:
        """Monotonic time at which the oldest waiting colour frame is given up on (None: none waits)."""
        with self.cond:
            unseen = [c.arrived for c in self._colour if c.stamp > self._done]
            return min(unseen) + self.patience if unseen else None

    def latest_colour(self) -> Stamped | None:
        with self.cond:
            return self._colour[-1] if self._colour else None

    def wait(self, predicate, timeout: float):
        """Wait (woken on every arrival) until predicate() is truthy or `timeout` passes; returns its value."""
        with self.cond:
            return self.cond.wait_for(predicate, timeout)

    def clear(self) -> None:
        """Forget every buffered frame and which were handed out (a new timeline)."""
        with self.cond:
            self._colour.clear()
            self._depth.clear()
            self._done = -float("inf")
