"""core/loading/snapshot.py and the runtime-choice cache: every file a model consists of is checked and copied
before a runtime sees it (links out, hard links, FIFOs, files changed on disk after the load), and a cache file
that is damaged, hostile or not a file never keeps a model from loading."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from ml_model_service.core.loading import snapshot
from ml_model_service.core.loading.model import Model
from ml_model_service.core.loading.trust import ModelPolicy, TrustError
from ml_model_service.core.metadata import load_yaml_bounded
from ml_model_service.core.runtimes.choice_cache import ChoiceCache
from ml_model_service.core.runtimes.registry import open_fastest

from conftest import constant_model

VALUES = np.arange(12, dtype=np.float32).reshape(1, 12)


def ir_model(folder: Path, name: str = "m") -> Path:
    """An OpenVINO IR whose output is a constant kept in its .bin."""
    import openvino as ov

    folder.mkdir(parents=True, exist_ok=True)
    onnx_path = constant_model(folder / f"{name}_src.onnx", [1, 3, 8, 8], {"out": VALUES})
    xml = folder / f"{name}.xml"
    ov.save_model(ov.convert_model(str(onnx_path)), str(xml), compress_to_fp16=False)
    onnx_path.unlink()
    return xml


def answer(model: Model) -> list[float]:
    return model.infer({"images": np.zeros((1, 3, 8, 8), np.float32)})["out"].ravel().tolist()


def test_ir_weights_outside_the_folder_never_reach_an_answer(tmp_path):
    xml = ir_model(tmp_path / "m")
    policy = ModelPolicy.for_folders([tmp_path / "m"])
    assert answer(Model(str(xml), policy=policy, backend="openvino")) == VALUES.ravel().tolist()
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
        path = constant_model(folder / "m.onnx", [1, 3, 8, 8], {"out": VALUES})
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
    path = constant_model(tmp_path / "m.onnx", [1, 3, 8, 8], {"out": VALUES})
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


def test_yaml_alias_bombs_are_refused_small():
    lines, previous = ['a: &a ["x","x","x","x","x","x","x","x","x"]'], "a"
    for name in "bcdefghij":
        lines.append(f"{name}: &{name} [" + ",".join([f"*{previous}"] * 9) + "]")
        previous = name
    with pytest.raises(ValueError, match="expands to more than"):
        load_yaml_bounded("\n".join(lines))
    assert load_yaml_bounded("names: {0: cat}\nimgsz: [640, 640]") == {"names": {0: "cat"}, "imgsz": [640, 640]}


def _cache_cases(tmp_path: Path) -> dict[str, Path]:
    cases = {}
    nested = tmp_path / "nested.json"
    nested.write_text("[" * 100_000 + "]" * 100_000)
    cases["nested"] = nested
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"version": 1, "digests": [], "choices": {"k": {"runtime": 5}}}))
    cases["wrong types"] = wrong
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)
    cases["fifo"] = fifo
    zero = tmp_path / "zero.json"
    os.symlink("/dev/zero", zero)
    cases["/dev/zero"] = zero
    folder = tmp_path / "folder.json"
    folder.mkdir()
    cases["directory"] = folder
    return cases


def test_every_damaged_cache_still_loads_the_model(tmp_path):
    model = constant_model(tmp_path / "m.onnx", [1, 3, 8, 8], {"out": VALUES})
    (tmp_path / "caches").mkdir()
    for what, path in _cache_cases(tmp_path / "caches").items():
        done: list = []

        def load(p: Path = path, out: list = done) -> None:
            out.append(open_fastest(model, ["cpu"], cache=ChoiceCache(p)))

        worker = threading.Thread(target=load)
        worker.start()
        worker.join(60)
        assert done, f"{what}: loading did not finish"
        assert done[0].infer({"images": np.zeros((1, 3, 8, 8), np.float32)})["out"].shape == (1, 12), what
    assert Path("/dev/zero").is_char_device()  # never replaced by a JSON file
    assert not list((tmp_path / "caches" / "folder.json").iterdir())  # no temporary file left behind
    assert not [p for p in (tmp_path / "caches").iterdir() if p.name.startswith(".runtime-choice-")]


def test_a_forged_cache_entry_never_puts_an_unchecked_runtime_to_work(tmp_path):
    # The bundled int8 classifier: OpenVINO loses the quantisation its clients dequantise with, so it is never
    # chosen. A cache entry edited to say it was is checked against LiteRT before use, and measured afresh.
    from ml_model_service.core.loading.bundled import BUNDLED, BUNDLED_DIR

    tflite = BUNDLED_DIR / BUNDLED["efficientnet_lite0_tflite"].file
    cache_file = tmp_path / "cache.json"
    assert open_fastest(tflite, ["cpu"], cache=ChoiceCache(cache_file)).kind == "tflite"
    data = json.loads(cache_file.read_text())
    for entry in data["choices"].values():
        entry.update(runtime="openvino", reason="forged", rejected={})
    cache_file.write_text(json.dumps(data))
    backend = open_fastest(tflite, ["cpu"], cache=ChoiceCache(cache_file))
    assert backend.kind == "tflite", backend.info["runtime_choice"]
    assert "measured now" in backend.info["runtime_choice"]
