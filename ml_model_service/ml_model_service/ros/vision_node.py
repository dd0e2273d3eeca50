"""The vision service node: camera topics in, vision_msgs out; request/response calls for any image.

Composition only; each job lives in its own module. From a camera topic to a publication:
- `vision/cameras.py`: the node's cameras (`cameras`, or the node's one camera), their layout on the graph,
  demand and health; `vision/driver.py`: the one thread that waits on every camera's subscriptions and runs
  their frames, fairly and batched where the model takes a batch;
- `vision/camera.py`: one camera's pipeline: its subscriptions (`vision/subscriptions.py`), colour/depth pairing
  (`core/frames/pairing.py`), the frame's work (`vision/frame.py`, `core/frames/pipeline.py`), 3D in
  `target_frame` (`tf.py`), its publishers (`vision/outputs.py`) and its counters;
- the model: `vision/model_source.py` (in process, or a model service called from the calling thread);
- calls: `vision/services.py` (own threads); health: `status.py` (`~/status` and `/diagnostics`), judged from
  the stream's facts by `core/frames/health.py`;
- parameters: the table in `core/settings/tables.py`, declared by `parameters.py`; a change is validated in the
  on-set callback (a model or decoder change is built there, so a model that fails to load is refused and the
  old one keeps serving) and applied in the post-set callback by tier — a threshold never reloads the model.
The node spins on a single-threaded executor (parameters, matched and QoS events, status and demand timers);
nothing on it waits for frames or models.
"""

from __future__ import annotations

from typing import Any

from rclpy.clock import JumpThreshold
from rclpy.duration import Duration
from rclpy.lifecycle import LifecycleState, TransitionCallbackReturn

from ..core.frames.pairing import JUMP_BACK_S
from ..core.reading.vision import VisionModel
from ..core.runtimes.oip_backend import is_server_ref
from ..core.settings.camera_table import camera_params, camera_values
from ..core.settings.params import FILTERS, MODEL, RUNNER
from ..core.settings.tables import VISION_PARAMS, changed_tier, validate
from ..core.settings.typed import ObjectMode, VisionSettings
from . import tf
from .managed import ManagedNode, spin_node
from .parameters import ParameterError, declare, read, typed_values, validator
from .status import ERROR, OK, WARN
from .tf import INSTALL_TF2, TargetFrame
from .vision.cameras import Cameras
from .vision.model_source import ModelSource
from .vision.services import VisionServices

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
        self.values = declare(self, VISION_PARAMS)  # by name, for the table's checks; read `settings`
        s = self.settings = VisionSettings.of(self.values)
        self.obstacles = s.object_mode is ObjectMode.OBSTACLES
        self._pending: tuple[str | None, dict[str, Any], VisionModel | None] | None = None
        self.active = False
        self.source: ModelSource | None = None
        self.calls: VisionServices | None = None
        self.transforms: TargetFrame | None = None
        if s.target_frame and not tf.available():
            raise ParameterError(INSTALL_TF2)
        self._retries = bool(s.model_service or is_server_ref(s.model_path))  # may come up later: retry
        overrides = self._declare_camera_overrides(list(s.cameras))
        self.cameras = Cameras(
            self,
            list(s.cameras),
            lambda: self.settings,
            overrides,
            COUNTERS,
            lambda: self.stage,
            self._model_state,
            self._every_second,
        )
        self.status = self.cameras.status
        # one pre-set callback for every parameter: rclpy hands each callback the whole list and joins what they
        # return, so a second one would send each value again, unconverted
        self.add_pre_set_parameters_callback(typed_values([*VISION_PARAMS, *self._camera_params]))
        self.add_on_set_parameters_callback(validator(VISION_PARAMS, lambda: self.values, self._prepare))
        self.add_post_set_parameters_callback(self._apply)
        self._jump_handler = self.get_clock().create_jump_callback(
            JumpThreshold(min_forward=None, min_backward=Duration(seconds=-JUMP_BACK_S), on_clock_change=True),
            post_callback=self._clock_jumped,
        )
        self.start_up(s.autostart)

    def _declare_camera_overrides(self, names: list[str]) -> dict[str, Any]:
        """The `<camera>.<name>` overrides of each of `cameras`, declared from the table; those given at start."""
        given = set(self._parameter_overrides)  # noqa: SLF001 (start-up values; declare consumes them)
        self._camera_params = [p for name in names for p in camera_params(name, VISION_PARAMS, self.values)]
        declared = declare(self, self._camera_params)
        overrides = {k: value for k, value in declared.items() if k in given}
        for name in names:
            reason = validate(camera_values(name, self.values, overrides), VISION_PARAMS)
            if reason:
                raise ParameterError(f"camera {name}: parameter {reason}")
        self.add_on_set_parameters_callback(
            validator(self._camera_params, lambda: dict(self.cameras.overrides), self._check_camera)
        )
        self.add_post_set_parameters_callback(self._apply_camera)
        return overrides

    def _check_camera(self, candidate: dict[str, Any]) -> str:
        """A camera override combined with the node's values must pass the table's checks too."""
        for name in self.settings.cameras:
            prefix = f"{name}."
            overrides = {k: v for k, v in candidate.items() if k.startswith(prefix)}
            reason = validate(camera_values(name, self.values, overrides), VISION_PARAMS)
            if reason:
                return f"camera {name}: {reason}"
        return ""

    def _apply_camera(self, parameters) -> None:
        names = {p.name for p in self._camera_params}
        for key, value in read(parameters).items():
            if key in names:
                self.cameras.overrides[key] = value
        self.cameras.values_changed()
        self.cameras.update_demand()

    # --- lifecycle --------------------------------------------------------------------------------
    def on_configure(self, _state: LifecycleState) -> TransitionCallbackReturn:
        """Model source, publishers and services; the model loaded and checked."""
        s = self.settings
        self.source = ModelSource(self, s, self._model_ready)
        self.cameras.configure(self.cameras.update_demand)
        self.transforms = TargetFrame(self)
        if not self.obstacles and self.source.current(s) is None and not s.autostart:
            return self.configure_failed(self.source.state)
        self.calls = VisionServices(
            self,
            self.source,
            self.cameras.service_cameras(DEMAND_S),
            self.status,
            lambda: self.settings,
            lambda: self.active,
            self.transforms,
        )
        self.stage = "inactive"
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, _state: LifecycleState) -> TransitionCallbackReturn:
        """Subscribe (while someone listens) and process frames."""
        assert self.source is not None
        self.cameras.activate(self.source, self.transforms)
        self.active, self.stage = True, "active"
        if self.source.vision is not None:
            self._model_ready(self.source.vision)
        self.cameras.update_demand()
        s = self.settings
        self.get_logger().info(
            f"listening on {self.cameras.described()}; model: "
            f"{s.model_service or s.model_path or 'bundled detector'}"
            + (" (obstacle mode, no model)" if self.obstacles else "")
        )
        return TransitionCallbackReturn.SUCCESS

    def _stop_work(self) -> None:
        self.active = False
        self.cameras.stop()

    def _clean_up(self) -> None:
        if self.calls is not None:
            self.calls.stop()
        self.cameras.destroy_outputs()
        if self.source is not None:
            self.source.close()
        if self.transforms is not None:
            self.transforms.close()
        self.calls = self.source = self.transforms = None

    # --- parameters -------------------------------------------------------------------------------
    def _prepare(self, candidate: dict[str, Any]) -> str:
        """Validate a change that valid values alone cannot vouch for: build the new model or decoder now."""
        tier = changed_tier(self.values, candidate, VISION_PARAMS)
        vision = None
        new = VisionSettings.of(candidate)
        reason = self._unknown_classes(new)
        if reason:
            return reason
        if new.target_frame and new.target_frame != self.settings.target_frame and not tf.available():
            return INSTALL_TF2
        if tier in (RUNNER, MODEL) and not self.obstacles and self.source is not None:
            if tier == RUNNER and self.source.remote is not None:
                return (
                    f"the model comes from the model service {self.source.remote.service}: call its "
                    "~/load_model or set its model_path"
                )
            if tier == RUNNER and not new.allow_model_swap:
                return "run-time model changes are turned off (allow_model_swap: false)"
            try:
                vision = self.source.build(new) if tier == RUNNER else self.source.rebuild_decoder(new)
            except Exception as exc:  # refused: the current model keeps serving
                return f"model not changed, the current one keeps serving: {exc}"
        self._pending = (tier, candidate, vision)
        return ""

    def _unknown_classes(self, new: VisionSettings) -> str:
        """ "" when every name newly set in `classes` and `label_confidences` is a label of the model, else why
        not (a name that is not a label would filter out everything, silently)."""
        vision = self.source.vision if self.source is not None else None
        known = set(vision.labels.names.values()) if vision is not None and vision.labels else set()
        old = self.settings
        confidences = [e.rpartition(":")[0].strip() for e in new.label_confidences]
        for name, names in (
            ("classes", new.classes if new.classes != old.classes else ()),
            ("label_confidences", confidences if new.label_confidences != old.label_confidences else ()),
        ):
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
        self.values, self.settings = candidate, VisionSettings.of(candidate)
        self.cameras.values_changed()  # cameras without their own sync_slop follow the node's
        if self.source is None:  # unconfigured: the values are used at configure
            return
        if vision is not None:
            self.source.install(vision, "model changed: " if tier == RUNNER else "decoder rebuilt: ")
        elif tier == FILTERS:
            self.source.set_filters(self.settings)
            if self.source.vision is not None:
                self._model_ready(self.source.vision)
        self.cameras.update_demand()

    def _clock_jumped(self, jump) -> None:
        """The node's clock went back (a simulation or bag replay restarted, /clock reset)."""
        self.get_logger().warning(
            f"the clock jumped ({jump.delta.nanoseconds * 1e-9:+.2f} s): pairing and tracking restarted"
        )
        self.cameras.restart_timeline()

    def _every_second(self) -> None:
        """The status timer's tick: end a service call's demand for frames; retry a model that may come up."""
        self.cameras.update_demand()
        if self._retries and self.source is not None and self.source.vision is None:
            self.source.current(self.settings)  # no-op until a retry is due (never for a file that failed)

    def _model_ready(self, vision: VisionModel) -> None:
        if self.active:  # label_info is latched: only from an active node
            self.cameras.publish_labels(vision, self.settings.confidence_threshold)

    # --- health -----------------------------------------------------------------------------------
    def _model_state(self) -> list[tuple[bytes, str]]:
        if self.source is None:
            return [(OK, self.stage)]
        if self.obstacles:
            return [(OK, "obstacle mode")]
        return [(OK if self.source.ok else WARN if self.source.waiting else ERROR, self.source.state)]


def main(args=None) -> None:
    spin_node(VisionNode, args, threads=1)


if __name__ == "__main__":
    main()
