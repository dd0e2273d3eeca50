"""Polling until something is true, for tests and scripts."""

from __future__ import annotations

import time


def wait_until(predicate, timeout: float, interval: float = 0.05):
    """Poll until predicate() is truthy; returns its value, or None after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return None


def wait_for(predicate, timeout: float, interval: float = 0.05, what: str = "condition"):
    """`wait_until`, raising TimeoutError (naming `what`) when the time runs out."""
    value = wait_until(predicate, timeout, interval)
    if not value:
        raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
    return value
