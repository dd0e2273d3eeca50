"""ros/vision/camera.py in this process over real DDS: one camera's pipeline on the bundled detector with the
typed settings — what its subscriptions held (`receive`) counted and paired, its frames run and published on
`<camera>/...` (`process`), tracking ids kept across frames and dropped when the stamps go back, frames asked for
only while listened to, and its stream's state and fields for the node's status. (The driver thread that feeds it
is tested in test_driver.py, the node's cameras together in test_cameras.py.)"""

from __future__ import annotations

import pytest
from rclpy.node import Node
from vision_msgs.msg import Detection2DArray, Detection3DArray

from ml_model_service.core.frames.pointcloud import Intrinsics
from ml_model_service.core.loading.model import Model
from ml_model_service.core.reading.vision import VisionModel
from ml_model_service.core.runtimes.threads import CallerPinning
from ml_model_service.core.settings.typed import VisionSettings
from ml_model_service.ros.status import Status
from ml_model_service.ros.vision.camera import CameraPipeline
from ml_model_service.ros.vision.model_source import ModelSource
from ml_model_service.ros.vision.outputs import RESULTS
from ml_model_service.ros.vision.subscriptions import Taken
from ml_model_service.ros.vision_node import COUNTERS
from ml_model_service_dev.harness.messages import camera_info_msg, image_msg
from ml_model_service_dev.harness.photos import photo
from ml_model_service_dev.harness.waits import wait_for

from conftest import Collector

NS = "/camera_test"
BASE = {"model_path": "ssd_mobilenet_v2_coco", "backend": "onnx", "publish_debug_image": False}


@pytest.fixture(scope="module")
def detector() -> VisionModel:
    """The bundled detector, loaded once for the module's cameras (each installs it in its own model source)."""
    model = Model("ssd_mobilenet_v2_coco", backend="onnx")
    return VisionModel(model, model.labels)


@pytest.fixture
def pipeline(spinner, detector):
    """Factory: camera `name` of a node in this process with `settings`, configured and active (no driver: the
    test hands it what subscriptions would hold); its settings can be changed through the returned holder."""
    made: list = []

    def _make(name: str, **values) -> tuple[CameraPipeline, list[VisionSettings]]:
        node = Node(f"node_{name}", namespace=NS, context=spinner.node.context)
        spinner.executor.add_node(node)  # the outputs' matched events
        holder = [VisionSettings.of({**BASE, **values})]
        camera = CameraPipeline(node, name, lambda: holder[0])
        camera.status = Status(node, camera.image_topic, COUNTERS, list, publish=False)
        source = ModelSource(node, holder[0], lambda _v: None)
        source.install(detector)
        camera.configure(lambda: None)
        camera.activate(source, None, CallerPinning(lambda _text, _warn: None, enabled=False))
        made.append((node, camera, source))
        return camera, holder

    yield _make
    for node, camera, source in made:
        camera.stop()
        camera.destroy_outputs()
        source.close()
        spinner.executor.remove_node(node)
        node.destroy_node()


def _frame(node: Node, seconds_ago: float = 0.0, frame_id: str = "cam"):
    msg = image_msg(photo("chelsea"), frame_id)
    stamp = node.get_clock().now().nanoseconds * 1e-9 - seconds_ago
    msg.header.stamp.sec, msg.header.stamp.nanosec = int(stamp), int((stamp % 1) * 1e9)
    return msg


def test_frames_received_run_and_published_with_tracking_ids(spinner, pipeline):
    camera, _ = pipeline("front", tracking=True)
    assert camera.image_topic == f"{NS}/front/image" and camera.prefix == "front/"
    dets = Collector(spinner.node, Detection2DArray, f"{NS}/front/detections", RESULTS)
    wait_for(camera.outputs.listened, 5, what="the detections subscriber matched")
    frame = camera.receive(Taken(colour=_frame(camera.node, 10.0), colour_count=3, colour_replaced=2))
    assert frame is not None and frame.depth is None
    camera.process(frame)
    camera.process(camera.receive(Taken(colour=_frame(camera.node, 9.9), colour_count=1)))
    wait_for(lambda: len(dets.messages) == 2, 5, what="two detections messages")
    counters = camera.status.counters
    assert (counters["received"], counters["skipped"], counters["processed"]) == (4, 2, 2), counters
    assert set(camera.status.timings) == {"processing", "latency"} and camera.status.timings["latency"] >= 9900
    cats = [[d.id for d in m.detections if d.results[0].hypothesis.class_id == "cat"] for m in dets.messages]
    assert cats[0] and cats[0] == cats[1] and cats[0][0] != ""  # the same cat, the same tracking id
    tracker = camera.tracker
    assert tracker is not None
    camera.receive(Taken(colour=_frame(camera.node, 60.0), colour_count=1))  # stamps went back: a new timeline
    assert counters["time_jumps"] == 1 and camera.tracker is None
    camera.receive(Taken(malformed=["unreadable Image on front/image (16 bytes): ..."]))
    assert counters["malformed"] == 1 and camera.status.last_error.startswith("unreadable Image")


def test_depth_is_paired_with_its_colour_frame_and_objects_published(spinner, pipeline):
    camera, holder = pipeline("depth", use_depth=True, min_points=5)
    objects = Collector(spinner.node, Detection3DArray, f"{NS}/depth/objects", RESULTS)
    wait_for(camera.outputs.listened, 5, what="the objects subscriber matched")
    colour = _frame(camera.node, 1.0)
    assert camera.receive(Taken(colour=colour, colour_count=1)) is None  # waits for its depth
    assert camera.deadline() is not None  # ... until this deadline
    rgb = photo("chelsea")
    h, w = rgb.shape[:2]
    depth = image_msg(rgb, "cam")  # the colour frame's header, then made a depth image of 1.2 m everywhere
    depth.header = colour.header
    depth.encoding, depth.step, depth.data = "16UC1", 2 * w, (b"\xb0\x04" * (h * w))  # 1200 mm
    info = camera_info_msg(Intrinsics(500.0, 500.0, w / 2, h / 2, w, h), "cam")
    frame = camera.receive(Taken(depths=[depth], info=info))
    assert frame is not None and frame.depth is depth and frame.info is info
    camera.process(frame)
    wait_for(lambda: objects.messages, 5, what="objects")
    assert objects.messages[-1].detections and camera.status.counters["depth_received"] == 1
    assert camera.depth_state == "" and holder[0].use_depth


def test_subscribed_only_while_wanted_and_its_state_for_the_status(pipeline):
    camera, holder = pipeline("idle")
    camera.update_demand(0.0)
    assert not camera.input.wanted  # nobody listens, not always_on, no call: no subscription
    holder[0] = holder[0].updated({"always_on": True})
    camera.update_demand(0.0)
    assert camera.input.wanted
    camera.input.prepare()  # (what the driver does when woken)
    camera.note_subscription()
    assert camera.subscribed and camera.fields() == {"camera": "idle", "subscribed": "true"}
    assert camera.states() == []  # just subscribed: nothing to say yet
    camera.drop("errors", "ImageError: a frame of 0 x 0 pixels")
    assert camera.states() == [
        (bytes([2]), "no frame processed in the last 3 s: 1 dropped, last cause: ImageError: a frame of 0 x 0 pixels")
    ]
    assert camera.status.counters["errors"] == 1
    holder[0] = holder[0].updated({"always_on": False})
    camera.demand_until = 100.0
    camera.update_demand(50.0)  # a call asked for its frames until then
    assert camera.input.wanted
    camera.update_demand(150.0)
    assert not camera.input.wanted
    camera.stop()
    assert camera.states() == [] and not camera.subscribed
