"""Semantic segmentation from the vision node over DDS: a 10 Hz RGB-D camera in, the class map (`segmentation`),
floor points (`segmentation_points` with the `classes` filter), class shares in `~/status` and
`~/get_segmentation` out; the map equal to the CLI's for the same image."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import cv2
import numpy as np
from diagnostic_msgs.msg import DiagnosticStatus
from rclpy.qos import QoSProfile
from sensor_msgs.msg import Image, PointCloud2

from ml_model_service.ros import conversions
from ml_model_service.ros.remote_model import call
from ml_model_service_dev.harness.camera import Camera
from ml_model_service_dev.harness.messages import camera_info_msg, depth_msg, image_msg
from ml_model_service_dev.harness.scenes import Box3D, render
from ml_model_service_dev.harness.segmenters import colour_segmenter, nearest_colour
from ml_model_service_dev.harness.waits import wait_for
from ml_model_service_interfaces.srv import GetProperties, GetSegmentation

from conftest import Collector

FLOOR_Y = 1.0  # render's floor plane (optical frame: y down), metres


def test_class_maps_at_camera_rate_with_floor_points(tmp_path, start_node, spinner):
    model = colour_segmenter(tmp_path / "seg.onnx", size=(480, 640))  # at the camera's size: an exact map
    scene = render([Box3D((-0.25, -0.3, 1.5), (0.25, 0.3, 1.9))], floor_y=FLOOR_Y)
    params = {
        "model_path": str(model),
        "allowed_paths": [str(tmp_path)],
        "execution_providers": ["cpu"],
        "use_depth": True,
        "classes": ["floor"],
    }
    proc = start_node("vision_service", params, namespace="/seg")
    props = spinner.node.create_client(GetProperties, "/seg/vision_service/get_properties")
    r = wait_for(lambda: props.wait_for_service(0.5) and call(props, GetProperties.Request(), 5.0), 30, what="node")
    assert r.segmentation_supported and not r.detections_supported, proc.log()
    maps = Collector(spinner.node, Image, "/seg/segmentation")
    points = Collector(spinner.node, PointCloud2, "/seg/segmentation_points")
    status = Collector(spinner.node, DiagnosticStatus, "/seg/vision_service/status", QoSProfile(depth=10))
    frames = (image_msg(scene.rgb, "optical"), depth_msg(scene.depth, "32FC1", "optical"))
    camera = Camera(spinner.node, "/seg", 10.0, (*frames, camera_info_msg(scene.intrinsics, "optical")))
    try:
        wait_for(lambda: len(maps.messages) >= 3, 30, what="class maps")
        sent, got = len(camera.sent), len(maps.messages)
        time.sleep(8.0)
        rate = (len(maps.messages) - got) / (len(camera.sent) - sent)
    finally:
        camera.close()
    assert rate >= 0.95, f"{rate:.2f} of the camera's frames got a class map"
    msg = maps.messages[-1]
    assert (msg.width, msg.height, msg.encoding, msg.header.frame_id) == (640, 480, "mono8", "optical")
    published = conversions.class_map_from_msg(msg)
    # the CLI's map of the same image
    photo = tmp_path / "scene.png"
    cv2.imwrite(str(photo), cv2.cvtColor(scene.rgb, cv2.COLOR_RGB2BGR))
    out = subprocess.run(
        [sys.executable, "-m", "ml_model_service", "segment", "--model", str(model), "--out", str(tmp_path)]
        + [str(photo)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    cli_map = cv2.imread(json.loads(out.stdout)["segmentation"], cv2.IMREAD_UNCHANGED)
    assert np.array_equal(published, cli_map)
    # floor points only (classes: [floor]), on the floor plane
    cloud = conversions.cloud_from_msg(points.messages[-1])
    assert points.messages[-1].header.frame_id == "optical" and len(cloud) > 1000
    assert set(np.unique(cloud["class"])) == {1}
    on_plane = np.abs(cloud["y"] - FLOOR_Y) < 0.02
    assert on_plane.all(), f"{np.count_nonzero(~on_plane)} of {len(cloud)} floor points off the floor plane"
    # class shares in the status
    shares = wait_for(
        lambda: [kv.value for m in status.messages for kv in m.values if kv.key == "class_shares"], 10, what="shares"
    )
    assert "floor" in shares[-1] and "wall" in shares[-1]
    # the call, on an image in the request
    client = spinner.node.create_client(GetSegmentation, "/seg/vision_service/get_segmentation")
    request = GetSegmentation.Request(image=frames[0])
    answer = wait_for(lambda: client.wait_for_service(0.5) and call(client, request, 10.0), 20, what="call")
    assert answer.success, answer.message
    assert np.array_equal(conversions.class_map_from_msg(answer.segmentation), cli_map)
    counts = dict(zip(answer.class_names, answer.pixel_counts))
    assert counts["floor"] == int((cli_map == 1).sum()) and sum(counts.values()) == cli_map.size


def test_several_cameras_get_their_class_maps_through_batched_calls(tmp_path, start_node, spinner):
    """Two cameras, one dynamic-batch segmenter: each camera's map on `<camera>/segmentation`, each right for its
    own image, with frames of both served through shared inference calls."""
    model = colour_segmenter(tmp_path / "seg.onnx", size=(480, 640), batch="N")
    scenes = {
        "left": render([Box3D((-0.25, -0.3, 1.5), (0.25, 0.3, 1.9))]),
        "right": render([Box3D((0.1, -0.2, 1.2), (0.6, 0.5, 1.6))]),
    }
    params = {
        "model_path": str(model),
        "allowed_paths": [str(tmp_path)],
        "execution_providers": ["cpu"],
        "cameras": list(scenes),
        "max_batch": 2,
        "batch_wait": 0.05,
    }
    proc = start_node("vision_service", params, namespace="/pair")
    maps = {name: Collector(spinner.node, Image, f"/pair/{name}/segmentation") for name in scenes}
    status = Collector(spinner.node, DiagnosticStatus, "/pair/vision_service/status", QoSProfile(depth=10))
    cameras = [Camera(spinner.node, f"/pair/{name}", 10.0, (image_msg(s.rgb),)) for name, s in scenes.items()]
    try:
        wait_for(lambda: all(len(m.messages) >= 20 for m in maps.values()), 40, what="class maps of both cameras")
    finally:
        for camera in cameras:
            camera.close()
    for name, scene in scenes.items():
        got = conversions.class_map_from_msg(maps[name].messages[-1])
        assert np.array_equal(got, nearest_colour(scene.rgb)), name
    fields = wait_for(
        lambda: [{kv.key: kv.value for kv in m.values} for m in status.messages if m.values], 10, what="status"
    )[-1]
    assert int(fields["inference_calls"]) < int(fields["frames_served"]), (fields, proc.log())
