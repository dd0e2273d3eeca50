"""core/loading/labels.py: the label file forms (one per line, id + name, comma- or space-separated)."""

from __future__ import annotations

import pytest

from ml_model_service.core.loading.labels import load_labels, parse_labels


def test_label_file_forms(tmp_path):
    sparse = parse_labels("0  person\n\n2  car\n90 toothbrush\n")
    assert sparse.name(2) == "car" and sparse.name(90) == "toothbrush" and sparse.name(1) == "1"
    assert parse_labels("cat, dog,bird").names == {0: "cat", 1: "dog", 2: "bird"}
    assert parse_labels("cat dog").names == {0: "cat", 1: "dog"}
    assert parse_labels("tench\n\ngoldfish\n").names == {0: "tench", 1: "goldfish"}
    with pytest.raises(FileNotFoundError):
        load_labels(tmp_path / "missing.txt")
