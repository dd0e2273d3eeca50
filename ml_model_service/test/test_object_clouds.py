"""Object point clouds from the vision node: colour + depth + camera_info over DDS, 3D objects out."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticStatus
from rclpy.qos import QoSProfile
from sensor_msgs.msg import CameraInfo, PointCloud2
from vision_msgs.msg import Detection2DArray, Detection3DArray

from ml_model_service.ros import conversions
from ml_model_service.ros.remote_model import call
from ml_model_service_dev.harness.camera import Camera
from ml_model_service_dev.harness.messages import camera_info_msg, depth_msg, image_msg
from ml_model_service_dev.harness.scenes import Box3D, motorcycle_rgbd, render
from ml_model_service_dev.harness.waits import wait_for
from ml_model_service_interfaces.srv import CaptureAll, GetObjectPointClouds, GetProperties

from conftest import Collector, constant_model

OBJECT = Box3D((-0.25, -0.3, 1.5), (0.25, 0.3, 1.9))  # 1.5 m away, in front of a wall at 3 m, above a floor


def box_detector(tmp_path, box_px, width, height):
    """A real ONNX model that always reports `box_px` (x0, y0, x1, y1 pixels) as class 'thing' (0.9)."""
    x0, y0, x1, y1 = box_px
    path = constant_model(
        tmp_path / "box.onnx",
        [1, 64, 64, 3],
        {
            "location": np.array([[[y0 / height, x0 / width, y1 / height, x1 / width]]], np.float32),
            "score": np.array([[0.9]], np.float32),
            "category": np.array([[0.0]], np.float32),
        },
    )
    (tmp_path / "box.txt").write_text("thing\n")
    return str(path)


@pytest.fixture
def camera(spinner):
    cam = Camera(spinner.node, "/rgbd")
    yield cam
    cam.close()


def start(start_node, spinner, params):
    allowed = [str(Path(params["model_path"]).parent)] if "/" in params.get("model_path", "") else []
    proc = start_node(
        "vision_service",
        {"execution_providers": ["cpu"], "use_depth": True, "allowed_paths": allowed, **params},
        namespace="/rgbd",
    )
    props = spinner.node.create_client(GetProperties, "/rgbd/vision_service/get_properties")
    r = wait_for(
        lambda: props.wait_for_service(0.5) and call(props, GetProperties.Request(), 5.0), 30, what="vision node"
    )
    assert proc.alive(), proc.log()
    return proc, r


def object_clouds(spinner, timeout=20.0):
    client = spinner.node.create_client(GetObjectPointClouds, "/rgbd/vision_service/get_object_point_clouds")
    return lambda: call(client, GetObjectPointClouds.Request(), timeout)


@pytest.mark.parametrize("encoding", ["32FC1", "16UC1"])
def test_object_in_front_of_wall(tmp_path, start_node, spinner, camera, encoding):
    scene = render([OBJECT])
    x0, y0, x1, y1 = scene.boxes_2d[0]
    box = (x0 - 30, y0 - 30, x1 + 30, y1 + 30)  # a loose box: wall and floor pixels inside it
    _, props = start(start_node, spinner, {"model_path": box_detector(tmp_path, box, 640, 480)})
    assert props.object_point_clouds_supported
    objects = Collector(spinner.node, Detection3DArray, "/rgbd/objects")
    points = Collector(spinner.node, PointCloud2, "/rgbd/object_points")
    camera.show(image_msg(scene.rgb, "optical"), depth_msg(scene.depth, encoding), camera_info_msg(scene.intrinsics))
    msg = wait_for(lambda: [m for m in objects.messages if m.detections], 30, what="objects")[-1]
    truth = scene.visible_points[0]
    det = msg.detections[0]
    assert msg.header.frame_id == "optical"
    assert det.results[0].hypothesis.class_id == "thing"
    centre = det.bbox.center.position
    assert np.abs(np.array([centre.x, centre.y, centre.z]) - truth.mean(axis=0)).max() < 0.02
    size = det.bbox.size
    assert np.abs(np.array([size.x, size.y, size.z]) - (truth.max(axis=0) - truth.min(axis=0))).max() < 0.05

    cloud = conversions.cloud_from_msg(
        wait_for(lambda: [m for m in points.messages if m.width], 10, what="object_points")[-1]
    )
    assert cloud["z"].max() < 1.6 and set(np.unique(cloud["object"])) == {0}  # no wall or floor points
    r = object_clouds(spinner)()
    assert r.success, r.message
    assert len(r.objects.detections) == len(r.clouds) == 1
    own = conversions.cloud_from_msg(r.clouds[0])
    assert own["z"].max() < 1.6 and len(own) >= 30


def test_obstacle_mode_finds_object_and_removes_floor(start_node, spinner, camera):
    obstacle = Box3D((-0.3, 0.2, 1.5), (0.3, 0.8, 1.9))  # standing 0.2 m above a floor at y = 1 m
    scene = render([obstacle], wall_z=None)
    _, props = start(start_node, spinner, {"object_mode": "obstacles"})
    assert props.object_point_clouds_supported and not props.detections_supported
    camera.show(image_msg(scene.rgb, "optical"), depth_msg(scene.depth, "32FC1"), camera_info_msg(scene.intrinsics))
    r = wait_for(
        lambda: (lambda x: x if x.success and x.objects.detections else None)(object_clouds(spinner)()),
        30,
        what="obstacles",
    )
    assert len(r.objects.detections) == 1, [d.bbox.center.position for d in r.objects.detections]
    det = r.objects.detections[0]
    assert det.results[0].hypothesis.class_id == "obstacle"
    truth = scene.visible_points[0]
    c = det.bbox.center.position
    assert np.abs(np.array([c.x, c.y, c.z]) - truth.mean(axis=0)).max() < 0.05
    cloud = conversions.cloud_from_msg(r.clouds[0])
    assert cloud["y"].max() < 0.9  # nothing of the floor (y = 1 m) is left


def test_depth_problems_are_reported_and_node_goes_on(tmp_path, start_node, spinner, camera):
    scene = render([OBJECT])
    proc, _ = start(start_node, spinner, {"model_path": box_detector(tmp_path, scene.boxes_2d[0], 640, 480)})
    get = object_clouds(spinner, 10.0)
    colour = image_msg(scene.rgb, "optical")
    camera.show(colour, depth_msg(scene.depth, "32FC1"))
    r = wait_for(lambda: (lambda x: x if "camera_info" in x.message else None)(get()), 20, what="no camera_info")
    assert not r.success
    camera.show(colour, depth_msg(scene.depth, "32FC1"), CameraInfo(width=640, height=480))
    r = wait_for(lambda: (lambda x: x if "intrinsics" in x.message else None)(get()), 20, what="zero K")
    assert not r.success and "zero" in r.message
    # a bad camera_info costs 3D only: 2D detections keep coming, and the status says why 3D fails
    dets = Collector(spinner.node, Detection2DArray, "/rgbd/detections")
    status = Collector(spinner.node, DiagnosticStatus, "/rgbd/vision_service/status", QoSProfile(depth=10))
    wait_for(lambda: len(dets.where(lambda m: m.detections)) >= 3, 20, what="2D detections with a bad K")
    wait_for(
        lambda: any("3D failing" in m.message and "intrinsics" in m.message for m in status.messages),
        10,
        what="status says 3D is failing",
    )
    spinner.node.destroy_subscription(dets.sub)
    info = camera_info_msg(scene.intrinsics)
    camera.show(colour, depth_msg(np.full((100, 100), 2.0, np.float32), "32FC1"), info)
    r = wait_for(lambda: (lambda x: x if "aspect" in x.message else None)(get()), 20, what="size mismatch")
    assert not r.success
    camera.show(colour, depth_msg(np.full((480, 640), np.nan, np.float32), "32FC1"), info)
    r = wait_for(lambda: (lambda x: x if x.success else None)(get()), 20, what="all-NaN depth answer")
    assert len(r.objects.detections) == 0
    # 2D finds the object and 3D cannot: the status says so (WARN), not OK
    n = len(status.messages)
    wait_for(
        lambda: any(
            (m.level[0] if isinstance(m.level, bytes) else int(m.level)) == 1  # WARN
            and "enough valid depth" in m.message
            for m in status.messages[n:]
        ),
        10,
        what="status WARN: no valid depth in the detections' boxes",
    )
    camera.show(colour, depth_msg(scene.depth[::2, ::2].copy(), "32FC1"), info)  # half-size depth: scaled
    r = wait_for(lambda: (lambda x: x if x.success and x.objects.detections else None)(get()), 20, what="scaled depth")
    assert r.objects.detections[0].bbox.center.position.z == pytest.approx(1.5, abs=0.03)
    assert proc.alive()


def test_real_motorcycle_sample(start_node, spinner, camera):
    rgb, depth, k = motorcycle_rgbd()
    proc, _ = start(start_node, spinner, {})
    camera.show(image_msg(rgb, "middlebury"), depth_msg(depth, "32FC1"), camera_info_msg(k))
    client = spinner.node.create_client(CaptureAll, "/rgbd/vision_service/capture_all")
    req = CaptureAll.Request(return_detections=True, return_object_point_clouds=True)
    r = wait_for(
        lambda: (lambda x: x if x.success and x.objects.detections else None)(call(client, req, 20.0)),
        30,
        what="motorcycle object",
    )
    names = [d.results[0].hypothesis.class_id for d in r.objects.detections]
    assert "motorcycle" in names
    moto = r.objects.detections[names.index("motorcycle")]
    box2d = r.detections.detections[
        [d.results[0].hypothesis.class_id for d in r.detections.detections].index("motorcycle")
    ].bbox
    # The motorcycle's true depth: ground-truth depth over the central half of its 2D box.
    cx, cy, w, h = box2d.center.position.x, box2d.center.position.y, box2d.size_x, box2d.size_y
    core = depth[int(cy - h / 4) : int(cy + h / 4), int(cx - w / 4) : int(cx + w / 4)]
    lo, hi = np.nanpercentile(core, [10, 90])
    assert lo <= moto.bbox.center.position.z <= hi, (moto.bbox.center.position.z, lo, hi)
    assert r.objects.header.stamp == r.detections.header.stamp  # one frame
    again = call(client, req, 20.0)
    same = again.objects.detections[names.index("motorcycle")].bbox.center.position
    assert (same.x, same.y, same.z) == pytest.approx(
        (moto.bbox.center.position.x, moto.bbox.center.position.y, moto.bbox.center.position.z), abs=1e-4
    )
    assert proc.alive()
