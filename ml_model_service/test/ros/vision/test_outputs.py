"""ros/vision/outputs.py in this process over real DDS: one frame's results from the bundled detector published
with the colour frame's header, 3D objects with their cloud and markers in the objects' frame, the debug image
only while someone subscribes, label_info latched for late subscribers, and a matched subscriber reported."""

from __future__ import annotations

import numpy as np
import pytest
from rclpy.node import Node
from sensor_msgs.msg import Image, PointCloud2
from std_msgs.msg import Header
from vision_msgs.msg import Detection2DArray, Detection3DArray, LabelInfo
from visualization_msgs.msg import MarkerArray

from ml_model_service.core.frames.pipeline import run
from ml_model_service.core.frames.pointcloud import Object3D
from ml_model_service.core.loading.model import Model
from ml_model_service.core.reading.vision import VisionModel
from ml_model_service.ros import conversions
from ml_model_service.ros.vision.outputs import LATCHED, RESULTS, Outputs, combined_cloud
from ml_model_service_dev.harness.photos import photo
from ml_model_service_dev.harness.waits import wait_for

from conftest import Collector

NS = "/outputs_test"


@pytest.fixture(scope="module")
def detector() -> VisionModel:
    model = Model("ssd_mobilenet_v2_coco", backend="onnx")
    return VisionModel(model, model.labels)


@pytest.fixture
def node(spinner):
    with spinner.spun(Node("outputs_under_test", namespace=NS, context=spinner.node.context)) as made:
        yield made


def _objects() -> list[Object3D]:
    pts = np.array([[0.0, 0.0, 1.0], [0.2, 0.1, 1.2]], np.float32)
    return [
        Object3D(0, 16, "cat", 0.9, pts, np.full((2, 3), 200, np.uint8), detection=0),
        Object3D(1, 0, "person", 0.6, np.vstack([pts, pts[:1]]) + 1, np.zeros((3, 3), np.uint8), detection=1),
    ]


def test_a_frames_results_the_debug_image_while_wanted_and_3d_in_the_objects_frame(spinner, node, detector):
    changes: list[int] = []
    out = Outputs(node, lambda: changes.append(1), prefix="a/")
    assert not out.listened()
    client = spinner.node
    dets = Collector(client, Detection2DArray, f"{NS}/a/detections", RESULTS)
    wait_for(lambda: out.listened() and changes, 5, what="the detections subscriber matched and reported")
    debug = Collector(client, Image, f"{NS}/a/debug_image", RESULTS)
    objects = Collector(client, Detection3DArray, f"{NS}/a/objects", RESULTS)
    points = Collector(client, PointCloud2, f"{NS}/a/object_points", RESULTS)
    markers = Collector(client, MarkerArray, f"{NS}/a/object_markers", RESULTS)
    wait_for(lambda: out.debug.get_subscription_count() and out.markers.get_subscription_count(), 5, what="matched")
    rgb = photo("chelsea")
    results = run(detector, rgb)
    results.objects, results.objects_frame = _objects(), "base_link"
    header = Header(frame_id="cam_optical")
    header.stamp.sec = 42
    out.publish(header, results, detector, names=True, debug=True, markers=True)
    wait_for(lambda: dets.messages and debug.messages and markers.messages and points.messages, 5, what="outputs")
    msg = dets.messages[-1]
    assert (msg.header.frame_id, msg.header.stamp.sec) == ("cam_optical", 42)
    assert "cat" in {d.results[0].hypothesis.class_id for d in msg.detections}  # names, not indices
    image = debug.messages[-1]
    assert (image.header.frame_id, image.height, image.width) == ("cam_optical", *rgb.shape[:2])
    assert not np.array_equal(conversions.image_to_rgb(image), rgb)  # the boxes are drawn on it
    (three,) = objects.messages
    assert three.header.frame_id == "base_link" and len(three.detections) == 2
    cloud = conversions.cloud_from_msg(points.messages[-1])
    assert points.messages[-1].header.frame_id == "base_link" and list(cloud["object"]) == [0, 0, 1, 1, 1]
    assert markers.messages[-1].markers[2].text == "cat 0.90"
    # nobody on debug_image: never drawn nor published; no markers when switched off
    client.destroy_subscription(debug.sub)
    wait_for(lambda: out.debug.get_subscription_count() == 0, 5, what="the debug subscriber gone")
    out.publish(header, results, detector, names=False, debug=True, markers=False)
    wait_for(lambda: len(dets.messages) == 2 and len(objects.messages) == 2, 5, what="the second frame")
    assert dets.messages[-1].detections[0].results[0].hypothesis.class_id.isdigit()  # indices (names=False)
    assert len(debug.messages) == 1 and len(markers.messages) == 1
    out.destroy()
    wait_for(lambda: client.count_publishers(f"{NS}/a/detections") == 0, 5, what="the publishers destroyed")


def test_label_info_is_latched_and_a_label_only_output_publishes_no_results(spinner, node, detector):
    labels_only = Outputs(node, lambda: None, prefix="b/", results=False)
    assert labels_only.detections is None and not labels_only.listened()
    labels_only.publish_labels(detector, 0.4)  # before anyone subscribes
    late = Collector(spinner.node, LabelInfo, f"{NS}/label_info", LATCHED)
    wait_for(lambda: late.messages, 5, what="the latched label_info")
    info = late.messages[-1]
    assert info.threshold == pytest.approx(0.4)
    assert {c.class_name for c in info.class_map} >= {"person", "cat"} and len(info.class_map) >= 80
    assert spinner.node.count_publishers(f"{NS}/b/detections") == 0
    none = Outputs(node, lambda: None, prefix="c/", label_info=False)
    none.publish_labels(detector, 0.4)  # no label_info publisher: nothing happens
    assert none.label_info is None and none.detections is not None
    labels_only.destroy()
    none.destroy()


def test_no_objects_is_an_empty_cloud():
    cloud = combined_cloud([], Header(frame_id="cam"))
    assert (cloud.width, cloud.header.frame_id) == (0, "cam")
    full = conversions.cloud_from_msg(combined_cloud(_objects(), Header(frame_id="cam")))
    np.testing.assert_allclose(full["x"], [0.0, 0.2, 1.0, 1.2, 1.0], atol=1e-6)
    assert list(full["object"]) == [0, 0, 1, 1, 1]
