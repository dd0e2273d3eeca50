"""The model service node in its own process, called over real DDS from this process."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from ml_model_service.core.loading.bundled import BUNDLED, BUNDLED_DIR
from ml_model_service.core.loading.labels import load_labels
from ml_model_service.ros import conversions
from ml_model_service.ros.remote_model import ModelChanged, RemoteModel, call
from ml_model_service_dev.harness.photos import photo
from ml_model_service_dev.harness.together import at_once
from ml_model_service_dev.harness.waits import wait_for
from ml_model_service_interfaces.msg import AssociatedFile, Tensor
from ml_model_service_interfaces.srv import Infer

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


def infer_client(spinner, remote: RemoteModel):
    """A plain client of the model service's ~/infer on the test's spun node: calls from many threads run
    concurrently (a RemoteModel's own calls are one at a time)."""
    return spinner.node.create_client(Infer, remote._infer.service_name)


def image_input(remote: RemoteModel, rgb: np.ndarray) -> dict[str, np.ndarray]:
    spec = remote.metadata.inputs[0]
    _, h, w, _ = spec.shape
    return {spec.name: cv2.resize(rgb, (w, h), interpolation=cv2.INTER_LINEAR)[None].astype(spec.data_type)}


def ssd_classes(outputs: dict[str, np.ndarray], min_score: float = 0.5) -> set[str]:
    _, classes, scores, count = outputs.values()
    n = int(count.reshape(-1)[0])
    return {COCO.name(int(c)) for c, s in zip(classes[0, :n], scores[0, :n]) if s >= min_score}


@pytest.fixture
def detector(start_node, spinner, tmp_path):
    proc = start_node(
        "model_service",
        {"model_path": "ssd_mobilenet_v2_coco", "execution_providers": ["cpu"], "allowed_paths": [str(tmp_path)]},
        namespace="/det",
    )
    return proc, connect(spinner, "/det/ml_model_service", proc)


def test_metadata_of_bundled_models_is_complete(start_node, spinner):
    det = start_node("model_service", {"model_path": "ssd_mobilenet_v2_coco"}, namespace="/a")
    cls = start_node("model_service", {"model_path": "efficientnet_lite0_tflite"}, namespace="/b")
    d = connect(spinner, "/a/ml_model_service", det).metadata
    c = connect(spinner, "/b/ml_model_service", cls).metadata

    assert d.type == "onnx" and c.type == "tflite"
    assert [(t.name, t.data_type, t.shape) for t in d.inputs] == [
        ("normalized_input_image_tensor", "uint8", [1, 300, 300, 3])
    ]
    assert [(t.name, t.data_type, t.shape) for t in d.outputs] == [
        ("TFLite_Detection_PostProcess", "float32", [1, 20, 4]),
        ("TFLite_Detection_PostProcess:1", "float32", [1, 20]),
        ("TFLite_Detection_PostProcess:2", "float32", [1, 20]),
        ("TFLite_Detection_PostProcess:3", "float32", [1]),
    ]
    assert d.outputs[0].extra["labels"].endswith("coco_labels.txt")  # a description; the names travel as data
    assert d.label_names == COCO.names and c.label_names == IMAGENET.names
    assert d.generation > 0 and c.generation > 0
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


def test_bad_requests_get_clear_errors_and_node_keeps_serving(detector, spinner):
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
    client = infer_client(spinner, remote)
    for label, (inputs, expected) in cases.items():
        response = call(client, Infer.Request(inputs=inputs), 10.0)
        assert not response.success, label
        assert expected in response.message, (label, response.message)
        if label not in ("missing", "duplicate"):
            assert "nope" in response.message or name in response.message, (label, response.message)
        ok = call(client, Infer.Request(inputs=[good]), 10.0)
        assert ok.success, (label, ok.message)
    assert proc.alive()


def test_load_model_swaps_without_losing_concurrent_requests(detector, spinner, tmp_path):
    proc, remote = detector
    client = infer_client(spinner, remote)
    rgb_input = image_input(remote, photo("motorcycle"))
    request = Infer.Request(inputs=[conversions.tensor_to_msg(n, a) for n, a in rgb_input.items()])
    results: list[tuple[bool, str, set]] = []
    stop = threading.Event()

    def stream():
        while not stop.is_set():
            r = call(client, request, 20.0)
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
        corrupt = tmp_path / "corrupt.onnx"  # inside the allowed folder: the backend says why
        corrupt.write_bytes(b"this is not an onnx model" * 100)
        response = remote.load(str(corrupt))
        assert not response.success and "onnxruntime could not load" in response.message
        missing = remote.load(str(tmp_path / "missing.tflite"))
        assert not missing.success and "not found in the allowed folders" in missing.message
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
        return call(
            client, SetParameters.Request(parameters=[Parameter(name="model_path", value=value)]), 20.0
        ).results[0]

    assert set_model("efficientnet_lite0").successful
    assert remote.fetch_metadata().outputs[0].name == "Softmax"
    corrupt = tmp_path / "broken.tflite"
    corrupt.write_bytes(b"\0" * 1000)
    result = set_model(str(corrupt))
    assert not result.successful and "broken.tflite" in result.reason
    assert remote.fetch_metadata().outputs[0].name == "Softmax"  # the old model keeps serving
    assert proc.alive()


def test_every_reloading_parameter_reloads_the_model(detector, spinner):
    """The table's `runner` tier is the model service's reload set: each such change opens the model again
    (a new generation) with the new value, server_timeout included."""
    from ml_model_service.core.settings.params import RUNNER
    from ml_model_service.core.settings.tables import MODEL_PARAMS

    proc, remote = detector
    new = {
        "server_timeout": 7.5,
        "num_threads": 1,
        "pin_threads": False,
        "backend": "onnx",
        "execution_providers": ["cpu"],
    }
    runner = {p.name for p in MODEL_PARAMS if p.effective_tier == RUNNER}
    assert set(new) <= runner and "server_timeout" in runner
    for name, value in new.items():
        before = remote.fetch_metadata().generation
        (result,) = _set_params(spinner, "/det/ml_model_service", **{name: value})
        assert result.successful, (name, result.reason)
        assert remote.fetch_metadata().generation > before, f"{name} was accepted but the model was not reloaded"
        assert _get_params(spinner, "/det/ml_model_service", name) == [value]
    assert proc.alive()


# --- trust boundary ---------------------------------------------------------------------------------


def _set_params(spinner, node: str, **values):
    """Set parameters on a node over DDS; returns the SetParametersResult list."""
    from rcl_interfaces.srv import SetParameters
    from rclpy.parameter import Parameter as RclpyParameter

    client = spinner.node.create_client(SetParameters, f"{node}/set_parameters")
    request = SetParameters.Request(
        parameters=[RclpyParameter(k, value=v).to_parameter_msg() for k, v in values.items()]
    )
    return call(client, request, 20.0).results


def _get_params(spinner, node: str, *names) -> list:
    from rcl_interfaces.srv import GetParameters
    from rclpy.parameter import parameter_value_to_python

    client = spinner.node.create_client(GetParameters, f"{node}/get_parameters")
    values = call(client, GetParameters.Request(names=list(names)), 10.0).values
    return [parameter_value_to_python(v) for v in values]


def _rss_mb(proc) -> float:
    status = Path(f"/proc/{proc.proc.pid}/status").read_text()
    return next(int(ln.split()[1]) / 1024 for ln in status.splitlines() if ln.startswith("VmRSS:"))


def test_files_outside_allowed_folders_are_refused_alike_and_never_read(detector, spinner, tmp_path):
    proc, remote = detector
    outside = tmp_path.parent / f"{tmp_path.name}-outside"
    outside.mkdir()
    secret = outside / "secret.txt"
    secret.write_text("secret-token-4f1c\n")
    (tmp_path / "link.txt").symlink_to(secret)
    refs = [
        "/etc/shadow",
        "/root/.ssh/id_rsa",
        "/etc",
        "/proc/self/environ",
        str(secret),
        str(tmp_path / "missing.onnx"),
        str(tmp_path / ".." / outside.name / "secret.txt"),
        str(tmp_path / "link.txt"),
    ]
    messages = {}
    for ref in refs:
        response = remote.load(ref)
        assert not response.success, ref
        messages[ref] = response.message.replace(repr(ref), "<ref>")
    assert len(set(messages.values())) == 1, messages  # no oracle of which files exist
    assert "not found in the allowed folders" in messages["/etc/shadow"]
    # label files: the same refusal, with a model that loads
    for label in ("/etc/shadow", str(secret), str(tmp_path / "link.txt")):
        response = remote.load("ssd_mobilenet_v2_coco", label)
        assert not response.success and "not found in the allowed folders" in response.message, label
    result = _set_params(spinner, "/det/ml_model_service", label_path="/etc/shadow")[0]
    assert not result.successful and "not found in the allowed folders" in result.reason
    # widening the folders through model_repository at run time is refused too
    result = _set_params(spinner, "/det/ml_model_service", model_repository="/etc")[0]
    assert not result.successful and "allowed folders" in result.reason
    meta = remote.fetch_metadata()
    assert meta.label_names == COCO.names  # the old model and labels keep serving
    assert "secret-token" not in str(meta) and "secret-token" not in proc.log()
    assert proc.alive()


def test_huge_or_binary_label_files_are_refused_without_reading_them(detector, tmp_path):
    proc, remote = detector
    huge = tmp_path / "huge_labels.txt"
    with open(huge, "wb") as f:
        f.truncate(1 << 30)  # 1 GiB, sparse
    rss_before = _rss_mb(proc)
    response = remote.load("ssd_mobilenet_v2_coco", str(huge))
    assert not response.success and "1073741824 bytes, above the limit of 1048576 bytes" in response.message
    binary = tmp_path / "binary.txt"
    binary.write_bytes((BUNDLED_DIR / BUNDLED["efficientnet_lite0"].file).read_bytes()[:4096])
    response = remote.load("ssd_mobilenet_v2_coco", str(binary))
    assert not response.success and "text" in response.message
    assert _rss_mb(proc) < rss_before + 100  # nothing was read into memory
    good = tmp_path / "mine.txt"
    good.write_text("\n".join(f"{i} thing{i}" for i in range(0, 180, 2)))
    response = remote.load("ssd_mobilenet_v2_coco", str(good))
    assert response.success, response.message
    assert conversions.metadata_from_msg(response.metadata).label_names[88] == "thing88"


def test_bit_flipped_bundled_copy_in_a_checksummed_repository_is_refused(start_node, spinner, tmp_path):
    repo = tmp_path / "repo"
    (repo / "det").mkdir(parents=True)
    name = BUNDLED["ssd_mobilenet_v2_coco"].file
    data = bytearray((BUNDLED_DIR / name).read_bytes())
    sums = (BUNDLED_DIR / "SHA256SUMS").read_text().replace(f"  {name}", f"  det/{name}")
    (repo / "SHA256SUMS").write_text(sums)
    (repo / "det" / name).write_bytes(bytes(data))
    proc = start_node("model_service", {"model_path": "det", "model_repository": str(repo)}, namespace="/sum")
    remote = connect(spinner, "/sum/ml_model_service", proc)
    data[len(data) // 2] ^= 0x10
    (repo / "det" / name).write_bytes(bytes(data))  # a new mtime and content: rehashed, not cached
    response = remote.load("det")
    assert not response.success and "failed its integrity check" in response.message
    assert "SHA256SUMS" in response.message
    assert "SHA256 verified" in proc.log()  # the intact copy was verified at start-up
    assert proc.alive()


def test_absurd_shapes_and_request_bytes_are_bad_requests(start_node, spinner):
    proc = start_node(
        "model_service", {"model_path": "ssd_mobilenet_v2_coco", "max_request_bytes": 500000}, namespace="/cap"
    )
    remote = connect(spinner, "/cap/ml_model_service", proc)
    name = "normalized_input_image_tensor"
    cases = {
        "overflow": ([_tensor(name, "uint8", [1, 0, 2**62, 2**62], b"")], "above the limit"),
        "product": ([_tensor(name, "uint8", [1, 3000, 3000, 3], b"")], "limit of 500000 bytes"),
        "zero": ([_tensor(name, "uint8", [1, 0, 300, 3], b"")], "zero dimension"),
        "huge dim": ([_tensor(name, "float32", [1, 2**40, 1, 1], b"")], "limit"),
        "too many bytes": (
            [
                _tensor(name, "uint8", [1, 300, 300, 3], bytes(270000)),
                _tensor("extra", "uint8", [300000], bytes(300000)),
            ],
            "max_request_bytes",
        ),
    }
    client = infer_client(spinner, remote)
    for label, (inputs, expected) in cases.items():
        response = call(client, Infer.Request(inputs=inputs), 10.0)
        assert not response.success and response.message.startswith("bad request"), (label, response.message)
        assert expected in response.message, (label, response.message)
    ok = call(client, Infer.Request(inputs=[_tensor(name, "uint8", [1, 300, 300, 3], bytes(270000))]), 10.0)
    assert ok.success, ok.message
    assert "Traceback" not in proc.log() and "inference failed" not in proc.log()
    assert proc.alive()


def _slow_model(path, matmuls: int = 40, rows: int = 256):
    """A float32 [rows, 1024] → [rows, 1024] model that takes a while (a chain of identity MatMuls)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes, prev = [], "x"
    for i in range(matmuls):
        nodes.append(helper.make_node("MatMul", [prev, "w"], [f"h{i}"]))
        prev = f"h{i}"
    nodes.append(helper.make_node("Identity", [prev], ["y"]))
    graph = helper.make_graph(
        nodes,
        "slow",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [rows, 1024])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [rows, 1024])],
        [numpy_helper.from_array(np.eye(1024, dtype=np.float32), "w")],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    return path


def test_concurrent_infer_calls_above_the_cap_are_answered_busy(start_node, spinner, tmp_path):
    model = _slow_model(tmp_path / "slow.onnx")
    proc = start_node(
        "model_service",
        {"model_path": str(model), "allowed_paths": [str(tmp_path)], "max_concurrent_infer": 1, "num_threads": 1},
        namespace="/busy",
    )
    remote = connect(spinner, "/busy/ml_model_service", proc)
    client = infer_client(spinner, remote)
    x = np.arange(256 * 1024, dtype=np.float32).reshape(256, 1024)
    request = Infer.Request(inputs=[conversions.tensor_to_msg("x", x)])
    answers = at_once(lambda _: call(client, request, 60.0), 6)
    assert not [a for a in answers if isinstance(a, BaseException)], answers
    busy = [a for a in answers if not a.success]
    done = [a for a in answers if a.success]
    assert busy and done, [a.message for a in answers]
    assert all("busy" in a.message and "max_concurrent_infer = 1" in a.message for a in busy)
    assert np.array_equal(conversions.tensor_from_msg(done[0].outputs[0]), x)
    assert remote.fetch_metadata().name == "slow"  # metadata answered alongside
    assert proc.alive()


def test_concurrent_infer_calls_are_batched_dynamically(start_node, spinner, tmp_path):
    """max_batch: Infer calls of several clients that wait together run as one inference call (over DDS, a
    model with an open batch axis); each caller gets its own rows; /diagnostics counts the calls."""
    from diagnostic_msgs.msg import DiagnosticArray

    from ml_model_service_dev.harness.batch_models import scaled_model

    from conftest import Collector

    model = scaled_model(tmp_path / "scaled.onnx", matmuls=120)
    params = {"model_path": str(model), "allowed_paths": [str(tmp_path)], "num_threads": 1}
    proc = start_node(
        "model_service", {**params, "max_batch": 4, "batch_wait": 0.3, "max_concurrent_infer": 8}, namespace="/batch"
    )
    remote = connect(spinner, "/batch/ml_model_service", proc)
    client = infer_client(spinner, remote)
    diagnostics = Collector(spinner.node, DiagnosticArray, "/diagnostics")
    requests = [
        Infer.Request(inputs=[conversions.tensor_to_msg("x", np.full((1, 512), float(i), np.float32))])
        for i in range(8)
    ]
    answers = at_once(lambda i: call(client, requests[i], 60.0), 8)
    for i, answer in enumerate(answers):
        assert not isinstance(answer, BaseException), answer
        assert answer.success, answer.message
        assert np.all(conversions.tensor_from_msg(answer.outputs[0]) == 2.0 * i), i

    def counters():
        for m in list(diagnostics.messages):
            for status in m.status:
                values = {v.key: v.value for v in status.values}
                if status.name == "/batch/ml_model_service" and values.get("batched_requests") == "8":
                    return values
        return None

    values = wait_for(counters, 10, what="the batching counters on /diagnostics")
    assert int(values["batched_calls"]) < 8 and 2 <= int(values["largest_batch"]) <= 4, values
    assert proc.alive()


def test_generation_labels_and_model_path_follow_load_model(start_node, spinner):
    proc = start_node(
        "model_service", {"model_path": "ssd_mobilenet_v2_coco", "execution_providers": ["cpu"]}, namespace="/gen"
    )
    node = "/gen/ml_model_service"
    remote = connect(spinner, node, proc)
    first = remote.generation
    assert remote.labels is not None and remote.labels.name(87) == "teddy bear"  # from the metadata, no file
    rgb_input = image_input(remote, photo("chelsea"))
    remote.infer(rgb_input)  # same generation: fine

    response = remote.load("efficientnet_lite0")
    assert response.success, response.message
    assert response.metadata.generation == first + 1
    with pytest.raises(ModelChanged, match="model changed"):
        remote.infer(rgb_input)
    assert remote.fetch_metadata().generation == first + 1 and len(remote.labels) == 1000
    assert _get_params(spinner, node, "model_path", "label_path") == ["efficientnet_lite0", ""]
    assert proc.log().count("serving ") == 2  # the parameter update did not load the model again
    assert proc.log().count(": auto: ") == 2  # each load says which runtime backend auto runs it on, and why
    # an unrelated model parameter change reloads what model_path now says, not the old model
    assert _set_params(spinner, node, num_threads=1)[0].successful
    meta = remote.fetch_metadata()
    assert meta.outputs[0].name == "Softmax" and meta.generation == first + 2
    result = remote.infer(image_input(remote, photo("chelsea")))
    assert "cat" in IMAGENET.name(int(result["Softmax"][0].argmax())).lower()

    proc.stop()  # a restarted service never repeats a generation
    again = start_node("model_service", {"model_path": "ssd_mobilenet_v2_coco"}, namespace="/gen")
    wait_for(
        lambda: _try_generation(spinner, node, again) not in (None, first, first + 1, first + 2),
        30,
        interval=0.3,
        what="the restarted service",
    )


def _try_generation(spinner, node, proc):
    assert proc.alive(), proc.log()
    try:
        return RemoteModel(spinner.node, node, timeout=2.0).generation
    except Exception:
        return None


def test_swaps_can_be_switched_off(start_node, spinner):
    proc = start_node(
        "model_service", {"model_path": "ssd_mobilenet_v2_coco", "allow_model_swap": False}, namespace="/noswap"
    )
    node = "/noswap/ml_model_service"
    remote = connect(spinner, node, proc)
    response = remote.load("efficientnet_lite0")
    assert not response.success and "allow_model_swap is false" in response.message
    result = _set_params(spinner, node, model_path="efficientnet_lite0")[0]
    assert not result.successful and "allow_model_swap is false" in result.reason
    assert _set_params(spinner, node, allow_model_swap=True)[0].successful is False  # read-only
    assert remote.fetch_metadata().inputs[0].name == "normalized_input_image_tensor"
