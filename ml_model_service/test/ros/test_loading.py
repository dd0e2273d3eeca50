"""ros/loading.py: a model built from a node's typed settings within the folders its start-up settings allow
(`start_policy`, fixed once), with one thread a call where a multi-camera node asks for it, on the bundled
models (ROS-free, beside the ros modules that use it)."""

from __future__ import annotations

import shutil

import pytest

from ml_model_service.core.loading.bundled import BUNDLED, BUNDLED_DIR
from ml_model_service.core.loading.trust import TrustError
from ml_model_service.core.settings.typed import ModelServiceSettings, VisionSettings
from ml_model_service.ros.loading import load_model, start_policy

DETECTOR = BUNDLED["ssd_mobilenet_v2_coco"]


def _settings(**values) -> VisionSettings:
    return VisionSettings.of({"model_path": "ssd_mobilenet_v2_coco", "backend": "onnx", **values})


def test_the_bundled_detector_by_name_with_its_labels_and_threads_as_asked():
    s = _settings()
    model = load_model(s, policy=start_policy(s))
    assert model.path.name == DETECTOR.file and model.labels is not None and "cat" in model.labels.names.values()
    assert model._settings == (["cuda", "cpu"], 0, True)  # noqa: SLF001 (0: one thread per core)
    one = load_model(s, policy=start_policy(s), one_thread=True)  # a multi-camera node: one thread a call
    assert one._settings[1] == 1  # noqa: SLF001
    two = _settings(num_threads=2, execution_providers=["cpu"], pin_threads=False)
    assert load_model(two, policy=start_policy(two), one_thread=True)._settings == (["cpu"], 2, False)  # noqa: SLF001
    # the model and labels of a call (~/load_model) instead of the settings'
    classifier = load_model(s, "efficientnet_lite0", policy=start_policy(s))
    assert classifier.path.name == BUNDLED["efficientnet_lite0"].file


def test_files_load_only_from_the_folders_the_start_up_settings_allow(tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    shutil.copy(BUNDLED_DIR / DETECTOR.file, mine / "detector.onnx")
    shutil.copy(BUNDLED_DIR / DETECTOR.labels, mine / "labels.txt")
    at_start = ModelServiceSettings.of({"backend": "onnx"})  # no allowed_paths: the bundled models only
    policy = start_policy(at_start)
    later = ModelServiceSettings.of(
        {"backend": "onnx", "model_path": str(mine / "detector.onnx"), "allowed_paths": [str(tmp_path)]}
    )
    with pytest.raises(TrustError, match="allowed"):  # settings changed later cannot widen the start-up folders
        load_model(later, policy=policy)
    with pytest.raises(TrustError, match="model repository not found in the allowed folders"):
        load_model(at_start.updated({"model_repository": str(mine)}), policy=policy)
    allowed = start_policy(later)  # allowed at start-up: loads, its labels beside it when named
    model = load_model(later, label_path=str(mine / "labels.txt"), policy=allowed)
    assert model.path == mine / "detector.onnx" and len(model.labels) == len(
        load_model(_settings(), policy=policy).labels
    )
    repository = load_model(later.updated({"model_repository": str(mine), "model_path": "detector"}), policy=allowed)
    assert repository.path == mine / "detector.onnx"
