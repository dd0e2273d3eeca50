"""A vision node's cameras: built from `cameras`, laid out on the graph, started and stopped with the node's
lifecycle, subscribed while someone listens, and their health in the node's status.

Layout. With no `cameras`, the node has one camera, named "": the node's own topics (`image`, `depth`,
`camera_info`, `detections`...) and its counters in the node's status (`~/status`, one /diagnostics entry).
Named cameras have `<camera>/...` topics, their settings are the node's with their `<camera>.<name>` overrides, and
each has a /diagnostics entry of its own after the node's, which names every camera's problems. `label_info` is
the node's, published once. Every camera runs through the same `CameraPipeline`, driven by one `Driver`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from rclpy.node import Node

from ...core.runtimes.threads import CallerPinning
from ...core.settings.camera_table import camera_overrides
from ...core.settings.typed import VisionSettings
from ..status import ERROR, OK, WARN, Status
from ..tf import TargetFrame
from .camera import CameraPipeline
from .driver import Driver
from .model_source import ModelSource
from .outputs import Outputs
from .services import ServiceCamera

#: a camera whose frame has waited this long for the model is reported (WARN; ERROR at 3 x)
NOT_SERVED_S = 1.0
States = list[tuple[bytes, str]]


class Cameras:
    """The node's cameras (see the module docstring). `stage()`: the node's lifecycle stage; `model_state()`:
    the model's states; `tick`: the node's once-a-second work, run by the status timer."""

    def __init__(
        self,
        node: Node,
        names: list[str],
        node_settings: Callable[[], VisionSettings],
        overrides: dict[str, Any],
        counters: list[str],
        stage: Callable[[], str],
        model_state: Callable[[], States],
        tick: Callable[[], None],
    ) -> None:
        self.node, self.overrides, self.stage, self.model_state = node, overrides, stage, model_state
        self.node_settings = node_settings
        self.named = bool(names)
        self.driver: Driver | None = None
        self.labels: Outputs | None = None
        self._settings: dict[str, VisionSettings] = {}
        self._refresh(names or [""])
        self.pipelines = [CameraPipeline(node, name, self._settings_of(name)) for name in names or [""]]
        self.status = Status(
            node,
            self.pipelines[0].image_topic,
            ["service_calls"] if self.named else counters,
            self._states,
            self._fields,
            children=lambda: [c.status for c in self.pipelines if c.name],
            tick=tick,
        )
        for c in self.pipelines:
            c.status = self._camera_status(c, counters) if c.name else self.status

    def _camera_status(self, c: CameraPipeline, counters: list[str]) -> Status:
        """A named camera's own status: a /diagnostics entry the node's status publishes after its own."""
        return Status(
            self.node,
            c.image_topic,
            counters,
            lambda: self._camera_states(c),
            lambda: {"lifecycle": self.stage(), **c.fields()},
            name=f"{self.node.get_fully_qualified_name()}/{c.name}",
            publish=False,
        )

    def _refresh(self, names: list[str]) -> None:
        """Each camera's settings: the node's, with the camera's own overrides."""
        node = self.node_settings()
        self._settings = {n: node.updated(camera_overrides(n, self.overrides)) if n else node for n in names}

    def _settings_of(self, name: str) -> Callable[[], VisionSettings]:
        return lambda: self._settings[name]

    # --- lifecycle --------------------------------------------------------------------------------
    def configure(self, on_listeners_changed: Callable[[], None]) -> None:
        """Publishers: the node's label_info, each camera's results."""
        self.labels = Outputs(self.node, on_listeners_changed, results=False)
        for c in self.pipelines:
            c.configure(on_listeners_changed)

    def activate(self, source: ModelSource, transforms: TargetFrame | None) -> None:
        """Every camera's stream, and the driver thread."""
        log = self.node.get_logger()
        self.driver = Driver(self.node, self.pipelines, source, self.node_settings)
        pinning = CallerPinning(
            lambda text, warn: log.warning(text, throttle_duration_sec=60.0) if warn else log.info(text),
            enabled=self.driver.parallel == 1,  # frames run on the driver thread
        )
        for c in self.pipelines:
            c.activate(source, transforms, pinning)
        self.driver.start()

    def stop(self) -> None:
        if self.driver is not None:
            self.driver.stop()  # closes the subscriptions
        self.driver = None
        for c in self.pipelines:
            c.stop()

    def destroy_outputs(self) -> None:
        if self.labels is not None:
            self.labels.destroy()
        self.labels = None
        for c in self.pipelines:
            c.destroy_outputs()

    def publish_labels(self, vision: Any, threshold: float) -> None:
        """label_info (latched), from an active node."""
        if self.labels is not None:
            self.labels.publish_labels(vision, threshold)

    def values_changed(self) -> None:
        """After a change of the node's parameters or a camera's override."""
        self._refresh([c.name for c in self.pipelines])
        for c in self.pipelines:
            c.pairer.slop = c.settings().sync_slop

    def restart_timeline(self) -> None:
        for c in self.pipelines:
            c.restart_timeline()

    def described(self) -> str:
        """The cameras, for the log."""
        return ", ".join(
            (c.name or c.image_topic) + (" with depth" if c.settings().use_depth else "") for c in self.pipelines
        )

    # --- demand -----------------------------------------------------------------------------------
    def service_cameras(self, demand_s: float) -> dict[str, ServiceCamera]:
        """The cameras the calls may name ("" for a node's only camera); a call keeps its camera subscribed
        `demand_s` seconds."""
        return {c.name: c.service_camera(self._demand_of(c, demand_s)) for c in self.pipelines}

    def _demand_of(self, camera: CameraPipeline, seconds: float) -> Callable[[], None]:
        return lambda: self.on_demand(camera, seconds)

    def on_demand(self, camera: CameraPipeline, seconds: float) -> None:
        """A call wants the camera's latest frame (any thread): subscribed for `seconds`."""
        camera.demand_until = time.monotonic() + seconds
        self.update_demand()

    def update_demand(self) -> None:
        now = time.monotonic()
        for c in self.pipelines:
            c.update_demand(now)

    # --- health -----------------------------------------------------------------------------------
    def _served(self, c: CameraPipeline) -> States:
        waited = self.driver.scheduler.waited(c.name) if self.driver is not None else 0.0
        if waited < NOT_SERVED_S:
            return []
        level = ERROR if waited >= 3 * NOT_SERVED_S else WARN
        return [(level, f"its frame has waited {waited:.1f} s for the model (not served)")]

    def _camera_states(self, c: CameraPipeline) -> States:
        """A named camera's /diagnostics entry."""
        if c.input is None or self.driver is None:
            return self.model_state()
        states = self.model_state() + c.states() + self._served(c)
        if not c.subscribed:
            states.append((OK, "idle: nobody subscribes to its results (subscribed on demand)"))
        return states

    def _states(self) -> States:
        """The node's: the model's, then its only camera's, or every named camera's problems, named."""
        if self.driver is None:
            return [(OK, self.stage())]  # the lifecycle manager's choice, not a fault
        states = self.model_state()
        for c in self.pipelines:
            mine = c.states() + self._served(c)
            states += [(level, f"{c.name}: {text}") for level, text in mine if level != OK] if c.name else mine
        idle = [c.name for c in self.pipelines if c.input is not None and not c.subscribed]
        if idle and self.named:
            states.append((OK, f"idle cameras (nobody subscribes to their results): {', '.join(idle)}"))
        elif idle:
            states.append((OK, "idle: nobody subscribes to the results (the camera is subscribed on demand)"))
        return states

    def _fields(self) -> dict[str, str]:
        fields = {"lifecycle": self.stage()}
        fields.update(
            {"cameras": ",".join(c.name for c in self.pipelines)} if self.named else self.pipelines[0].fields()
        )
        if self.driver is not None:
            fields.update(inference_calls=str(self.driver.calls), frames_served=str(self.driver.served))
        return fields
