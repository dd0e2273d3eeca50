"""The trust boundary of a model's files on a running model service, over DDS (core/loading/snapshot.py, the
capped shape-inference helper, the runtime-choice cache): hostile files built here are refused within their
budget while the previous model keeps serving, a loaded model changed on disk keeps its answers, and a damaged
runtime cache never keeps the node from coming up with its model."""

from __future__ import annotations

import json
import os
import time

import numpy as np
import onnx
from test_hostile_models import shape_bomb
from test_model_service import _rss_mb, connect

from conftest import IR_VALUES, constant_model, ir_model

SECRET = b"secret-token-77e1" * 64
FEED = {"images": np.zeros((1, 3, 8, 8), np.float32)}


def _hostile_models(folder, outside) -> dict[str, str]:
    """name -> model path, each built to reach past its folder or to cost more than its budget."""
    cases = {}
    for name, how in (("bin_symlink", "symlink"), ("bin_hardlink", "link"), ("bin_fifo", "fifo")):
        xml = ir_model(folder / name)
        weights = xml.with_suffix(".bin")
        size = weights.stat().st_size
        weights.unlink()
        if how == "fifo":
            os.mkfifo(weights)
        else:
            secret = outside / f"{name}.bin"
            secret.write_bytes((SECRET * (size // len(SECRET) + 1))[:size])
            (os.symlink if how == "symlink" else os.link)(secret, weights)
        cases[name] = str(xml)
    linked = folder / "external_hardlink"
    linked.mkdir()
    model = constant_model(linked / "m.onnx", [1, 3, 8, 8], {"out": IR_VALUES})
    onnx.save(onnx.load(model), model, save_as_external_data=True, location="m.data", size_threshold=0)
    (outside / "m.data").write_bytes(SECRET[: (linked / "m.data").stat().st_size])
    (linked / "m.data").unlink()
    os.link(outside / "m.data", linked / "m.data")
    cases["external_data_hardlink"] = str(model)
    cases["shape_inference_bomb"] = str(shape_bomb(folder / "bomb.onnx"))
    return cases


def _serve(start_node, spinner, model, folder, namespace: str):
    """A model service serving `model`, its files allowed from `folder`: (process, RemoteModel)."""
    proc = start_node(
        "model_service",
        {"model_path": str(model), "allowed_paths": [str(folder)], "execution_providers": ["cpu"]},
        namespace=namespace,
    )
    return proc, connect(spinner, f"{namespace}/ml_model_service", proc)


def test_hostile_model_files_are_refused_within_budget_and_the_model_keeps_serving(start_node, spinner, tmp_path):
    folder, outside = tmp_path / "models", tmp_path / "outside"
    folder.mkdir()
    outside.mkdir()
    good = constant_model(folder / "good.onnx", [1, 3, 8, 8], {"out": IR_VALUES})
    proc, remote = _serve(start_node, spinner, good, folder, "/files")
    generation = remote.generation
    idle = _rss_mb(proc)
    for name, path in _hostile_models(folder, outside).items():
        started = time.monotonic()
        response = remote.load(path)
        took = time.monotonic() - started
        assert not response.success, f"{name}: {response.message}"
        assert took < 10, f"{name} took {took:.1f} s to refuse"
        assert _rss_mb(proc) - idle < 300, f"{name}: RSS {_rss_mb(proc):.0f} MB against {idle:.0f} MB idle"
        meta = remote.fetch_metadata()  # the previous model keeps serving, same generation
        assert meta.generation == generation, name
        np.testing.assert_array_equal(remote.infer(FEED)["out"], IR_VALUES)
        assert "secret-token" not in str(meta) and "secret-token" not in response.message, name
    assert "secret-token" not in proc.log()
    assert proc.alive()


def test_a_loaded_model_changed_on_disk_keeps_serving_its_answers(start_node, spinner, tmp_path):
    folder = tmp_path / "models"
    folder.mkdir()
    model = constant_model(folder / "m.onnx", [1, 3, 8, 8], {"out": IR_VALUES})
    onnx.save(onnx.load(model), model, save_as_external_data=True, location="m.data", size_threshold=0)
    proc, remote = _serve(start_node, spinner, model, folder, "/changed")
    generation = remote.generation
    np.testing.assert_array_equal(remote.infer(FEED)["out"], IR_VALUES)
    for change in ("overwrite", "truncate"):
        for f in (model, folder / "m.data"):
            if change == "truncate":
                os.truncate(f, 0)
            else:
                with open(f, "r+b") as out:  # in place, as cp and scp write
                    out.write(b"\x7f" * f.stat().st_size)
        np.testing.assert_array_equal(remote.infer(FEED)["out"], IR_VALUES)  # no crash (SIGBUS), no new answers
        assert remote.fetch_metadata().generation == generation
    assert proc.alive()


def test_a_damaged_runtime_cache_never_keeps_the_node_from_its_model(start_node, spinner, tmp_path, monkeypatch):
    caches = tmp_path / "caches"
    caches.mkdir()
    nested = caches / "nested.json"
    nested.write_text("[" * 200_000 + "]" * 200_000)
    wrong = caches / "wrong.json"
    wrong.write_text(json.dumps({"version": 1, "digests": [], "choices": {"x": {"runtime": "openvino"}}}))
    fifo = caches / "fifo.json"
    os.mkfifo(fifo)
    zero = caches / "zero.json"
    os.symlink("/dev/zero", zero)
    folder = caches / "folder.json"
    folder.mkdir()
    for i, cache in enumerate((nested, wrong, fifo, zero, folder)):
        monkeypatch.setenv("ML_MODEL_SERVICE_RUNTIME_CACHE", str(cache))
        proc = start_node("model_service", {"execution_providers": ["cpu"]}, namespace=f"/cache{i}")
        remote = connect(spinner, f"/cache{i}/ml_model_service", proc, timeout=60)
        assert remote.metadata.outputs, cache.name
        proc.stop()
    assert not list(folder.iterdir()) and not [p for p in caches.iterdir() if p.name.startswith(".runtime")]
