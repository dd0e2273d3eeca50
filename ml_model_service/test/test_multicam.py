"""One vision node serving several cameras (`cameras`), in its own process over DDS: per-camera topics,
pairing with depth, tracking ids, 3D objects, status entries, `camera_name` on the calls, and batching with a
dynamic-batch model."""

from __future__ import annotations

from pathlib import Path

import pytest
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.qos import QoSProfile
from test_vision_parameters import assert_start_refused
from vision_msgs.msg import Detection2DArray, Detection3DArray

from ml_model_service.ros.remote_model import call
from ml_model_service_dev.harness.batch_models import end2end_model
from ml_model_service_dev.harness.camera import Camera
from ml_model_service_dev.harness.messages import camera_info_msg, depth_msg, image_msg
from ml_model_service_dev.harness.photos import photo
from ml_model_service_dev.harness.scenes import motorcycle_rgbd
from ml_model_service_dev.harness.waits import wait_for
from ml_model_service_interfaces.srv import (
    CaptureAll,
    GetClassifications,
    GetDetections,
    GetObjectPointClouds,
    GetProperties,
)

from conftest import Collector

NS = "/robot"
NODE = f"{NS}/vision_service"


def names(msg: Detection2DArray) -> list[str]:
    return [d.results[0].hypothesis.class_id for d in msg.detections]


def ready(spinner, proc, node: str = NODE) -> GetProperties.Response:
    client = spinner.node.create_client(GetProperties, f"{node}/get_properties")

    def up():
        assert proc.alive(), proc.log()
        r = call(client, GetProperties.Request(), 5.0) if client.wait_for_service(0.5) else None
        return r if r and r.detections_supported else None

    return wait_for(up, 40.0, interval=0.3, what="vision node ready")


@pytest.fixture
def cameras(spinner):
    cams = {name: Camera(spinner.node, f"{NS}/{name}", rate=5.0) for name in ("front", "back", "side")}
    yield cams
    for cam in cams.values():
        cam.close()


def test_one_node_serves_each_camera_with_its_own_outputs_pairing_tracking_and_3d(start_node, spinner, cameras):
    rgb, depth, k = motorcycle_rgbd()
    cameras["front"].show(
        image_msg(rgb, "front_optical"), depth_msg(depth, "32FC1", "front_optical"), camera_info_msg(k)
    )
    cameras["back"].show(image_msg(photo("chelsea"), "back_optical"))
    cameras["side"].show(image_msg(photo("coffee"), "side_optical"))
    proc = start_node(
        "vision_service",
        {
            "execution_providers": ["cpu"],
            "cameras": ["front", "back", "side"],
            "front.use_depth": True,
            "tracking": True,
            "side.tracking": False,
        },
        namespace=NS,
    )
    props = ready(spinner, proc)
    assert list(props.cameras) == ["front", "back", "side"]
    assert list(props.camera_topics) == [f"{NS}/front/image", f"{NS}/back/image", f"{NS}/side/image"]
    assert list(props.cameras_with_depth) == ["front"] and props.object_point_clouds_supported

    qos = QoSProfile(depth=50)
    det = {n: Collector(spinner.node, Detection2DArray, f"{NS}/{n}/detections", qos) for n in cameras}
    objects = {n: Collector(spinner.node, Detection3DArray, f"{NS}/{n}/objects", qos) for n in ("front", "back")}
    diagnostics = Collector(spinner.node, DiagnosticArray, "/diagnostics", qos)
    for n, expected in (("front", "motorcycle"), ("back", "cat"), ("side", "cup")):
        wait_for(lambda n=n, e=expected: len(det[n].where(lambda m: e in names(m))) >= 4, 40, what=f"{n}: {expected}")
    # Each camera's results carry its own frames: its frame id, its classes only.
    assert all(m.header.frame_id == "back_optical" and "motorcycle" not in names(m) for m in det["back"].where(bool))
    # Tracking: one id per object across frames; the side camera turned it off for itself.
    front_ids = {d.id for m in det["front"].where(lambda m: "motorcycle" in names(m)) for d in m.detections if d.id}
    assert front_ids and all(d.id for m in det["back"].where(lambda m: m.detections)[-3:] for d in m.detections)
    cat_ids = {d.id for m in det["back"].where(bool)[-3:] for d in m.detections if names_of(d) == "cat"}
    assert len(cat_ids) == 1
    assert all(not d.id for m in det["side"].where(bool) for d in m.detections)
    # 3D: the front camera paired colour with depth; the back one has no depth, so no objects topic traffic.
    wait_for(lambda: objects["front"].where(lambda m: m.detections), 30, what="front 3D objects")
    moto = objects["front"].where(lambda m: m.detections)[-1]
    assert moto.header.frame_id == "front_optical" and moto.detections[0].id
    assert objects["back"].where(bool) == []
    # A /diagnostics entry per camera, beside the node's own.
    entries = wait_for(lambda: {s.name for a in diagnostics.where(bool) for s in a.status} or None, 10, what="status")
    assert {NODE, f"{NODE}/front", f"{NODE}/back", f"{NODE}/side"} <= entries

    def front_counters():  # the 1 Hz status lags the results: wait for an entry that has seen them
        for a in reversed(diagnostics.where(bool)):
            for entry in a.status:
                v = {kv.key: kv.value for kv in entry.values}
                if entry.name == f"{NODE}/front" and int(v["processed"]) > 0 and int(v["depth_received"]) > 0:
                    return v
        return None

    assert wait_for(front_counters, 10, what="front's counters")["camera"] == "front"

    # The calls take camera_name ("" = the first camera); an unknown name is answered with the names.
    detect = spinner.node.create_client(GetDetections, f"{NODE}/get_detections")
    for cam, expected in (("back", "cat"), ("side", "cup"), ("", "motorcycle"), ("front", "motorcycle")):
        r = call(detect, GetDetections.Request(camera_name=cam), 20.0)
        assert r.success and expected in names(r.detections), (cam, r.message)
    r = call(detect, GetDetections.Request(camera_name="roof"), 20.0)
    assert not r.success and r.message == "unknown camera 'roof'; this node's cameras: front, back, side"
    clouds = spinner.node.create_client(GetObjectPointClouds, f"{NODE}/get_object_point_clouds")
    r = call(clouds, GetObjectPointClouds.Request(camera_name="front"), 20.0)
    assert r.success and r.objects.detections and r.objects.header.frame_id == "front_optical", r.message
    r = call(clouds, GetObjectPointClouds.Request(camera_name="back"), 20.0)
    assert not r.success and "use_depth" in r.message
    capture = spinner.node.create_client(CaptureAll, f"{NODE}/capture_all")
    r = call(capture, CaptureAll.Request(camera_name="side", return_image=True, return_detections=True), 20.0)
    assert r.success and r.image.header.frame_id == "side_optical" and "cup" in names(r.detections)
    classify = spinner.node.create_client(GetClassifications, f"{NODE}/get_classifications")
    r = call(classify, GetClassifications.Request(camera_name="roof"), 20.0)
    assert not r.success and "unknown camera 'roof'" in r.message
    assert proc.alive()


def names_of(d) -> str:
    return d.results[0].hypothesis.class_id


def test_a_single_camera_node_refuses_a_camera_name(start_node, spinner):
    proc = start_node("vision_service", {"execution_providers": ["cpu"]}, namespace="/solo")
    props = ready(spinner, proc, "/solo/vision_service")
    assert list(props.cameras) == [] and list(props.camera_topics) == ["/solo/image"]
    detect = spinner.node.create_client(GetDetections, "/solo/vision_service/get_detections")
    r = call(detect, GetDetections.Request(camera_name="front"), 20.0)
    assert not r.success and "this node serves one camera (/solo/image); leave camera_name empty" in r.message
    assert proc.alive()


def test_frames_of_several_cameras_share_inference_calls_with_a_batching_model(tmp_path, start_node, spinner, cameras):
    """A model with a dynamic batch axis: the three cameras' frames go through fewer calls than frames."""
    model = end2end_model(Path(tmp_path) / "e2e.onnx", "N")
    for cam in cameras.values():
        cam.show(image_msg(photo("chelsea")))
    proc = start_node(
        "vision_service",
        {
            "execution_providers": ["cpu"],
            "cameras": ["front", "back", "side"],
            "model_path": str(model),
            "allowed_paths": [str(tmp_path)],
            "model_type": "end2end",
            "box_format": "xyxy",
            "box_units": "pixels",
            "confidence_threshold": 0.1,
            "batch_wait": 0.1,
            "always_on": True,
        },
        namespace=NS,
    )
    ready(spinner, proc)
    diagnostics = Collector(spinner.node, DiagnosticArray, "/diagnostics", QoSProfile(depth=50))

    def served():
        for a in reversed(diagnostics.where(bool)):
            for s in a.status:
                if s.name == NODE:
                    v = {kv.key: kv.value for kv in s.values}
                    if int(v.get("frames_served", 0)) >= 30:
                        return v
        return None

    v = wait_for(served, 40, what="30 frames served")
    # a batch per core (two here), one call per core at once: about 0.5-0.67 calls per frame
    assert int(v["inference_calls"]) <= 0.8 * int(v["frames_served"]), v
    assert proc.alive()


def test_bad_camera_values_end_with_one_clear_line():
    for args, words in (
        (["-p", "cameras:=[a, a]"], "cameras: a named more than once"),
        (["-p", "cameras:=[a, b]", "-p", "b.image_qos:=bogus"], "b.image_qos: 'bogus' is not one of"),
        (["-p", "cameras:=[a]", "-p", "a.min_depth:=50.0"], "camera a: parameter min_depth 50.0 must be below"),
    ):
        assert_start_refused(args, words)


def test_a_camera_override_is_set_at_run_time_with_the_same_checks(start_node, spinner):
    from rcl_interfaces.srv import SetParameters
    from rclpy.parameter import Parameter

    proc = start_node("vision_service", {"execution_providers": ["cpu"], "cameras": ["a", "b"]}, namespace="/runtime")
    ready(spinner, proc, "/runtime/vision_service")
    client = spinner.node.create_client(SetParameters, "/runtime/vision_service/set_parameters")

    def set_(name, value):
        req = SetParameters.Request(parameters=[Parameter(name, value=value).to_parameter_msg()])
        return call(client, req, 10.0).results[0]

    assert set_("b.depth_unit_scale", 0.001).successful
    r = set_("b.depth_unit_scale", -1.0)
    assert not r.successful and "out of range" in r.reason  # the descriptor range of the table entry
    r = set_("a.min_depth", 50.0)
    assert not r.successful and "camera a: min_depth 50.0 must be below max_depth" in r.reason
    assert not set_("a.use_depth", True).successful  # read-only, as the node-wide use_depth
    assert proc.alive()


def test_a_camera_whose_frames_fail_is_reported_and_the_others_go_on(start_node, spinner, cameras):
    """One camera sends frames that cannot be read: its own /diagnostics entry says ERROR with the cause, the
    node's status names it, and the other cameras are still answered."""
    bad = image_msg(photo("coffee"), "side_optical")
    bad.data = bytes(bad.data[: len(bad.data) // 2])  # truncated
    cameras["front"].show(image_msg(photo("chelsea"), "front_optical"))
    cameras["back"].show(image_msg(photo("coffee"), "back_optical"))
    cameras["side"].show(bad)
    proc = start_node(
        "vision_service",
        {"execution_providers": ["cpu"], "cameras": ["front", "back", "side"], "always_on": True},
        namespace=NS,
    )
    ready(spinner, proc)
    qos = QoSProfile(depth=50)
    diagnostics = Collector(spinner.node, DiagnosticArray, "/diagnostics", qos)
    det = {n: Collector(spinner.node, Detection2DArray, f"{NS}/{n}/detections", qos) for n in ("front", "back")}

    def verdict():
        for a in reversed(diagnostics.where(bool)):
            entries = {s.name: s for s in a.status}
            side, node = entries.get(f"{NODE}/side"), entries.get(NODE)
            if side is not None and side.level == DiagnosticStatus.ERROR and node is not None:
                return side, node, entries
        return None

    side, node, entries = wait_for(verdict, 20, what="the side camera's ERROR")
    assert "shorter than" in side.message and "side: no frame processed" in node.message, (side, node)
    assert node.level == DiagnosticStatus.ERROR
    assert entries[f"{NODE}/front"].level == DiagnosticStatus.OK, entries[f"{NODE}/front"].message
    n = {c: len(det[c].messages) for c in det}
    wait_for(lambda: all(len(det[c].messages) > n[c] + 2 for c in det), 20, what="front and back still answered")
    assert proc.alive()
