"""The vision service node: camera topics in, vision_msgs out; request/response calls for any image.

Composition only; each job lives in its own module:
- parameters: the table in `core/settings/tables.py`, declared by `ros/parameters.py`; a change is validated in the
  on-set callback (a model or decoder change is built there, so a model that fails to load is refused and the
  old one keeps serving) and applied in the post-set callback by tier — a threshold never reloads the model;
- the model: `ros/model_source.py` (in process, or a model service called from the calling thread);
- the camera: `ros/camera_input.py` (subscriptions owned by the worker, subscribed only while someone listens);
- pairing colour/depth/camera_info: `core/frames/pairing.py`; the frame's work: `core/frames/pipeline.py`;
- the worker thread: `ros/worker.py`; publishers: `ros/outputs.py`; calls: `ros/services.py` (own threads);
  one frame through the pipeline, for both: `ros/processing.py`;
  health: `ros/status.py` (`~/status` and `/diagnostics`), judged from the stream's facts by
  `core/frames/health.py`;
- several cameras (`cameras`): `ros/multicam.py` (per camera its subscriptions, pairing, tracker, status and
  publishers; one worker thread serving them fairly, batched where the model takes a batch).
The node spins on a single-threaded executor (parameters, matched and QoS events, status and demand timers);
nothing on it waits for frames or models.
"""

from __future__ import annotations

import time
from typing import Any

from rclpy.clock import JumpThreshold
from rclpy.duration import Duration
from rclpy.lifecycle import LifecycleState, TransitionCallbackReturn

from ..core.frames.health import TopicState
from ..core.frames.pairing import JUMP_BACK_S, Pairer
from ..core.reading.vision import VisionModel
from ..core.runtimes.oip_backend import is_server_ref
from ..core.settings.camera_table import camera_params, camera_values
from ..core.settings.params import FILTERS, MODEL, RUNNER
from ..core.settings.tables import VISION_PARAMS, changed_tier, validate
from . import frames
from .camera_input import CameraInput
from .common import spin_node
from .frames import INSTALL_TF2, TargetFrame
from .managed import ManagedNode
from .model_source import ModelSource
from .multicam import Cameras
from .outputs import Outputs
from .parameters import ParameterError, declare, read, typed_values, validator
from .services import ServiceCamera, VisionServices
from .status import ERROR, OK, WARN, Status
from .worker import Worker

DEMAND_S = 10.0  # a service call asking for the latest frame keeps the camera subscribed this long
COUNTERS = [
    "received",
    "processed",
    "skipped",
    "errors",
    "malformed",
    "no_model",
    "depth_received",
    "unpaired",
    "depth_errors",
    "tf_errors",
    "decode_budget",
    "time_jumps",
    "service_calls",
]


class VisionNode(ManagedNode):
    """Detections, classifications and object point clouds from a model and camera topics.

    A managed (lifecycle) node: configure builds the model source, publishers and services and loads the model;
    activate subscribes (on demand) and processes frames; deactivate stops all work and subscriptions; cleanup
    frees the model. With `autostart` (the default) it configures and activates itself at start-up, and a model
    that cannot be loaded then leaves it up and reporting ERROR, as a plain node; without, a failing transition
    returns FAILURE with the reason logged."""

    def __init__(self, **kwargs) -> None:
        super().__init__("vision_service", **kwargs)
        v = self.values = declare(self, VISION_PARAMS)
        self.obstacles = v["object_mode"] == "obstacles"
        self.cameras = self._declare_cameras(v["cameras"])
        self.image_topic = (
            self.cameras.streams[0].image_topic
            if self.cameras
            else self.resolve_topic_name("image") + ("/compressed" if v["use_compressed"] else "")
        )
        self._demand_until = 0.0
        self._pending: tuple[str | None, dict[str, Any], VisionModel | None] | None = None
        self.active = False
        self.pairer = Pairer(v["sync_slop"], capacity=8 if v["use_depth"] else 1)
        self.source: ModelSource | None = None
        self.outputs: Outputs | None = None
        self.calls: VisionServices | None = None
        self.camera: CameraInput | None = None
        self.worker: Worker | None = None
        self.frames: TargetFrame | None = None
        if v["target_frame"] and not frames.available():
            raise ParameterError(INSTALL_TF2)
        self._retries = bool(v["model_service"] or is_server_ref(v["model_path"]))  # may come up later: retry
        self.status = Status(
            self,
            self.image_topic,
            ["service_calls"] if self.cameras else COUNTERS,
            self._states,
            self._status_fields,
            children=lambda: [s.status for s in self.cameras.streams] if self.cameras else [],
            tick=self._every_second,
        )
        self.add_pre_set_parameters_callback(typed_values(VISION_PARAMS))
        self.add_on_set_parameters_callback(validator(VISION_PARAMS, lambda: self.values, self._prepare))
        self.add_post_set_parameters_callback(self._apply)
        self._jump_handler = self.get_clock().create_jump_callback(
            JumpThreshold(min_forward=None, min_backward=Duration(seconds=-JUMP_BACK_S), on_clock_change=True),
            post_callback=self._clock_jumped,
        )
        self.start_up(v["autostart"])

    def _declare_cameras(self, names: list[str]) -> Cameras | None:
        """Several cameras: their `<camera>.<name>` overrides declared from the table, and their streams."""
        if not names:
            return None
        given = set(self._parameter_overrides)  # noqa: SLF001 (start-up values; declare consumes them)
        params = [p for name in names for p in camera_params(name, VISION_PARAMS, self.values)]
        declared = declare(self, params)
        overrides = {k: value for k, value in declared.items() if k in given}
        for name in names:
            reason = validate(camera_values(name, self.values, overrides), VISION_PARAMS)
            if reason:
                raise ParameterError(f"camera {name}: parameter {reason}")
        self._camera_params = params
        self.add_pre_set_parameters_callback(typed_values(params))
        self.add_on_set_parameters_callback(validator(params, lambda: dict(self.cameras.overrides), self._check_camera))
        self.add_post_set_parameters_callback(self._apply_camera)
        cameras = Cameras(self, names, lambda: self.values, overrides, COUNTERS, lambda: {"lifecycle": self.stage})
        cameras.model_state = self._model_state
        return cameras

    def _check_camera(self, candidate: dict[str, Any]) -> str:
        """A camera override combined with the node's values must pass the table's checks too."""
        for name in self.values["cameras"]:
            prefix = f"{name}."
            overrides = {k: v for k, v in candidate.items() if k.startswith(prefix)}
            reason = validate(camera_values(name, self.values, overrides), VISION_PARAMS)
            if reason:
                return f"camera {name}: {reason}"
        return ""

    def _apply_camera(self, parameters) -> None:
        if self.cameras is None:
            return
        names = {p.name for p in self._camera_params}
        for key, value in read(parameters).items():
            if key in names:
                self.cameras.overrides[key] = value
        self.cameras.values_changed()
        self._update_demand()

    def _status_fields(self) -> dict[str, str]:
        if self.cameras:
            fields = {"cameras": ",".join(self.values["cameras"]), "lifecycle": self.stage}
            worker = self.cameras.worker
            if worker is not None:
                fields.update(inference_calls=str(worker.calls), frames_served=str(worker.frames))
            return fields
        shares = self.worker.class_shares if self.worker else ""
        return {
            "subscribed": str(bool(self.camera and self.camera.subscribed)).lower(),
            "lifecycle": self.stage,
            **({"class_shares": shares} if shares else {}),
        }

    # --- lifecycle --------------------------------------------------------------------------------
    def on_configure(self, _state: LifecycleState) -> TransitionCallbackReturn:
        """Model source, publishers and services; the model loaded and checked."""
        v = self.values
        self.source = ModelSource(self, v, self._model_ready)
        self.outputs = Outputs(self, self._update_demand, results=not self.cameras)
        if self.cameras:
            self.cameras.configure(self._update_demand)
        self.frames = TargetFrame(self)
        if not self.obstacles and self.source.current(v) is None and not v["autostart"]:
            return self.configure_failed(self.source.state)
        self.calls = VisionServices(
            self,
            self.source,
            self._service_cameras(),
            self.status,
            lambda: self.values,
            lambda: self.active,
            self.frames,
        )
        self.stage = "inactive"
        return TransitionCallbackReturn.SUCCESS

    def _service_cameras(self) -> dict[str, ServiceCamera]:
        """The cameras the calls may name ("" for the one camera of a single-camera node)."""
        if not self.cameras:
            one = ServiceCamera(
                self.pairer,
                lambda: self.worker.info if self.worker else None,
                self.image_topic,
                self._on_demand,
                lambda: self.values,
            )
            return {"": one}
        return {
            s.name: ServiceCamera(
                s.pairer,
                lambda s=s: s.worker.info if s.worker else None,
                s.image_topic,
                lambda s=s: self.cameras.on_demand(s, DEMAND_S),
                s.values,
            )
            for s in self.cameras.streams
        }

    def on_activate(self, _state: LifecycleState) -> TransitionCallbackReturn:
        """Subscribe (while someone listens) and process frames."""
        v = self.values
        if self.cameras:
            return self._activate_cameras()
        self.camera = CameraInput(
            self, self.image_topic, v["use_compressed"], v["use_depth"], v["image_qos"] == "reliable"
        )
        self.worker = Worker(
            self.camera,
            self.pairer,
            self.source,
            self.outputs,
            self.status,
            lambda: self.values,
            self.get_logger(),
            self.frames,
        )
        self.worker.start()
        self.active, self.stage = True, "active"
        if self.source.vision is not None:
            self._model_ready(self.source.vision)
        self._update_demand()
        self.get_logger().info(
            f"listening on {self.image_topic}"
            + (" with depth" if v["use_depth"] else "")
            + f"; model: {v['model_service'] or v['model_path'] or 'bundled detector'}"
            + (" (obstacle mode, no model)" if self.obstacles else "")
        )
        return TransitionCallbackReturn.SUCCESS

    def _activate_cameras(self) -> TransitionCallbackReturn:
        self.cameras.activate(self.source, self.frames, lambda: self.values)
        self.active, self.stage = True, "active"
        if self.source.vision is not None:
            self._model_ready(self.source.vision)
        self._update_demand()
        described = ", ".join(
            s.name + (" (with depth)" if s.values()["use_depth"] else "") for s in self.cameras.streams
        )
        self.get_logger().info(
            f"serving {len(self.cameras.streams)} cameras: {described}; model: "
            f"{self.values['model_service'] or self.values['model_path'] or 'bundled detector'}"
        )
        return TransitionCallbackReturn.SUCCESS

    def _stop_work(self) -> None:
        self.active = False
        if self.cameras:
            self.cameras.stop()
        if self.worker is not None:
            self.worker.stop()  # closes the camera subscriptions
        self.worker, self.camera = None, None
        self.pairer.clear()

    def _clean_up(self) -> None:
        if self.calls is not None:
            self.calls.stop()
        if self.outputs is not None:
            self.outputs.destroy()
        if self.cameras:
            self.cameras.destroy_outputs()
        if self.source is not None:
            self.source.close()
        if self.frames is not None:
            self.frames.close()
        self.calls = self.outputs = self.source = self.frames = None

    # --- parameters -------------------------------------------------------------------------------
    def _prepare(self, candidate: dict[str, Any]) -> str:
        """Validate a change that valid values alone cannot vouch for: build the new model or decoder now."""
        tier = changed_tier(self.values, candidate, VISION_PARAMS)
        vision = None
        reason = self._unknown_classes(candidate)
        if reason:
            return reason
        if (
            candidate["target_frame"]
            and candidate["target_frame"] != self.values["target_frame"]
            and not frames.available()
        ):
            return INSTALL_TF2
        if tier in (RUNNER, MODEL) and not self.obstacles and self.source is not None:
            if tier == RUNNER and self.source.remote is not None:
                return (
                    f"the model comes from the model service {self.source.remote.service}: call its "
                    "~/load_model or set its model_path"
                )
            if tier == RUNNER and not candidate["allow_model_swap"]:
                return "run-time model changes are turned off (allow_model_swap: false)"
            try:
                vision = self.source.build(candidate) if tier == RUNNER else self.source.rebuild_decoder(candidate)
            except Exception as exc:  # refused: the current model keeps serving
                return f"model not changed, the current one keeps serving: {exc}"
        self._pending = (tier, candidate, vision)
        return ""

    def _unknown_classes(self, candidate: dict[str, Any]) -> str:
        """ "" when every name newly set in `classes` and `label_confidences` is a label of the model, else why
        not (a name that is not a label would filter out everything, silently)."""
        vision = self.source.vision if self.source is not None else None
        known = set(vision.labels.names.values()) if vision is not None and vision.labels else set()
        for name in ("classes", "label_confidences"):
            if candidate[name] == self.values[name]:
                continue
            names = candidate[name] if name == "classes" else [e.rpartition(":")[0].strip() for e in candidate[name]]
            for item in names:
                if not item.strip():
                    return f"{name}: an empty class name matches no label"
                if known and item not in known and not item.isdigit():
                    shown = ", ".join(sorted(known)[:40]) + (", ..." if len(known) > 40 else "")
                    return f"{name}: {item!r} is not a label of this model; its {len(known)} labels: {shown}"
        return ""

    def _apply(self, parameters) -> None:
        """Apply an accepted change by its tier (after rclpy stored the values)."""
        tier, candidate, vision = self._pending or (None, {**self.values, **read(parameters)}, None)
        self._pending = None
        self.values = candidate
        self.pairer.slop = candidate["sync_slop"]
        if self.cameras:  # cameras without their own sync_slop follow the node's
            self.cameras.values_changed()
        if self.source is None:  # unconfigured: the values are used at configure
            return
        if vision is not None:
            self.source.install(vision, "model changed: " if tier == RUNNER else "decoder rebuilt: ")
        elif tier == FILTERS:
            self.source.set_filters(candidate)
            if self.source.vision is not None:
                self._model_ready(self.source.vision)
        self._update_demand()

    def _clock_jumped(self, jump) -> None:
        """The node's clock went back (a simulation or bag replay restarted, /clock reset)."""
        self.get_logger().warning(
            f"the clock jumped ({jump.delta.nanoseconds * 1e-9:+.2f} s): pairing and tracking restarted"
        )
        if self.worker is not None:
            self.worker.restart_timeline()
        if self.cameras:
            self.cameras.restart_timeline()
        self.pairer.clear()

    def _every_second(self) -> None:
        """The status timer's tick: end a service call's demand for frames; retry a model that may come up."""
        self._update_demand()
        if self._retries:
            self._retry_model()

    def _retry_model(self) -> None:
        if self.source is not None and self.source.vision is None:
            self.source.current(self.values)  # no-op until a retry is due (never for a file that failed)

    def _model_ready(self, vision: VisionModel) -> None:
        if self.active and self.outputs is not None:  # label_info is latched: only from an active node
            self.outputs.publish_labels(vision, self.values["confidence_threshold"])

    # --- subscribe while someone listens ----------------------------------------------------------
    def _on_demand(self) -> None:
        """A service wants the latest frame (any thread): subscribe for DEMAND_S seconds."""
        self._demand_until = time.monotonic() + DEMAND_S
        self._update_demand()

    def _update_demand(self) -> None:
        if self.cameras:
            self.cameras.update_demand()
            return
        if self.camera is None or self.outputs is None:
            return
        wanted = bool(self.values["always_on"] or self.outputs.listened() or time.monotonic() < self._demand_until)
        if wanted != self.camera.wanted:
            self.camera.wanted = wanted
            if not wanted:
                self.pairer.clear()
            self.camera.wake()

    # --- health -----------------------------------------------------------------------------------
    def _model_state(self) -> list[tuple[bytes, str]]:
        if self.source is None:
            return [(OK, self.stage)]
        if self.obstacles:
            return [(OK, "obstacle mode")]
        return [(OK if self.source.ok else WARN if self.source.waiting else ERROR, self.source.state)]

    def _states(self) -> list[tuple[bytes, str]]:
        if self.cameras:
            if self.source is None or self.cameras.worker is None:
                return [(OK, self.stage)]
            return self._model_state() + self.cameras.summary()
        if self.source is None or self.camera is None or self.worker is None:
            return [(OK, self.stage)]  # the lifecycle manager's choice, not a fault
        states = self._model_state()
        if self.worker.depth_state:
            states.append((WARN, f"3D failing: {self.worker.depth_state}"))
        topic = TopicState(
            subscribed=self.camera.subscribed,
            publishers=self.count_publishers(self.image_topic),
            qos_problem=self.camera.qos_problem,
        )
        states += [(bytes([level]), text) for level, text in self.worker.health.assess(self.image_topic, topic)]
        if not self.camera.subscribed:
            states.append((OK, "idle: nobody subscribes to the results (the camera is subscribed on demand)"))
        return states


def main(args=None) -> None:
    spin_node(VisionNode, args, threads=1)


if __name__ == "__main__":
    main()
