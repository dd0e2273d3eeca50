"""core/runtimes/onnxruntime_backend.py: `OnnxBackend` opened directly on the bundled ONNX models and on small
ONNX graphs made here: tensor specs as the file declares them, a run on a real photograph, inputs of the wrong
type or shape refused by name, tensors over the size cap refused before the run, execution providers asked
for and not present, and files that are not models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from onnxruntime.capi.onnxruntime_pybind11_state import InvalidArgument

from ml_model_service.core.loading.bundled import BUNDLED, BUNDLED_DIR
from ml_model_service.core.reading.preprocess import InputLayout, PreprocessConfig, preprocess
from ml_model_service.core.runtimes.backend import ModelLoadError
from ml_model_service.core.runtimes.limits import MAX_MODEL_TENSOR_BYTES, TensorSizeError
from ml_model_service.core.runtimes.onnxruntime_backend import OnnxBackend
from ml_model_service_dev.harness.photos import photo

SSD = BUNDLED_DIR / BUNDLED["ssd_mobilenet_v2_coco"].file
CLASSIFIER = BUNDLED_DIR / BUNDLED["efficientnet_lite0"].file
ONNX_TYPES = {TensorProto.FLOAT: "float32", TensorProto.UINT8: "uint8"}


@pytest.fixture(scope="module")
def ssd() -> OnnxBackend:
    return OnnxBackend(SSD, providers=["cpu"], num_threads=1)


def declared(path: Path) -> tuple[list, list]:
    """(inputs, outputs) as (name, data type, shape) the ONNX file's graph declares."""
    graph = onnx.load(str(path), load_external_data=False).graph
    initialisers = {i.name for i in graph.initializer}

    def spec(value) -> tuple[str, str, list[int]]:
        tensor = value.type.tensor_type
        shape = [d.dim_value if d.HasField("dim_value") else -1 for d in tensor.shape.dim]
        return value.name, ONNX_TYPES[tensor.elem_type], shape

    return [spec(v) for v in graph.input if v.name not in initialisers], [spec(v) for v in graph.output]


@pytest.mark.parametrize("path", [SSD, CLASSIFIER], ids=lambda p: p.stem)
def test_specs_are_the_files_declared_tensors(path: Path, ssd: OnnxBackend) -> None:
    backend = ssd if path == SSD else OnnxBackend(path, providers=["cpu"], num_threads=1)
    inputs, outputs = declared(path)
    assert [(s.name, s.data_type, s.shape) for s in backend.inputs] == inputs
    assert [(s.name, s.data_type, s.shape) for s in backend.outputs] == outputs
    assert backend.kind == "onnx" and backend.info["backend"] == "onnxruntime"
    assert backend.info["execution_providers"] == "CPUExecutionProvider" and backend.info["threads"] == "1"


def test_a_photograph_runs_to_the_declared_outputs(ssd: OnnxBackend) -> None:
    """The motorcycle photograph: outputs by name in model order, of the declared types and shapes; the
    post-processed detections are 20 rows, scores best first, a motorcycle (COCO id 3) above 0.9."""
    layout = InputLayout.from_spec(ssd.inputs[0])
    tensor, _ = preprocess(photo("motorcycle"), layout, PreprocessConfig())
    out = ssd.infer({layout.name: tensor})
    assert list(out) == [s.name for s in ssd.outputs]
    for spec in ssd.outputs:
        assert out[spec.name].dtype.name == spec.data_type and list(out[spec.name].shape) == spec.shape
    boxes, classes, scores, count = out.values()
    assert int(count[0]) == 20 and np.all(np.diff(scores[0]) <= 0) and scores[0].max() <= 1
    assert int(classes[0, 0]) == 3 and scores[0, 0] > 0.9
    assert np.all((boxes[0, 0] >= 0) & (boxes[0, 0] <= 1))
    again = ssd.infer({layout.name: tensor})  # the same input, the same answer
    for name in out:
        np.testing.assert_array_equal(again[name], out[name])


def test_inputs_of_the_wrong_type_shape_or_rank_are_refused_by_name(ssd: OnnxBackend) -> None:
    name = "normalized_input_image_tensor"
    good = np.zeros((1, 300, 300, 3), np.uint8)
    with pytest.raises(InvalidArgument, match=r"Actual: \(tensor\(float\)\) , expected: \(tensor\(uint8\)\)"):
        ssd.infer({name: good.astype(np.float32)})
    with pytest.raises(InvalidArgument, match=rf"(?s)dimensions for input: {name}.*Got: 200 Expected: 300"):
        ssd.infer({name: good[:, :200]})
    with pytest.raises(InvalidArgument, match=rf"Invalid rank for input: {name} Got: 3 Expected: 4"):
        ssd.infer({name: good[0]})


def dynamic_relu(path: Path, metadata: dict[str, str] | None = None) -> Path:
    """A float [1, 3, h, w] → Relu → same model with open height and width (and custom metadata)."""
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])],
        "relu",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, "h", "w"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, "h", "w"])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    if metadata:
        helper.set_model_props(model, metadata)
    onnx.save(model, path)
    return path


def test_open_dimensions_run_and_oversized_inputs_are_refused_before_the_run(tmp_path: Path) -> None:
    """Open dimensions are -1 in the specs; any size runs, and one whose tensors pass MAX_MODEL_TENSOR_BYTES is
    refused before onnxruntime allocates (a zero-stride view stands for the 4.8 GB input)."""
    props = {"names": "{0: 'cat', 1: 'dog'}", "imgsz": "[64, 64]"}
    backend = OnnxBackend(dynamic_relu(tmp_path / "relu.onnx", props), providers=["cpu"], num_threads=1)
    assert backend.inputs[0].shape == [1, 3, -1, -1] and backend.outputs[0].shape == [1, 3, -1, -1]
    assert backend.embedded_metadata == props
    x = np.linspace(-1, 1, 3 * 5 * 7, dtype=np.float32).reshape(1, 3, 5, 7)
    np.testing.assert_array_equal(backend.infer({"x": x})["y"], np.maximum(x, 0))
    huge = np.broadcast_to(np.float32(0), (1, 3, 20000, 20000))
    with pytest.raises(TensorSizeError, match=rf"input 'x' of shape \[1, 3, 20000, 20000\].*{MAX_MODEL_TENSOR_BYTES}"):
        backend.infer({"x": huge})
    np.testing.assert_array_equal(backend.infer({"x": x})["y"], np.maximum(x, 0))  # still serves


def test_providers_not_present_fall_back_to_the_cpu_with_warnings(tmp_path: Path) -> None:
    """A provider asked for and absent (CoreML is macOS-only) is a warning; the run is on the CPU."""
    backend = OnnxBackend(dynamic_relu(tmp_path / "relu.onnx"), providers=["coreml", "cpu"], num_threads=1)
    assert backend.info["execution_providers"] == "CPUExecutionProvider"
    assert any("CoreMLExecutionProvider is not available here" in w for w in backend.warnings)
    assert "no GPU execution provider could be used: running on the CPU" in backend.warnings


def test_files_that_are_not_onnx_models_are_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model" * 50)
    with pytest.raises(ModelLoadError, match=r"onnxruntime could not load .*bad\.onnx: not an ONNX model"):
        OnnxBackend(bad, providers=["cpu"])
    with pytest.raises(ModelLoadError, match=r"cannot read .*missing\.onnx"):
        OnnxBackend(tmp_path / "missing.onnx", providers=["cpu"])
