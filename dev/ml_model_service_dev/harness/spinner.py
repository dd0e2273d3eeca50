"""A node spun in a background thread, for tools and tests that call services synchronously."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TypeVar

import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node

N = TypeVar("N", bound=Node)


class BackgroundSpinner:
    """A node spun in a daemon thread, for scripts and tests that call services synchronously."""

    def __init__(self, name: str) -> None:
        if not rclpy.ok():
            rclpy.init()
        self.node = Node(name)
        self.executor = SingleThreadedExecutor()
        self.executor.add_node(self.node)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        while rclpy.ok() and not self._stop.is_set():
            try:
                self.executor.spin_once(timeout_sec=0.05)
            except Exception:  # shutdown races
                time.sleep(0.01)

    @contextmanager
    def spun(self, node: N) -> Iterator[N]:
        """`node` spun by this executor (as the product's nodes are spun by theirs), destroyed afterwards."""
        self.executor.add_node(node)
        try:
            yield node
        finally:
            self.executor.remove_node(node)
            node.destroy_node()

    def close(self) -> None:
        """Stop spinning, destroy the node and shut rclpy down."""
        self._stop.set()
        self._thread.join(5)
        self.executor.remove_node(self.node)
        self.node.destroy_node()
        self.executor.shutdown()
        if rclpy.ok():
            rclpy.shutdown()
