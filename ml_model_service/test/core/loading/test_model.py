"""core/loading/model.py: a model found by path, repository name or bundled name, inside the allowed folders,
its labels found beside it, and served by a validated `infer`."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from ml_model_service.core.loading.bundled import BUNDLED, BUNDLED_DIR, DEFAULT_DETECTOR
from ml_model_service.core.loading.model import Model, repository_models, resolve_model
from ml_model_service.core.loading.trust import ModelPolicy, TrustError
from ml_model_service.core.runtimes.backend import ModelLoadError

CLASSIFIER = BUNDLED_DIR / BUNDLED["efficientnet_lite0"].file


def test_a_bundled_name_resolves_to_its_file_and_labels():
    model, labels, description = resolve_model("")  # no name: the default detector
    assert model == BUNDLED_DIR / BUNDLED[DEFAULT_DETECTOR].file
    assert labels == BUNDLED_DIR / BUNDLED[DEFAULT_DETECTOR].labels and description


def test_a_repository_model_and_its_labels_beside_it(tmp_path):
    shutil.copy(CLASSIFIER, tmp_path / "mine.onnx")
    (tmp_path / "mine.txt").write_text("cat\ndog\n")
    (tmp_path / "folder").mkdir()
    shutil.copy(CLASSIFIER, tmp_path / "folder" / "model.onnx")
    assert repository_models(tmp_path) == ["folder", "mine"]
    policy = ModelPolicy.for_folders([tmp_path])
    assert resolve_model("mine", tmp_path, policy)[:2] == (tmp_path / "mine.onnx", tmp_path / "mine.txt")
    assert resolve_model("folder", tmp_path, policy)[0] == tmp_path / "folder" / "model.onnx"
    with pytest.raises(ModelLoadError, match="known names: .*mine"):
        resolve_model("absent", tmp_path, policy)


def test_a_folder_with_two_models_and_a_file_outside_the_policy_are_refused(tmp_path):
    folder = tmp_path / "two"
    folder.mkdir()
    for name in ("a.onnx", "b.onnx"):
        shutil.copy(CLASSIFIER, folder / name)
    with pytest.raises(ModelLoadError, match="exactly one"):
        resolve_model(str(folder), policy=ModelPolicy.for_folders([tmp_path]))
    with pytest.raises(TrustError):
        resolve_model(str(folder / "a.onnx"), policy=ModelPolicy.for_folders())  # only the bundled models


def test_a_model_serves_validated_inference_with_its_labels():
    model = Model("efficientnet_lite0", backend="onnx", providers=["cpu"])
    spec = model.metadata.inputs[0]
    assert model.ready() and model.labels is not None and len(model.labels) == 1000
    shape = [d if d > 0 else 1 for d in spec.shape]
    outputs = model.infer({spec.name: np.zeros(shape, dtype=np.dtype(spec.data_type))})
    scores = next(iter(outputs.values()))
    assert scores.shape[-1] == 1000
    with pytest.raises(Exception, match=spec.name):
        model.infer({spec.name: np.zeros([1, 3, 3, 3], dtype=np.float64)})  # wrong shape and type, named
