"""ros/vision/frame.py: one camera frame (raw or compressed colour, depth, camera_info) through the pipeline
with the node's typed settings, on the bundled detector and real messages: decoded once, 2D and 3D results, a
frame's 3D without calibration refused with the reason, and 3D put in `target_frame` through tf2 where it is."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

from ml_model_service.core.frames.imaging import ImageError
from ml_model_service.core.frames.pointcloud import DepthError, Intrinsics
from ml_model_service.core.loading.model import Model
from ml_model_service.core.reading.vision import VisionModel
from ml_model_service.core.settings.typed import VisionSettings
from ml_model_service.ros.vision.frame import NO_CAMERA_INFO, Frame, compute, to_target_frame
from ml_model_service_dev.harness.messages import camera_info_msg, image_msg
from ml_model_service_dev.harness.photos import photo

SETTINGS = VisionSettings.of({"use_depth": True})


@pytest.fixture(scope="module")
def detector() -> VisionModel:
    model = Model("ssd_mobilenet_v2_coco", backend="onnx")
    return VisionModel(model, model.labels)


def _depth(rgb: np.ndarray, metres: float) -> Image:
    mm = np.full(rgb.shape[:2], int(metres * 1000), np.uint16)
    h, w = mm.shape
    return Image(header=Header(frame_id="cam"), height=h, width=w, encoding="16UC1", step=2 * w, data=mm.tobytes())


def _info(rgb: np.ndarray):
    h, w = rgb.shape[:2]
    return camera_info_msg(Intrinsics(fx=500.0, fy=500.0, cx=w / 2, cy=h / 2, width=w, height=h), "cam")


def test_raw_and_compressed_frames_decode_once_to_the_same_detections(detector):
    rgb = photo("chelsea")
    raw = Frame(image_msg(rgb, "cam"))
    assert raw.rgb(SETTINGS.max_image_pixels) is raw.rgb(SETTINGS.max_image_pixels)  # decoded once
    ok, png = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    assert ok
    packed = Frame(CompressedImage(header=Header(frame_id="cam"), format="png", data=png.tobytes()))
    assert np.array_equal(packed.rgb(SETTINGS.max_image_pixels), rgb) and packed.header.frame_id == "cam"
    a, b = compute(raw, detector, SETTINGS), compute(packed, detector, SETTINGS)
    assert [d.class_name for d in a.detections] == [d.class_name for d in b.detections] and a.detections
    assert "cat" in {d.class_name for d in a.detections} and a.objects is None  # no 3D unless asked
    assert compute(raw, detector, SETTINGS, detections=False).detections == []  # only what is asked
    with pytest.raises(ImageError, match="pixels"):  # over the settings' pixel cap: refused before decoding
        Frame(image_msg(rgb, "cam")).rgb(100)


def test_depth_gives_objects_and_no_camera_info_is_the_reason_there_are_none(detector):
    rgb = photo("chelsea")
    assert Frame(image_msg(rgb, "cam")).depth_input(SETTINGS) is None  # no depth message: no 3D input
    with_depth = Frame(image_msg(rgb, "cam"), _depth(rgb, 1.5), _info(rgb))
    r = compute(with_depth, detector, SETTINGS, objects=True)
    assert r.objects and not r.objects_error
    cat = next(o for o in r.objects if o.class_name == "cat")
    assert np.nanmedian(cat.points[:, 2]) == pytest.approx(1.5, abs=0.05)  # the depth image's distance
    uncalibrated = Frame(image_msg(rgb, "cam"), _depth(rgb, 1.5), None)
    depth = uncalibrated.depth_input(SETTINGS)
    with pytest.raises(DepthError, match=NO_CAMERA_INFO):
        depth.intrinsics()
    r = compute(uncalibrated, detector, SETTINGS, objects=True)
    assert r.objects is None and r.objects_error.startswith(NO_CAMERA_INFO)


def test_objects_stay_in_the_cameras_frame_without_a_target_frame(detector):
    rgb = photo("chelsea")
    frame = Frame(image_msg(rgb, "cam"), _depth(rgb, 1.5), _info(rgb))
    r = compute(frame, detector, SETTINGS, objects=True)
    before = [o.centre.copy() for o in r.objects]
    assert to_target_frame(r, frame.header, SETTINGS, None)  # no tf: as they are
    targeted = SETTINGS.updated({"target_frame": "cam"})  # the camera's own frame: nothing to look up
    assert to_target_frame(r, frame.header, targeted, None) and r.objects_frame == ""
    assert all(np.array_equal(a, o.centre) for a, o in zip(before, r.objects))


def test_objects_are_moved_into_the_target_frame_through_tf2(spinner, detector):
    tf2_ros = pytest.importorskip("tf2_ros")
    from geometry_msgs.msg import TransformStamped
    from rclpy.node import Node

    from ml_model_service.ros.tf import TargetFrame

    node = Node("frame_tf_test", context=spinner.node.context)
    spinner.executor.add_node(node)
    sent = TransformStamped()
    sent.header.frame_id, sent.child_frame_id = "base_link", "cam"
    sent.transform.translation.x, sent.transform.rotation.w = 2.0, 1.0
    tf2_ros.StaticTransformBroadcaster(spinner.node).sendTransform(sent)
    transforms = TargetFrame(node)
    try:
        rgb = photo("chelsea")
        frame = Frame(image_msg(rgb, "cam"), _depth(rgb, 1.5), _info(rgb))
        s = SETTINGS.updated({"target_frame": "base_link", "tf_timeout": 1.0})
        r = compute(frame, detector, s, objects=True)
        before = r.objects[0].centre.copy()
        assert to_target_frame(r, frame.header, s, transforms) and r.objects_frame == "base_link"
        np.testing.assert_allclose(r.objects[0].centre, before + [2.0, 0.0, 0.0], atol=1e-5)
        lost = compute(frame, detector, s.updated({"target_frame": "nowhere", "tf_timeout": 0.01}), objects=True)
        assert not to_target_frame(lost, frame.header, s.updated({"target_frame": "nowhere"}), transforms)
        assert lost.objects is None and "no transform from 'cam' to 'nowhere'" in lost.objects_error
    finally:
        transforms.close()
        spinner.executor.remove_node(node)
        node.destroy_node()
