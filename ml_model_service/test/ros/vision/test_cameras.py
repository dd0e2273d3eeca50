"""ros/vision/cameras.py, camera.py and driver.py, in this process over real DDS: a node's cameras built from
`cameras`, driven by one thread, publishing and reporting on the layout the node's users see (the node itself,
in its own process, is tested end to end in test_vision_service.py and test_multicam.py)."""

from __future__ import annotations

import threading
import time

import cv2
import pytest
from diagnostic_msgs.msg import DiagnosticStatus
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image
from vision_msgs.msg import Detection2DArray

from ml_model_service.core.settings.params import defaults
from ml_model_service.core.settings.tables import VISION_PARAMS
from ml_model_service.core.settings.typed import VisionSettings
from ml_model_service.ros.status import STATUS_QOS
from ml_model_service.ros.vision.cameras import Cameras
from ml_model_service.ros.vision.model_source import ModelSource
from ml_model_service.ros.vision_node import COUNTERS
from ml_model_service_dev.harness.messages import image_msg
from ml_model_service_dev.harness.photos import photo
from ml_model_service_dev.harness.waits import wait_for

from conftest import Collector

RELIABLE = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)


@pytest.fixture
def served(spinner):
    """Factory: a node (in this process, spun by the client's executor) whose `names` cameras are configured and
    active on the bundled detector; stopped at teardown."""
    made: list[tuple[Node, Cameras, ModelSource]] = []

    def _make(namespace: str, names: list[str]) -> tuple[Node, Cameras]:
        node = Node("under_test", namespace=namespace, context=spinner.node.context)
        settings = VisionSettings.of({**defaults(VISION_PARAMS), "always_on": True, "cameras": names})
        source = ModelSource(node, settings, lambda _vision: None)
        assert source.current(settings) is not None, source.state
        cameras = Cameras(node, names, lambda: settings, {}, COUNTERS, lambda: "active", lambda: [], lambda: None)
        cameras.configure(cameras.update_demand)
        cameras.activate(source, None)
        cameras.update_demand()
        spinner.executor.add_node(node)
        made.append((node, cameras, source))
        return node, cameras

    yield _make
    for node, cameras, source in made:
        cameras.stop()
        cameras.destroy_outputs()
        source.close()
        spinner.executor.remove_node(node)
        node.destroy_node()


def _camera(node: Node, topic: str, seconds: float, hz: float = 10.0) -> None:
    """The chelsea photograph (a cat) at `hz` on `topic` for `seconds`."""
    pub = node.create_publisher(Image, topic, RELIABLE)
    msg = image_msg(cv2.resize(photo("chelsea"), (640, 480), interpolation=cv2.INTER_AREA), "cam")
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        msg.header.stamp = node.get_clock().now().to_msg()
        pub.publish(msg)
        time.sleep(1.0 / hz)
    node.destroy_publisher(pub)


def _fields(status: DiagnosticStatus) -> dict[str, str]:
    return {v.key: v.value for v in status.values}


def test_a_node_without_cameras_runs_one_camera_inline_on_its_own_topics(spinner, served):
    """No `cameras`: the node's own `image` and `detections`, the camera's counters in the node's status, each
    frame run on the driver thread (no pool) and the model never probed for batching (one frame per call)."""
    client = spinner.node
    node, cameras = served("/one", [])
    dets = Collector(client, Detection2DArray, "/one/detections")
    status = Collector(client, DiagnosticStatus, "/one/under_test/status", STATUS_QOS)
    _camera(client, "/one/image", 3.0)
    wait_for(lambda: len(dets.messages) >= 5, 10, what="detections on /one/detections")
    assert any(d.results[0].hypothesis.class_id == "cat" for m in dets.messages for d in m.detections)
    driver = cameras.driver
    assert driver is not None and driver._pool is None and driver.parallel == 1  # noqa: SLF001
    assert driver.served == driver.calls >= 5
    assert getattr(cameras.pipelines[0].source.vision, "_batch_support", None) is None  # never probed
    wait_for(lambda: status.messages and int(_fields(status.messages[-1])["processed"]) >= 5, 5, what="status")
    fields = _fields(status.messages[-1])
    assert int(fields["received"]) >= int(fields["processed"]) >= 5 and "camera" not in fields, fields
    assert cameras.status.name == "" and [s.name for s in [c.status for c in cameras.pipelines]] == [""]


def test_named_cameras_publish_on_their_own_topics_and_the_node_names_each_ones_problem(spinner, served):
    """`cameras: [a, b]`: frames on a/image are answered on a/detections only; b, subscribed with no publisher,
    is named in the node's status (WARN) from its subscription on, without waiting for a frame."""
    client = spinner.node
    node, cameras = served("/two", ["a", "b"])
    dets_a = Collector(client, Detection2DArray, "/two/a/detections")
    dets_b = Collector(client, Detection2DArray, "/two/b/detections")
    status = Collector(client, DiagnosticStatus, "/two/under_test/status", STATUS_QOS)
    wait_for(
        lambda: status.messages and "b: no publisher on /two/b/image" in status.messages[-1].message,
        8,
        what="the node's status naming camera b's missing publisher",
    )
    assert status.messages[-1].level >= DiagnosticStatus.WARN
    thread = threading.Thread(target=_camera, args=(client, "/two/a/image", 3.0), daemon=True)
    thread.start()
    wait_for(lambda: len(dets_a.messages) >= 5, 10, what="detections on /two/a/detections")
    thread.join(5)
    assert not dets_b.messages
    a, b = cameras.pipelines
    assert (a.name, b.name) == ("a", "b") and a.status is not b.status is not cameras.status
    assert a.status.counters["processed"] >= 5 and b.status.counters["processed"] == 0
    assert _fields(status.messages[-1])["cameras"] == "a,b"
