"""ros/status.py in this process over real DDS: a node's counters, states, fields and timings published every
second on `~/status` and, with its children's, on `/diagnostics`; the node's once-a-second work runs before each
publication and a failing one never stops them."""

from __future__ import annotations

import time

import pytest
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.node import Node

from ml_model_service.ros.status import ERROR, OK, STATUS_QOS, WARN, Status, Stopwatch
from ml_model_service_dev.harness.waits import wait_for

from conftest import Collector


@pytest.fixture
def node(spinner):
    with spinner.spun(Node("under_test", namespace="/status_test", context=spinner.node.context)) as made:
        yield made


def _fields(status: DiagnosticStatus) -> dict[str, str]:
    return {v.key: v.value for v in status.values}


def test_counters_states_and_timings_reach_status_and_diagnostics_every_second(spinner, node):
    ticks: list[int] = []

    def tick() -> None:
        ticks.append(len(ticks))
        if len(ticks) == 2:
            raise RuntimeError("the second tick fails")

    states = [(OK, ""), (WARN, "b: no publisher on b/image"), (OK, "model loaded")]
    child = Status(node, "cam", ["processed"], lambda: [(ERROR, "stalled")], name="b", publish=False)
    status = Status(
        node,
        "vision",
        ["received", "processed"],
        lambda: states,
        lambda: {"cameras": "a,b"},
        children=lambda: [child],
        tick=tick,
    )
    own = Collector(spinner.node, DiagnosticStatus, "/status_test/under_test/status", STATUS_QOS)
    diagnostics = Collector(spinner.node, DiagnosticArray, "/diagnostics", 10)
    status.count("received", 3)
    status.count("processed")
    status.count("dropped")  # a counter not declared is added
    status.error("dropped", "frame 7 unreadable")
    status.timing("decode", 10.0)
    status.timing("decode", 20.0)  # smoothed: 0.8 x 10 + 0.2 x 20
    child.count("processed", 4)
    # the ticks go on after the second one raised: three publications in all
    wait_for(lambda: len(ticks) >= 3 and len(own.messages) >= 3, 6, what="three status publications")
    last = own.messages[-1]
    assert last.name == "/status_test/under_test" and last.hardware_id == "vision"
    assert last.level == WARN and last.message == "b: no publisher on b/image; model loaded"
    fields = _fields(last)
    assert fields == {
        "received": "3",
        "processed": "1",
        "dropped": "2",
        "cameras": "a,b",
        "decode_ms": "12.0",
        "last_error": "frame 7 unreadable",
    }, fields
    ours = wait_for(
        lambda: [a for a in diagnostics.messages if a.status and a.status[0].name == "/status_test/under_test"],
        3,
        what="/diagnostics from the node",
    )
    parent, kid = ours[-1].status
    assert _fields(parent) == fields and ours[-1].header.stamp.sec > 0
    assert (kid.name, kid.level, kid.message, _fields(kid)) == ("b", ERROR, "stalled", {"processed": "4"})
    assert not hasattr(child, "pub")  # a child publishes nothing of its own


def test_a_status_with_no_states_is_ok_and_names_the_node(spinner):
    """Built by a parent only: the level of no states is OK, the message empty, no last_error field."""
    plain = Node("plain_status", namespace="/status_test", context=spinner.node.context)
    try:
        built = Status(plain, "hw", ["frames"], list, publish=False).build()
        assert (built.level, built.message, built.name) == (OK, "", "/status_test/plain_status")
        assert _fields(built) == {"frames": "0"}
    finally:
        plain.destroy_node()
    watch = Stopwatch()
    first = watch.ms()
    time.sleep(0.01)
    assert first >= 0.0 and watch.ms() >= first + 10.0
