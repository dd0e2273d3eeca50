"""core/loading/bundled.py: every bundled model's file and label file ship with the package."""

from __future__ import annotations

from ml_model_service.core.loading.bundled import BUNDLED, BUNDLED_DIR, DEFAULT_CLASSIFIER, DEFAULT_DETECTOR


def test_bundled_files_exist_and_the_defaults_are_bundled():
    assert DEFAULT_DETECTOR in BUNDLED and DEFAULT_CLASSIFIER in BUNDLED
    for name, model in BUNDLED.items():
        assert (BUNDLED_DIR / model.file).is_file(), name
        assert (BUNDLED_DIR / model.labels).read_text().strip(), name
        assert model.description, name
