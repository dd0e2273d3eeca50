"""Bring your own model through the nodes: the same exported layouts give the same objects from the vision
node (model in process, or behind a model service on the ROS graph) as from `ml_model_cli`."""

from __future__ import annotations

import json
import subprocess
import sys

import cv2
import numpy as np
from test_byom_layouts import DYNAMIC, NCHW, end2end_rows, graph, grid, raw_v8, ultralytics_props

from ml_model_service.ros.remote_model import call
from ml_model_service_dev.harness.messages import image_msg
from ml_model_service_dev.harness.waits import wait_for
from ml_model_service_interfaces.srv import GetDetections, GetProperties

IMAGE = np.full((720, 1280, 3), 90, np.uint8)


def detections(msg) -> list[tuple[str, float, list[float]]]:
    out = []
    for d in msg.detections:
        c = d.bbox.center.position
        out.append(
            (
                d.results[0].hypothesis.class_id,
                round(d.results[0].hypothesis.score, 3),
                [c.x - d.bbox.size_x / 2, c.y - d.bbox.size_y / 2, c.x + d.bbox.size_x / 2, c.y + d.bbox.size_y / 2],
            )
        )
    return sorted(out, key=lambda d: -d[1])


def cli_detections(model: str, image_path: str) -> list[tuple[str, float, list[float]]]:
    out = subprocess.run(
        [sys.executable, "-m", "ml_model_service", "detect", "--model", model, image_path],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    return [
        (d["class_name"], round(d["confidence"], 3), [d["x_min"], d["y_min"], d["x_max"], d["y_max"]])
        for d in json.loads(out.stdout)["detections"]
    ]


def node_detections(start_node, spinner, namespace: str, params: dict) -> list:
    proc = start_node("vision_service", {"execution_providers": ["cpu"], **params}, namespace=namespace)
    props = spinner.node.create_client(GetProperties, f"{namespace}/vision_service/get_properties")

    def ready():
        assert proc.alive(), proc.log()
        r = call(props, GetProperties.Request(), 5.0) if props.wait_for_service(0.5) else None
        return r if r and r.detections_supported else None

    wait_for(ready, 40, interval=0.3, what=f"{namespace} vision node ready")
    client = spinner.node.create_client(GetDetections, f"{namespace}/vision_service/get_detections")
    r = call(client, GetDetections.Request(image=image_msg(IMAGE, "byom")), 15.0)
    assert r.success, r.message
    return detections(r.detections)


def same(a: list, b: list) -> None:
    assert [(n, s) for n, s, _ in a] == [(n, s) for n, s, _ in b], (a, b)
    for (_, _, x), (_, _, y) in zip(a, b):
        np.testing.assert_allclose(x, y, atol=0.2)  # the CLI rounds to 0.1 px


def test_dynamic_yolo_and_end_to_end_models_in_the_node_match_the_cli(tmp_path, start_node, spinner):
    objects = [((50, 100, 150, 200), 1, 0.9), ((200, 60, 300, 140), 2, 0.7)]
    dynamic = graph(
        tmp_path / "dynamic.onnx", DYNAMIC, {"output0": raw_v8(objects, grid(320))}, ultralytics_props(imgsz=(320, 320))
    )
    e2e = graph(tmp_path / "yolo26.onnx", NCHW, {"output0": end2end_rows()}, ultralytics_props(end2end=True))
    image_path = str(tmp_path / "grey.png")
    cv2.imwrite(image_path, IMAGE)
    allowed = {"allowed_paths": [str(tmp_path)]}
    for i, path in enumerate((dynamic, e2e)):
        expected = cli_detections(str(path), image_path)
        assert len(expected) >= 2
        got = node_detections(start_node, spinner, f"/byom{i}", {"model_path": str(path), **allowed})
        same(got, expected)
    # Behind a model service the model's own metadata (imgsz 320) travels with it: the same objects.
    start_node(
        "model_service",
        {"model_path": str(dynamic), "execution_providers": ["cpu"], **allowed},
        namespace="/byom_models",
    )
    got = node_detections(start_node, spinner, "/byom_remote", {"model_service": "/byom_models/ml_model_service"})
    same(got, cli_detections(str(dynamic), image_path))


def test_refused_model_reports_tensors_and_option_through_the_node(tmp_path, start_node, spinner):
    namespace = "/byom_refused"
    path = graph(tmp_path / "e2e_bare.onnx", NCHW, {"output0": end2end_rows()})
    proc = start_node(
        "vision_service",
        {"execution_providers": ["cpu"], "model_path": str(path), "allowed_paths": [str(tmp_path)]},
        namespace=namespace,
    )
    client = spinner.node.create_client(GetDetections, f"{namespace}/vision_service/get_detections")
    wait_for(lambda: client.wait_for_service(0.5), 30, what="get_detections")
    r = call(client, GetDetections.Request(image=image_msg(IMAGE, "x")), 15.0)
    assert not r.success and "box_format" in r.message and "output output0: float32 [1, 300, 6]" in r.message
    assert proc.alive()
