"""core/frames/pairing.py: colour/depth pairing by stamp, without ROS or DDS."""

from __future__ import annotations

import pytest

from ml_model_service.core.frames.pairing import Pairer


def test_newest_pair_wins_and_passed_frames_are_counted():
    pairer = Pairer(slop=0.02, capacity=8)
    for i in range(5):
        pairer.add_colour(10.0 + i / 30, f"c{i}")
    pairer.add_depth(10.0 + 1 / 30 + 0.005, "d1")
    pairer.add_depth(10.0 + 3 / 30 - 0.01, "d3")
    nxt = pairer.next_frame()
    assert (nxt.colour.item, nxt.depth.item, nxt.skipped) == ("c3", "d3", 3)
    assert pairer.next_frame() is None  # c4 waits for its depth (no backlog of older frames)
    assert pairer.deadline() is not None


def test_unpaired_frame_goes_2d_only_with_the_reason():
    pairer = Pairer(slop=0.01, capacity=4, patience=0.2)
    pairer.add_depth(5.0, "d")
    pairer.add_colour(6.0, "c")
    assert pairer.next_frame(now=pairer.deadline() - 0.1) is None
    nxt = pairer.next_frame(now=pairer.deadline() + 0.01)
    assert nxt.depth is None and "sync_slop=0.01" in nxt.reason and "nearest depth 5.000" in nxt.reason
    zero = Pairer(slop=0.01, patience=0.0)
    zero.add_depth(0.0, "d")
    zero.add_colour(0.0 + 1.0, "c")
    zero.add_colour(0.0, "c0")
    assert zero.next_frame().colour.item == "c0"  # stamps 0 pair with each other, exactly
    none = Pairer(slop=0.01, patience=0.0)
    none.add_colour(1.0, "c")
    assert "no depth image received" in none.next_frame().reason


def test_buffers_are_bounded_and_waiters_are_woken():
    import threading

    pairer = Pairer(slop=0.01, capacity=3)
    for i in range(100):
        pairer.add_colour(float(i), i)
    assert pairer.latest_colour().item == 99 and len(pairer._colour) == 3  # noqa: SLF001
    pairer.clear()
    threading.Timer(0.05, lambda: pairer.add_colour(1.0, "late")).start()
    got = pairer.wait(pairer.latest_colour, 5.0)
    assert got.item == "late"


def test_stamps_that_jump_back_start_a_new_timeline():
    """A bag that loops: frames after the jump pair and are handed out again (the jump is reported once)."""
    pairer = Pairer(0.02, capacity=8, patience=10.0)
    for i in range(5):
        assert pairer.add_depth(100.0 + i * 0.1, f"d{i}") == 0.0
        assert pairer.add_colour(100.0 + i * 0.1, f"c{i}") == 0.0
        assert pairer.next_frame().colour.item == f"c{i}"
    assert pairer.add_depth(97.4, "d-back") == pytest.approx(3.0)
    assert pairer.add_colour(97.4, "c-back") == pytest.approx(3.0)
    nxt = pairer.next_frame()
    assert nxt.colour.item == "c-back" and nxt.depth.item == "d-back"
    assert pairer.add_colour(97.5, "c-next") == 0.0  # the new timeline goes on
    small = Pairer(0.02)
    small.add_colour(10.0, "a")
    assert small.add_colour(9.5, "b") == 0.0  # jitter under JUMP_BACK_S is not a jump
