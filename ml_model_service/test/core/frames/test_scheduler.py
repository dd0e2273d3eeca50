"""FairScheduler: the latest frame per camera, oldest-waiting first, one in flight per camera, ROS-free."""

from __future__ import annotations

import pytest

from ml_model_service.core.frames.scheduler import FairScheduler


class Clock:
    def __init__(self) -> None:
        self.t = 10.0

    def __call__(self) -> float:
        return self.t


def scheduler(cameras=("a", "b", "c")) -> tuple[FairScheduler, Clock]:
    clock = Clock()
    return FairScheduler(list(cameras), clock), clock


def test_the_latest_frame_replaces_the_waiting_one_and_keeps_its_place():
    s, clock = scheduler()
    assert s.offer("a", 1) is None
    clock.t += 0.1
    s.offer("b", 10)
    clock.t += 0.1
    assert s.offer("a", 2) == 1  # replaced: the caller counts it skipped
    assert s.replaced["a"] == 1
    assert s.take(1) == [("a", 2)]  # a has waited longest (since its first frame), newest frame served
    assert s.take(1) == [("b", 10)]


def test_never_more_than_one_frame_per_camera_in_flight():
    s, _ = scheduler()
    s.offer("a", 1)
    assert s.take(3) == [("a", 1)]
    s.offer("a", 2)
    assert s.take(3) == []  # a is in flight
    assert s.due(1, 0.0) is None
    s.done("a")
    assert s.take(3) == [("a", 2)]


def test_a_fast_camera_cannot_starve_the_others():
    """a publishes 10x as often as b and c; one frame is served per step: each waiting camera within 3 picks."""
    s, clock = scheduler()
    served = []
    for step in range(300):
        clock.t += 0.01
        s.offer("a", step)
        if step % 10 == 0:
            s.offer("b", step)
            s.offer("c", step)
        for camera, _ in s.take(1):
            served.append(camera)
            s.done(camera)
    assert served.count("b") == served.count("c") == 30
    gaps = {}
    for cam in "bc":
        idx = [i for i, c in enumerate(served) if c == cam]
        gaps[cam] = max(b - a for a, b in zip(idx, idx[1:]))
    assert max(gaps.values()) <= 10  # b and c never wait longer than a round of the fast camera's frames
    for cam in "abc":
        assert s.waited(cam) == 0.0 or cam == "a"


def test_a_batch_takes_different_cameras_oldest_first():
    s, clock = scheduler(("a", "b", "c", "d"))
    for cam in "dbca":
        s.offer(cam, cam.upper())
        clock.t += 0.01
    assert s.take(3) == [("d", "D"), ("b", "B"), ("c", "C")]
    assert s.in_flight() == {"b", "c", "d"}
    assert s.take(3) == [("a", "A")]


def test_due_waits_to_fill_a_batch_at_most_fill_wait():
    s, clock = scheduler()
    s.offer("a", 1)
    assert s.due(3, 0.0) == 0.0  # no fill wait: serve at once
    assert s.due(3, 0.02) == pytest.approx(0.02)
    clock.t += 0.015
    assert s.due(3, 0.02) == pytest.approx(0.005)
    s.offer("b", 1)
    s.offer("c", 1)
    assert s.due(3, 0.02) == 0.0  # batch full
    clock.t += 1.0
    assert s.due(5, 0.02) == 0.0  # waited long enough


def test_unknown_camera_and_duplicates_are_refused_with_the_names():
    s, _ = scheduler()
    with pytest.raises(KeyError, match="unknown camera 'x'; cameras: a, b, c"):
        s.offer("x", 1)
    with pytest.raises(ValueError, match="unique"):
        FairScheduler(["a", "a"])
    s.offer("a", 1)
    assert s.drop("a") == 1
    assert s.take(1) == []


def test_frames_that_arrive_together_go_least_recently_served_first():
    """Four cameras published together, and the model only keeps up with three per round: the frame lost
    each round moves round the cameras instead of always being the last camera's."""
    s, clock = scheduler(("a", "b", "c", "d"))
    lost = dict.fromkeys("abcd", 0)
    for _ in range(40):
        clock.t += 0.1
        for cam in "abcd":
            if s.offer(cam, 0, clock.t) is not None:
                lost[cam] += 1
        for _ in range(3):
            for cam, _ in s.take(1):
                s.done(cam)
    assert sum(lost.values()) >= 30
    assert max(lost.values()) - min(lost.values()) <= 2, lost
