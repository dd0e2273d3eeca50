"""ros/vision/subscriptions.py in this process over real DDS: a camera's colour, depth and camera_info
subscriptions, made while wanted and waited on by the driver's thread; each wait gives the newest readable colour
frame (the ones it replaced counted), every depth image, the newest camera_info, and why each unreadable
message was dropped; a publisher whose QoS cannot match is named."""

from __future__ import annotations

import numpy as np
import pytest
from rclpy.event_handler import PublisherEventCallbacks
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, CompressedImage, Image

from ml_model_service.ros.direct import wait
from ml_model_service.ros.vision.subscriptions import CameraInput, Taken
from ml_model_service_dev.harness.messages import image_msg
from ml_model_service_dev.harness.waits import wait_for

NS = "/subscriptions_test"
RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
BEST_EFFORT = QoSProfile(depth=10, reliability=ReliabilityPolicy.BEST_EFFORT)


@pytest.fixture
def node(spinner):
    with spinner.spun(Node("camera_under_test", namespace=NS, context=spinner.node.context)) as made:
        yield made


def _frame(name: str) -> Image:
    return image_msg(np.full((4, 6, 3), 100, np.uint8), name)


def _take_until(node: Node, camera: CameraInput, done, timeout: float = 5.0) -> list[Taken]:
    """What each wakeup of the camera's wait gave, until `done(list so far)`."""
    subs, guard = camera.prepare()
    takes: list[Taken] = []

    def step() -> bool:
        takes.append(camera.take(wait(node, 0.5, subscriptions=subs, guards=[guard])))
        return done(takes)

    wait_for(step, timeout, interval=0, what="the camera's messages")
    return takes


def test_the_newest_frame_with_depth_and_camera_info_and_unreadable_messages_dropped(spinner, node):
    camera = CameraInput(node, "image", compressed=False, use_depth=True, reliable=False, depth=10)
    assert not camera.subscribed
    camera.wanted = True
    subs, _guard = camera.prepare()
    assert len(subs) == 3 and camera.subscribed
    assert {s.topic_name for s in subs} == {f"{NS}/image", f"{NS}/depth", f"{NS}/camera_info"}
    client = spinner.node
    colour = client.create_publisher(Image, f"{NS}/image", RELIABLE)
    depth = client.create_publisher(Image, f"{NS}/depth", RELIABLE)
    info = client.create_publisher(CameraInfo, f"{NS}/camera_info", RELIABLE)
    wait_for(
        lambda: all(p.get_subscription_count() == 1 for p in (colour, depth, info)), 5, what="subscriptions matched"
    )
    for name in ("f0", "f1", "f2"):
        colour.publish(_frame(name))
    mm = np.full((4, 6), 1500, np.uint16)
    depth.publish(Image(height=4, width=6, encoding="16UC1", step=12, data=mm.tobytes()))
    info.publish(CameraInfo(width=6, height=4))
    info.publish(CameraInfo(width=6, height=4, distortion_model="plumb_bob"))

    def all_in(takes: list[Taken]) -> bool:
        return (
            sum(t.colour_count for t in takes) == 3
            and sum(len(t.depths) for t in takes) == 1
            and any(t.info is not None and t.info.distortion_model for t in takes)
        )

    takes = _take_until(node, camera, all_in)
    frames = [t for t in takes if t.colour is not None]
    newest = frames[-1].colour
    assert newest.header.frame_id == "f2"  # read in place from the serialised bytes (conversions.image_from_cdr)
    assert all(t.colour_replaced == t.colour_count - 1 for t in frames)  # each take keeps its newest only
    assert (newest.encoding, newest.width, bytes(newest.data)) == ("rgb8", 6, bytes([100]) * 72)
    assert next(t for t in takes if t.depths).depths[0].encoding == "16UC1"
    assert not any(t.malformed for t in takes)
    # bytes that are no Image (any participant may publish them) are dropped with the reason; the newest
    # readable frame is used
    colour.publish(_frame("good"))
    colour.publish(b"\x00\x01\x00\x00" + b"\xff" * 12)
    takes = _take_until(node, camera, lambda ts: sum(t.colour_count for t in ts) == 2 and any(t.malformed for t in ts))
    assert [t.colour.header.frame_id for t in takes if t.colour is not None] == ["good"]
    why = [m for t in takes for m in t.malformed]
    assert len(why) == 1 and why[0].startswith("unreadable Image on image (16 bytes): "), why
    for pub in (colour, depth, info):
        client.destroy_publisher(pub)
    camera.close()
    assert not camera.subscribed


def test_subscribed_only_while_wanted_and_a_publisher_that_cannot_match_is_named(spinner, node):
    camera = CameraInput(node, f"{NS}/strict", compressed=True, use_depth=False, reliable=True)
    assert camera.qos_problem == ""  # not subscribed: nothing to say
    camera.wanted = True
    subs, _ = camera.prepare()
    assert [s.msg_type for s in subs] == [CompressedImage]  # compressed colour only, no depth
    quiet = PublisherEventCallbacks(incompatible_qos=lambda _event: None)  # (rclpy's default one warns)
    pub = spinner.node.create_publisher(CompressedImage, f"{NS}/strict", BEST_EFFORT, event_callbacks=quiet)
    problem = wait_for(lambda: camera.qos_problem, 5, what="the QoS mismatch named")
    assert problem.startswith(f"1 publisher(s) of {NS}/strict offer QoS that cannot match"), problem
    assert f"/{spinner.node.get_name()} offers best_effort/volatile" in problem
    assert "requested reliable/volatile: set image_qos to match the camera" in problem
    camera.wanted = False
    assert camera.prepare()[0] == [] and not camera.subscribed and camera.qos_problem == ""
    wait_for(lambda: node.count_subscribers(f"{NS}/strict") == 0, 5, what="the subscription gone")
    camera.wanted = True
    camera.close()  # a closing camera never subscribes again
    assert camera.prepare()[0] == [] and not camera.subscribed
    spinner.node.destroy_publisher(pub)


def test_a_wake_ends_the_drivers_wait_without_a_frame(node):
    camera = CameraInput(node, "woken", compressed=False, use_depth=False, reliable=False)
    camera.wanted = True
    subs, guard = camera.prepare()
    camera.wake()
    assert wait(node, 5, subscriptions=subs, guards=[guard]) == set()  # woken at once (not after 5 s), no frame
    assert camera.take(set()) == Taken()
    camera.close()
