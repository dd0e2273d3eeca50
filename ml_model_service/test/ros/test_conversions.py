"""ros/conversions.py: message <-> numpy conversions (the hand-written replacement for cv_bridge and point cloud
helpers), and RViz markers from 3D objects."""

from __future__ import annotations

import numpy as np
import pytest
from sensor_msgs.msg import Image
from std_msgs.msg import Header
from visualization_msgs.msg import Marker

from ml_model_service.core.frames.imaging import ImageError
from ml_model_service.core.loading.labels import Labels
from ml_model_service.core.reading.vision import Detection
from ml_model_service.ros import conversions


def test_padded_rows_and_big_endian_mono16():
    rgb = np.random.default_rng(0).integers(0, 255, (4, 5, 3), dtype=np.uint8)
    padded = np.zeros((4, 20), np.uint8)  # step 20 > 5 x 3: row padding
    padded[:, :15] = rgb.reshape(4, 15)
    msg = Image(height=4, width=5, encoding="rgb8", step=20, data=padded.tobytes())
    assert np.array_equal(conversions.image_to_rgb(msg), rgb)
    mono = np.arange(20, dtype=np.uint16).reshape(4, 5) * 3000
    big = Image(height=4, width=5, encoding="mono16", step=10, is_bigendian=1, data=mono.astype(">u2").tobytes())
    assert np.array_equal(conversions.image_to_rgb(big)[..., 0], (mono >> 8).astype(np.uint8))
    depth = Image(height=4, width=5, encoding="16UC1", step=10, data=mono.astype("<u2").tobytes())
    metres = conversions.depth_to_metres(depth)
    assert np.isnan(metres[0, 0]) and metres[0, 1] == pytest.approx(3.0)  # 0 is invalid; 3000 mm = 3 m
    with pytest.raises(ImageError, match="unsupported depth encoding"):
        conversions.depth_to_metres(Image(height=4, width=5, encoding="rgb8", step=15, data=bytes(60)))


def test_detections_with_names_or_indices_and_label_info():
    det = Detection(3, "motorcycle", 0.9, 10.0, 20.0, 110.0, 70.0)
    named = conversions.detections_to_msg([det], Header(frame_id="cam"), use_names=True).detections[0]
    assert named.results[0].hypothesis.class_id == "motorcycle" and named.header.frame_id == "cam"
    assert (named.bbox.center.position.x, named.bbox.center.position.y) == (60.0, 45.0)
    assert (named.bbox.size_x, named.bbox.size_y) == (100.0, 50.0)
    indexed = conversions.detections_to_msg([det], Header(), use_names=False).detections[0]
    assert indexed.results[0].hypothesis.class_id == "3"
    info = conversions.label_info_msg(Labels({0: "person", 3: "motorcycle"}), Header(), 0.5)
    assert [(c.class_id, c.class_name) for c in info.class_map] == [(0, "person"), (3, "motorcycle")]


def test_point_cloud_round_trip():
    points = np.array([[0.1, 0.2, 1.5], [-0.3, 0.0, 2.0]], np.float32)
    colours = np.array([[255, 0, 10], [1, 2, 3]], np.uint8)
    msg = conversions.cloud_to_msg(points, colours, np.array([0, 7], np.uint32), Header(frame_id="cam"))
    assert [f.name for f in msg.fields] == ["x", "y", "z", "rgb", "object"] and msg.point_step == 20
    back = conversions.cloud_from_msg(msg)
    assert np.allclose(np.column_stack((back["x"], back["y"], back["z"])), points)
    packed = back["rgb"].view(np.uint32)
    assert [(int(p) >> 16, (int(p) >> 8) & 255, int(p) & 255) for p in packed] == [(255, 0, 10), (1, 2, 3)]
    assert back["object"].tolist() == [0, 7]


def test_metadata_carries_label_names_properties_and_generation():
    from diagnostic_msgs.msg import KeyValue

    from ml_model_service.core.metadata import ModelMetadata, TensorSpec
    from ml_model_service_interfaces.msg import ModelMetadata as ModelMetadataMsg

    meta = ModelMetadata(
        "det",
        "onnx",
        inputs=[TensorSpec("images", "float32", [1, 3, -1, -1])],
        label_names={0: "person", 2: "car", 90: "toothbrush"},
        properties={"task": "detect", "stride": "32"},
        generation=2**40 + 3,
    )
    msg = conversions.metadata_to_msg(meta)
    assert list(msg.label_ids) == [0, 2, 90] and list(msg.label_names) == ["person", "car", "toothbrush"]
    back = conversions.metadata_from_msg(msg)
    assert back.label_names == meta.label_names and back.properties == meta.properties
    assert back.generation == 2**40 + 3 and back.inputs[0].shape == [1, 3, -1, -1]
    bad = ModelMetadataMsg(label_ids=[0, 1], label_names=["only one"], properties=[KeyValue(key="a", value="b")])
    with pytest.raises(ValueError, match="2 label ids but 1 names"):
        conversions.metadata_from_msg(bad)


def test_images_above_max_pixels_are_refused_before_conversion():
    from sensor_msgs.msg import CompressedImage

    big = Image(height=100, width=200, encoding="rgb8", step=600, data=bytes(600 * 100))
    assert conversions.image_to_rgb(big, max_pixels=20000).shape == (100, 200, 3)
    with pytest.raises(ImageError, match="20000 pixels is above the limit of 19999 pixels"):
        conversions.image_to_rgb(big, max_pixels=19999)
    depth = Image(height=100, width=200, encoding="16UC1", step=400, data=bytes(400 * 100))
    with pytest.raises(ImageError, match="above the limit"):
        conversions.depth_to_metres(depth, max_pixels=100)
    # a declared width x height far beyond the data: refused by size, not by a huge allocation
    liar = Image(height=2**31 - 1, width=2**31 - 1, encoding="rgb8", step=3 * (2**31 - 1), data=bytes(16))
    with pytest.raises(ImageError, match="above the limit of 50000000 pixels"):
        conversions.image_to_rgb(liar)
    import cv2

    ok, png = cv2.imencode(".png", np.zeros((300, 400, 3), np.uint8))
    compressed = CompressedImage(format="png", data=png.tobytes())
    assert conversions.compressed_to_rgb(compressed).shape == (300, 400, 3)
    with pytest.raises(ImageError, match="120000 pixels is above the limit of 1000 pixels"):
        conversions.compressed_to_rgb(compressed, max_pixels=1000)


def test_serialized_images_are_read_in_place_exactly_as_deserialised():
    from rclpy.serialization import deserialize_message, serialize_message

    rng = np.random.default_rng(3)
    for frame_id in ("", "c", "cam", "camera", "camera_colour_optical_frame", "kamera_ü"):
        for encoding, width, height, step, big in (
            ("rgb8", 5, 3, 15, 0),
            ("bgr8", 4, 2, 16, 0),
            ("mono16", 3, 3, 8, 1),
            ("16UC1", 1, 1, 2, 0),
            ("rgb8", 0, 0, 0, 0),
        ):
            data = rng.integers(0, 256, step * height, dtype=np.uint8).tobytes()
            msg = Image(
                header=Header(frame_id=frame_id),
                height=height,
                width=width,
                encoding=encoding,
                is_bigendian=big,
                step=step,
                data=data,
            )
            msg.header.stamp.sec, msg.header.stamp.nanosec = -5 if big else 1_700_000_000, 999_999_999
            raw = serialize_message(msg)
            got = conversions.image_from_cdr(raw)
            ref = deserialize_message(raw, Image)
            assert got is not None, (frame_id, encoding)
            assert got.header == ref.header and bytes(got.data) == bytes(ref.data)
            assert (got.height, got.width, got.encoding, got.is_bigendian, got.step) == (
                ref.height,
                ref.width,
                ref.encoding,
                ref.is_bigendian,
                ref.step,
            )
            if width:
                assert np.array_equal(conversions.image_to_rgb(got), conversions.image_to_rgb(ref))

    raw = serialize_message(Image(encoding="rgb8", width=2, height=1, step=6, data=bytes(6)))
    assert conversions.image_from_cdr(b"\x00\x00" + raw[2:]) is None  # big-endian CDR: deserialised instead
    assert conversions.image_from_cdr(raw[:30]) is None  # truncated
    assert conversions.image_from_cdr(b"") is None and conversions.image_from_cdr(b"\x00\x01\x00\x00") is None
    bad = bytearray(raw)
    bad[12:16] = (2**31).to_bytes(4, "little")  # frame_id length beyond the buffer
    assert conversions.image_from_cdr(bytes(bad)) is None


def test_marker_ids_follow_tracking_ids_and_labels_name_them():
    from ml_model_service.core.frames.pointcloud import Object3D

    pts = np.array([[0.0, 0.0, 1.0], [0.2, 0.1, 1.3]], np.float32)
    tracked = Object3D(0, 2, "car", 0.8, pts, np.zeros((2, 3), np.uint8), id="17", detection=0)
    untracked = Object3D(1, 0, "person", 0.6, pts + 1, np.zeros((2, 3), np.uint8), detection=1)
    arr = conversions.markers_to_msg([tracked, untracked], Header(frame_id="optical"))
    assert arr.markers[0].action == Marker.DELETEALL and len(arr.markers) == 5
    cube, text = arr.markers[1:3]
    assert cube.id == text.id == 17 and text.text == "#17 car 0.80"
    np.testing.assert_allclose(
        [cube.pose.position.x, cube.pose.position.y, cube.pose.position.z], [0.1, 0.05, 1.15], atol=1e-6
    )
    np.testing.assert_allclose([cube.scale.x, cube.scale.y, cube.scale.z], [0.2, 0.1, 0.3], atol=1e-6)
    assert arr.markers[3].id == 1 and arr.markers[4].text == "person 0.60"  # index without tracking
