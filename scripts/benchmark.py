#!/usr/bin/env python3
"""`make bench`: speed figures for the README, all measured in one run (compare ratios, not absolutes).

Core (no ROS): model inference, the vision pipeline's own overhead (pre/post-processing), image
conversion, object point clouds for a 640x480 frame with 10 objects, obstacle segmentation.
Over DDS (separate processes): Infer round trip through the model service against local inference,
and a 30 Hz camera stream through the vision node (in-process model and remote model service): rate,
skipped frames and latency from the image stamp to the detections' arrival.
"""
from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("ROS_DOMAIN_ID", str(random.randint(101, 199)))
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from skimage import data  # noqa: E402

from ml_model_service.core import imaging, pointcloud  # noqa: E402
from ml_model_service.core.model import Model  # noqa: E402
from ml_model_service.core.scenes import Box3D, render  # noqa: E402
from ml_model_service.core.vision import Detection, VisionModel  # noqa: E402


def timed(fn: Callable[[], object], repeat: int, warmup: int = 3) -> float:
    """Median milliseconds of `fn` over `repeat` runs."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1000)
    return statistics.median(samples)


def row(what: str, ms: float, note: str = "") -> None:
    print(f"| {what} | {ms:.2f} | {note} |")


def core(repeat: int) -> dict[str, float]:
    frame = cv2.resize(data.stereo_motorcycle()[0], (640, 480))
    figures = {}
    print("\n| core, 640x480 frame | median ms | note |\n|---|---|---|")
    for name in ("ssd_mobilenet_v2_coco", "ssd_mobilenet_v2_coco_tflite", "efficientnet_lite0",
                 "efficientnet_lite0_tflite"):
        model = Model(name, providers=["cpu"])
        vision = VisionModel(model, model.labels)
        inputs, _ = vision._tensor(frame)
        infer = timed(lambda m=model, i=inputs: m.infer(i), repeat)
        run = vision.detect if vision.detections_supported else (lambda f, v=vision: v.classify(f, 5))
        total = timed(lambda r=run: r(frame), repeat)
        figures[name] = total
        row(f"{name}: inference only", infer)
        row(f"{name}: whole pipeline (pre + inference + decode)", total,
            f"overhead {total - infer:.2f} ms = {100 * (total - infer) / total:.0f} %")
    raw = np.ascontiguousarray(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)).tobytes()
    row("bgr8 bytes -> RGB array", timed(lambda: imaging.to_rgb8(
        imaging.image_array(raw, "bgr8", 640, 480, 640 * 3), "bgr8"), repeat * 5))

    objects = [Box3D((-1.6 + (i % 5) * 0.7, -0.6 + (i // 5) * 0.7, 2.0),
                     (-1.2 + (i % 5) * 0.7, -0.15 + (i // 5) * 0.7, 2.3)) for i in range(10)]
    scene = render(objects)
    dets = [Detection(i, "o", 0.9, b[0] - 8, b[1] - 8, b[2] + 8, b[3] + 8) for i, b in enumerate(scene.boxes_2d)]
    config = pointcloud.CloudConfig()
    ms = timed(lambda: pointcloud.objects_from_detections(scene.depth, scene.rgb, scene.intrinsics, dets, config),
               repeat)
    figures["objects_10"] = ms
    row("objects from 10 detections (depth 640x480, no inference)", ms, "target <= 10 ms")
    depth_u16 = np.nan_to_num(scene.depth * 1000).astype(np.uint16)
    row("16UC1 depth -> metres", timed(lambda: imaging.depth_to_metres(depth_u16, "16UC1"), repeat * 5))
    floor_scene = render(objects[:3], wall_z=None)
    row("obstacles from depth (voxel, RANSAC ground, DBSCAN)", timed(
        lambda: pointcloud.obstacles_from_depth(floor_scene.depth, floor_scene.rgb, floor_scene.intrinsics, config),
        max(5, repeat // 4)))
    return figures


def over_dds(seconds: float, repeat: int) -> None:
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image
    from vision_msgs.msg import Detection2DArray

    from ml_model_service.ros import conversions
    from ml_model_service.ros.processes import spawn_node
    from ml_model_service.ros.remote_model import BackgroundSpinner, RemoteModel

    tmp = Path(tempfile.mkdtemp(prefix="bench-"))
    common = {"execution_providers": ["cpu"]}
    procs = [spawn_node("model_service", tmp, common, namespace="/bench")[0],
             spawn_node("vision_service", tmp, common, namespace="/bench/local")[0],
             spawn_node("vision_service", tmp, {**common, "model_service": "/bench/ml_model_service"},
                        namespace="/bench/remote")[0]]
    spinner = BackgroundSpinner("bench_client")
    node = spinner.node
    try:
        deadline = time.monotonic() + 60
        remote = None
        while remote is None and time.monotonic() < deadline:
            try:
                remote = RemoteModel(node, "/bench/ml_model_service", timeout=5.0)
            except Exception:
                time.sleep(0.3)
        local = Model("ssd_mobilenet_v2_coco", providers=["cpu"])
        tensor = {local.metadata.inputs[0].name: np.zeros((1, 300, 300, 3), np.uint8)}
        print("\n| over DDS | median ms | note |\n|---|---|---|")
        t_local = timed(lambda: local.infer(tensor), repeat)
        t_remote = timed(lambda: remote.infer(tensor), repeat)
        row("Infer in this process (SSD, 300x300 uint8)", t_local)
        row("Infer through the model service (round trip)", t_remote, f"{t_remote / t_local:.2f}x local")

        frame = cv2.resize(data.stereo_motorcycle()[0], (640, 480))
        qos = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE)
        for mode in ("local", "remote"):
            pub = node.create_publisher(Image, f"/bench/{mode}/image", qos)
            arrivals: list[float] = []
            sub = node.create_subscription(
                Detection2DArray, f"/bench/{mode}/detections",
                lambda m, a=arrivals: a.append(time.time() - (m.header.stamp.sec + m.header.stamp.nanosec * 1e-9)),
                10)
            warm = time.monotonic() + 30
            while not arrivals and time.monotonic() < warm:
                pub.publish(conversions.rgb_to_image(frame, conversions.Header(
                    frame_id="bench", stamp=node.get_clock().now().to_msg())))
                time.sleep(0.1)
            arrivals.clear()
            sent, end = 0, time.monotonic() + seconds
            while time.monotonic() < end:
                pub.publish(conversions.rgb_to_image(frame, conversions.Header(
                    frame_id="bench", stamp=node.get_clock().now().to_msg())))
                sent += 1
                time.sleep(1 / 30)
            time.sleep(0.5)
            lat = sorted(arrivals)
            if lat:
                row(f"30 Hz 640x480 stream, {mode} model: latency stamp -> detections",
                    1000 * statistics.median(lat),
                    f"{len(lat) / seconds:.1f} Hz out of {sent / seconds:.1f} Hz sent; p90 "
                    f"{1000 * lat[int(0.9 * (len(lat) - 1))]:.1f} ms; the rest skipped (latest frame only)")
            node.destroy_subscription(sub)
            node.destroy_publisher(pub)
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(10)
        spinner.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=40, help="timed runs per figure")
    parser.add_argument("--seconds", type=float, default=8.0, help="length of each stream run")
    parser.add_argument("--core-only", action="store_true", help="skip the DDS measurements")
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} CPUs; onnxruntime CPU; one run, median of {args.repeat}")
    core(args.repeat)
    if not args.core_only:
        over_dds(args.seconds, args.repeat)
    return 0


if __name__ == "__main__":
    sys.exit(main())
