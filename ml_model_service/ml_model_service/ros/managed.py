"""What both nodes share as managed (lifecycle) nodes: the transitions beyond configure and activate, the
`stage` status reports, and coming up by themselves (`autostart`) or waiting for a lifecycle manager.

A node implements `on_configure` and `on_activate`, and two hooks the other transitions are made of:
`_stop_work` (what deactivate undoes) and `_clean_up` (what cleanup frees)."""

from __future__ import annotations

from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn


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
