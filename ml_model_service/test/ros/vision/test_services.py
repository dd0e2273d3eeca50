"""ros/vision/services.py in this process over real DDS: the vision node's calls on the bundled detector, with
the typed settings — on the request's image or a camera's latest frame (asking for the camera's frames while
waiting), answered by their own threads; every failure an answer with the reason (unknown camera, no frame,
what the model cannot do, no depth, an inactive node)."""

from __future__ import annotations

import pytest
from rclpy.node import Node

from ml_model_service.core.frames.pairing import Pairer
from ml_model_service.core.settings.typed import VisionSettings
from ml_model_service.ros.remote_model import call
from ml_model_service.ros.status import Status
from ml_model_service.ros.vision.model_source import ModelSource
from ml_model_service.ros.vision.services import ServiceCamera, VisionServices
from ml_model_service_dev.harness.messages import image_msg
from ml_model_service_dev.harness.photos import photo
from ml_model_service_interfaces.srv import (
    CaptureAll,
    GetClassifications,
    GetDetections,
    GetObjectPointClouds,
    GetProperties,
)

NS = "/services_test"
SETTINGS = VisionSettings.of({"model_path": "ssd_mobilenet_v2_coco", "backend": "onnx", "service_timeout": 0.2})


@pytest.fixture
def served(spinner):
    """Factory: VisionServices on a node of this process for cameras `names` (each a Pairer the test feeds); the
    node's name, its cameras, its status, the calls' demand log and its `active` flag."""
    made: list = []

    def _make(name: str, names: list[str]):
        node = Node(name, namespace=NS, context=spinner.node.context)
        source = ModelSource(node, SETTINGS, lambda _v: None)
        demanded: list[str] = []
        cameras = {
            n: ServiceCamera(
                Pairer(0.05, capacity=1),
                lambda: None,
                f"{NS}/{n + '/' if n else ''}image",
                lambda n=n: demanded.append(n),
                lambda: SETTINGS,
            )
            for n in names
        }
        status = Status(node, "hw", ["service_calls"], list, publish=False)
        active = [True]
        services = VisionServices(node, source, cameras, status, lambda: SETTINGS, lambda: active[0])
        made.append((node, source, services))
        return cameras, status, demanded, active

    yield _make
    for node, source, services in made:
        services.stop()
        source.close()
        node.destroy_node()


def _call(spinner, node: str, srv, name: str, **fields):
    client = spinner.node.create_client(srv, f"{NS}/{node}/{name}")
    try:
        return call(client, srv.Request(**fields), 10.0)
    finally:
        spinner.node.destroy_client(client)


def test_one_cameras_calls_on_the_requests_image_or_its_latest_frame(spinner, served):
    cameras, status, demanded, active = served("one", [""])
    cat = image_msg(photo("chelsea"), "given")
    got = _call(spinner, "one", GetDetections, "get_detections", image=cat)
    assert got.success and got.detections.header.frame_id == "given"
    assert "cat" in {d.results[0].hypothesis.class_id for d in got.detections.detections}
    # no image in the request: the camera's latest frame, which is asked for (demand) and waited for
    empty = _call(spinner, "one", GetDetections, "get_detections")
    assert not empty.success and empty.message == f"no camera frame received on {NS}/image within 0.2 s"
    assert demanded == [""]
    cameras[""].pairer.add_colour(5.0, image_msg(photo("chelsea"), "latest"))
    latest = _call(spinner, "one", GetDetections, "get_detections")
    assert latest.success and latest.detections.header.frame_id == "latest" and latest.detections.detections
    wrong = _call(spinner, "one", GetDetections, "get_detections", image=cat, camera_name="left")
    assert not wrong.success
    assert wrong.message == f"unknown camera 'left': this node serves one camera ({NS}/image); leave camera_name empty"
    classes = _call(spinner, "one", GetClassifications, "get_classifications", image=cat, n=3)
    assert (classes.success, classes.message) == (False, "the model is a detector: classifications are not supported")
    clouds = _call(spinner, "one", GetObjectPointClouds, "get_object_point_clouds")
    assert not clouds.success and clouds.message == "object point clouds need use_depth: true (depth and camera_info)"
    properties = _call(spinner, "one", GetProperties, "get_properties")
    assert properties.detections_supported and not properties.classifications_supported
    assert not properties.object_point_clouds_supported and properties.camera_topic == f"{NS}/image"
    assert list(properties.cameras) == [] and list(properties.camera_topics) == [f"{NS}/image"]
    active[0] = False
    inactive = _call(spinner, "one", GetDetections, "get_detections", image=cat)
    assert not inactive.success and inactive.message == "the node is not active (lifecycle): activate it first"
    assert status.counters["service_calls"] == 7  # every call but get_properties


def test_named_cameras_are_called_by_name(spinner, served):
    cameras, _status, demanded, _active = served("two", ["a", "b"])
    cameras["b"].pairer.add_colour(1.0, image_msg(photo("chelsea"), "b_optical"))
    got = _call(spinner, "two", CaptureAll, "capture_all", camera_name="b", return_image=True, return_detections=True)
    assert got.success, got.message
    assert got.image.header.frame_id == "b_optical" and got.detections.header.frame_id == "b_optical"
    assert (got.image.width, got.image.height) == (photo("chelsea").shape[1], photo("chelsea").shape[0])
    first = _call(spinner, "two", GetDetections, "get_detections")  # "" = the first camera: a, with no frame
    assert not first.success and first.message == f"no camera frame received on {NS}/a/image within 0.2 s"
    assert demanded == ["b", "a"]
    unknown = _call(spinner, "two", CaptureAll, "capture_all", camera_name="c", return_image=True)
    assert not unknown.success and unknown.message == "unknown camera 'c'; this node's cameras: a, b"
    properties = _call(spinner, "two", GetProperties, "get_properties")
    assert list(properties.cameras) == ["a", "b"] and list(properties.camera_topics) == [
        f"{NS}/a/image",
        f"{NS}/b/image",
    ]
    masks = _call(spinner, "two", CaptureAll, "capture_all", camera_name="b", return_instance_masks=True)
    assert not masks.success and masks.message.startswith("instance masks need a segmentation model")
