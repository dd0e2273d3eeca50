"""The vision service node: camera topics in, vision_msgs out; request/response calls for any image.

Composition only; each job lives in its own module:
- parameters: the table in `core/options.py`, declared by `ros/parameters.py`; a change is validated in the
  on-set callback (a model or decoder change is built there, so a model that fails to load is refused and the
  old one keeps serving) and applied in the post-set callback by tier — a threshold never reloads the model;
- the model: `ros/model_source.py` (in process, or a model service called from the calling thread);
- the camera: `ros/camera_input.py` (subscriptions owned by the worker, subscribed only while someone listens);
- pairing colour/depth/camera_info: `core/pairing.py`; the frame's work: `core/pipeline.py`;
- the worker thread: `ros/worker.py`; publishers: `ros/outputs.py`; calls: `ros/services.py` (own threads);
  health: `ros/status.py` (`~/status` and `/diagnostics`), judged from the stream's facts by `core/health.py`.
The node spins on a single-threaded executor (parameters, matched and QoS events, status and demand timers);
nothing on it waits for frames or models.
"""
from __future__ import annotations

import time
from typing import Any

from rclpy.node import Node

from ..core.health import TopicState
from ..core.oip_backend import is_server_ref
from ..core.options import FILTERS, MODEL, RUNNER, VISION_PARAMS, changed_tier
from ..core.pairing import Pairer
from ..core.vision import VisionModel
from .camera_input import CameraInput
from .common import spin_node
from .model_source import ModelSource
from .outputs import Outputs
from .parameters import declare, read, validator
from .services import VisionServices
from .status import ERROR, OK, WARN, Status
from .worker import Worker

DEMAND_S = 10.0  # a service call asking for the latest frame keeps the camera subscribed this long
COUNTERS = ["received", "processed", "skipped", "errors", "malformed", "no_model", "depth_received", "unpaired",
            "depth_errors", "service_calls"]


class VisionNode(Node):
    """Detections, classifications and object point clouds from a model and camera topics."""

    def __init__(self, **kwargs) -> None:
        super().__init__("vision_service", **kwargs)
        v = self.values = declare(self, VISION_PARAMS)
        self.obstacles = v["object_mode"] == "obstacles"
        self.image_topic = self.resolve_topic_name("image") + ("/compressed" if v["use_compressed"] else "")
        self._demand_until = 0.0
        self._pending: tuple[str | None, dict[str, Any], VisionModel | None] | None = None

        self.pairer = Pairer(v["sync_slop"], capacity=8 if v["use_depth"] else 1)
        self.outputs = Outputs(self, self._update_demand)
        self.source = ModelSource(self, v, self._model_ready)
        self.camera = CameraInput(self, self.image_topic, v["use_compressed"], v["use_depth"],
                                  v["image_qos"] == "reliable")
        self.status = Status(self, self.image_topic, COUNTERS, self._states,
                             lambda: {"subscribed": str(self.camera.subscribed).lower()})
        self.worker = Worker(self.camera, self.pairer, self.source, self.outputs, self.status, lambda: self.values,
                             self.get_logger())
        self.calls = VisionServices(self, self.source, self.pairer, self.status, lambda: self.values,
                                       self._on_demand, lambda: self.worker.info, self.image_topic)
        self.add_on_set_parameters_callback(validator(VISION_PARAMS, lambda: self.values, self._prepare))
        self.add_post_set_parameters_callback(self._apply)
        if not self.obstacles:
            self.source.current(v)  # load now: start-up problems show at once
            if v["model_service"] or is_server_ref(v["model_path"]):  # may come up later: retry, 1 Hz
                self.create_timer(1.0, self._retry_model)
        self.create_timer(1.0, self._update_demand)  # ends a service call's demand for frames
        self.worker.start()
        self._update_demand()
        self.get_logger().info(
            f"listening on {self.image_topic}" + (" with depth" if v["use_depth"] else "") +
            f"; model: {v['model_service'] or v['model_path'] or 'bundled detector'}" +
            (" (obstacle mode, no model)" if self.obstacles else ""))

    # --- parameters -------------------------------------------------------------------------------
    def _prepare(self, candidate: dict[str, Any]) -> str:
        """Validate a change that valid values alone cannot vouch for: build the new model or decoder now."""
        tier = changed_tier(self.values, candidate, VISION_PARAMS)
        vision = None
        if tier in (RUNNER, MODEL) and not self.obstacles:
            if tier == RUNNER and self.source.remote is not None:
                return (f"the model comes from the model service {self.source.remote.service}: call its "
                        "~/load_model or set its model_path")
            if tier == RUNNER and not candidate["allow_model_swap"]:
                return "run-time model changes are turned off (allow_model_swap: false)"
            try:
                vision = self.source.build(candidate) if tier == RUNNER else self.source.rebuild_decoder(candidate)
            except Exception as exc:  # refused: the current model keeps serving
                return f"model not changed, the current one keeps serving: {exc}"
        self._pending = (tier, candidate, vision)
        return ""

    def _apply(self, parameters) -> None:
        """Apply an accepted change by its tier (after rclpy stored the values)."""
        tier, candidate, vision = self._pending or (None, {**self.values, **read(parameters)}, None)
        self._pending = None
        self.values = candidate
        self.pairer.slop = candidate["sync_slop"]
        if vision is not None:
            self.source.install(vision, "model changed: " if tier == RUNNER else "decoder rebuilt: ")
        elif tier == FILTERS:
            self.source.set_filters(candidate)
            if self.source.vision is not None:
                self.outputs.publish_labels(self.source.vision, candidate["confidence_threshold"])
        self._update_demand()

    def _retry_model(self) -> None:
        if self.source.vision is None:
            self.source.current(self.values)  # no-op until a retry is due (never for a file that failed)

    def _model_ready(self, vision: VisionModel) -> None:
        self.outputs.publish_labels(vision, self.values["confidence_threshold"])

    # --- subscribe while someone listens ----------------------------------------------------------
    def _on_demand(self) -> None:
        """A service wants the latest frame (any thread): subscribe for DEMAND_S seconds."""
        self._demand_until = time.monotonic() + DEMAND_S
        self._update_demand()

    def _update_demand(self) -> None:
        wanted = bool(self.values["always_on"] or self.outputs.listened() or time.monotonic() < self._demand_until)
        if wanted != self.camera.wanted:
            self.camera.wanted = wanted
            if not wanted:
                self.pairer.clear()
            self.camera.wake()

    # --- health -----------------------------------------------------------------------------------
    def _states(self) -> list[tuple[bytes, str]]:
        states = [(OK, "obstacle mode")] if self.obstacles else [
            (OK if self.source.ok else ERROR, self.source.state)]
        if self.worker.depth_state:
            states.append((WARN, f"3D failing: {self.worker.depth_state}"))
        topic = TopicState(subscribed=self.camera.subscribed, publishers=self.count_publishers(self.image_topic),
                           qos_problem=self.camera.qos_problem)
        states += [(bytes([level]), text) for level, text in self.worker.health.assess(self.image_topic, topic)]
        if not self.camera.subscribed:
            states.append((OK, "idle: nobody subscribes to the results (the camera is subscribed on demand)"))
        return states

    def destroy_node(self) -> None:
        for part in ("calls", "worker", "source"):  # absent when start-up failed
            if hasattr(self, part):
                getattr(self, part).close() if part == "source" else getattr(self, part).stop()
        super().destroy_node()


def main(args=None) -> None:
    spin_node(VisionNode, args, threads=1)


if __name__ == "__main__":
    main()
