"""Models on an Open Inference Protocol ("KServe V2") server, against a real one: KServe's ModelServer
serving the bundled ONNX models over gRPC and REST in its own process (test/kserve_server.py), reached
with tritonclient. Core model, CLI, and the vision node over DDS, on scikit-image photographs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticStatus
from kserve_server import KServeServer, kserve_available
from rclpy.qos import QoSProfile
from test_vision_service import as_tuples, assert_matches_reference, iou, reference_detections, start_vision, wait_ready
from vision_msgs.msg import Detection2DArray

from ml_model_service.core.loading.bundled import BUNDLED, BUNDLED_DIR
from ml_model_service.core.loading.model import Model
from ml_model_service.core.loading.trust import ModelPolicy, TrustError
from ml_model_service.core.reading.vision import VisionModel
from ml_model_service.core.runtimes.backend import ModelLoadError
from ml_model_service.core.runtimes.oip_backend import InferenceServerError, parse_server_ref
from ml_model_service.core.settings.configs import vision_config
from ml_model_service.core.settings.typed import VisionSettings
from ml_model_service.ros.remote_model import call
from ml_model_service_dev.harness.camera import Camera
from ml_model_service_dev.harness.messages import image_msg
from ml_model_service_dev.harness.photos import photo
from ml_model_service_dev.harness.waits import wait_for
from ml_model_service_interfaces.srv import GetDetections

from conftest import Collector

pytestmark = pytest.mark.skipif(not kserve_available(), reason="KServe environment missing: run scripts/bootstrap.sh")

SSD = BUNDLED_DIR / BUNDLED["ssd_mobilenet_v2_coco"].file
CLASSIFIER = BUNDLED_DIR / BUNDLED["efficientnet_lite0"].file
COCO = str(BUNDLED_DIR / "coco_labels.txt")
PHOTOS = ("astronaut", "chelsea", "coffee", "motorcycle")


@pytest.fixture(scope="module")
def server():
    with KServeServer({"ssd": SSD, "classifier": CLASSIFIER, "ssd_spare": SSD}, not_ready=("sleepy",)) as srv:
        yield srv


def _defaults() -> dict:
    from ml_model_service.core.settings.tables import VISION_PARAMS, defaults

    return defaults(VISION_PARAMS)


@pytest.mark.parametrize("scheme", ["grpc", "http"])
def test_server_model_matches_local_file(server, scheme):
    local = Model("ssd_mobilenet_v2_coco", providers=["cpu"])
    remote = Model(server.url(scheme, "ssd"), COCO)
    assert remote.metadata.type == "oip" and remote.metadata.name == "ssd"
    assert [(t.name, t.data_type, t.shape) for t in remote.metadata.inputs + remote.metadata.outputs] == [
        (t.name, t.data_type, t.shape) for t in local.metadata.inputs + local.metadata.outputs
    ]
    assert remote.metadata.outputs[0].extra["server"] == server.url(scheme, "ssd")
    assert remote.ready()
    config = vision_config(VisionSettings.of(_defaults()))
    near, far = VisionModel(local, local.labels, config), VisionModel(remote, remote.labels, config)
    assert far.role == near.role == "detector"
    for name in PHOTOS:
        rgb = photo(name)
        a, b = near.detect(rgb), far.detect(rgb)
        assert [d.class_name for d in a] == [d.class_name for d in b] and a, name
        for x, y in zip(a, b):
            assert abs(x.confidence - y.confidence) <= 1e-5 and iou(np.array(x.box), np.array(y.box)) > 0.999
    with pytest.raises(Exception, match="normalized_input_image_tensor"):  # validated before the server
        remote.infer({"normalized_input_image_tensor": np.zeros((1, 10, 10, 3), np.uint8)})


def test_classifier_on_server(server):
    local = Model("efficientnet_lite0", backend="onnx", providers=["cpu"])  # the server runs onnxruntime
    remote = Model(server.url("grpc", "classifier"), str(BUNDLED_DIR / "imagenet_labels.txt"))
    # the server's copy is not recognised as the bundled classifier: its centre crop is asked for by name
    config = vision_config(
        VisionSettings.of({**_defaults(), "resize_mode": "center_crop", "confidence_threshold": 0.1})
    )
    a = VisionModel(local, local.labels, config).classify(photo("chelsea"), 3)
    b = VisionModel(remote, remote.labels, config).classify(photo("chelsea"), 3)
    assert [(c.class_name, c.confidence) for c in a] == [(c.class_name, c.confidence) for c in b]
    assert a[0].class_name == "Egyptian cat"


@pytest.mark.parametrize("scheme", ["grpc", "http"])
def test_missing_and_unready_models_and_a_dead_server(server, scheme):
    with pytest.raises(ModelLoadError, match="'nosuch'"):
        Model(server.url(scheme, "nosuch"))
    with pytest.raises(ModelLoadError, match="'sleepy'"):
        Model(server.url(scheme, "sleepy"))
    # nothing listens on this port: a clear refusal, quickly (the timeout bounds it in any case)
    dead = KServeServer({})
    with pytest.raises(ModelLoadError, match="cannot be reached"):
        Model(dead.url(scheme, "ssd"), server_timeout=2.0)
    with pytest.raises(ModelLoadError, match="grpc://HOST:PORT/MODEL"):
        Model(f"{scheme}://127.0.0.1/ssd")
    with pytest.raises(ModelLoadError, match="backend"):
        Model(server.url(scheme, "ssd"), backend="tflite")


def test_server_policy():
    ref = parse_server_ref("grpc://Robot-Hub.local:8001/ssd/3")
    assert (ref.host, ref.port, ref.model, ref.version) == ("robot-hub.local", 8001, "ssd", "3")
    closed = ModelPolicy.for_folders()
    with pytest.raises(TrustError, match="allowed_servers"):
        Model("grpc://127.0.0.1:9/ssd", policy=closed)
    # the start-up model_path's server and the listed ones are allowed; nothing else
    params = {"model_path": "grpc://10.0.0.5:8001/ssd", "allowed_servers": ["hub:8001", "http://10.0.0.6:8000"]}
    policy = ModelPolicy.at_start(params["model_path"], [], "", params["allowed_servers"])
    for address in ("10.0.0.5:8001", "hub:8001", "10.0.0.6:8000", "HUB:8001"):
        policy.check_server(address)
    for address in ("10.0.0.5:8000", "evil:8001"):
        with pytest.raises(TrustError):
            policy.check_server(address)
    ModelPolicy.unrestricted().check_server("anything:1")  # the operator's own command line


def test_server_down_and_back_under_load(server):
    model = Model(server.url("grpc", "ssd"), COCO)
    http = Model(server.url("http", "ssd"), COCO)
    x = {"normalized_input_image_tensor": np.zeros((1, 300, 300, 3), np.uint8)}
    server.stop(kill=True)
    try:
        for m in (model, http):
            assert not m.ready()
            with pytest.raises(InferenceServerError, match="127.0.0.1"):
                m.infer(x)
    finally:
        server.start()
    for m in (model, http):
        assert m.ready()
        assert len(m.infer(x)) == 4


def test_cli_on_server(server, tmp_path):
    import cv2

    image = tmp_path / "coffee.png"
    cv2.imwrite(str(image), cv2.cvtColor(photo("coffee"), cv2.COLOR_RGB2BGR))
    runs = {}
    for model in ("ssd_mobilenet_v2_coco", server.url("http", "ssd")):
        out = subprocess.run(
            [sys.executable, "-m", "ml_model_service", "detect", "--model", model, "--labels", COCO, str(image)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert out.returncode == 0, out.stderr
        runs[model] = json.loads(out.stdout.strip().splitlines()[-1])
    a, b = runs.values()
    assert [o["class_name"] for o in a["detections"]] == [o["class_name"] for o in b["detections"]]
    assert "cup" in [o["class_name"] for o in a["detections"]]
    meta = subprocess.run(
        [sys.executable, "-m", "ml_model_service", "metadata", server.url("grpc", "ssd")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert meta.returncode == 0 and "normalized_input_image_tensor" in meta.stdout, meta.stderr


def test_vision_nodes_share_a_server_and_survive_its_restart(server, start_node, spinner):
    """Two vision nodes (gRPC and HTTP) on one server publish the local file's detections; the server is
    killed under a stream and restarted; both resume by themselves."""
    nodes = {}
    for scheme in ("grpc", "http"):
        ns = f"/oip_{scheme}"
        nodes[scheme] = (
            ns,
            start_vision(start_node, {"model_path": server.url(scheme, "ssd"), "label_path": COCO}, namespace=ns),
        )
    cams, dets = {}, {}
    for scheme, (ns, proc) in nodes.items():
        wait_ready(spinner, proc, namespace=ns)
        cams[scheme] = Camera(spinner.node, ns)
        dets[scheme] = Collector(spinner.node, Detection2DArray, f"{ns}/detections")
    try:
        for name in ("motorcycle", "coffee"):
            rgb = photo(name)
            ref = reference_detections(rgb)
            for scheme, cam in cams.items():
                cam.show(image_msg(rgb, f"{scheme}_{name}"))
            for scheme in cams:
                msg = wait_for(
                    lambda s=scheme, n=name: dets[s].where(lambda m: m.header.frame_id == f"{s}_{n}"),
                    30,
                    what=f"{scheme} detections of {name}",
                )[-1]
                assert_matches_reference(as_tuples(msg), ref)
                for cls, score, box in ref:  # the acceptance bar: IoU >= 0.9, scores within 0.02
                    assert any(
                        g[0] == cls and iou(g[2], box) >= 0.9 and abs(g[1] - score) <= 0.02 for g in as_tuples(msg)
                    ), (cls, score, box, as_tuples(msg))
        # under the stream: kill the server; the nodes stay up and say why; restart; detections resume
        status = Collector(
            spinner.node, DiagnosticStatus, f"{nodes['grpc'][0]}/vision_service/status", QoSProfile(depth=10)
        )
        server.stop(kill=True)
        get = spinner.node.create_client(GetDetections, f"{nodes['grpc'][0]}/vision_service/get_detections")
        r = call(get, GetDetections.Request(image=image_msg(photo("motorcycle"), "m")), 15.0)
        assert r is not None and not r.success and "127.0.0.1" in r.message, r
        assert all(proc.alive() for _, proc in nodes.values())
        wait_for(lambda: status.messages, 10, what="a status message")
        server.start()
        for scheme in cams:
            count = len(dets[scheme].messages)
            wait_for(
                lambda s=scheme, c=count: len(dets[s].messages) > c + 1 and dets[s].messages[-1].detections,
                40,
                interval=0.3,
                what=f"{scheme} detections after the server restarted",
            )
        r = call(get, GetDetections.Request(image=image_msg(photo("motorcycle"), "m")), 15.0)
        assert r.success and "motorcycle" in [g[0] for g in as_tuples(r.detections)], r.message
    finally:
        for cam in cams.values():
            cam.close()


@pytest.mark.parametrize(
    "name,bundled", [("ssd", "ssd_mobilenet_v2_coco"), ("efficientnet_lite0", "efficientnet_lite0")]
)
def test_triton_repository_configs_describe_the_bundled_models(name, bundled):
    """deploy/triton: each config.pbtxt parses as Triton's ModelConfig, names the ONNX model's tensors with
    their types and shapes, and carries the labels the V2 backend reads (Triton itself is not run here)."""
    from google.protobuf import json_format, text_format
    from tritonclient.grpc import model_config_pb2

    from ml_model_service.core.loading.labels import embedded_labels, load_labels
    from ml_model_service.core.runtimes.oip_backend import V2_TYPES, server_parameters

    path = Path(__file__).resolve().parents[2] / "deploy" / "triton" / "model_repository" / name / "config.pbtxt"
    config = text_format.Parse(path.read_text(), model_config_pb2.ModelConfig())
    local = Model(bundled, backend="onnx", providers=["cpu"])
    assert config.name == name and config.platform == "onnxruntime_onnx" and config.max_batch_size == 0

    def triton(tensors) -> list:
        return [
            (t.name, V2_TYPES[model_config_pb2.DataType.Name(t.data_type)[len("TYPE_") :]], list(t.dims))
            for t in tensors
        ]

    assert triton(config.input) == [(t.name, t.data_type, t.shape) for t in local.metadata.inputs]
    assert triton(config.output) == [(t.name, t.data_type, t.shape) for t in local.metadata.outputs]
    # what get_model_config returns over gRPC (as JSON) and HTTP, read into the model's labels
    grpc_json = {"config": json_format.MessageToDict(config)}
    http_json = json_format.MessageToDict(config, preserving_proto_field_name=True)
    for answer in (grpc_json, http_json):
        labels = embedded_labels(name, server_parameters({}, answer))
        assert labels is not None and labels.names == load_labels(BUNDLED_DIR / BUNDLED[bundled].labels).names


def test_model_service_node_serves_a_server_model_and_swaps_only_to_allowed_servers(server, start_node, spinner):
    """The model service node in front of a V2 server: metadata and Infer over DDS; at run time it swaps
    to models on its start-up server but refuses any other server (the caller cannot pick one)."""
    from test_model_service import connect, image_input, ssd_classes

    proc = start_node(
        "model_service", {"model_path": server.url("grpc", "ssd"), "label_path": COCO}, namespace="/oipsvc"
    )
    remote = connect(spinner, "/oipsvc/ml_model_service", proc)
    assert remote.metadata.type == "oip" and remote.metadata.outputs[0].extra["server"] == server.url("grpc", "ssd")
    assert "motorcycle" in ssd_classes(remote.infer(image_input(remote, photo("motorcycle"))))
    elsewhere = remote.load(server.url("http", "ssd"))  # same host, another port: another server
    assert not elsewhere.success and "not allowed" in elsewhere.message and "allowed_servers" in elsewhere.message
    assert not remote.load("grpc://192.0.2.1:8001/ssd").success
    swapped = remote.load(server.url("grpc", "classifier"))
    assert swapped.success, swapped.message
    assert remote.fetch_metadata().outputs[0].shape == [1, 1000]
    assert proc.alive()


@pytest.mark.parametrize("scheme", ["grpc", "http"])
def test_a_server_that_never_answers_times_out(scheme):
    """A port that accepts connections but never answers: loading gives up after server_timeout instead
    of waiting forever (checked with a bounded join, not a timing assertion)."""
    import socket
    import threading

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)  # the kernel accepts; nobody reads or answers
    port = listener.getsockname()[1]
    outcome: list[BaseException] = []

    def load() -> None:
        try:
            Model(f"{scheme}://127.0.0.1:{port}/ssd", server_timeout=1.0)
        except BaseException as exc:  # noqa: BLE001 - recorded for the assertion below
            outcome.append(exc)

    worker = threading.Thread(target=load, daemon=True)
    worker.start()
    worker.join(30)
    listener.close()
    assert not worker.is_alive(), "loading from a silent server did not time out"
    assert outcome and isinstance(outcome[0], ModelLoadError) and f"127.0.0.1:{port}" in str(outcome[0]), outcome


def test_a_model_unloaded_on_the_server(server):
    """The operator unloads the model on the server (repository extension): inference says so, with the
    model's name, readiness turns false, and loading it again is refused as not ready."""
    import tritonclient.http as httpclient

    models = [Model(server.url(scheme, "ssd_spare"), COCO) for scheme in ("grpc", "http")]
    x = {"normalized_input_image_tensor": np.zeros((1, 300, 300, 3), np.uint8)}
    assert all(len(m.infer(x)) == 4 for m in models)
    admin = httpclient.InferenceServerClient(f"127.0.0.1:{server.http_port}")
    try:
        admin.unload_model("ssd_spare")
    finally:
        admin.close()
    for scheme, model in zip(("grpc", "http"), models):
        assert not model.ready()
        with pytest.raises(InferenceServerError, match="ssd_spare"):
            model.infer(x)
        with pytest.raises(ModelLoadError, match="ssd_spare"):
            Model(server.url(scheme, "ssd_spare"))


def test_a_vision_node_started_before_its_server_comes_up(start_node, spinner):
    """The server is down when the node starts: the node says so, stays up, and serves once it is up."""
    late = KServeServer({"ssd": SSD})
    ns = "/oip_late"
    proc = start_vision(start_node, {"model_path": late.url("grpc", "ssd"), "label_path": COCO}, namespace=ns)
    wait_for(lambda: "unavailable" in proc.log(), 30, what="the node saying the server is unavailable")
    cam = Camera(spinner.node, ns)
    dets = Collector(spinner.node, Detection2DArray, f"{ns}/detections")
    try:
        cam.show(image_msg(photo("motorcycle"), "late"))
        late.start()
        msg = wait_for(
            lambda: dets.where(lambda m: m.detections), 40, interval=0.3, what="detections once the server is up"
        )[-1]
        assert "motorcycle" in [g[0] for g in as_tuples(msg)]
        assert "recovered" in proc.log() and proc.alive()
    finally:
        cam.close()
        late.stop()
