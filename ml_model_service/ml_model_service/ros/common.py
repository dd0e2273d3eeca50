"""Pieces the nodes share: building a model from parameters, running a node."""

from __future__ import annotations

import contextlib
import os
import sys

import rclpy
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor, SingleThreadedExecutor

from ..core.loading.model import Model
from ..core.loading.trust import ModelPolicy
from ..core.settings.tables import default_of, value_of


def load_model(
    params: dict, model_path: str | None = None, label_path: str | None = None, *, policy: ModelPolicy | None = None
) -> Model:
    """A Model built from node parameters (shared with the vision node's in-process mode).

    Files load only from the allowed folders: `policy`, else the one `params` describe
    (`allowed_paths`; empty = the bundled models and `model_repository`; models on inference servers
    (`grpc://`, `http://`) only from `allowed_servers` or the start-up model_path's server). A node should build its
    policy once at start-up (`ModelPolicy.from_params`) and pass it, so that a caller who changes
    `model_repository` at run time cannot widen the folders. Raises ModelLoadError (TrustError for a
    refused file), OSError or ValueError."""
    policy = policy or ModelPolicy.from_params(params)
    repository = params.get("model_repository") or None
    if repository is not None:
        policy.check_folder(repository)  # a repository outside the allowed folders is refused
    return Model(
        params["model_path"] if model_path is None else model_path,
        params["label_path"] if label_path is None else label_path,
        repository=repository,
        backend=params["backend"],
        providers=params["execution_providers"],
        # a multi-camera node runs one call per core at once (ros/vision/driver.py): each call on one thread
        num_threads=params["num_threads"] or (1 if params.get("cameras") else 0),
        policy=policy,
        server_timeout=float(params.get("server_timeout") or default_of("server_timeout")),
        pin_threads=bool(value_of(params, "pin_threads")),
    )


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
