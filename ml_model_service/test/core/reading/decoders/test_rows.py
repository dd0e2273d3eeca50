"""core/reading/decoders/rows.py: what YOLO and end-to-end rows share, here oriented boxes made source-image
boxes and the values after the classes read for the kept detections."""

from __future__ import annotations

import numpy as np

from ml_model_service.core.reading.decoders.base import DecoderConfig, Extras, RawDetections
from ml_model_service.core.reading.decoders.end2end import EndToEndDecoder
from ml_model_service.core.reading.decoders.rows import oriented_boxes
from ml_model_service.core.reading.preprocess import Transform

# a 640x480 image letterboxed into 640x640: scale 1, 80 pixels of padding above
LETTERBOX = Transform(1.0, 1.0, 0.0, 80.0, 640, 640, 640, 480)


def test_an_oriented_box_keeps_its_size_and_angle_and_moves_with_the_padding():
    source, envelope = oriented_boxes(np.array([[320.0, 320.0, 100.0, 40.0]]), np.array([0.0]), LETTERBOX)
    np.testing.assert_allclose(source[0], [320, 240, 100, 40, 0], atol=1e-6)
    np.testing.assert_allclose(envelope[0], [270, 220, 370, 260], atol=1e-6)
    turned, envelope = oriented_boxes(np.array([[320.0, 320.0, 100.0, 40.0]]), np.array([np.pi / 2]), LETTERBOX)
    np.testing.assert_allclose(turned[0, :4], [320, 240, 100, 40], atol=1e-6)
    np.testing.assert_allclose(envelope[0], [300, 190, 340, 290], atol=1e-6)  # the envelope turned with it


def test_keypoints_after_the_classes_are_read_for_the_kept_rows_only():
    decoder = EndToEndDecoder(
        "out", None, 1, DecoderConfig(), "rows", Extras(count=6, keypoints=(2, 3)), box_format="xyxy", units="pixels"
    )
    assert not decoder.segments and not decoder.oriented
    found = RawDetections(np.array([[0.0, 80.0, 10.0, 90.0]]), np.array([0.9]), np.array([0]))
    extra = np.array([[100.0, 180.0, 0.9, 200.0, 280.0, 0.4]])
    out = decoder.finish(found, extra, {}, LETTERBOX)
    np.testing.assert_allclose(np.asarray(out.keypoints)[0, :, :2], [[100, 100], [200, 200]], atol=1e-6)
    empty = RawDetections(np.zeros((0, 4)), np.zeros(0), np.zeros(0, int))
    assert decoder.finish(empty, extra[:0], {}, LETTERBOX).keypoints is None  # nothing kept: nothing read
