"""The model service node in its own process, called over real DDS from this process."""
from __future__ import annotations

import threading
import time

import cv2
import numpy as np
import pytest

from ml_model_service.core.labels import load_labels
from ml_model_service.core.model import BUNDLED, BUNDLED_DIR
from ml_model_service.ros import conversions
from ml_model_service.ros.remote_model import RemoteModel, call
from ml_model_service_interfaces.msg import AssociatedFile, Tensor
from ml_model_service_interfaces.srv import Infer

from conftest import photo, wait_for

COCO = load_labels(BUNDLED_DIR / "coco_labels.txt")
IMAGENET = load_labels(BUNDLED_DIR / "imagenet_labels.txt")


def connect(spinner, service: str, proc, timeout: float = 30.0) -> RemoteModel:
    """A RemoteModel once the node in `proc` serves a model."""
    def attempt():
        assert proc.alive(), proc.log()
        try:
            return RemoteModel(spinner.node, service, timeout=5.0)
        except Exception:
            return None
    return wait_for(attempt, timeout, interval=0.3, what=f"{service} to serve")


def image_input(remote: RemoteModel, rgb: np.ndarray) -> dict[str, np.ndarray]:
    spec = remote.metadata.inputs[0]
    _, h, w, _ = spec.shape
    return {spec.name: cv2.resize(rgb, (w, h), interpolation=cv2.INTER_LINEAR)[None].astype(spec.data_type)}


def ssd_classes(outputs: dict[str, np.ndarray], min_score: float = 0.5) -> set[str]:
    _, classes, scores, count = outputs.values()
    n = int(count.reshape(-1)[0])
    return {COCO.name(int(c)) for c, s in zip(classes[0, :n], scores[0, :n]) if s >= min_score}


@pytest.fixture
def detector(start_node, spinner):
    proc = start_node("model_service", {"model_path": "ssd_mobilenet_v2_coco", "execution_providers": ["cpu"]},
                      namespace="/det")
    return proc, connect(spinner, "/det/ml_model_service", proc)


def test_metadata_of_bundled_models_is_complete(start_node, spinner):
    det = start_node("model_service", {"model_path": "ssd_mobilenet_v2_coco"}, namespace="/a")
    cls = start_node("model_service", {"model_path": "efficientnet_lite0_tflite"}, namespace="/b")
    d = connect(spinner, "/a/ml_model_service", det).metadata
    c = connect(spinner, "/b/ml_model_service", cls).metadata

    assert d.type == "onnx" and c.type == "tflite"
    assert [(t.name, t.data_type, t.shape) for t in d.inputs] == [
        ("normalized_input_image_tensor", "uint8", [1, 300, 300, 3])]
    assert [(t.name, t.data_type, t.shape) for t in d.outputs] == [
        ("TFLite_Detection_PostProcess", "float32", [1, 20, 4]),
        ("TFLite_Detection_PostProcess:1", "float32", [1, 20]),
        ("TFLite_Detection_PostProcess:2", "float32", [1, 20]),
        ("TFLite_Detection_PostProcess:3", "float32", [1])]
    assert d.outputs[0].extra["labels"].endswith("coco_labels.txt")
    assert d.outputs[0].extra["execution_providers"] == "CPUExecutionProvider"
    class_files = d.outputs[1].associated_files
    assert class_files and class_files[0].label_type == AssociatedFile.LABEL_TYPE_TENSOR_VALUE

    assert [(t.name, t.data_type, t.shape) for t in c.inputs] == [("images", "uint8", [1, 224, 224, 3])]
    assert [(t.name, t.data_type, t.shape) for t in c.outputs] == [("Softmax", "uint8", [1, 1000])]
    files = c.outputs[0].associated_files
    assert files[0].name.endswith("imagenet_labels.txt")
    assert files[0].label_type == AssociatedFile.LABEL_TYPE_TENSOR_AXIS
    assert float(c.outputs[0].extra["quantization_scale"]) == pytest.approx(1 / 256)


def test_infer_finds_expected_objects_on_photographs(detector):
    _, remote = detector
    assert "person" in ssd_classes(remote.infer(image_input(remote, photo("astronaut"))))
    assert "motorcycle" in ssd_classes(remote.infer(image_input(remote, photo("motorcycle"))))
    assert "cat" in ssd_classes(remote.infer(image_input(remote, photo("chelsea"))))


def test_classifier_names_chelsea_a_cat_and_backends_agree(start_node, spinner):
    onnx = start_node("model_service", {"model_path": "efficientnet_lite0"}, namespace="/onnx")
    tfl = start_node("model_service", {"model_path": "efficientnet_lite0_tflite"}, namespace="/tfl")
    r_onnx = connect(spinner, "/onnx/ml_model_service", onnx)
    r_tfl = connect(spinner, "/tfl/ml_model_service", tfl)
    for name in ("chelsea", "coffee"):
        rgb = photo(name)
        a = r_onnx.infer(image_input(r_onnx, rgb))["Softmax"]
        b = r_tfl.infer(image_input(r_tfl, rgb))["Softmax"]
        assert a.dtype == np.uint8 and b.dtype == np.uint8  # real output types come back
        pa, pb = a[0] / 256.0, b[0] / 256.0
        assert int(pa.argmax()) == int(pb.argmax())
        assert np.abs(pa - pb).max() < 0.1
        if name == "chelsea":
            assert "cat" in IMAGENET.name(int(pa.argmax())).lower()


def test_onnx_and_tflite_detectors_agree(start_node, spinner):
    onnx = start_node("model_service", {"model_path": "ssd_mobilenet_v2_coco"}, namespace="/o")
    tfl = start_node("model_service", {"model_path": "ssd_mobilenet_v2_coco_tflite"}, namespace="/t")
    r_onnx, r_tfl = connect(spinner, "/o/ml_model_service", onnx), connect(spinner, "/t/ml_model_service", tfl)
    rgb = photo("motorcycle")
    a, b = r_onnx.infer(image_input(r_onnx, rgb)), r_tfl.infer(image_input(r_tfl, rgb))
    boxes_a, boxes_b = list(a.values())[0][0, 0], list(b.values())[0][0, 0]
    assert np.abs(boxes_a - boxes_b).max() < 0.05
    assert ssd_classes(a) == ssd_classes(b)


def _tensor(name, data_type, shape, data) -> Tensor:
    return Tensor(name=name, data_type=data_type, shape=shape, data=bytes(data))


def test_bad_requests_get_clear_errors_and_node_keeps_serving(detector):
    proc, remote = detector
    name = "normalized_input_image_tensor"
    good = _tensor(name, "uint8", [1, 300, 300, 3], np.zeros(270000, np.uint8))
    cases = {
        "unknown": ([_tensor("nope", "uint8", [1], b"\0"), good], "unknown input"),
        "missing": ([], "missing input"),
        "dtype": ([_tensor(name, "float32", [1, 300, 300, 3], np.zeros(270000, np.float32))], "data_type"),
        "bad type name": ([_tensor(name, "complex64", [1], b"\0" * 8)], "unknown data_type"),
        "shape": ([_tensor(name, "uint8", [1, 200, 300, 3], np.zeros(180000, np.uint8))], "shape"),
        "rank": ([_tensor(name, "uint8", [300, 300, 3], np.zeros(270000, np.uint8))], "shape"),
        "byte length": ([_tensor(name, "uint8", [1, 300, 300, 3], np.zeros(1000, np.uint8))], "bytes"),
        "absurd": ([_tensor(name, "uint8", [100000, 100000, 100000, 3], b"")], "limit"),
        "negative": ([_tensor(name, "uint8", [1, -300, 300, 3], b"")], "negative"),
        "duplicate": ([good, good], "twice"),
    }
    client = remote._infer
    for label, (inputs, expected) in cases.items():
        response = call(client, Infer.Request(inputs=inputs), 10.0)
        assert not response.success, label
        assert expected in response.message, (label, response.message)
        if label not in ("missing", "duplicate"):
            assert "nope" in response.message or name in response.message, (label, response.message)
        ok = call(client, Infer.Request(inputs=[good]), 10.0)
        assert ok.success, (label, ok.message)
    assert proc.alive()


def test_load_model_swaps_without_losing_concurrent_requests(detector, tmp_path):
    proc, remote = detector
    rgb_input = image_input(remote, photo("motorcycle"))
    request = Infer.Request(inputs=[conversions.tensor_to_msg(n, a) for n, a in rgb_input.items()])
    results: list[tuple[bool, str, set]] = []
    stop = threading.Event()

    def stream():
        while not stop.is_set():
            r = call(remote._infer, request, 20.0)
            outs = {t.name: conversions.tensor_from_msg(t) for t in r.outputs}
            results.append((r.success, r.message, ssd_classes(outs) if r.success else set()))

    workers = [threading.Thread(target=stream) for _ in range(3)]
    for w in workers:
        w.start()
    try:
        swaps = ["ssd_mobilenet_v2_coco_tflite", "ssd_mobilenet_v2_coco", "ssd_mobilenet_v2_coco_tflite"]
        for target in swaps:
            time.sleep(0.5)
            t0 = time.monotonic()
            response = remote.load(target)
            assert response.success, response.message
            assert time.monotonic() - t0 < 15
            # metadata stays responsive while inference streams
            meta_start = time.monotonic()
            assert remote.fetch_metadata().type == ("tflite" if target.endswith("tflite") else "onnx")
            assert time.monotonic() - meta_start < 2.0
        corrupt = tmp_path / "corrupt.onnx"
        corrupt.write_bytes(b"this is not an onnx model" * 100)
        response = remote.load(str(corrupt))
        assert not response.success and "corrupt.onnx" in response.message
        missing = remote.load(str(tmp_path / "missing.tflite"))
        assert not missing.success and "not found" in missing.message
        time.sleep(0.5)
    finally:
        stop.set()
        for w in workers:
            w.join(30)
    assert len(results) >= 10
    failures = [m for ok, m, _ in results if not ok]
    assert not failures, failures[:3]
    assert all("motorcycle" in classes for _, _, classes in results)
    assert remote.fetch_metadata().type == "tflite"  # the corrupt model left the last good one serving
    assert proc.alive()


def test_repository_models_by_name_and_unknown_names(start_node, spinner, tmp_path):
    repo = tmp_path / "repo"
    (repo / "cats").mkdir(parents=True)
    (repo / "cats" / "model.onnx").write_bytes((BUNDLED_DIR / BUNDLED["efficientnet_lite0"].file).read_bytes())
    (repo / "cats" / "labels.txt").write_text((BUNDLED_DIR / "imagenet_labels.txt").read_text())
    proc = start_node("model_service", {"model_path": "cats", "model_repository": str(repo)}, namespace="/r")
    remote = connect(spinner, "/r/ml_model_service", proc)
    assert remote.metadata.outputs[0].extra["labels"] == str(repo / "cats" / "labels.txt")
    response = remote.load("no_such_model")
    assert not response.success and "cats" in response.message  # lists the known names


def test_setting_model_path_swaps_or_is_rejected(detector, spinner, tmp_path):
    from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
    from rcl_interfaces.srv import SetParameters

    proc, remote = detector
    client = spinner.node.create_client(SetParameters, "/det/ml_model_service/set_parameters")

    def set_model(path: str):
        value = ParameterValue(type=ParameterType.PARAMETER_STRING, string_value=path)
        return call(client, SetParameters.Request(parameters=[Parameter(name="model_path", value=value)]),
                    20.0).results[0]

    assert set_model("efficientnet_lite0").successful
    assert remote.fetch_metadata().outputs[0].name == "Softmax"
    corrupt = tmp_path / "broken.tflite"
    corrupt.write_bytes(b"\0" * 1000)
    result = set_model(str(corrupt))
    assert not result.successful and "broken.tflite" in result.reason
    assert remote.fetch_metadata().outputs[0].name == "Softmax"  # the old model keeps serving
    assert proc.alive()
