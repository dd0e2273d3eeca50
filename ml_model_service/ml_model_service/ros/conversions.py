"""Messages ↔ core types: tensors, metadata, images, detections, classifications, point clouds, instance
masks, RViz markers."""

from __future__ import annotations

import struct
from array import array as Array
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from diagnostic_msgs.msg import KeyValue
from geometry_msgs.msg import Point, Pose, Quaternion, Vector3
from sensor_msgs.msg import CompressedImage, Image, PointCloud2, PointField
from std_msgs.msg import ColorRGBA, Header
from vision_msgs.msg import (
    BoundingBox2D,
    BoundingBox3D,
    Classification,
    Detection2D,
    Detection2DArray,
    Detection3D,
    Detection3DArray,
    LabelInfo,
    ObjectHypothesis,
    ObjectHypothesisWithPose,
    VisionClass,
)
from visualization_msgs.msg import Marker, MarkerArray

from ml_model_service_interfaces.msg import (
    AssociatedFile,
    KeypointsArray,
    ModelMetadata,
    ObjectKeypoints,
    Tensor,
    TensorInfo,
)

from ..core import metadata, tensors
from ..core.frames import imaging
from ..core.loading.labels import Labels
from ..core.reading.vision import Classification as CoreClassification
from ..core.reading.vision import Detection

# --- tensors and metadata -------------------------------------------------------------------------


def tensor_from_msg(msg: Tensor, max_bytes: int = tensors.MAX_TENSOR_BYTES, allow_empty: bool = True) -> np.ndarray:
    """Tensor message → array (validated; raises TensorError). Model inputs pass allow_empty=False."""
    return tensors.decode_tensor(
        msg.name, msg.data_type, list(msg.shape), memoryview(msg.data), max_bytes=max_bytes, allow_empty=allow_empty
    )


def tensor_to_msg(name: str, array: np.ndarray) -> Tensor:
    data_type, shape, view = tensors.encode_tensor(array)
    msg = Tensor(name=name, data_type=data_type, shape=shape)
    msg.data = Array("B")
    msg.data.frombytes(view)  # one copy: the field's setter keeps an array.array as it is (its constructor copies)
    return msg


def _info_to_msg(spec: metadata.TensorSpec) -> TensorInfo:
    return TensorInfo(
        name=spec.name,
        description=spec.description,
        data_type=spec.data_type,
        shape=list(spec.shape),
        associated_files=[
            AssociatedFile(name=f.name, description=f.description, label_type=f.label_type)
            for f in spec.associated_files
        ],
        extra=[KeyValue(key=k, value=v) for k, v in spec.extra.items()],
    )


def _info_from_msg(msg: TensorInfo) -> metadata.TensorSpec:
    return metadata.TensorSpec(
        name=msg.name,
        data_type=msg.data_type,
        shape=[int(d) for d in msg.shape],
        description=msg.description,
        associated_files=[
            metadata.AssociatedFile(f.name, f.description, int(f.label_type)) for f in msg.associated_files
        ],
        extra={kv.key: kv.value for kv in msg.extra},
    )


_INT32 = (-(2**31), 2**31 - 1)


def metadata_to_msg(meta: metadata.ModelMetadata) -> ModelMetadata:
    """Core metadata → message, label names (sparse ids kept), embedded properties and generation."""
    labels = [(int(i), str(n)) for i, n in sorted(meta.label_names.items()) if _INT32[0] <= int(i) <= _INT32[1]]
    return ModelMetadata(
        name=meta.name,
        type=meta.type,
        description=meta.description,
        inputs=[_info_to_msg(s) for s in meta.inputs],
        outputs=[_info_to_msg(s) for s in meta.outputs],
        label_ids=[i for i, _ in labels],
        label_names=[n for _, n in labels],
        properties=[KeyValue(key=k, value=v) for k, v in meta.properties.items()],
        generation=int(meta.generation),
    )


def metadata_from_msg(msg: ModelMetadata) -> metadata.ModelMetadata:
    """Message → core metadata. Label ids and names of different lengths are refused (ValueError)."""
    if len(msg.label_ids) != len(msg.label_names):
        raise ValueError(f"metadata carries {len(msg.label_ids)} label ids but {len(msg.label_names)} names")
    return metadata.ModelMetadata(
        name=msg.name,
        type=msg.type,
        description=msg.description,
        inputs=[_info_from_msg(t) for t in msg.inputs],
        outputs=[_info_from_msg(t) for t in msg.outputs],
        label_names={int(i): str(n) for i, n in zip(msg.label_ids, msg.label_names)},
        properties={kv.key: kv.value for kv in msg.properties},
        generation=int(msg.generation),
    )


# --- images ---------------------------------------------------------------------------------------


@dataclass
class SerializedImage:
    """A sensor_msgs/Image read from its serialised form without copying the pixels: `data` is a view of the
    buffer it was taken in (read-only). Has the fields `image_to_rgb` and the worker read."""

    header: Header
    height: int
    width: int
    encoding: str
    is_bigendian: int
    step: int
    data: memoryview


def image_from_cdr(raw: bytes) -> SerializedImage | None:
    """A serialised sensor_msgs/Image (as a raw subscription takes it) read in place; None where it is not
    plain little-endian CDR (XCDR1) or does not parse — the caller then deserialises it the usual way.

    Why: deserialising copies the pixels once more into a Python message, for every frame."""
    if len(raw) < 4 or raw[:2] != b"\x00\x01":  # encapsulation: CDR, little-endian
        return None
    pos = 4

    def string() -> str:
        nonlocal pos
        (n,) = struct.unpack_from("<I", raw, pos)
        start, pos = pos + 4, pos + 4 + n
        if n == 0 or pos > len(raw) or raw[pos - 1] != 0:
            raise ValueError("bad string")
        return raw[start : pos - 1].decode()

    def align4() -> None:
        nonlocal pos
        pos = 4 + ((pos - 4 + 3) & ~3)

    try:
        sec, nanosec = struct.unpack_from("<iI", raw, pos)
        pos += 8
        frame_id = string()
        align4()
        height, width = struct.unpack_from("<II", raw, pos)
        pos += 8
        encoding = string()
        is_bigendian = raw[pos]
        pos += 1
        align4()
        step, size = struct.unpack_from("<II", raw, pos)
        pos += 8
    except (struct.error, ValueError, IndexError):  # UnicodeDecodeError is a ValueError
        return None
    if pos + size > len(raw):
        return None
    header = Header(frame_id=frame_id)
    header.stamp.sec, header.stamp.nanosec = sec, nanosec
    return SerializedImage(header, height, width, encoding, is_bigendian, step, memoryview(raw)[pos : pos + size])


def _pixels(msg: Image | SerializedImage, max_pixels: int | None) -> np.ndarray:
    """The message's pixel array as its encoding lays it out (checked against its size fields and `max_pixels`)."""
    return imaging.image_array(
        memoryview(msg.data),
        msg.encoding,
        msg.width,
        msg.height,
        msg.step,
        bool(msg.is_bigendian),
        max_pixels=max_pixels,
    )


def image_to_rgb(msg: Image | SerializedImage, max_pixels: int | None = imaging.MAX_PIXELS) -> np.ndarray:
    """sensor_msgs/Image (any supported colour/mono encoding) → RGB uint8; raises ImageError (also for
    images above `max_pixels`, the vision node's max_image_pixels)."""
    return imaging.to_rgb8(_pixels(msg, max_pixels), msg.encoding)


def compressed_to_rgb(
    msg: CompressedImage, max_pixels: int | None = imaging.MAX_PIXELS, budget: imaging.DecodeBudget | None = None
) -> np.ndarray:
    """sensor_msgs/CompressedImage (JPEG/PNG) → RGB uint8; the header's size is checked before decoding (against
    `max_pixels`, what the bytes can encode, and the decode `budget` when given)."""
    return imaging.decode_compressed(memoryview(msg.data), msg.format, max_pixels=max_pixels, budget=budget)


def depth_to_metres(msg: Image, unit_scale: float = 0.0, max_pixels: int | None = imaging.MAX_PIXELS) -> np.ndarray:
    """Depth image (16UC1 mm, 32FC1 m) → float32 metres, NaN where invalid; raises ImageError."""
    return imaging.depth_to_metres(_pixels(msg, max_pixels), msg.encoding, unit_scale)


def rgb_to_image(rgb: np.ndarray, header: Header) -> Image:
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    h, w = rgb.shape[:2]
    return Image(header=header, height=h, width=w, encoding="rgb8", is_bigendian=0, step=w * 3, data=rgb.tobytes())


def is_empty_image(msg: Image) -> bool:
    return msg.width == 0 and msg.height == 0 and len(msg.data) == 0 and not msg.encoding


# --- vision results -------------------------------------------------------------------------------


def _class_id(index: int, name: str, use_names: bool) -> str:
    return name if use_names else str(int(index))


def _hypothesis(index: int, name: str, score: float, use_names: bool) -> ObjectHypothesisWithPose:
    hyp = ObjectHypothesisWithPose()
    hyp.hypothesis = ObjectHypothesis(class_id=_class_id(index, name, use_names), score=float(score))
    return hyp


def detections_to_msg(dets: Sequence[Detection], header: Header, use_names: bool = True) -> Detection2DArray:
    out = Detection2DArray(header=header)
    for d in dets:
        det = Detection2D(header=header, id=d.id)
        det.results = [_hypothesis(d.class_index, d.class_name, d.confidence, use_names)]
        bbox = BoundingBox2D()
        if d.rotated is not None:  # oriented box: centre, rotated size and theta (radians)
            cx, cy, sx, sy, theta = d.rotated
            bbox.center.position.x, bbox.center.position.y, bbox.center.theta = float(cx), float(cy), float(theta)
            bbox.size_x, bbox.size_y = float(sx), float(sy)
        else:
            bbox.center.position.x = (d.x_min + d.x_max) / 2.0
            bbox.center.position.y = (d.y_min + d.y_max) / 2.0
            bbox.size_x = d.x_max - d.x_min
            bbox.size_y = d.y_max - d.y_min
        det.bbox = bbox
        out.detections.append(det)
    return out


def keypoints_to_msg(
    dets: Sequence[Detection], header: Header, names: Sequence[str] = (), lifted: Sequence | None = None
) -> KeypointsArray:
    """A pose model's keypoints, one entry per detection in `detections` order (`lifted`: their 3D points)."""
    out = KeypointsArray(header=header, keypoint_names=list(names))
    for i, d in enumerate(dets):
        kpts = d.keypoints if d.keypoints is not None else np.zeros((0, 3))
        entry = ObjectKeypoints(detection_index=i, detection_id=d.id)
        entry.x, entry.y, entry.score = (kpts[:, c].astype(np.float32).tolist() for c in range(3))
        points = lifted[i] if lifted is not None and i < len(lifted) else None
        if points is not None:
            entry.points_3d = [Point(x=float(x), y=float(y), z=float(z)) for x, y, z in points]
        out.objects.append(entry)
    return out


def classifications_to_msg(
    results: Sequence[CoreClassification], header: Header, use_names: bool = True
) -> Classification:
    return Classification(
        header=header,
        results=[
            ObjectHypothesis(class_id=_class_id(c.class_index, c.class_name, use_names), score=float(c.confidence))
            for c in results
        ],
    )


def label_info_msg(labels: Labels | None, header: Header, threshold: float) -> LabelInfo:
    class_map = [
        VisionClass(class_id=int(i), class_name=n)
        for i, n in (labels.names.items() if labels else [])
        if 0 <= int(i) < 65535
    ]
    return LabelInfo(header=header, class_map=class_map, threshold=float(threshold))


def _orientation(obj) -> Quaternion:
    x, y, z, w = getattr(obj, "orientation", (0.0, 0.0, 0.0, 1.0))
    return Quaternion(x=float(x), y=float(y), z=float(z), w=float(w))


def detections3d_to_msg(objects: Sequence, header: Header, use_names: bool = True) -> Detection3DArray:
    """Objects (core.frames.pointcloud.Object3D) → Detection3DArray: centre = mean of points, size = extents."""
    out = Detection3DArray(header=header)
    for obj in objects:
        det = Detection3D(header=header, id=getattr(obj, "id", ""))
        hyp = _hypothesis(obj.class_index, obj.class_name, obj.confidence, use_names)
        cx, cy, cz = (float(v) for v in obj.centre)
        hyp.pose.pose = Pose(position=Point(x=cx, y=cy, z=cz), orientation=_orientation(obj))
        det.results = [hyp]
        sx, sy, sz = (float(v) for v in obj.size)
        det.bbox = BoundingBox3D(
            center=Pose(position=Point(x=cx, y=cy, z=cz), orientation=_orientation(obj)), size=Vector3(x=sx, y=sy, z=sz)
        )
        out.detections.append(det)
    return out


def instance_masks_to_msg(image: np.ndarray, header: Header) -> Image:
    """uint16 (H, W) instance image (index + 1 of the detection, 0 = background) → mono16 Image."""
    image = np.ascontiguousarray(image, dtype="<u2")
    h, w = image.shape
    return Image(header=header, height=h, width=w, encoding="mono16", is_bigendian=0, step=w * 2, data=image.tobytes())


def class_map_to_msg(classes: np.ndarray, header: Header) -> Image:
    """A class map (H, W) → mono8 (uint8: up to 256 classes) or mono16 Image."""
    wide = classes.dtype.itemsize > 1
    image = np.ascontiguousarray(classes, dtype="<u2" if wide else np.uint8)
    h, w = image.shape
    encoding, step = ("mono16", w * 2) if wide else ("mono8", w)
    return Image(header=header, height=h, width=w, encoding=encoding, is_bigendian=0, step=step, data=image.tobytes())


def class_map_from_msg(msg: Image) -> np.ndarray:
    """A mono8 / mono16 class map Image → (H, W) uint8 / uint16."""
    if msg.encoding not in ("mono8", "mono16"):
        raise ValueError(f"a class map must be mono8 or mono16, got {msg.encoding!r}")
    dtype = np.uint8 if msg.encoding == "mono8" else (">u2" if msg.is_bigendian else "<u2")
    width = msg.step // np.dtype(dtype).itemsize
    array = np.frombuffer(bytes(msg.data), dtype=dtype, count=width * msg.height).reshape(msg.height, width)
    return array[:, : msg.width]


def instance_masks_from_msg(msg: Image) -> np.ndarray:
    """mono16 Image written by `instance_masks_to_msg` → uint16 (H, W)."""
    if msg.encoding != "mono16" or msg.step != msg.width * 2:
        raise ValueError(f"instance masks must be mono16 with step = 2 x width, got {msg.encoding!r} step {msg.step}")
    dtype = ">u2" if msg.is_bigendian else "<u2"
    return np.frombuffer(bytes(msg.data), dtype=dtype, count=msg.width * msg.height).reshape(msg.height, msg.width)


def _rotate(q: Sequence[float], v: Sequence[float]) -> tuple[float, float, float]:
    """Vector `v` turned by unit quaternion `q` (x, y, z, w)."""
    from ..core.frames.pointcloud import RigidTransform

    x, y, z, w = (float(c) for c in q)
    turned = RigidTransform((0.0, 0.0, 0.0), (x, y, z, w)).matrix @ np.asarray(v)
    return float(turned[0]), float(turned[1]), float(turned[2])


def marker_id(obj, index: int) -> int:
    """A marker id per object: its tracking id when it has one (stable across frames), else its index."""
    track = getattr(obj, "id", "")
    return int(track) if str(track).isdigit() and int(track) < 2**31 else index


def markers_to_msg(
    objects: Sequence,
    header: Header,
    use_names: bool = True,
    colour: Callable[[int], tuple[int, int, int]] | None = None,
) -> MarkerArray:
    """3D objects → MarkerArray for RViz: a DELETEALL first (so objects gone since the last frame vanish),
    then per object a translucent CUBE (namespace `objects`) and a TEXT_VIEW_FACING label above it (namespace
    `labels`: class, score, and `#id` when tracking); marker ids = tracking ids when tracking."""
    out = MarkerArray()
    clear = Marker(header=header, action=Marker.DELETEALL)
    out.markers.append(clear)
    for index, obj in enumerate(objects):
        mid = marker_id(obj, index)
        rgb = colour(obj.class_index) if colour else (40, 200, 80)
        cx, cy, cz = (float(v) for v in obj.centre)
        sx, sy, sz = (max(float(v), 0.01) for v in obj.size)
        cube = Marker(header=header, ns="objects", id=mid, type=Marker.CUBE, action=Marker.ADD)
        cube.pose = Pose(position=Point(x=cx, y=cy, z=cz), orientation=_orientation(obj))
        cube.scale = Vector3(x=sx, y=sy, z=sz)
        cube.color = ColorRGBA(r=rgb[0] / 255.0, g=rgb[1] / 255.0, b=rgb[2] / 255.0, a=0.4)
        text = Marker(header=header, ns="labels", id=mid, type=Marker.TEXT_VIEW_FACING, action=Marker.ADD)
        # Above the box: -y of the camera's optical frame (y points down), turned with the box.
        up = _rotate(getattr(obj, "orientation", (0.0, 0.0, 0.0, 1.0)), (0.0, -(sy / 2.0 + 0.08), 0.0))
        text.pose = Pose(position=Point(x=cx + up[0], y=cy + up[1], z=cz + up[2]), orientation=Quaternion(w=1.0))
        text.scale = Vector3(z=0.08)
        text.color = ColorRGBA(r=1.0, g=1.0, b=1.0, a=1.0)
        name = obj.class_name if use_names else str(int(obj.class_index))
        track = getattr(obj, "id", "")
        text.text = f"{'#' + track + ' ' if track else ''}{name} {obj.confidence:.2f}"
        out.markers += [cube, text]
    return out


# --- point clouds ---------------------------------------------------------------------------------

_CLOUD_DTYPE = np.dtype([("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("rgb", "<f4"), ("object", "<u4")])


def _cloud_fields(id_field: str) -> list[PointField]:
    return [
        PointField(name="x", offset=0, datatype=PointField.FLOAT32, count=1),
        PointField(name="y", offset=4, datatype=PointField.FLOAT32, count=1),
        PointField(name="z", offset=8, datatype=PointField.FLOAT32, count=1),
        PointField(name="rgb", offset=12, datatype=PointField.FLOAT32, count=1),
        PointField(name=id_field, offset=16, datatype=PointField.UINT32, count=1),
    ]


def cloud_to_msg(
    points: np.ndarray,
    colours: np.ndarray | None,
    object_ids: np.ndarray | None,
    header: Header,
    id_field: str = "object",
) -> PointCloud2:
    """(N, 3) metres + (N, 3) uint8 RGB + (N,) indices → PointCloud2 (x, y, z, rgb and the indices as `id_field`:
    `object` for objects' clouds, `class` for a class map's points)."""
    n = len(points)
    cloud = np.zeros(n, dtype=_CLOUD_DTYPE)
    if n:
        cloud["x"], cloud["y"], cloud["z"] = points[:, 0], points[:, 1], points[:, 2]
        if colours is not None:
            c = colours.astype(np.uint32)
            cloud["rgb"] = ((c[:, 0] << 16) | (c[:, 1] << 8) | c[:, 2]).view(np.float32)
        if object_ids is not None:
            cloud["object"] = object_ids
    return PointCloud2(
        header=header,
        height=1,
        width=n,
        fields=_cloud_fields(id_field),
        is_bigendian=False,
        point_step=_CLOUD_DTYPE.itemsize,
        row_step=_CLOUD_DTYPE.itemsize * n,
        data=cloud.tobytes(),
        is_dense=True,
    )


def cloud_from_msg(msg: PointCloud2) -> np.ndarray:
    """PointCloud2 written by `cloud_to_msg` → structured array (x, y, z, rgb and its index field)."""
    dtype = np.dtype([*_CLOUD_DTYPE.descr[:4], (msg.fields[4].name if len(msg.fields) > 4 else "object", "<u4")])
    return np.frombuffer(bytes(msg.data), dtype=dtype, count=msg.width * msg.height)
