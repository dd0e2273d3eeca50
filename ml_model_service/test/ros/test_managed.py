"""ros/managed.py in this process over real DDS: a ManagedNode driven through the lifecycle services as a
lifecycle manager drives it; every transition beyond configure and activate is made of `_stop_work` and
`_clean_up`, and `stage` says where the node stands. (`spin_node`, which owns rclpy's start and end in a node's
process, is tested on the nodes' own processes in test_stops.py.)"""

from __future__ import annotations

import pytest
from lifecycle_msgs.msg import State, Transition
from lifecycle_msgs.srv import ChangeState, GetState
from rclpy.lifecycle import TransitionCallbackReturn

from ml_model_service.ros.managed import ManagedNode, _malloc_trim, release_freed_memory
from ml_model_service.ros.remote_model import call

NS = "/managed_test"


class Worker(ManagedNode):
    """A ManagedNode that records its hooks; `fail` makes configure fail, `explode` makes activate raise."""

    def __init__(self, name: str, context, fail: str = "", explode: bool = False) -> None:
        super().__init__(name, namespace=NS, context=context)
        self.calls: list[str] = []
        self.fail, self.explode = fail, explode

    def on_configure(self, _state) -> TransitionCallbackReturn:
        self.calls.append("configure")
        if self.fail:
            return self.configure_failed(self.fail)
        self.stage = "inactive"
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, _state) -> TransitionCallbackReturn:
        if self.explode:
            raise RuntimeError("the model runtime fell over")
        self.calls.append("activate")
        self.stage = "active"
        return TransitionCallbackReturn.SUCCESS

    def _stop_work(self) -> None:
        self.calls.append("stop_work")

    def _clean_up(self) -> None:
        self.calls.append("clean_up")


@pytest.fixture
def worker(spinner):
    """Factory: a Worker spun by the client's executor (its lifecycle services served), destroyed at teardown."""
    made: list[Worker] = []

    def _make(name: str, **kwargs) -> Worker:
        node = Worker(name, spinner.node.context, **kwargs)
        spinner.executor.add_node(node)
        made.append(node)
        return node

    _make.made = made  # type: ignore[attr-defined]
    yield _make
    for node in made:
        spinner.executor.remove_node(node)
        node.destroy_node()


def _change(spinner, name: str, transition: int) -> bool:
    client = spinner.node.create_client(ChangeState, f"{NS}/{name}/change_state")
    try:
        return call(client, ChangeState.Request(transition=Transition(id=transition)), 5).success
    finally:
        spinner.node.destroy_client(client)


def _state(spinner, name: str) -> int:
    client = spinner.node.create_client(GetState, f"{NS}/{name}/get_state")
    try:
        return call(client, GetState.Request(), 5).current_state.id
    finally:
        spinner.node.destroy_client(client)


def test_a_manager_cycles_the_node_through_every_transition(spinner, worker):
    node = worker("cycled")
    node.start_up(autostart=False)  # waits for a manager: nothing configured
    assert node.calls == [] and node.stage == "unconfigured"
    assert _state(spinner, "cycled") == State.PRIMARY_STATE_UNCONFIGURED
    assert _change(spinner, "cycled", Transition.TRANSITION_CONFIGURE)
    assert _change(spinner, "cycled", Transition.TRANSITION_ACTIVATE)
    assert node.stage == "active" and _state(spinner, "cycled") == State.PRIMARY_STATE_ACTIVE
    assert _change(spinner, "cycled", Transition.TRANSITION_DEACTIVATE)
    assert node.stage == "inactive" and node.calls[-1] == "stop_work"
    assert _change(spinner, "cycled", Transition.TRANSITION_CLEANUP)
    assert node.stage == "unconfigured" and node.calls[-1] == "clean_up"
    assert _state(spinner, "cycled") == State.PRIMARY_STATE_UNCONFIGURED
    assert _change(spinner, "cycled", Transition.TRANSITION_UNCONFIGURED_SHUTDOWN)
    assert node.stage == "finalized" and _state(spinner, "cycled") == State.PRIMARY_STATE_FINALIZED
    assert node.calls == ["configure", "activate", "stop_work", "clean_up", "stop_work", "clean_up"]


def test_autostart_configures_and_activates_and_a_failed_configure_cleans_up(spinner, worker):
    up = worker("autostarted")
    up.start_up(autostart=True)
    assert up.calls == ["configure", "activate"] and up.stage == "active"
    assert _state(spinner, "autostarted") == State.PRIMARY_STATE_ACTIVE
    failing = worker("failing", fail="no model at /x.onnx")
    failing.start_up(autostart=True)  # configure fails: activate never tried
    assert failing.calls == ["configure", "clean_up"]
    assert failing.stage == "unconfigured (configure failed: no model at /x.onnx)"
    assert _state(spinner, "failing") == State.PRIMARY_STATE_UNCONFIGURED


def test_a_transition_that_raises_stops_work_and_frees_everything(spinner, worker):
    node = worker("raising", explode=True)
    assert _change(spinner, "raising", Transition.TRANSITION_CONFIGURE)
    assert not _change(spinner, "raising", Transition.TRANSITION_ACTIVATE)
    # on_error: work stopped, resources freed, back to unconfigured (ready to be configured again)
    assert node.calls == ["configure", "stop_work", "clean_up"] and node.stage == "unconfigured (after an error)"
    assert _state(spinner, "raising") == State.PRIMARY_STATE_UNCONFIGURED
    node.calls.clear()
    worker.made.remove(node)
    spinner.executor.remove_node(node)
    node.destroy_node()  # destroying the node stops and frees too
    assert node.calls == ["stop_work", "clean_up"]


def test_freed_memory_goes_back_through_malloc_trim():
    trim = _malloc_trim()
    assert trim is not None  # glibc (the containers and robots this runs on) has malloc_trim
    assert _malloc_trim() is trim  # found once
    release_freed_memory()  # (nothing to assert on the pages: it must simply run)
