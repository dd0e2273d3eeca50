"""core/runtimes/openvino_backend.py: `OpenvinoBackend` opened directly on the bundled ONNX SSD and on small
models made here: specs as the file declares them (the post-processing outputs left open), detections on real
photographs agreeing with onnxruntime on the same file, IR ports without names named by position, the
exporter's metadata read beside an IR model or from an ONNX file, device choice, inputs of the wrong shape or
name refused, and files it cannot load refused in one line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from ml_model_service.core.loading.bundled import BUNDLED, BUNDLED_DIR
from ml_model_service.core.reading.preprocess import InputLayout, PreprocessConfig, preprocess
from ml_model_service.core.runtimes.backend import ModelLoadError
from ml_model_service.core.runtimes.onnxruntime_backend import OnnxBackend
from ml_model_service.core.tensors import shape_matches
from ml_model_service_dev.harness.photos import photo

ov = pytest.importorskip("openvino")
from ml_model_service.core.runtimes.openvino_backend import OpenvinoBackend, pick_device  # noqa: E402

SSD = BUNDLED_DIR / BUNDLED["ssd_mobilenet_v2_coco"].file
INPUT = "normalized_input_image_tensor"


@pytest.fixture(scope="module")
def ssd() -> OpenvinoBackend:
    """The bundled ONNX SSD on OpenVINO's CPU at float32 (no bf16 rounding on CPUs that have it)."""
    return OpenvinoBackend(SSD, providers=["cpu"], num_threads=1, precision="f32")


def test_specs_follow_the_onnx_file_and_runs_fit_them(ssd: OpenvinoBackend) -> None:
    """Names and types as the ONNX file declares them; the input's shape too; OpenVINO leaves the
    post-processing (NonMaxSuppression) outputs' sizes open (-1), and a run's outputs fit the specs."""
    ort = OnnxBackend(SSD, providers=["cpu"], num_threads=1)
    assert (
        [(s.name, s.data_type, s.shape) for s in ssd.inputs]
        == [(INPUT, "uint8", [1, 300, 300, 3])]
        == [(s.name, s.data_type, s.shape) for s in ort.inputs]
    )
    assert [(s.name, s.data_type) for s in ssd.outputs] == [(s.name, s.data_type) for s in ort.outputs]
    assert [s.shape for s in ssd.outputs] == [[-1, -1, -1], [-1, -1], [-1, -1], [1]]
    assert ssd.kind == "openvino" and ssd.info["execution_providers"] == "OpenVINO CPU"
    assert ssd.info["inference_precision"] == "f32"
    assert int(ssd.compiled.get_property("INFERENCE_NUM_THREADS")) == 1
    tensor, _ = preprocess(photo("motorcycle"), InputLayout.from_spec(ssd.inputs[0]), PreprocessConfig())
    out = ssd.infer({INPUT: tensor})
    assert list(out) == [s.name for s in ssd.outputs]
    for spec, declared in zip(ssd.outputs, ort.outputs):
        assert out[spec.name].dtype.name == spec.data_type and shape_matches(spec.shape, out[spec.name].shape)
        assert list(out[spec.name].shape) == declared.shape  # what the file declares: [1, 20, 4], [1, 20], [1]


def detections(out: dict[str, np.ndarray], threshold: float = 0.5) -> list[tuple[int, float, np.ndarray]]:
    """(class, score, box) of the post-processed rows at or above `threshold`, best first."""
    boxes, classes, scores, count = out.values()
    rows = [(int(classes[0, i]), float(scores[0, i]), boxes[0, i]) for i in range(int(count[0]))]
    return sorted((r for r in rows if r[1] >= threshold), key=lambda r: -r[1])


def test_detections_agree_with_onnxruntime_on_the_same_file(ssd: OpenvinoBackend) -> None:
    """The same ONNX file and photographs on both runtimes: the same objects, scores within two int8 steps,
    boxes within 3% of the input (int8 kernels round differently; tied rows may come out in another order)."""
    ort = OnnxBackend(SSD, providers=["cpu"], num_threads=1)
    layout = InputLayout.from_spec(ssd.inputs[0])
    for name in ("motorcycle", "chelsea", "coffee"):
        tensor, _ = preprocess(photo(name), layout, PreprocessConfig())
        mine, theirs = detections(ssd.infer({INPUT: tensor})), detections(ort.infer({INPUT: tensor}))
        assert mine and [c for c, _, _ in mine] == [c for c, _, _ in theirs], name
        for (_, s1, b1), (_, s2, b2) in zip(mine, theirs):
            assert abs(s1 - s2) <= 2 / 256 and np.abs(b1 - b2).max() < 0.03, name


def test_inputs_of_the_wrong_shape_or_name_are_refused(ssd: OpenvinoBackend) -> None:
    good = np.zeros((1, 300, 300, 3), np.uint8)
    with pytest.raises(RuntimeError, match=r"model input \(shape=\[1,300,300,3\]\)"):
        ssd.infer({INPUT: good[:, :200]})
    with pytest.raises(RuntimeError, match=r"model input \(shape=\[1,300,300,3\]\)"):
        ssd.infer({INPUT: good[0]})
    with pytest.raises(RuntimeError, match=r"Port for tensor name images was not found"):
        ssd.infer({"images": good})


def unnamed_ir(folder: Path) -> Path:
    """An OpenVINO IR model (Relu on float [1, 3, 8, 8]) whose ports have no tensor names, as Ultralytics'
    IR exports' outputs have none."""
    from openvino import opset13 as ops

    parameter = ops.parameter([1, 3, 8, 8], np.float32)
    model = ov.Model([ops.relu(parameter)], [parameter], "unnamed")
    model.inputs[0].get_tensor().set_names(set())
    model.outputs[0].get_tensor().set_names(set())
    folder.mkdir()
    ov.save_model(model, str(folder / "model.xml"), compress_to_fp16=False)
    return folder / "model.xml"


def test_ir_ports_without_names_and_the_metadata_beside_them(tmp_path: Path) -> None:
    """Unnamed ports are input0 / output0 (as ONNX exports name them) and run by those names; the exporter's
    metadata.yaml beside the model is its embedded metadata, as strings; one linked from elsewhere is not read."""
    xml = unnamed_ir(tmp_path / "ir")
    (xml.parent / "metadata.yaml").write_text("names:\n  0: person\n  1: bicycle\nimgsz: [8, 8]\ntask: detect\n")
    backend = OpenvinoBackend(xml, precision="f32")
    assert [(s.name, s.data_type, s.shape) for s in backend.inputs] == [("input0", "float32", [1, 3, 8, 8])]
    assert [(s.name, s.data_type, s.shape) for s in backend.outputs] == [("output0", "float32", [1, 3, 8, 8])]
    assert backend.embedded_metadata == {"names": "{0: 'person', 1: 'bicycle'}", "imgsz": "[8, 8]", "task": "detect"}
    x = np.linspace(-1, 1, 192, dtype=np.float32).reshape(1, 3, 8, 8)
    np.testing.assert_array_equal(backend.infer({"input0": x})["output0"], np.maximum(x, 0))

    elsewhere = tmp_path / "elsewhere.yaml"
    elsewhere.write_text("task: segment\n")
    (xml.parent / "metadata.yaml").unlink()
    (xml.parent / "metadata.yaml").symlink_to(elsewhere)
    assert OpenvinoBackend(xml).embedded_metadata == {}


def test_onnx_metadata_props_are_read(tmp_path: Path) -> None:
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])],
        "relu",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 4, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 4, 4])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    helper.set_model_props(model, {"names": "{0: 'cat'}", "imgsz": "[4, 4]"})
    onnx.save(model, tmp_path / "relu.onnx")
    backend = OpenvinoBackend(tmp_path / "relu.onnx")
    assert backend.embedded_metadata == {"names": "{0: 'cat'}", "imgsz": "[4, 4]"}


def test_the_first_present_device_asked_for_is_used() -> None:
    """onnxruntime's provider names are passed over; a device asked for and absent is a warning; else CPU."""
    assert pick_device(["cuda", "cpu"], ["CPU"]) == ("CPU", [])
    assert pick_device(["gpu", "cpu"], ["CPU", "GPU.0", "GPU.1"]) == ("GPU", [])
    device, warnings = pick_device(["npu", "gpu"], ["CPU"])
    assert device == "CPU" and len(warnings) == 2 and "OpenVINO device NPU is not present here" in warnings[0]
    assert pick_device(["auto"], ["CPU"]) == ("AUTO", [])
    assert pick_device([], ["CPU", "GPU"]) == ("CPU", [])


def test_files_it_cannot_load_are_refused_in_one_bounded_line(tmp_path: Path) -> None:
    """OpenVINO's multi-line C++ traces become one line of at most 400 characters after the file's name."""
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model" * 50)
    with pytest.raises(ModelLoadError, match=r"OpenVINO could not load .*bad\.onnx: ") as exc:
        OpenvinoBackend(bad)
    message = str(exc.value)
    assert "\n" not in message and len(message) <= len(f"OpenVINO could not load {bad}: ") + 400
