"""StreamHealth's verdicts from recorded facts, ROS-free, on a clock the test moves."""

from __future__ import annotations

from ml_model_service.core.frames.health import ERROR, OK, WARN, StreamHealth, TopicState

TOPIC = "/cam/image"


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def health() -> tuple[StreamHealth, Clock]:
    clock = Clock()
    h = StreamHealth(window=3.0, stall=2.5, clock=clock)
    h.subscribed(True)
    return h, clock


def levels(states) -> list[int]:
    return [lvl for lvl, _ in states]


def test_a_stream_doing_its_job_and_an_idle_one_are_fine():
    h, clock = health()
    for _ in range(30):
        clock.t += 0.1
        h.received()
        h.processed()
    assert h.assess(TOPIC, TopicState(True, 1)) == []
    assert h.assess(TOPIC, TopicState(False, 0)) == []  # nobody wants frames: nothing to judge
    assert OK not in levels(h.assess(TOPIC, TopicState(True, 1)))


def test_no_publisher_and_a_stalled_camera_warn_with_the_topic():
    h, clock = health()
    clock.t += 3.0
    (state,) = h.assess(TOPIC, TopicState(True, 0))
    assert state[0] == WARN and f"no publisher on {TOPIC}" in state[1]
    h.received()
    h.processed()
    assert h.assess(TOPIC, TopicState(True, 1)) == []
    clock.t += 2.0
    assert h.assess(TOPIC, TopicState(True, 1)) == []  # not yet stalled
    clock.t += 1.0
    (state,) = h.assess(TOPIC, TopicState(True, 1))
    assert state[0] == WARN and "no frame on" in state[1] and "stalled" in state[1]


def test_failures_say_their_cause_error_when_nothing_is_processed():
    h, clock = health()
    for _ in range(10):
        clock.t += 0.1
        h.received()
        h.failed("unsupported image encoding 'hsv8'")
    (state,) = h.assess(TOPIC, TopicState(True, 1))
    assert state[0] == ERROR and "hsv8" in state[1] and "no frame processed" in state[1]
    for i in range(10):  # now one in two fails: a warning
        clock.t += 0.1
        h.received()
        h.processed() if i % 2 else h.failed("image data is 10 bytes, shorter than ...")
    clock.t += 1.0
    (state,) = h.assess(TOPIC, TopicState(True, 1))
    assert state[0] == WARN and "shorter than" in state[1]
    clock.t += 5.0  # failures age out of the window; the camera then looks stalled instead
    assert all("dropped" not in text for _, text in h.assess(TOPIC, TopicState(True, 1)))


def test_frames_that_arrive_but_are_never_processed_warn():
    h, clock = health()
    for _ in range(8):
        clock.t += 0.2
        h.received()
    (state,) = h.assess(TOPIC, TopicState(True, 1))
    assert state[0] == WARN and "none processed" in state[1]


def test_a_qos_mismatch_is_reported_instead_of_a_stall():
    h, clock = health()
    clock.t += 5.0
    states = h.assess(TOPIC, TopicState(True, 1, qos_problem="offered best_effort, requested reliable"))
    assert states == [(WARN, "offered best_effort, requested reliable")]


def test_unsubscribing_forgets_the_history():
    h, clock = health()
    h.failed("x")
    h.subscribed(False)
    h.subscribed(True)
    assert h.assess(TOPIC, TopicState(True, 1)) == []
