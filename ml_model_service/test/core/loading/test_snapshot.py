"""core/loading/snapshot.py: every file a model consists of is checked and copied before a runtime sees it
(links out, hard links, FIFOs, files changed on disk after the load). The runtime-choice cache's own checks are
in core/runtimes/test_choice_cache.py."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

from ml_model_service.core.loading import snapshot
from ml_model_service.core.loading.model import Model
from ml_model_service.core.loading.trust import ModelPolicy, TrustError

from conftest import IR_VALUES, constant_model, ir_model


def answer(model: Model) -> list[float]:
    return model.infer({"images": np.zeros((1, 3, 8, 8), np.float32)})["out"].ravel().tolist()


def test_ir_weights_outside_the_folder_never_reach_an_answer(tmp_path):
    xml = ir_model(tmp_path / "m")
    policy = ModelPolicy.for_folders([tmp_path / "m"])
    assert answer(Model(str(xml), policy=policy, backend="openvino")) == IR_VALUES.ravel().tolist()
    outside = tmp_path / "outside.bin"
    outside.write_bytes(b"\x01" * xml.with_suffix(".bin").stat().st_size)  # a secret of the same size
    xml.with_suffix(".bin").unlink()
    os.symlink(outside, xml.with_suffix(".bin"))
    with pytest.raises(TrustError, match="not found in the allowed folders"):
        Model(str(xml), policy=policy, backend="openvino")
    xml.with_suffix(".bin").unlink()
    os.link(outside, xml.with_suffix(".bin"))
    with pytest.raises(TrustError, match="hard links"):
        Model(str(xml), policy=policy, backend="openvino")


@pytest.mark.parametrize("which", ["weights", "model"])
def test_a_fifo_is_refused_at_once_not_waited_on(tmp_path, which):
    xml = ir_model(tmp_path / "m")
    target = xml.with_suffix(".bin") if which == "weights" else xml
    target.unlink()
    os.mkfifo(target)
    started = time.monotonic()
    with pytest.raises(TrustError):
        Model(str(xml), policy=ModelPolicy.for_folders([tmp_path / "m"]), backend="openvino")
    assert time.monotonic() - started < 5


@pytest.mark.parametrize("change", ["truncate", "overwrite"])
@pytest.mark.parametrize("kind", ["onnx_external", "ir", "tflite"])
def test_a_model_changed_on_disk_keeps_its_loaded_answers(tmp_path, kind, change):
    import onnx

    folder = tmp_path / "m"
    folder.mkdir()
    if kind == "ir":
        path, files = ir_model(folder), []
        files = [path, path.with_suffix(".bin")]
    elif kind == "onnx_external":
        path = constant_model(folder / "m.onnx", [1, 3, 8, 8], {"out": IR_VALUES})
        proto = onnx.load(path)
        onnx.save(
            proto, path, save_as_external_data=True, all_tensors_to_one_file=True, location="m.data", size_threshold=0
        )
        files = [path, folder / "m.data"]
    else:
        import shutil

        from ml_model_service.core.loading.bundled import BUNDLED, BUNDLED_DIR

        path = folder / "c.tflite"
        shutil.copyfile(BUNDLED_DIR / BUNDLED["efficientnet_lite0_tflite"].file, path)
        files = [path]
    policy = ModelPolicy.for_folders([folder])
    model = Model(str(path), policy=policy, providers=["cpu"])
    spec = model.metadata.inputs[0]
    feed = {spec.name: np.full([max(d, 1) for d in spec.shape], 3, np.dtype(spec.data_type))}
    before = model.infer(feed)
    for f in files:
        if change == "truncate":
            os.truncate(f, 0)
        else:
            with open(f, "r+b") as out:  # in place, as cp and scp write
                out.write(b"\xff" * f.stat().st_size)
    after = model.infer(feed)
    assert before.keys() == after.keys()
    for name in before:
        np.testing.assert_array_equal(before[name], after[name])


def test_the_private_copy_goes_with_the_model(tmp_path):
    path = constant_model(tmp_path / "m.onnx", [1, 3, 8, 8], {"out": IR_VALUES})
    model = Model(str(path), providers=["cpu"])
    copy = model.loaded
    assert copy is not None and copy.is_file() and copy.parent != path.parent
    del model
    import gc

    gc.collect()
    assert not copy.parent.exists()


def test_external_data_locations_are_read_from_the_model():
    import onnx
    from onnx import TensorProto, helper

    w = helper.make_tensor("w", TensorProto.FLOAT, [1], [0.0])
    w.ClearField("float_data")
    w.data_location = TensorProto.EXTERNAL
    entry = w.external_data.add()
    entry.key, entry.value = "location", "weights/w.data"
    graph = helper.make_graph([], "g", [], [], [w])
    data = helper.make_model(graph).SerializeToString()
    assert snapshot.external_data_files(data) == ["weights/w.data"]
    entry.value = "../w.data"
    with pytest.raises(TrustError, match="outside the model's folder"):
        snapshot.external_data_files(helper.make_model(helper.make_graph([], "g", [], [], [w])).SerializeToString())
    assert snapshot.external_data_files(b"not onnx") == []
    assert onnx is not None
