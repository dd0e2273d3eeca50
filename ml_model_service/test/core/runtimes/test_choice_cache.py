"""core/runtimes/choice_cache.py: a runtime-choice cache file that is damaged, hostile or not a file never keeps
a model from loading, and a forged entry is checked before use."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import numpy as np

from ml_model_service.core.runtimes.choice_cache import ChoiceCache, cache_path
from ml_model_service.core.runtimes.registry import open_fastest

from conftest import IR_VALUES, constant_model


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
    model = constant_model(tmp_path / "m.onnx", [1, 3, 8, 8], {"out": IR_VALUES})
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


def test_cache_file_lives_in_the_user_cache_dir(monkeypatch, tmp_path):
    monkeypatch.delenv("ML_MODEL_SERVICE_RUNTIME_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cache_path() == tmp_path / "ml_model_service" / "runtime-choice.json"
