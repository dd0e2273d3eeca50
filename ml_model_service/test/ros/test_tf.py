"""ros/tf.py in this process over real DDS: transforms to `target_frame` looked up at the image's stamp from a
transform published on /tf_static, and each way a frame's 3D can lack one named (`FrameError`). tf2_ros comes
from the ROS install: without it (the PyPI wheels) `available()` says so, which the vision node refuses
`target_frame` on, and the lookups are skipped."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from rclpy.node import Node
from std_msgs.msg import Header

from ml_model_service.ros import tf
from ml_model_service_dev.harness.waits import wait_for


def test_available_is_whether_tf2_ros_imports():
    assert tf.available() == (importlib.util.find_spec("tf2_ros") is not None)
    assert "rosdep key tf2_ros" in tf.INSTALL_TF2 and "ros-$ROS_DISTRO-tf2-ros" in tf.INSTALL_TF2


def test_a_static_transform_is_found_and_missing_ones_are_named(spinner):
    tf2_ros = pytest.importorskip("tf2_ros")
    from geometry_msgs.msg import TransformStamped

    node = Node("tf_under_test", namespace="/tf_test", context=spinner.node.context)
    spinner.executor.add_node(node)  # the listener's /tf and /tf_static subscriptions run there
    broadcaster = tf2_ros.StaticTransformBroadcaster(spinner.node)
    sent = TransformStamped()
    sent.header.frame_id, sent.child_frame_id = "base_link", "cam_optical"
    sent.transform.translation.x, sent.transform.translation.y, sent.transform.translation.z = 1.0, 2.0, 3.0
    sent.transform.rotation.z, sent.transform.rotation.w = np.sin(np.pi / 4), np.cos(np.pi / 4)  # 90 deg about z
    broadcaster.sendTransform(sent)
    target = tf.TargetFrame(node)
    try:
        image = Header(frame_id="cam_optical")  # stamp 0: the latest transform
        found = wait_for(lambda: _lookup(target, image), 5, what="the static transform")
        assert found.translation == pytest.approx((1.0, 2.0, 3.0))
        np.testing.assert_allclose(found.apply(np.array([[1.0, 0.0, 0.0]])), [[1.0, 3.0, 3.0]], atol=1e-9)
        with pytest.raises(tf.FrameError, match="the image has no frame_id"):
            target.lookup("base_link", Header(), 0.01)
        with pytest.raises(tf.FrameError, match="no transform from 'nowhere' to 'base_link' at the image's stamp 0"):
            target.lookup("base_link", Header(frame_id="nowhere"), 0.01)
    finally:
        target.close()
        spinner.executor.remove_node(node)
        node.destroy_node()


def _lookup(target: tf.TargetFrame, header: Header):
    try:
        return target.lookup("base_link", header, 0.1)
    except tf.FrameError:
        return None
