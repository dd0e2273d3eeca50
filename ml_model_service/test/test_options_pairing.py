"""The parameter table and colour/depth pairing, without ROS or DDS."""

from __future__ import annotations

import pytest

from ml_model_service.core.frames.pairing import Pairer
from ml_model_service.core.settings.configs import vision_config
from ml_model_service.core.settings.params import FILTERS, LIVE, MODEL, RUNNER
from ml_model_service.core.settings.tables import VISION_PARAMS, by_name, changed_tier, defaults, validate

P = by_name(VISION_PARAMS)


@pytest.mark.parametrize(
    "name, value, words",
    [
        ("resize_mode", "bogus_mode", "not one of auto, stretch, letterbox"),
        ("box_units", "inches", "not one of"),
        ("model_type", "panoptic", "not one of"),
        ("backend", "pytorch", "not one of"),
        ("image_qos", "fast", "not one of"),
        ("object_mode", "walls", "not one of"),
        ("yolo_format", "v99", "not one of"),
        ("input_mean", [0.5, 0.5], "exactly 3 values"),
        ("input_std", [1.0, 0.0, 1.0], "non-zero"),
        ("box_order", [0, 1, 2], "permutation"),
        ("box_order", [0, 0, 2, 3], "permutation"),
        ("input_size", [0], "positive"),
        ("model_type", "mask", "not one of"),
        ("ground_normal", [0.0, 1.0], "exactly 3 values"),
        ("confidence_threshold", 1.5, "outside"),
        ("label_confidences", ["person"], "key:value"),
        ("label_confidences", ["person:high"], "not a number"),
        ("remap_output_names", ["out:colour"], "role"),
        ("execution_providers", "cpu", "list of str"),
        ("use_depth", "yes please", "must be a bool"),
    ],
)
def test_bad_values_are_refused_with_a_reason(name, value, words):
    values = {**defaults(VISION_PARAMS), name: value}
    assert words in validate(values, VISION_PARAMS)


def test_the_forms_users_type_are_coerced():
    assert P["execution_providers"].coerce("cpu") == ["cpu"]
    assert P["execution_providers"].coerce("cuda, cpu") == ["cuda", "cpu"]
    assert P["use_depth"].coerce(1) is True and P["use_depth"].coerce("false") is False
    assert P["confidence_threshold"].coerce(1) == 1.0 and P["classes"].coerce(None) == []
    assert P["input_mean"].coerce([0, 0, 0]) == [0.0, 0.0, 0.0]
    assert validate(defaults(VISION_PARAMS), VISION_PARAMS) == ""
    assert vision_config(defaults(VISION_PARAMS)).filters.confidence_threshold == 0.5


def test_each_change_applies_the_cheapest_tier_that_covers_it():
    old = defaults(VISION_PARAMS)
    assert changed_tier(old, {**old, "confidence_threshold": 0.7}, VISION_PARAMS) == FILTERS
    assert changed_tier(old, {**old, "classes": ["cat"], "top_n": 2}, VISION_PARAMS) == FILTERS
    assert changed_tier(old, {**old, "top_n": 2}, VISION_PARAMS) == LIVE
    assert changed_tier(old, {**old, "resize_mode": "letterbox", "top_n": 1}, VISION_PARAMS) == MODEL
    assert changed_tier(old, {**old, "model_path": "x.onnx", "iou_threshold": 0.3}, VISION_PARAMS) == RUNNER
    assert changed_tier(old, dict(old), VISION_PARAMS) is None
    for p in VISION_PARAMS:  # every parameter states what a change does
        assert p.constraints()


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
