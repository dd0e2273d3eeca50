"""core/reading/decoders/boxes.py: box formats, non-maximum suppression and anchor grids."""

from __future__ import annotations

import numpy as np

from ml_model_service.core.reading.decoders.base import DecoderConfig
from ml_model_service.core.reading.decoders.boxes import anchor_centres, grid_counts, nms, to_corners


def test_centre_boxes_become_corners():
    np.testing.assert_allclose(to_corners(np.array([[50, 40, 20, 10]]), "cxcywh"), [[40, 35, 60, 45]])
    np.testing.assert_allclose(to_corners(np.array([[1, 2, 3, 4]]), "xyxy"), [[1, 2, 3, 4]])


def test_nms_keeps_the_best_of_overlapping_boxes_per_class():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [0, 0, 10, 10], [50, 50, 60, 60]], np.float64)
    scores = np.array([0.9, 0.8, 0.7, 0.6])
    classes = np.array([0, 0, 1, 0])
    kept = sorted(int(i) for i in nms(boxes, scores, classes, DecoderConfig(iou_threshold=0.5)))
    assert kept == [0, 2, 3]  # box 1 overlaps box 0 of its class; box 2 is another class


def test_anchor_grid_of_a_640_input():
    counts = grid_counts(640, 640)
    assert counts[8400] == (1, (8, 16, 32)) and counts[25200] == (3, (8, 16, 32))  # YOLOv8/11, YOLOv5
    assert counts[8500] == (1, (8, 16, 32, 64))  # a P6 head
    centres = anchor_centres(64, 64, 1, (8, 16, 32))
    assert centres.shape == (8 * 8 + 4 * 4 + 2 * 2, 3)
    np.testing.assert_allclose(centres[:2], [[4, 4, 8], [12, 4, 8]])  # cell centres, columns first
    np.testing.assert_allclose(centres[-1], [48, 48, 32])
