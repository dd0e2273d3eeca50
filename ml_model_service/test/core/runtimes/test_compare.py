"""core/runtimes/compare.py: whether another runtime's outputs reproduce the reference's, per attribute range."""

from __future__ import annotations

import numpy as np

from ml_model_service.core.runtimes.compare import outputs_match


def test_the_same_outputs_match_and_what_differs_is_named():
    ref = {"boxes": np.linspace(0, 640, 12, dtype=np.float32).reshape(1, 3, 4), "n": np.array([3.0])}
    assert outputs_match(ref, {k: v.copy() for k, v in ref.items()}) == ""
    assert outputs_match(ref, {"n": ref["n"], "boxes": ref["boxes"]}).startswith("outputs ['n', 'boxes']")
    assert "has shape [1, 4, 3]" in outputs_match(ref, {"boxes": ref["boxes"].reshape(1, 4, 3), "n": ref["n"]})
    moved = ref["boxes"].copy()
    moved[0, 1, 2] += 100
    assert "output 'boxes' differs by up to 100 at [0, 1, 2]" in outputs_match(ref, {"boxes": moved, "n": ref["n"]})
    nan = ref["boxes"].copy()
    nan[0, 0, 0] = np.nan
    assert "non-finite" in outputs_match(ref, {"boxes": nan, "n": ref["n"]})


def test_scores_are_held_to_their_own_range_not_the_boxes():
    """[1, 5, N] YOLO-like head: rows 0-3 boxes in pixels, row 4 a score in [0, 1]."""
    head = np.zeros((1, 5, 100), np.float32)
    head[0, :4] = np.linspace(0, 640, 400).reshape(4, 100)
    head[0, 4] = np.linspace(0, 1, 100)
    off = head.copy()
    off[0, 4, 50] += 0.2  # small against 640 pixels, large for a score
    assert "output 'h' differs" in outputs_match({"h": head}, {"h": off})
