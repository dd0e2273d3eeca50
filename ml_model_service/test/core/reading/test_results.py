"""core/reading/results.py: which results a FilterConfig keeps."""

from __future__ import annotations

from ml_model_service.core.reading.results import FilterConfig


def test_threshold_classes_and_per_label_minimums():
    f = FilterConfig(confidence_threshold=0.5)
    assert f.keep("cat", 0.5) and not f.keep("cat", 0.49) and f.floor == 0.5
    only = FilterConfig(confidence_threshold=0.1, classes=["dog"])
    assert only.keep("dog", 0.2) and not only.keep("cat", 0.9)
    per = FilterConfig(confidence_threshold=0.9, label_confidences={"person": 0.3, "car": 0.6})
    assert per.keep("person", 0.31) and not per.keep("car", 0.5) and not per.keep("cat", 0.99)
    assert per.floor == 0.3
