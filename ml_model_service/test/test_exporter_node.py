"""Real exports through the vision node, over DDS: the node's detections, oriented boxes and keypoints are the
exporter's own (Ultralytics' predict on the same file), on its topics and in capture_all."""

from __future__ import annotations

import math

import numpy as np
import pytest
from test_vision_service import start_vision, wait_ready
from vision_msgs.msg import Detection2DArray

from ml_model_service.core.frames.pointcloud import Intrinsics
from ml_model_service.ros.remote_model import call
from ml_model_service_dev.harness.camera import Camera
from ml_model_service_dev.harness.exports import compare, export
from ml_model_service_dev.harness.messages import camera_info_msg, depth_msg, image_msg
from ml_model_service_dev.harness.waits import wait_for
from ml_model_service_interfaces.msg import KeypointsArray
from ml_model_service_interfaces.srv import CaptureAll

from conftest import Collector

#: Ultralytics predict's defaults, on our side too.
PEER = {"confidence_threshold": 0.25, "iou_threshold": 0.7, "max_detections": 300}


def as_dicts(msg: Detection2DArray, rotated: bool = False) -> list[dict]:
    """Detections as the CLI writes them (class names of these exports are their ids); `rotated`: oriented
    boxes (centre, rotated size, theta, and the axis-aligned envelope they give)."""
    out = []
    for d in msg.detections:
        c, w, h, t = d.bbox.center.position, d.bbox.size_x, d.bbox.size_y, d.bbox.center.theta
        row = {"class_id": int(d.results[0].hypothesis.class_id), "confidence": d.results[0].hypothesis.score}
        dx, dy = w / 2, h / 2
        if rotated:
            row.update(center_x=c.x, center_y=c.y, size_x=w, size_y=h, theta=t)
            dx = abs(w / 2 * math.cos(t)) + abs(h / 2 * math.sin(t))
            dy = abs(w / 2 * math.sin(t)) + abs(h / 2 * math.cos(t))
        row.update(x_min=c.x - dx, y_min=c.y - dy, x_max=c.x + dx, y_max=c.y + dy)
        out.append(row)
    return out


def start(start_node, spinner, namespace: str, e, **params):
    params = {"model_path": str(e.path), "allowed_paths": [str(e.path.parent)], **PEER, **params}
    proc = start_vision(start_node, params, namespace=namespace)
    wait_ready(spinner, proc, 60, namespace=namespace)
    return proc


@pytest.mark.parametrize("variant", [("rtdetr-l.yaml", 320, {}), ("yolo11n-obb.yaml", 640, {"nms": True})])
def test_node_detections_are_the_exporters(variant, start_node, spinner):
    arch, imgsz, options = variant
    e = export(arch, imgsz, **options)
    namespace = "/exp_" + arch.split(".")[0].replace("-", "_")
    start(start_node, spinner, namespace, e)
    dets = Collector(spinner.node, Detection2DArray, f"{namespace}/detections")
    camera = Camera(spinner.node, namespace, rate=5.0, streams=("image",))
    try:
        camera.show(image_msg(e.image(0), "photo0"))
        msg = wait_for(lambda: next(iter(dets.where(lambda m: m.header.frame_id == "photo0")), None), 30)
    finally:
        camera.close()
    found = as_dicts(msg, rotated="obb" in arch)
    if "obb" in arch:
        assert any(abs(d.bbox.center.theta) > 0.05 for d in msg.detections)
    problems = compare(found, e.expected(0), (e.image(0).shape[1], e.image(0).shape[0]))
    assert not problems, problems
    assert len(found) >= 5


def test_pose_keypoints_on_their_topic_aligned_with_detections_and_lifted_with_depth(start_node, spinner):
    e = export("yolo11n-pose.yaml", 640)
    rgb = e.image(0)
    h, w = rgb.shape[:2]
    namespace = "/exp_pose"
    start(start_node, spinner, namespace, e, use_depth=True)
    dets = Collector(spinner.node, Detection2DArray, f"{namespace}/detections")
    kpts = Collector(spinner.node, KeypointsArray, f"{namespace}/keypoints")
    k = Intrinsics(500.0, 500.0, w / 2, h / 2, w, h)
    camera = Camera(spinner.node, namespace, rate=5.0, streams=("image", "depth", "camera_info"))
    try:
        camera.show(image_msg(rgb, "pose0"), depth_msg(np.full((h, w), 2.0), frame_id="pose0"), camera_info_msg(k))
        points = wait_for(lambda: next(iter(kpts.where(lambda m: m.header.frame_id == "pose0")), None), 30)
        same = wait_for(lambda: next(iter(dets.where(lambda m: m.header.stamp == points.header.stamp)), None), 10)
        client = spinner.node.create_client(CaptureAll, f"{namespace}/vision_service/capture_all")
        captured = call(client, CaptureAll.Request(return_detections=True), 15.0)
    finally:
        camera.close()
    assert len(points.objects) == len(same.detections) >= 5
    assert list(points.keypoint_names)[:3] == ["nose", "left_eye", "right_eye"] and len(points.keypoint_names) == 17
    found = as_dicts(same)
    for i, (row, entry) in enumerate(zip(found, points.objects)):
        assert entry.detection_index == i and len(entry.x) == 17
        row["keypoints"] = np.column_stack([entry.x, entry.y, entry.score]).tolist()
        z = np.array([p.z for p in entry.points_3d])
        assert len(z) == 17 and np.allclose(z[np.isfinite(z)], 2.0, atol=0.01) and np.isfinite(z).any()
    problems = compare(found, e.expected(0), (w, h))
    assert not problems, problems
    assert captured.success, captured.message
    assert len(captured.keypoints.objects) == len(captured.detections.detections)
