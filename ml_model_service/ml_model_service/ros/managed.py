"""What both nodes share as managed (lifecycle) nodes: the transitions beyond configure and activate, the
`stage` status reports, coming up by themselves (`autostart`) or waiting for a lifecycle manager, and running
until a stop (`spin_node`).

A node implements `on_configure` and `on_activate`, and two hooks the other transitions are made of:
`_stop_work` (what deactivate undoes) and `_clean_up` (what cleanup frees)."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import gc
import os
import sys

import rclpy
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor, SingleThreadedExecutor
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn


def release_freed_memory() -> None:
    """Give what a cleanup freed back to the system. A model's runtime allocates from the threads that load and
    run it, each with its own glibc malloc arena; freed, those pages stay with the process (measured: a vision
    node grew 17 MB per configure/cleanup cycle, 124 -> 473 MB over 20; with the arenas trimmed it stays flat).
    Nothing happens where the C library has no malloc_trim (musl, macOS)."""
    gc.collect()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _malloc_trim():
    """The C library's malloc_trim, or None (found once: find_library runs ldconfig)."""
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):
        return None


class ManagedNode(LifecycleNode):
    """A LifecycleNode whose deactivate, cleanup, shutdown and error transitions are `_stop_work` and
    `_clean_up`; `stage` names where it stands ("unconfigured", "inactive", "active", ...)."""

    stage = "unconfigured"

    def start_up(self, autostart: bool) -> None:
        """Configure and activate now (`autostart`), or say how a lifecycle manager brings the node up."""
        if autostart:
            if self.trigger_configure() == TransitionCallbackReturn.SUCCESS:
                self.trigger_activate()
        else:
            self.get_logger().info(
                "unconfigured, waiting for a lifecycle manager (autostart: false): "
                f"ros2 lifecycle set {self.get_fully_qualified_name()} configure"
            )

    def configure_failed(self, reason: str) -> TransitionCallbackReturn:
        """Leave configure with FAILURE, the reason logged and reported."""
        self.get_logger().error(f"configure failed: {reason}")
        self._clean_up()
        self.stage = f"unconfigured (configure failed: {reason})"
        return TransitionCallbackReturn.FAILURE

    def _stop_work(self) -> None:
        """Undo activate."""

    def _clean_up(self) -> None:
        """Free what configure made."""

    def on_deactivate(self, _state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_work()
        self.stage = "inactive"
        return TransitionCallbackReturn.SUCCESS

    def on_cleanup(self, _state: LifecycleState) -> TransitionCallbackReturn:
        self._clean_up()
        release_freed_memory()
        self.stage = "unconfigured"
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, _state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_work()
        self._clean_up()
        self.stage = "finalized"
        return TransitionCallbackReturn.SUCCESS

    def on_error(self, _state: LifecycleState) -> TransitionCallbackReturn:
        self.get_logger().error("a lifecycle transition raised: work stopped, resources freed")
        self._stop_work()
        self._clean_up()
        self.stage = "unconfigured (after an error)"
        return TransitionCallbackReturn.SUCCESS

    def destroy_node(self) -> None:
        try:
            self._stop_work()
            self._clean_up()
        except AttributeError:  # start-up failed before the parts were made
            pass
        super().destroy_node()


def spin_node(node_class, args=None, threads: int = 4) -> None:
    """Run a node until shutdown: on a SingleThreadedExecutor when `threads` is 1 (cheapest per callback), else
    a MultiThreadedExecutor. A start-up parameter that cannot be used ends the process with one line. A stop
    (SIGINT, or SIGTERM as launch and systemd send) at any moment ends it with status 0."""
    from .parameters import ParameterError

    rclpy.init(args=args)
    # made before the node, so that a stop during the node's start-up (its model load) finds it whole
    executor = SingleThreadedExecutor() if threads == 1 else MultiThreadedExecutor(num_threads=threads)
    node = None
    try:
        node = node_class()
        if rclpy.ok():  # (a stop during start-up shut the context down: nothing to spin)
            executor.add_node(node)
            executor.spin()
    except ParameterError as exc:
        rclpy.logging.get_logger(node_class.__name__).fatal(str(exc))
        # The node half-built by its constructor cannot be destroyed; left to the interpreter's exit, its
        # entities outlive the context and can crash the process (SIGSEGV instead of status 2): end it now.
        if rclpy.ok():
            rclpy.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(2)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except Exception:
        if rclpy.ok():
            raise
        # A stop (SIGTERM from launch or systemd, SIGINT) shut the context down while the node was starting or
        # loading: what failed after it is the stop's doing, not an error; the node ends cleanly (status 0).
    finally:
        if node is not None:
            with contextlib.suppress(Exception):  # (a node half-built when the stop came)
                node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
