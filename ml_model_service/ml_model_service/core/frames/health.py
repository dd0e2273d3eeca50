"""Whether a camera stream is doing its job, judged from what happened to its frames, ROS-free.

The worker records facts (a colour frame arrived, a frame was processed, a frame failed and why, a message
could not be read); `StreamHealth.assess` turns the facts of the last `window` seconds, and what the node
knows of the topic (subscribed, publishers, a QoS mismatch), into (level, reason) states. Levels are
0 OK, 1 WARN, 2 ERROR, as in diagnostic_msgs/DiagnosticStatus.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass

OK, WARN, ERROR = 0, 1, 2

#: seconds of history the verdict is drawn from
WINDOW_S = 3.0
#: a subscribed stream with no colour frame for this long is stalled
STALL_S = 2.5


@dataclass(frozen=True)
class TopicState:
    """What the node knows of its image topic when health is assessed."""

    subscribed: bool
    publishers: int
    qos_problem: str = ""  # "" or why a publisher's QoS cannot match the subscription


class StreamHealth:
    """Facts about one camera stream (recorded from the worker thread) and the verdict on them (any thread)."""

    def __init__(self, window: float = WINDOW_S, stall: float = STALL_S, clock=time.monotonic) -> None:
        self.window, self.stall, self.clock = window, stall, clock
        self._lock = threading.Lock()
        self._received: deque[float] = deque(maxlen=4096)
        self._processed: deque[float] = deque(maxlen=4096)
        self._failed: deque[tuple[float, str]] = deque(maxlen=4096)
        self._subscribed_at: float | None = None
        self._last_colour: float | None = None

    # --- facts ------------------------------------------------------------------------------------
    def subscribed(self, yes: bool) -> None:
        """The image subscription was made (True) or dropped (False)."""
        with self._lock:
            self._subscribed_at = self.clock() if yes else None
            if not yes:
                self._received.clear()
                self._processed.clear()
                self._failed.clear()
                self._last_colour = None

    def received(self, n: int = 1) -> None:
        now = self.clock()
        with self._lock:
            self._last_colour = now
            self._received.extend([now] * min(n, 64))

    def processed(self) -> None:
        with self._lock:
            self._processed.append(self.clock())

    def failed(self, cause: str) -> None:
        """A frame (or a message on one of the stream's topics) was dropped, for `cause`."""
        with self._lock:
            self._failed.append((self.clock(), cause))

    # --- verdict ----------------------------------------------------------------------------------
    def assess(self, topic: str, state: TopicState) -> list[tuple[int, str]]:
        """The stream's states now: [] when it does its job (or nobody wants frames), else (level, reason)."""
        if not state.subscribed:
            return []
        now = self.clock()
        with self._lock:
            since = now - self.window
            recent = [t for t in self._received if t >= since]
            received = len(recent)
            processed = sum(1 for t in self._processed if t >= since)
            failures = [c for t, c in self._failed if t >= since]
            subscribed_for = now - self._subscribed_at if self._subscribed_at is not None else 0.0
            quiet_for = now - self._last_colour if self._last_colour is not None else subscribed_for
        states: list[tuple[int, str]] = []
        if state.qos_problem:
            states.append((WARN, state.qos_problem))
        if processed == 0 and failures:
            states.append(
                (
                    ERROR,
                    f"no frame processed in the last {self.window:g} s: {len(failures)} dropped, "
                    f"last cause: {failures[-1]}",
                )
            )
        elif failures and len(failures) * 2 >= max(received, processed + len(failures)):
            states.append(
                (
                    WARN,
                    f"{len(failures)} of the last {max(received, processed + len(failures))} "
                    f"frames dropped: {failures[-1]}",
                )
            )
        if quiet_for >= self.stall and (subscribed_for >= self.stall):
            if state.publishers == 0:
                states.append((WARN, f"no publisher on {topic} (for {quiet_for:.0f} s)"))
            elif not state.qos_problem:
                states.append(
                    (
                        WARN,
                        f"no frame on {topic} for {quiet_for:.0f} s ({state.publishers} "
                        f"publisher{'s' if state.publishers != 1 else ''}): the camera stalled?",
                    )
                )
        elif received and processed == 0 and not failures and now - recent[0] >= 1.0:
            states.append(
                (
                    WARN,
                    f"{received} frames received in the last {self.window:g} s but none processed "
                    "(pairing with depth stalled?)",
                )
            )
        return states
