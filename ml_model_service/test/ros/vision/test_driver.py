"""ros/vision/driver.py in this process over real DDS: one thread waiting on two cameras' subscriptions at once,
running each camera's latest frames on the bundled detector (one frame a call: the model takes no batch), a
camera's unreadable message never holding up the other, and a stop that ends the thread and unsubscribes."""

from __future__ import annotations

import os
import time

import cv2
import pytest
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image
from vision_msgs.msg import Detection2DArray

from ml_model_service.core.runtimes.threads import CallerPinning
from ml_model_service.core.settings.typed import VisionSettings
from ml_model_service.ros.status import Status
from ml_model_service.ros.vision.camera import CameraPipeline
from ml_model_service.ros.vision.driver import Driver
from ml_model_service.ros.vision.model_source import ModelSource
from ml_model_service.ros.vision.outputs import RESULTS
from ml_model_service.ros.vision_node import COUNTERS
from ml_model_service_dev.harness.messages import image_msg
from ml_model_service_dev.harness.photos import photo
from ml_model_service_dev.harness.waits import wait_for

from conftest import Collector

NS = "/driver_test"
RELIABLE = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
SETTINGS = VisionSettings.of(
    {
        "model_path": "ssd_mobilenet_v2_coco",
        "backend": "onnx",
        "always_on": True,
        "cameras": ["a", "b"],
        "max_batch": 4,
        "publish_debug_image": False,
    }
)


@pytest.fixture
def driven(spinner):
    """Cameras a and b of a node in this process, driven by a started Driver; stopped at teardown."""
    node = Node("driven", namespace=NS, context=spinner.node.context)
    spinner.executor.add_node(node)
    source = ModelSource(node, SETTINGS, lambda _v: None)
    assert source.current(SETTINGS) is not None, source.state
    cameras = [CameraPipeline(node, name, lambda: SETTINGS) for name in ("a", "b")]
    driver = Driver(node, cameras, source, lambda: SETTINGS)
    pinning = CallerPinning(lambda _text, _warn: None, enabled=driver.parallel == 1)
    for c in cameras:
        c.status = Status(node, c.image_topic, COUNTERS, list, publish=False)
        c.configure(lambda: None)
        c.activate(source, None, pinning)
        c.update_demand(time.monotonic())
    driver.start()
    yield driver
    driver.stop()
    for c in cameras:
        c.stop()
        c.destroy_outputs()
    source.close()
    spinner.executor.remove_node(node)
    node.destroy_node()


def test_two_cameras_are_served_by_one_thread_and_a_stop_unsubscribes(spinner, driven):
    client = spinner.node
    assert driven.parallel == min(os.cpu_count() or 1, 2) and driven.is_alive()
    assert driven.limit() == 1  # the bundled detector's batch is fixed at 1: one frame a call, max_batch or not
    dets = {n: Collector(client, Detection2DArray, f"{NS}/{n}/detections", RESULTS) for n in ("a", "b")}
    pubs = {n: client.create_publisher(Image, f"{NS}/{n}/image", RELIABLE) for n in ("a", "b")}
    wait_for(lambda: all(p.get_subscription_count() for p in pubs.values()), 10, what="both cameras subscribed")
    msg = image_msg(cv2.resize(photo("chelsea"), (320, 240), interpolation=cv2.INTER_AREA), "cam")
    a, b = driven.cameras
    pubs["a"].publish(b"\x00\x01\x00\x00" + b"\xff" * 12)  # camera a's unreadable message: a's problem only
    wait_for(lambda: a.status.counters["malformed"] == 1, 5, what="camera a's unreadable message dropped")

    def both_answered() -> bool:
        for name, pub in pubs.items():
            msg.header.frame_id = name
            pub.publish(msg)
        return all(len(c.messages) >= 2 for c in dets.values())

    wait_for(both_answered, 20, interval=0.2, what="detections of both cameras")
    for name, collected in dets.items():
        assert {m.header.frame_id for m in collected.messages} == {name}  # each camera's frames, its topics
        assert any(d.results[0].hypothesis.class_id == "cat" for m in collected.messages for d in m.detections)
    assert a.status.counters["malformed"] == 1 and b.status.counters["malformed"] == 0
    assert driven.calls == driven.served >= 4  # one frame a call
    assert driven.served == a.status.counters["processed"] + b.status.counters["processed"]
    driven.stop()
    assert not driven.is_alive() and not a.subscribed and not b.subscribed
    wait_for(lambda: not any(p.get_subscription_count() for p in pubs.values()), 5, what="unsubscribed")
    for pub in pubs.values():
        client.destroy_publisher(pub)
