"""Real semantic-segmentation exports against their framework's own answer on photos: torchvision's LRASPP and
DeepLabV3 (MobileNetV3) exported with `torch.onnx.export` (and LRASPP with the argmax in the graph), and a Hugging
Face SegFormer saved with its config and image processor beside its ONNX file (exporters/make_segmentation.py of
the development package, in the exporters environment; random weights calibrated so the maps depend on the
photo). The reference is torchvision's logits upsampled and argmax-ed, and Hugging Face's image processor with
`post_process_semantic_segmentation`; ours comes through `ml_model_cli segment` and through the node over DDS.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from rclpy.qos import QoSProfile
from sensor_msgs.msg import Image

from ml_model_service.ros import conversions
from ml_model_service.ros.remote_model import call
from ml_model_service_dev.harness.camera import Camera
from ml_model_service_dev.harness.messages import image_msg
from ml_model_service_dev.harness.segmentation_exports import SegExport, segmentation_export
from ml_model_service_dev.harness.waits import wait_for
from ml_model_service_interfaces.srv import GetProperties

from conftest import Collector

#: The normalisation torchvision's segmentation weights use (their transforms), as the docs name it.
TORCHVISION_OPTIONS = ("--input_mean", "0.485,0.456,0.406", "--input_std", "0.229,0.224,0.225")
#: Pixel agreement with the framework's map: on photos at the model's input size (no resampling differs), and
#: on photos of other sizes resized by OpenCV where the image processor resizes with antialiasing (SegFormer).
SAME_INPUT, OTHER_RESIZE = 0.995, 0.94


def segment(model: Path, photos: list[Path], out: Path, *options: str) -> list[np.ndarray]:
    """Our class maps of the photos through `ml_model_cli segment`."""
    done = subprocess.run(
        [sys.executable, "-m", "ml_model_service", "segment", "--model", str(model), "--out", str(out), *options]
        + [str(p) for p in photos],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    return [cv2.imread(line["segmentation"], cv2.IMREAD_UNCHANGED) for line in lines]


def agreement(ours: np.ndarray, reference: np.ndarray) -> float:
    assert ours.shape == reference.shape
    return float((ours.astype(np.int64) == reference).mean())


@pytest.mark.parametrize("name", ["lraspp", "deeplabv3", "lraspp-argmax"])
def test_torchvision_segmenters_match_torchvision(name, tmp_path):
    e = segmentation_export(name)
    maps = segment(e.path, e.photos, tmp_path, *TORCHVISION_OPTIONS)
    shares = [agreement(m, e.reference(i)) for i, m in enumerate(maps)]
    assert min(shares) >= SAME_INPUT, shares
    classes = [len(np.unique(e.reference(i))) for i in range(len(maps))]
    assert min(classes) >= 4, classes  # the maps have image-dependent regions


def test_segformer_folder_is_read_with_no_option(tmp_path):
    """The folder as the model: config.json's id2label and preprocessor_config.json's size and normalisation."""
    e = segmentation_export("segformer")
    maps = segment(e.folder, e.photos, tmp_path / "at-512")
    shares = [agreement(m, e.reference(i)) for i, m in enumerate(maps)]
    assert min(shares) >= SAME_INPUT, shares
    native = segment(e.folder, e.native_photos, tmp_path / "native")
    native_shares = [agreement(m, e.native_reference(i)) for i, m in enumerate(native)]
    assert min(native_shares) >= OTHER_RESIZE, native_shares
    out = subprocess.run(
        [sys.executable, "-m", "ml_model_service", "metadata", str(e.folder)], capture_output=True, text=True
    )
    vision = json.loads(out.stdout)["vision"]
    assert vision["role"] == "segmenter" and vision["labels"] == len(e.labels), vision
    assert vision["labels_from"].endswith("config.json#id2label")
    assert vision["read_from"]["normalisation"] == "preprocessor_config.json", vision


def _start(start_node, spinner, e: SegExport, namespace: str, params: dict):
    folder = e.folder if e.path.is_dir() else e.path.parent
    proc = start_node(
        "vision_service",
        {"model_path": str(e.path), "allowed_paths": [str(folder)], "execution_providers": ["cpu"], **params},
        namespace=namespace,
    )
    props = spinner.node.create_client(GetProperties, f"{namespace}/vision_service/get_properties")
    r = wait_for(lambda: props.wait_for_service(0.5) and call(props, GetProperties.Request(), 5.0), 60, what="node")
    assert r.segmentation_supported, proc.log()
    return proc


@pytest.mark.parametrize(
    ("name", "rate", "params"),
    [
        # LRASPP at 520 on an 8 Hz camera: every frame (its run is ~40 ms on 2 cores, ~55 ms with the class map and
        # the message; at 10 Hz a CI run on Jazzy answered 0.88 of the frames while the test's own publisher and
        # subscriber shared the two cores)
        ("lraspp", 8.0, {"input_mean": [0.485, 0.456, 0.406], "input_std": [0.229, 0.224, 0.225]}),
        # SegFormer-b0 at 512 takes ~175 ms a run on 2 cores (10 Hz is above this CPU's bound; at 4 Hz, 190 ms of
        # pipeline a 250 ms frame, the test's own publisher and subscriber on the same cores cost frames): 2.5 Hz
        ("segformer", 2.5, {}),
    ],
)
def test_node_publishes_the_frameworks_map_for_every_frame(name, rate, params, start_node, spinner):
    e = segmentation_export(name)
    namespace = f"/{name.replace('-', '_')}"
    proc = _start(start_node, spinner, e, namespace, params)
    maps = Collector(spinner.node, Image, f"{namespace}/segmentation", QoSProfile(depth=10))
    camera = Camera(spinner.node, namespace, rate, (image_msg(e.image(0)),))
    try:
        wait_for(lambda: len(maps.messages) >= 2, 60, what="class maps")
        sent, got = len(camera.sent), len(maps.messages)
        time.sleep(max(6.0, 30 / rate))
        answered = (len(maps.messages) - got) / (len(camera.sent) - sent)
    finally:
        camera.close()
    assert answered >= 0.95, (answered, proc.log()[-2000:])
    ours = conversions.class_map_from_msg(maps.messages[-1])
    assert agreement(ours, e.reference(0)) >= SAME_INPUT
