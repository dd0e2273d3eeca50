"""Instance masks, RViz markers and tracking ids from the vision node over real DDS (the node in its own
process): a designed YOLOv8-seg graph sees a ray-cast thin frame in front of a wall; `instance_masks`
numbers the frame's pixels like `detections`, the object's cloud keeps to the object, `object_markers` shows
it as a CUBE + TEXT and clears it when it is gone, and `~/capture_all` returns the masks when asked.
"""

from __future__ import annotations

import numpy as np
import pytest
from rcl_interfaces.srv import GetParameters
from sensor_msgs.msg import Image, PointCloud2
from test_byom_layouts import NCHW, graph, grid, raw_v8, ultralytics_props
from vision_msgs.msg import Detection2DArray, Detection3DArray
from visualization_msgs.msg import Marker, MarkerArray

from ml_model_service.core.reading import masks
from ml_model_service.ros import conversions
from ml_model_service.ros.remote_model import call
from ml_model_service_dev.harness import scenes
from ml_model_service_dev.harness.camera import Camera
from ml_model_service_dev.harness.messages import camera_info_msg, depth_msg, image_msg
from ml_model_service_dev.harness.waits import wait_for
from ml_model_service_interfaces.srv import CaptureAll, GetProperties

from conftest import Collector

PAD = 80  # 640x480 camera letterboxed into the 640x640 input


def seg_model(tmp_path, thin: scenes.ThinObject):
    """A YOLOv8-seg graph that reports the thin object with its true pixels as prototype 0."""
    canvas = np.zeros((640, 640), bool)
    canvas[PAD : PAD + 480] = thin.mask
    cover = canvas.reshape(160, 4, 160, 4).mean(axis=(1, 3))
    protos = np.zeros((1, 32, 160, 160), np.float32)
    protos[0, 0] = np.where(cover > 0.5, 12.0, -12.0)
    extra = np.zeros((32, grid(640)), np.float32)
    extra[0, 0] = 1.0
    x0, y0, x1, y1 = thin.box
    out = raw_v8(objects=[((x0, y0 + PAD, x1, y1 + PAD), 0, 0.9)], extra=extra)
    return graph(
        tmp_path / "thin_seg.onnx", NCHW, {"output0": out, "output1": protos}, ultralytics_props(task="segment")
    )


@pytest.fixture
def camera(spinner):
    cam = Camera(spinner.node, "/seg")
    yield cam
    cam.close()


def start(start_node, spinner, model_path, **params):
    proc = start_node(
        "vision_service",
        {
            "execution_providers": ["cpu"],
            "use_depth": True,
            "model_path": str(model_path),
            "allowed_paths": [str(model_path.parent)],
            **params,
        },
        namespace="/seg",
    )
    props = spinner.node.create_client(GetProperties, "/seg/vision_service/get_properties")
    wait_for(lambda: props.wait_for_service(0.5) and call(props, GetProperties.Request(), 5.0), 30, what="vision node")
    assert proc.alive(), proc.log()
    return proc


def test_masks_markers_and_capture_all_over_dds(tmp_path, start_node, spinner, camera):
    thin = scenes.thin_object("frame")
    s = thin.scene
    start(start_node, spinner, seg_model(tmp_path, thin))
    dets = Collector(spinner.node, Detection2DArray, "/seg/detections")
    mask_msgs = Collector(spinner.node, Image, "/seg/instance_masks")
    objects = Collector(spinner.node, Detection3DArray, "/seg/objects")
    points = Collector(spinner.node, PointCloud2, "/seg/object_points")
    markers = Collector(spinner.node, MarkerArray, "/seg/object_markers")
    camera.show(image_msg(s.rgb, "optical"), depth_msg(s.depth, "32FC1"), camera_info_msg(s.intrinsics))

    # instance_masks: mono16, the image's size and header, pixel = index + 1 of the detection.
    m = wait_for(lambda: mask_msgs.messages, 30, what="instance_masks")[-1]
    assert (m.encoding, m.width, m.height, m.header.frame_id) == ("mono16", 640, 480, "optical")
    image = conversions.instance_masks_from_msg(m)
    assert set(np.unique(image)) == {0, 1}
    assert masks.iou(image == 1, thin.mask) > 0.85
    stamps = {(d.header.stamp.sec, d.header.stamp.nanosec): d for d in dets.messages}
    same = stamps.get((m.header.stamp.sec, m.header.stamp.nanosec))
    assert same is not None and len(same.detections) == 1  # one detection: pixel value 1 is detections[0]

    # The object's cloud is the frame's own pixels, not the wall seen through it (at 2.2 m).
    cloud = conversions.cloud_from_msg(
        wait_for(lambda: [p for p in points.messages if p.width], 20, what="object_points")[-1]
    )
    xyz = np.column_stack([cloud["x"], cloud["y"], cloud["z"]]).astype(np.float64)
    assert thin.off_object(xyz) <= 0.02 * len(xyz), (thin.off_object(xyz), len(xyz))
    obj = wait_for(lambda: [o for o in objects.messages if o.detections], 10, what="objects")[-1].detections[0]
    assert abs(obj.bbox.center.position.z - 1.5) < 0.05

    # object_markers: DELETEALL, then a CUBE and a TEXT per object, at the object's box.
    arr = wait_for(lambda: [a for a in markers.messages if len(a.markers) == 3], 20, what="object_markers")[-1]
    clear, cube, text = arr.markers
    assert clear.action == Marker.DELETEALL
    assert (cube.type, cube.ns, cube.action) == (Marker.CUBE, "objects", Marker.ADD)
    assert (text.type, text.ns, text.id) == (Marker.TEXT_VIEW_FACING, "labels", cube.id)
    assert cube.header.frame_id == "optical" and "person" in text.text
    assert abs(cube.pose.position.z - 1.5) < 0.05 and abs(cube.scale.x - 0.8) < 0.05

    # capture_all returns the masks when asked, with the detections they index.
    client = spinner.node.create_client(CaptureAll, "/seg/vision_service/capture_all")
    r = call(client, CaptureAll.Request(return_instance_masks=True), 20.0)
    assert r.success, r.message
    assert len(r.detections.detections) == 1 and r.instance_masks.encoding == "mono16"
    assert masks.iou(conversions.instance_masks_from_msg(r.instance_masks) == 1, thin.mask) > 0.85
    r = call(client, CaptureAll.Request(return_detections=True), 20.0)
    assert r.success and r.instance_masks.width == 0  # not asked: not sent

    # The object gone (no valid depth): the markers are cleared (a DELETEALL alone).
    empty = np.full_like(s.depth, np.nan)
    camera.show(image_msg(s.rgb, "optical"), depth_msg(empty, "32FC1"), camera_info_msg(s.intrinsics))
    n = len(markers.messages)
    cleared = wait_for(lambda: [a for a in markers.messages[n:] if len(a.markers) == 1], 20, what="cleared")[-1]
    assert cleared.markers[0].action == Marker.DELETEALL


def test_capture_all_refuses_masks_from_a_detector_without_them(tmp_path, start_node, spinner, camera):
    thin = scenes.thin_object("frame")
    x0, y0, x1, y1 = thin.box
    path = graph(
        tmp_path / "det.onnx",
        NCHW,
        {"output0": raw_v8(objects=[((x0, y0 + PAD, x1, y1 + PAD), 0, 0.9)])},
        ultralytics_props(),
    )
    proc = start(start_node, spinner, path, use_depth=False)
    masks_seen = Collector(spinner.node, Image, "/seg/instance_masks")
    dets = Collector(spinner.node, Detection2DArray, "/seg/detections")
    camera.show(image_msg(thin.scene.rgb, "optical"))
    wait_for(lambda: dets.messages, 30, what="detections")
    client = spinner.node.create_client(CaptureAll, "/seg/vision_service/capture_all")
    r = call(client, CaptureAll.Request(return_instance_masks=True), 20.0)
    assert not r.success and "segmentation model" in r.message
    assert not masks_seen.messages  # a detector publishes no instance_masks
    assert proc.alive()


def _has_parameter(spinner, name: str) -> bool:
    client = spinner.node.create_client(GetParameters, "/seg/vision_service/get_parameters")
    r = call(client, GetParameters.Request(names=[name]), 10.0)
    return bool(r and r.values and r.values[0].type != 0)


def test_tracking_ids_over_dds(tmp_path, start_node, spinner, camera):
    """With tracking on, the detection and its 3D object carry the same id, frame after frame."""
    thin = scenes.thin_object("frame")
    s = thin.scene
    start(start_node, spinner, seg_model(tmp_path, thin), tracking=True)
    assert _has_parameter(spinner, "tracking")
    dets = Collector(spinner.node, Detection2DArray, "/seg/detections")
    objects = Collector(spinner.node, Detection3DArray, "/seg/objects")
    markers = Collector(spinner.node, MarkerArray, "/seg/object_markers")
    camera.show(image_msg(s.rgb, "optical"), depth_msg(s.depth, "32FC1"), camera_info_msg(s.intrinsics))
    got = wait_for(lambda: [d for d in dets.messages if d.detections][3:], 30, what="detections")
    ids = {d.detections[0].id for d in got}
    assert len(ids) == 1 and ids != {""}
    obj = wait_for(lambda: [o for o in objects.messages if o.detections], 10, what="objects")[-1]
    assert obj.detections[0].id in ids
    arr = wait_for(lambda: [a for a in markers.messages if len(a.markers) == 3], 10, what="markers")[-1]
    assert str(arr.markers[1].id) in ids and f"#{arr.markers[1].id}" in arr.markers[2].text


def test_rviz_config_shows_the_markers_masks_and_points():
    from pathlib import Path

    import yaml

    config = yaml.safe_load((Path(__file__).parents[1] / "config" / "vision.rviz").read_text())
    topics = {
        d["Class"]: d.get("Topic", {}).get("Value")
        for d in config["Visualization Manager"]["Displays"]
        if d["Class"] != "rviz_default_plugins/Image"
    }
    assert topics["rviz_default_plugins/MarkerArray"].endswith("/object_markers")
    assert topics["rviz_default_plugins/PointCloud2"].endswith("/object_points")
    images = [
        d["Topic"]["Value"]
        for d in config["Visualization Manager"]["Displays"]
        if d["Class"] == "rviz_default_plugins/Image"
    ]
    assert any(t.endswith("/instance_masks") for t in images) and any(t.endswith("/debug_image") for t in images)
