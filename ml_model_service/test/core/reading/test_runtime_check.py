"""`backend: auto`'s check on decoded answers (core.reading.runtime_check): the runtime it chose keeps the model
only where boxes, classes and class maps on the bundled photographs are its file's own runtime's; and model files
no backend reads are refused with what their users do instead."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest

from ml_model_service.core.loading.bundled import BUNDLED, BUNDLED_DIR
from ml_model_service.core.loading.model import Model
from ml_model_service.core.reading.runtime_check import differences, photos
from ml_model_service.core.reading.vision import VisionModel
from ml_model_service.core.runtimes.backend import ModelLoadError

SSD = BUNDLED_DIR / BUNDLED["ssd_mobilenet_v2_coco"].file


def test_the_photos_are_bundled_and_real():
    found = photos()
    assert len(found) == 3 and all(p.ndim == 3 and p.shape[2] == 3 and p.std() > 20 for p in found)


def test_the_same_runtime_agrees_and_another_answer_is_caught():
    model = Model(str(SSD), providers=["cpu"], backend="onnx")
    vision = VisionModel(model, model.labels)
    assert model.reference_backend() is None  # named, not chosen by auto: nothing to check against
    assert differences(vision, model.backend.infer) == ""
    assert any(len(vision.detect(p)) for p in photos())  # the photos give the detector something to find

    def mirrored(inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The same runtime on the mirrored image: other boxes, as a runtime that changed the answers gives."""
        return model.backend.infer({k: np.ascontiguousarray(v[:, :, ::-1]) for k, v in inputs.items()})

    assert "detection(s) differ from the file's own runtime" in differences(vision, mirrored)


def test_auto_keeps_a_runtime_only_with_the_same_answers(tmp_path, monkeypatch):
    monkeypatch.setenv("ML_MODEL_SERVICE_RUNTIME_CACHE", str(tmp_path / "choice.json"))
    model = Model(str(SSD), providers=["cpu"])
    vision = VisionModel(model, model.labels)
    chosen = model.backend.choice.runtime
    reference = model.reference_backend()
    if chosen == "onnx":
        assert reference is None
    else:  # another runtime passed the checks on tensors and on the photographs' answers
        assert reference is not None and differences(vision, reference.infer) == ""
        model.fall_back(reference, "a test's reason")
        assert model.backend is reference
        assert "then not used: a test's reason" in model.metadata.outputs[0].extra["runtime_choice"]


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("yolo11n.pt", "PyTorch file"),
        ("model.torchscript", "PyTorch file"),
        ("saved.pb", "TensorFlow"),
        ("net.engine", "TensorRT engine"),
        ("model.weird", "cannot tell the format"),
    ],
)
def test_files_no_backend_reads_say_what_to_do(tmp_path, name, says):
    path = tmp_path / name
    with zipfile.ZipFile(path, "w") as z:  # (PyTorch's files are zip archives)
        z.writestr("archive/data.pkl", b"not a model")
    with pytest.raises(ModelLoadError, match=says):
        Model(str(path))
