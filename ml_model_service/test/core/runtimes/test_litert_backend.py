"""core/runtimes/litert_backend.py: `TfliteBackend` (LiteRT) opened directly on the bundled TFLite models: specs
with the file's quantisation parameters, a run on real photographs agreeing with the ONNX conversion of the
same SSD on onnxruntime, inputs of the wrong type refused by name, inputs of another shape resized or refused
before LiteRT allocates (the interpreter still serving after), serialised concurrent calls, and files that are
not models."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from ml_model_service.core.loading.bundled import BUNDLED, BUNDLED_DIR
from ml_model_service.core.reading.preprocess import InputLayout, PreprocessConfig, preprocess
from ml_model_service.core.runtimes.backend import ModelLoadError
from ml_model_service.core.runtimes.limits import MAX_MODEL_TENSOR_BYTES, TensorSizeError
from ml_model_service.core.runtimes.onnxruntime_backend import OnnxBackend
from ml_model_service_dev.harness.photos import photo

litert = pytest.importorskip("ai_edge_litert.interpreter")
from ml_model_service.core.runtimes.litert_backend import TfliteBackend  # noqa: E402 (needs LiteRT)

SSD_TFLITE = BUNDLED_DIR / BUNDLED["ssd_mobilenet_v2_coco_tflite"].file
SSD_ONNX = BUNDLED_DIR / BUNDLED["ssd_mobilenet_v2_coco"].file
CLASSIFIER = BUNDLED_DIR / BUNDLED["efficientnet_lite0_tflite"].file
INPUT = "normalized_input_image_tensor"


@pytest.fixture(scope="module")
def ssd() -> TfliteBackend:
    return TfliteBackend(SSD_TFLITE, num_threads=1)


@pytest.fixture(scope="module")
def classifier() -> TfliteBackend:
    return TfliteBackend(CLASSIFIER, num_threads=1)


def file_details(path: Path) -> tuple[list, list]:
    """(inputs, outputs) as (name, dtype, shape, (scale, zero point)) a fresh LiteRT interpreter reads from
    the file (allocated: TFLite's post-processing outputs have their shapes only then)."""
    interpreter = litert.Interpreter(model_path=str(path))
    interpreter.allocate_tensors()

    def row(d: dict) -> tuple:
        return d["name"], np.dtype(d["dtype"]).name, [int(v) for v in d["shape"]], d["quantization"]

    return [row(d) for d in interpreter.get_input_details()], [row(d) for d in interpreter.get_output_details()]


def spec_rows(specs: list) -> list[tuple]:
    return [
        (
            s.name,
            s.data_type,
            s.shape,
            (float(s.extra.get("quantization_scale", 0.0)), int(s.extra.get("quantization_zero_point", 0))),
        )
        for s in specs
    ]


def test_specs_are_the_files_tensors_with_their_quantisation(ssd: TfliteBackend, classifier: TfliteBackend) -> None:
    """Names, types, shapes and (scale, zero point) as the file holds them; float tensors carry no
    quantisation; the classifier's uint8 softmax is value / 256."""
    for backend, path in ((ssd, SSD_TFLITE), (classifier, CLASSIFIER)):
        inputs, outputs = file_details(path)
        assert spec_rows(backend.inputs) == inputs and spec_rows(backend.outputs) == outputs
    assert [s.extra for s in ssd.outputs] == [{}] * 4
    assert classifier.outputs[0].extra == {"quantization_scale": "0.00390625", "quantization_zero_point": "0"}
    assert ssd.kind == "tflite" and ssd.info["execution_providers"] == "CPU (XNNPACK)"
    assert ssd.info["threads"] == "1" and ssd.info["pool_cores"] == "any"  # one thread: no pool to pin


def detections(out: dict[str, np.ndarray], threshold: float = 0.5) -> list[tuple[int, float, np.ndarray]]:
    """(class, score, box) of the post-processed rows at or above `threshold`, best first."""
    boxes, classes, scores, count = out.values()
    n = int(count[0])
    return [(int(classes[0, i]), float(scores[0, i]), boxes[0, i]) for i in range(n) if scores[0, i] >= threshold]


def test_photographs_run_to_the_declared_outputs_as_onnxruntime_runs_the_onnx_twin(ssd: TfliteBackend) -> None:
    """The bundled ONNX SSD is this file converted (tf2onnx): on the same photographs both runtimes find the
    same objects, scores within two int8 steps, boxes within 2% of the input."""
    twin = OnnxBackend(SSD_ONNX, providers=["cpu"], num_threads=1)
    assert [(s.name, s.data_type, s.shape) for s in ssd.outputs] == [
        (s.name, s.data_type, s.shape) for s in twin.outputs
    ]
    layout = InputLayout.from_spec(ssd.inputs[0])
    for name in ("motorcycle", "chelsea", "coffee"):
        tensor, _ = preprocess(photo(name), layout, PreprocessConfig())
        out = ssd.infer({INPUT: tensor})
        assert list(out) == [s.name for s in ssd.outputs]
        for spec in ssd.outputs:
            assert out[spec.name].dtype.name == spec.data_type and list(out[spec.name].shape) == spec.shape
        mine, theirs = detections(out), detections(twin.infer({INPUT: tensor}))
        assert mine and [c for c, _, _ in mine] == [c for c, _, _ in theirs], name
        for (_, s1, b1), (_, s2, b2) in zip(mine, theirs):
            assert abs(s1 - s2) <= 2 / 256 and np.abs(b1 - b2).max() < 0.02, name
    assert detections(ssd.infer({INPUT: preprocess(photo("motorcycle"), layout, PreprocessConfig())[0]}))[0][0] == 3


def test_inputs_of_the_wrong_type_are_refused_by_name(ssd: TfliteBackend) -> None:
    with pytest.raises(ValueError, match=rf"Got value of type FLOAT32 but expected type UINT8 .*name: {INPUT}"):
        ssd.infer({INPUT: np.zeros((1, 300, 300, 3), np.float32)})


def test_other_shapes_are_resized_or_refused_before_allocation_and_the_model_still_serves(
    classifier: TfliteBackend,
) -> None:
    """Another input shape is a resize: one the graph cannot take (EfficientNet's fixed reshape) is refused
    with the shape and LiteRT's reason, one over MAX_MODEL_TENSOR_BYTES before LiteRT allocates (a zero-stride
    view stands for the 1.2 GB input); the interpreter then runs the declared shape as before."""
    tensor, _ = preprocess(photo("chelsea"), InputLayout.from_spec(classifier.inputs[0]), PreprocessConfig())
    before = classifier.infer({"images": tensor})["Softmax"]
    assert before.shape == (1, 1000) and before.dtype == np.uint8 and int(before.argmax()) == 285  # Egyptian cat
    with pytest.raises(TensorSizeError, match=r"inputs resized to \[\[1, 256, 256, 3\]\]: LiteRT cannot allocate"):
        classifier.infer({"images": np.zeros((1, 256, 256, 3), np.uint8)})
    huge = np.broadcast_to(np.uint8(0), (1, 20000, 20000, 3))
    over = rf"input 'images' of shape \[1, 20000, 20000, 3\].*{MAX_MODEL_TENSOR_BYTES}"
    with pytest.raises(TensorSizeError, match=over):
        classifier.infer({"images": huge})
    assert classifier.inputs[0].shape == [1, 224, 224, 3]
    np.testing.assert_array_equal(classifier.infer({"images": tensor})["Softmax"], before)


def test_concurrent_calls_are_serialised_to_the_same_answers(classifier: TfliteBackend) -> None:
    """One interpreter is not thread-safe: calls from several threads queue and each gets its own answer."""
    rng = np.random.default_rng(1)
    inputs = [rng.integers(0, 256, (1, 224, 224, 3), dtype=np.uint8) for _ in range(3)]
    expected = [classifier.infer({"images": x})["Softmax"] for x in inputs]
    results: dict[int, list[np.ndarray]] = {}

    def worker(k: int) -> None:
        results[k] = [classifier.infer({"images": x})["Softmax"] for x in inputs]

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(results) == [0, 1, 2]
    for got in results.values():
        for a, b in zip(got, expected):
            np.testing.assert_array_equal(a, b)


def test_files_that_are_not_tflite_models_are_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"not a model" * 50)
    with pytest.raises(ModelLoadError, match=r"TFLite could not load .*bad\.tflite"):
        TfliteBackend(bad)
    with pytest.raises(ModelLoadError, match=r"TFLite could not load .*missing\.tflite"):
        TfliteBackend(tmp_path / "missing.tflite")
