"""Where the vision node's model comes from — a model file in this process or a model service — and the
VisionModel built on it. Nothing else in the node knows which.

A model service is called through a client node of its own (same context, no command-line remaps) whose
calls are answered in the calling thread (`RemoteModel`, no executor): calls from the worker, from service
callbacks or from the parameter callback never wait on the node's executor, so none can deadlock it. A lost
service is retried every RETRY_S once frames ask for the model; a swap on the service (ModelChanged) rebuilds
the decoder and labels at once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from rclpy.node import Node

from ...core.reading.vision import VisionModel
from ...core.runtimes.oip_backend import InferenceServerError, is_server_ref
from ...core.settings.configs import filter_config, vision_config
from ...core.settings.typed import VisionSettings
from ..loading import load_model, start_policy
from ..remote_model import ModelChanged, RemoteError, RemoteModel

RETRY_S = 0.25
STARTUP_GRACE_S = 15.0  # a model service not yet discovered this soon after start-up is waited for, not an error
RECONNECT_TIMEOUT_S = 0.5  # a metadata call while reconnecting: a request lost to a dead service costs this much


class ModelSource:
    """Builds, holds and replaces the node's VisionModel; `state` says where it stands, for status."""

    def __init__(self, node: Node, s: VisionSettings, on_ready: Callable[[VisionModel], None]) -> None:
        self.node = node
        self.log = node.get_logger()
        self.on_ready = on_ready
        self.policy = start_policy(s)  # fixed at start-up: callers cannot widen it
        self.vision: VisionModel | None = None
        self.state, self.ok = "model not loaded yet", False
        self.waiting = False  # starting up, the model service not found yet (status WARN, logged as INFO)
        self._started = time.monotonic()
        self._ever_ready = False
        self._lock = threading.Lock()
        self._retry_at = 0.0
        self.remote: RemoteModel | None = None
        self._client_node: Node | None = None
        if s.model_service:
            name = node.resolve_service_name(s.model_service)
            self._client_node = Node(
                f"{node.get_name()}_model_client",
                namespace=node.get_namespace(),
                context=node.context,
                use_global_arguments=False,
                start_parameter_services=False,
            )
            self.remote = RemoteModel(self._client_node, name, s.service_timeout, fetch=False)

    @property
    def where(self) -> str:
        return f"model service {self.remote.service}" if self.remote else "model"

    # --- building ---------------------------------------------------------------------------------
    def build(self, s: VisionSettings) -> VisionModel:
        """A new VisionModel for `s` (loads the model; remote: fetches its metadata). Raises on failure."""
        if self.remote is not None:
            self.remote.timeout = min(s.service_timeout, RECONNECT_TIMEOUT_S)
            try:
                self.remote.fetch_metadata()
            finally:
                self.remote.timeout = s.service_timeout
            labels = self.policy.read_labels(s.label_path) if s.label_path else self.remote.labels
            return VisionModel(self.remote, labels, vision_config(s))
        model = load_model(s, policy=self.policy, one_thread=bool(s.cameras))
        for warning in model.warnings:
            self.log.warning(warning)
        return VisionModel(model, model.labels, vision_config(s))

    def rebuild_decoder(self, s: VisionSettings) -> VisionModel:
        """The loaded model read with new decoding/preprocessing options (one trial inference)."""
        if self.vision is None:
            return self.build(s)
        return VisionModel(self.vision.runner, self.vision.labels, vision_config(s))

    def install(self, vision: VisionModel, why: str = "") -> None:
        """Make `vision` the model every later frame and call uses."""
        with self._lock:
            self.vision = vision
        for warning in vision.warnings:
            self.log.warning(warning)
        labels = len(vision.labels) if vision.labels else 0
        self._ever_ready = True
        info = getattr(getattr(vision.runner, "backend", None), "info", None) or {}
        runs = f", {info['backend']} on {info.get('execution_providers', '?')}" if "backend" in info else ""
        if info.get("runtime_choice"):  # backend auto: which runtime runs it and why (measured or cached)
            self.log.info(f"{vision.runner.metadata.name}: {info['runtime_choice']}")
            runs += f"; {info['runtime_choice']}"
        self._set(f"{why}{vision.role} ready ({vision.runner.metadata.name}, {labels} labels{runs})", ok=True)
        self.on_ready(vision)

    def set_filters(self, s: VisionSettings) -> None:
        """Thresholds and class filters, applied live (no model work)."""
        if self.vision is not None:
            self.vision.config.filters = filter_config(s)

    # --- using ------------------------------------------------------------------------------------
    def current(self, s: VisionSettings) -> VisionModel | None:
        """The model to use now; builds it when there is none and a retry is due (None: see `state`)."""
        if self.vision is not None:
            return self.vision
        with self._lock:  # another thread may be building it: wait for that
            if self.vision is not None or time.monotonic() < self._retry_at:
                return self.vision
            # a model service or an inference server may come back; a file that failed to load will not
            retry = self.remote is not None or is_server_ref(s.model_path)
            self._retry_at = time.monotonic() + (RETRY_S if retry else float("inf"))
            try:
                vision = self._build_if_reachable(s)
            except Exception as exc:  # a model that cannot be used: say why, keep the node up
                if (
                    self.remote is not None
                    and not self._ever_ready
                    and isinstance(exc, RemoteError)
                    and time.monotonic() - self._started < STARTUP_GRACE_S
                ):
                    self._set(f"waiting for {self.where} (not discovered yet)", ok=False, waiting=True)
                else:
                    self._set(f"{self.where} unavailable: {exc}", ok=False)
                return None
        failed_before = not self.ok and not self.waiting and self.state != "model not loaded yet"
        self.install(vision, "recovered: " if failed_before else "")
        return self.vision

    def _build_if_reachable(self, s: VisionSettings) -> VisionModel:
        if self.remote is not None and not self.remote.ready():
            raise RemoteError(f"service {self.remote.service}/get_metadata is not available")
        return self.build(s)

    def failed(self, exc: Exception, s: VisionSettings) -> None:
        """A remote call failed: the model changed on the service (rebuild now) or the service is gone."""
        if isinstance(exc, ModelChanged):
            self.log.info(f"{exc}; rebuilding decoder and labels")
            with self._lock:
                self.vision, self._retry_at = None, 0.0
            self.state = "model changed"
            self.current(s)
            return
        with self._lock:
            if self.remote is not None:
                self.vision, self._retry_at = None, time.monotonic() + RETRY_S
            elif isinstance(exc, InferenceServerError):  # the server is away: keep the model, its client reconnects
                self._set(f"inference server unavailable: {exc}", ok=False)
                return
        self._set(f"{self.where} unavailable: {exc}", ok=False)

    def healthy(self) -> None:
        """A frame went through: a model that had failed (inference server away) serves again."""
        if not self.ok and self.vision is not None:
            self._set(f"recovered: {self.vision.role} ready ({self.vision.runner.metadata.name})", ok=True)

    def _set(self, state: str, ok: bool, waiting: bool = False) -> None:
        if state != self.state and (ok or waiting):  # rclpy wants one severity per call site
            self.log.info(state)
        elif state != self.state:
            self.log.error(state)
        self.state, self.ok, self.waiting = state, ok, waiting

    def close(self) -> None:
        if self._client_node is not None:
            self._client_node.destroy_node()
