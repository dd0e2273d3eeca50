"""What another participant on the graph, a dying camera or a bad model can do to the nodes — each node in its
own process over real DDS: bytes that do not deserialise, status that must tell the truth, bursts of calls,
calls that wait, a start-up model that cannot be read."""

from __future__ import annotations

import struct
import threading
import time

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticStatus
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rclpy.serialization import serialize_message
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from test_model_service import _get_params, _slow_model, connect
from test_vision_service import start_vision, wait_ready
from vision_msgs.msg import Detection2DArray

from ml_model_service.ros import conversions
from ml_model_service.ros.remote_model import call
from ml_model_service_dev.harness.messages import image_msg
from ml_model_service_dev.harness.photos import photo
from ml_model_service_dev.harness.together import at_once
from ml_model_service_dev.harness.waits import wait_for
from ml_model_service_interfaces.srv import GetDetections, GetMetadata, Infer, LoadModel

from conftest import Collector, constant_model

STATUS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)  # ~/status is volatile, published at 1 Hz
RELIABLE = QoSProfile(depth=2, reliability=ReliabilityPolicy.RELIABLE)


def malformed(msg, kind: str) -> bytes:
    """`msg` serialised, then broken as a hostile publisher would: the byte sequence's length runs past the end
    of the message, a string length says 2^31, or the message is cut short."""
    raw = bytearray(serialize_message(msg))
    n = len(msg.data)
    at = len(raw) - n - 4  # the data sequence's length field (it ends the message)
    assert struct.unpack_from("<I", raw, at)[0] == n
    if kind == "data_past_end":
        struct.pack_into("<I", raw, at, n + 1000)
    elif kind == "string_2_31":
        text = (msg.encoding if isinstance(msg, Image) else msg.format).encode() + b"\0"
        where = raw.index(struct.pack("<I", len(text)) + text)
        struct.pack_into("<I", raw, where, 2**31)
    elif kind == "truncated":
        raw = raw[: len(raw) // 3]
    return bytes(raw)


def status_of(collector: Collector):
    """The newest ~/status: (level, message, counters)."""
    s = collector.messages[-1]
    level = s.level[0] if isinstance(s.level, bytes) else int(s.level)
    return level, s.message, {v.key: v.value for v in s.values}


@pytest.mark.parametrize("compressed", [False, True], ids=["raw", "compressed"])
def test_malformed_colour_messages_between_good_frames_never_blind_the_node(start_node, spinner, compressed):
    proc = start_vision(start_node, {"always_on": True, "use_compressed": compressed}, namespace="/mal")
    wait_ready(spinner, proc, namespace="/mal")
    node = spinner.node
    topic = "/mal/image/compressed" if compressed else "/mal/image"
    pub = node.create_publisher(CompressedImage if compressed else Image, topic, RELIABLE)
    status = Collector(node, DiagnosticStatus, "/mal/vision_service/status", STATUS)
    dets = Collector(node, Detection2DArray, "/mal/detections")
    rgb = photo("coffee")
    if compressed:
        import cv2

        good = CompressedImage(format="jpeg", data=cv2.imencode(".jpg", rgb[:, :, ::-1])[1].tobytes())
    else:
        good = image_msg(rgb, "good")
    wait_for(lambda: node.count_subscribers(topic) > 0, 20, what="the node's image subscription")
    sent = 0
    for kind in ("data_past_end", "string_2_31", "truncated"):
        bad = malformed(good, kind)
        for i in range(12):  # good frames, one malformed message after every third
            good.header.frame_id = f"good-{kind}-{i}"
            good.header.stamp = node.get_clock().now().to_msg()
            pub.publish(good)
            sent += 1
            time.sleep(0.1)
            if i % 3 == 2:
                pub.publish(bad)
                time.sleep(0.1)
    wait_for(
        lambda: len({m.header.frame_id for m in dets.messages if m.header.frame_id.startswith("good-")}) >= 0.9 * sent,
        20,
        what="answers to the good frames",
    )
    answered = {m.header.frame_id for m in dets.messages if m.header.frame_id.startswith("good-")}
    assert len(answered) >= 0.9 * sent, (len(answered), sent)
    assert any(f.startswith("good-truncated") for f in answered)  # frames after every kind are answered
    wait_for(
        lambda: status.messages and int(status_of(status)[2]["malformed"]) >= 6, 10, what="malformed messages counted"
    )
    assert "unreadable" in status_of(status)[2]["last_error"]
    assert "unreadable" in proc.log() and proc.alive()


def test_status_tells_when_the_node_is_not_doing_its_job(start_node, spinner):
    """Each way of doing nothing gives WARN or ERROR within 5 s, with its cause: no publisher, every frame
    failing, a camera that stopped, a QoS that cannot match, pairing that stalled."""
    node = spinner.node
    proc = start_vision(start_node, {"always_on": True}, namespace="/st")
    wait_ready(spinner, proc, namespace="/st")
    status = Collector(node, DiagnosticStatus, "/st/vision_service/status", STATUS)

    def says(level: int, text: str, within: float = 5.0) -> None:
        def now():
            return status.messages and status_of(status)[0] >= level and text in status_of(status)[1]

        wait_for(now, within, what=f"status level >= {level} saying {text!r}")

    says(1, "no publisher on /st/image", within=8.0)  # nothing has ever published
    pub = node.create_publisher(Image, "/st/image", RELIABLE)
    good = image_msg(photo("coffee"), "good")
    unreadable = image_msg(photo("coffee"), "bad")
    unreadable.encoding = "hsv8"
    stop = threading.Event()
    frame = {"msg": unreadable}

    def camera():
        while not stop.is_set():
            msg = frame["msg"]
            msg.header.stamp = node.get_clock().now().to_msg()
            pub.publish(msg)
            time.sleep(0.1)

    thread = threading.Thread(target=camera, daemon=True)
    thread.start()
    try:
        says(2, "no frame processed")  # every frame fails
        assert "hsv8" in status_of(status)[1]
        frame["msg"] = good
        wait_for(lambda: status_of(status)[0] == 0 and status.messages, 8, what="OK with good frames")
    finally:
        stop.set()
        thread.join(2)
    says(1, "no frame on /st/image")  # the camera stopped
    node.destroy_publisher(pub)

    # a best-effort camera against image_qos: reliable: nothing can arrive
    proc2 = start_vision(start_node, {"always_on": True, "image_qos": "reliable"}, namespace="/qos")
    wait_ready(spinner, proc2, namespace="/qos")
    status = Collector(node, DiagnosticStatus, "/qos/vision_service/status", STATUS)
    best_effort = node.create_publisher(
        Image, "/qos/image", QoSProfile(depth=1, reliability=ReliabilityPolicy.BEST_EFFORT)
    )
    says(1, "cannot match")
    message = status_of(status)[1]
    assert "best_effort" in message and "requested reliable" in message, message
    node.destroy_publisher(best_effort)


def test_depth_stream_resumes_when_stamps_jump_back(start_node, spinner):
    """A bag that loops: colour, depth and camera_info stamps go back 3 s; 2D (and 3D) resume within 2 s."""
    node = spinner.node
    proc = start_vision(start_node, {"always_on": True, "use_depth": True, "image_qos": "reliable"}, namespace="/pr")
    wait_ready(spinner, proc, namespace="/pr")
    dets = Collector(node, Detection2DArray, "/pr/detections")
    pubs = [
        node.create_publisher(t, f"/pr/{n}", RELIABLE)
        for t, n in ((Image, "image"), (Image, "depth"), (CameraInfo, "camera_info"))
    ]
    colour = image_msg(photo("coffee"), "c")
    depth = Image(
        height=colour.height,
        width=colour.width,
        encoding="16UC1",
        step=colour.width * 2,
        data=np.full((colour.height, colour.width), 1000, np.uint16).tobytes(),
    )
    info = CameraInfo(width=colour.width, height=colour.height, k=[500.0, 0, 320, 0, 500, 240, 0, 0, 1])

    def publish(t: float) -> None:
        sec, nsec = int(t), int(round((t % 1) * 1e9))
        for pub, msg in zip(pubs, (colour, depth, info)):
            msg.header.stamp.sec, msg.header.stamp.nanosec = sec, nsec
            pub.publish(msg)

    for topic in ("image", "depth", "camera_info"):
        wait_for(lambda t=topic: node.count_subscribers(f"/pr/{t}") > 0, 20, what=f"subscription to {topic}")
    time.sleep(0.5)
    t0 = 1000.0
    for i in range(20):
        publish(t0 + i * 0.1)
        time.sleep(0.1)
    wait_for(lambda: dets.messages, 10, what="detections before the jump")
    jumped_at = time.monotonic()
    resumed = None
    for i in range(40):  # the bag starts again, 3 s earlier than where it was
        publish(t0 - 1.0 + i * 0.1)
        time.sleep(0.1)
        back = [m for m in dets.messages if m.header.stamp.sec < t0]
        if back:
            resumed = time.monotonic() - jumped_at
            break
    assert resumed is not None and resumed < 2.0, (resumed, proc.log()[-2000:])
    assert "stamps went back" in proc.log()


def test_stalled_pairing_is_a_warning(start_node, spinner):
    """Colour frames keep arriving but none can be used (obstacle mode: no depth ever comes)."""
    node = spinner.node
    proc = start_vision(start_node, {"always_on": True, "use_depth": True, "object_mode": "obstacles"}, namespace="/ob")
    wait_for(lambda: proc.alive() and node.count_subscribers("/ob/image") > 0, 30, what="the node's subscription")
    status = Collector(node, DiagnosticStatus, "/ob/vision_service/status", STATUS)
    pub = node.create_publisher(Image, "/ob/image", RELIABLE)
    colour = image_msg(photo("coffee"), "c")
    started = time.monotonic()
    seen = ""
    while time.monotonic() - started < 8.0 and not seen:
        colour.header.stamp = node.get_clock().now().to_msg()
        pub.publish(colour)
        time.sleep(0.1)
        if status.messages and status_of(status)[0] >= 1 and "none processed" in status_of(status)[1]:
            seen = status_of(status)[1]
    assert seen, status_of(status) if status.messages else "no status"
    assert time.monotonic() - started < 6.0


def test_forty_simultaneous_infer_calls_are_all_answered(start_node, spinner, tmp_path):
    model = _slow_model(tmp_path / "slow.onnx", matmuls=64, rows=16)
    proc = start_node(
        "model_service",
        {"model_path": str(model), "allowed_paths": [str(tmp_path)], "num_threads": 1},
        namespace="/burst",
    )
    remote = connect(spinner, "/burst/ml_model_service", proc)
    x = np.ones((16, 1024), np.float32)
    request = Infer.Request(inputs=[conversions.tensor_to_msg("x", x)])
    # A caller with many calls in flight needs a response queue as deep as they are: every client of a
    # service receives the answers to all of them (rclpy's default depth 10 loses some on a busy machine).
    deep = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
    clients = [spinner.node.create_client(Infer, remote._infer.service_name, qos_profile=deep) for _ in range(4)]
    for c in clients:
        assert c.wait_for_service(10.0)
    given = at_once(lambda i: call(clients[i % 4], request, 60.0), 40)
    lost = [str(a) for a in given if isinstance(a, BaseException)]  # a lost request times out
    answers = [a for a in given if not isinstance(a, BaseException)]
    assert not lost and len(answers) == 40, (len(answers), lost[:3])
    done = [a for a in answers if a.success]
    busy = [a for a in answers if not a.success]
    assert done and all("busy" in a.message for a in busy), [a.message for a in busy][:3]
    assert proc.alive()


def test_a_waiting_service_call_never_holds_up_parameters(start_node, spinner):
    node = spinner.node
    proc = start_vision(start_node, {"service_timeout": 25.0}, namespace="/wait")
    wait_ready(spinner, proc, namespace="/wait")
    client = node.create_client(GetDetections, "/wait/vision_service/get_detections")
    assert client.wait_for_service(10.0)
    answer: list = []
    waiting = threading.Thread(target=lambda: answer.append(call(client, GetDetections.Request(), 40.0)), daemon=True)
    started = time.monotonic()
    waiting.start()
    time.sleep(1.0)
    diagnostics = Collector(node, DiagnosticStatus, "/wait/vision_service/status", STATUS)
    for _ in range(3):  # parameter reads answer at once while the call waits for a camera frame
        t = time.monotonic()
        assert _get_params(spinner, "/wait/vision_service", "confidence_threshold") == [0.5]
        assert time.monotonic() - t < 2.0
        time.sleep(2.0)
    assert waiting.is_alive() and time.monotonic() - started < 20  # still waiting for its frame
    n = len(diagnostics.messages)
    wait_for(lambda: len(diagnostics.messages) > n, 3, what="status published while the call waits")
    waiting.join(40)
    assert answer and not answer[0].success and "no camera frame" in answer[0].message


def test_start_up_model_with_unreadable_metadata_leaves_the_service_up(start_node, spinner, tmp_path):
    import onnx

    path = constant_model(tmp_path / "bad_names.onnx", [1, 3, 32, 32], {"out": np.zeros((1, 10), np.float32)})
    model = onnx.load(path)
    for key, value in (("names", "{1e999: 'x'}"), ("task", "detect"), ("imgsz", "[32, 32]")):
        model.metadata_props.add(key=key, value=value)
    onnx.save(model, path)
    proc = start_node(
        "model_service", {"model_path": str(path), "allowed_paths": [str(tmp_path)]}, namespace="/badmeta"
    )
    node = spinner.node
    status = Collector(node, DiagnosticStatus, "/badmeta/ml_model_service/status", STATUS)
    meta = node.create_client(GetMetadata, "/badmeta/ml_model_service/get_metadata")
    wait_for(lambda: meta.wait_for_service(0.5) or not proc.alive(), 30, what="the model service")
    assert proc.alive(), proc.log()
    r = call(meta, GetMetadata.Request(), 10.0)
    assert not r.success and "no model loaded" in r.message
    wait_for(lambda: status.messages and status_of(status)[0] == 2, 5, what="status ERROR")
    assert "no model loaded:" in status_of(status)[1] and len(status_of(status)[1]) > len("no model loaded: ")
    load = node.create_client(LoadModel, "/badmeta/ml_model_service/load_model")
    r = call(load, LoadModel.Request(model_path="ssd_mobilenet_v2_coco"), 60.0)
    assert r.success, r.message
    assert "Traceback" not in proc.log()
