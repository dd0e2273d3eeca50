"""`make demo`: the suite end to end on real photographs, each part in its own process over DDS.

1. ML model service: a model service node serves the bundled SSD detector; a client prints its metadata,
   sends a photograph through ~/infer and decodes the objects from the raw output tensors.
2. Vision service: real photographs are published as a camera stream; a vision node that uses the model
   service remotely publishes detections (printed) and annotated images (written to OUT), and a second
   vision node runs the bundled classifier in its own process.
3. Object point clouds: the real Middlebury RGB-D motorcycle (colour + depth + camera_info) → the
   motorcycle's 3D box printed, its cloud saved as .ply and rendered to a .png in OUT, and its RViz markers
   (object_markers) rendered offline.
4. Instance masks: a YOLOv8-seg graph built here (no segmentation weights ship with the suite) sees a
   ray-cast thin frame in front of a wall; the node's instance_masks, debug_image (mask overlay) and
   object_markers are written to OUT, and the object's cloud from the mask is compared with the box's.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import tempfile
from pathlib import Path

import cv2
import numpy as np
from sensor_msgs.msg import Image
from vision_msgs.msg import Classification, Detection2DArray, Detection3DArray
from visualization_msgs.msg import Marker, MarkerArray

from ml_model_service.core.frames.visualize import colour_for
from ml_model_service.core.loading.labels import load_labels
from ml_model_service.ros import conversions
from ml_model_service.ros.remote_model import RemoteModel

from .harness.camera import Camera
from .harness.messages import camera_info_msg, depth_msg, image_msg
from .harness.photos import photo
from .harness.processes import spawn_node
from .harness.spinner import BackgroundSpinner
from .harness.waits import wait_for, wait_until
from .system import isolate_dds

PHOTOS = ("astronaut", "chelsea", "coffee", "motorcycle")


def part1_model_service(node) -> None:
    print("\n=== 1. ML model service: metadata and raw inference ===")
    remote = wait_for(lambda: _try(lambda: RemoteModel(node, "/demo/ml_model_service")), 60, 0.1, "the model service")
    meta = remote.metadata
    print(f"model {meta.name} ({meta.type}), {meta.outputs[0].extra.get('execution_providers')}")
    for t in meta.inputs:
        print(f"  input  {t.name}: {t.data_type} {t.shape}")
    for t in meta.outputs:
        files = ", ".join(Path(f.name).name for f in t.associated_files)
        print(f"  output {t.name}: {t.data_type} {t.shape}" + (f"  labels: {files}" if files else ""))
    labels = load_labels(meta.outputs[0].extra["labels"])
    rgb = photo("astronaut")
    _, h, w, _ = meta.inputs[0].shape
    outputs = remote.infer({meta.inputs[0].name: cv2.resize(rgb, (w, h))[None]})
    boxes, classes, scores, count = (outputs[t.name] for t in meta.outputs)
    print("objects decoded from the raw output tensors (astronaut.png):")
    for i in range(int(count[0])):
        if scores[0, i] >= 0.5:
            y0, x0, y1, x1 = boxes[0, i] * np.array([rgb.shape[0], rgb.shape[1]] * 2)
            print(
                f"  {labels.name(int(classes[0, i])):>12s} {scores[0, i]:.2f}  "
                f"box x {x0:.0f}-{x1:.0f}, y {y0:.0f}-{y1:.0f}"
            )


def _try(fn):
    try:
        return fn()
    except Exception:
        return None


def part2_vision(node, out: Path) -> None:
    print("\n=== 2. Vision service: camera stream -> vision_msgs ===")
    camera = Camera(node, "/demo/camera", streams=("image",))
    dets: list[Detection2DArray] = []
    classes: list[Classification] = []
    debug: list[Image] = []
    node.create_subscription(Detection2DArray, "/demo/camera/detections", dets.append, 10)
    node.create_subscription(Classification, "/demo/classifier/classifications", classes.append, 10)
    node.create_subscription(Image, "/demo/camera/debug_image", debug.append, 10)
    try:
        for name in PHOTOS:
            _show_photo(camera, name, out, dets, classes, debug)
    finally:
        camera.close()
    print(f"  annotated images: {out}/*_detections.png")


def _show_photo(camera: Camera, name: str, out: Path, dets: list, classes: list, debug: list) -> None:
    """One photograph on the camera until its detections, classification and debug image came; printed."""
    rgb = photo(name)
    frame_id = f"demo_{name}"
    got: dict = {}
    camera.show(image_msg(rgb, frame_id))
    wait_until(lambda: _received(got, frame_id, dets, classes, debug), 60, 0.1)
    if "det" not in got:
        print(f"  {name}: no detections received (see the logs in {out})")
        return
    found = (
        ", ".join(
            f"{d.results[0].hypothesis.class_id} {d.results[0].hypothesis.score:.2f}" for d in got["det"].detections
        )
        or "nothing"
    )
    top = got.get("cls")
    label = f"{top.results[0].class_id} {top.results[0].score:.2f}" if top and top.results else "-"
    print(f"  {name + '.png':>16s}: detections: {found}   | classifier: {label}")
    if "dbg" in got:
        m = got["dbg"]
        annotated = np.frombuffer(bytes(m.data), np.uint8).reshape(m.height, m.width, 3)
        cv2.imwrite(str(out / f"{name}_detections.png"), cv2.cvtColor(annotated, cv2.COLOR_RGB2BGR))


def _received(got: dict, frame_id: str, dets: list, classes: list, debug: list) -> bool:
    """Fill `got` with the newest detections, classification and debug image of `frame_id`; all there?"""
    for key, msgs in (("det", dets), ("cls", classes), ("dbg", debug)):
        match = [m for m in msgs if m.header.frame_id == frame_id]
        if match:
            got[key] = match[-1]
    return len(got) == 3


def render_cloud(
    points: np.ndarray,
    colours: np.ndarray,
    centre: np.ndarray,
    size: np.ndarray,
    path: Path,
    width: int = 800,
    height: int = 600,
) -> None:
    """A software render of a cloud and its box from a viewpoint 35 degrees to the side."""
    angle = np.radians(35.0)
    rot = np.array([[np.cos(angle), 0, -np.sin(angle)], [0, 1, 0], [np.sin(angle), 0, np.cos(angle)]])
    eye = centre + rot.T @ np.array([0.0, 0.0, -2.2 * float(np.linalg.norm(size))])

    def project(p):
        q = (p - eye) @ rot.T
        f = 0.9 * width
        return np.column_stack((q[:, 0] * f / q[:, 2] + width / 2, q[:, 1] * f / q[:, 2] + height / 2)), q[:, 2]

    canvas = np.full((height, width, 3), 255, np.uint8)
    uv, z = project(points)
    order = np.argsort(-z)
    for (u, v), c in zip(uv[order].astype(int), colours[order]):
        if 0 <= u < width and 0 <= v < height:
            cv2.circle(canvas, (int(u), int(v)), 2, tuple(int(x) for x in c[::-1]), -1)
    corners = centre + (np.array([[i, j, k] for i in (-0.5, 0.5) for j in (-0.5, 0.5) for k in (-0.5, 0.5)]) * size)
    cuv, _ = project(corners)
    for a in range(8):
        for b in range(a + 1, 8):
            if bin(a ^ b).count("1") == 1:
                cv2.line(canvas, tuple(cuv[a].astype(int)), tuple(cuv[b].astype(int)), (0, 0, 255), 2)
    cv2.imwrite(str(path), canvas)


def part3_objects(node, out: Path) -> None:
    import open3d as o3d

    from .harness.scenes import motorcycle_rgbd

    print("\n=== 3. Object point clouds: real RGB-D sample (Middlebury motorcycle) ===")
    rgb, depth, k = motorcycle_rgbd()
    camera = Camera(node, "/demo/camera", streams=("image", "depth", "camera_info"))
    objects: list[Detection3DArray] = []
    node.create_subscription(Detection3DArray, "/demo/camera/objects", objects.append, 10)
    clouds: list[conversions.PointCloud2] = []
    node.create_subscription(conversions.PointCloud2, "/demo/camera/object_points", clouds.append, 10)
    markers: list[MarkerArray] = []
    node.create_subscription(MarkerArray, "/demo/camera/object_markers", markers.append, 10)
    camera.show(
        image_msg(rgb, "middlebury_left"),
        depth_msg(depth, "32FC1", "middlebury_left"),
        camera_info_msg(k, "middlebury_left"),
    )
    try:
        wait_until(
            lambda: (
                [m for m in objects if m.detections]
                and [c for c in clouds if c.width]
                and [a for a in markers if len(a.markers) > 1]
            ),
            60,
            0.1,
        )
    finally:
        camera.close()
    found = [m for m in objects if m.detections]
    if not found:
        print("  no 3D objects received")
        return
    msg = found[-1]
    cloud = conversions.cloud_from_msg([c for c in clouds if c.width][-1])
    for index, det in enumerate(msg.detections):
        c, s = det.bbox.center.position, det.bbox.size
        print(
            f"  {det.results[0].hypothesis.class_id} {det.results[0].hypothesis.score:.2f}: centre "
            f"({c.x:+.2f}, {c.y:+.2f}, {c.z:.2f}) m, size {s.x:.2f} x {s.y:.2f} x {s.z:.2f} m, "
            f"{int((cloud['object'] == index).sum())} points (camera optical frame)"
        )
    names = [d.results[0].hypothesis.class_id for d in msg.detections]
    index = names.index("motorcycle") if "motorcycle" in names else 0
    det = msg.detections[index]
    mine = cloud[cloud["object"] == index]
    points = np.column_stack((mine["x"], mine["y"], mine["z"])).astype(np.float64)
    packed = mine["rgb"].view(np.uint32)
    colours = np.column_stack(((packed >> 16) & 255, (packed >> 8) & 255, packed & 255)).astype(np.uint8)
    pcd = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(points))
    pcd.colors = o3d.utility.Vector3dVector(colours / 255.0)
    o3d.io.write_point_cloud(out / "motorcycle.ply", pcd)
    c, s = det.bbox.center.position, det.bbox.size
    render_cloud(points, colours, np.array([c.x, c.y, c.z]), np.array([s.x, s.y, s.z]), out / "motorcycle_cloud.png")
    print(f"  cloud: {out / 'motorcycle.ply'}, picture: {out / 'motorcycle_cloud.png'}")
    shown = [a for a in markers if len(a.markers) > 1]
    if shown:
        save_markers(rgb, shown[-1], k, out / "motorcycle_markers.png")


class MarkerBox:
    """A CUBE marker and its TEXT label, read back from a MarkerArray (what RViz would show)."""

    def __init__(self, cube: Marker, text: Marker | None) -> None:
        p, s = cube.pose.position, cube.scale
        self.centre, self.size = np.array([p.x, p.y, p.z]), np.array([s.x, s.y, s.z])
        # The label reads "[#id ]class score" (markers_to_msg).
        words = (text.text if text is not None else "").split()
        self.id = words.pop(0)[1:] if words and words[0].startswith("#") else ""
        self.confidence = float(words.pop()) if len(words) > 1 and words[-1].replace(".", "", 1).isdigit() else 1.0
        self.class_name, self.class_index = " ".join(words), 0


def draw_markers(rgb: np.ndarray, objects: list, k) -> np.ndarray:
    """The RViz markers of 3D objects rendered offline: each object's box (a CUBE marker) as a wireframe
    projected through the intrinsics `k` (frames.pointcloud.Intrinsics), with its TEXT label (#id, class,
    score) above it; the image dimmed so the markers stand out."""
    out = (np.ascontiguousarray(rgb).astype(np.float32) * 0.55).astype(np.uint8)
    scale = max(0.4, min(out.shape[:2]) / 800.0)
    thick = max(1, int(round(2 * scale)))
    edges = [(0, 1), (1, 3), (3, 2), (2, 0), (4, 5), (5, 7), (7, 6), (6, 4), (0, 4), (1, 5), (2, 6), (3, 7)]
    for obj in objects:
        lo = np.asarray(obj.centre, np.float64) - np.asarray(obj.size, np.float64) / 2
        hi = lo + np.asarray(obj.size, np.float64)
        corners = np.array([[x, y, z] for z in (lo[2], hi[2]) for y in (lo[1], hi[1]) for x in (lo[0], hi[0])])
        z = np.maximum(corners[:, 2], 1e-3)
        uv = np.column_stack((corners[:, 0] * k.fx / z + k.cx, corners[:, 1] * k.fy / z + k.cy))
        colour = colour_for(obj.class_index)
        pts = np.round(uv).astype(np.int32)
        for a, b in edges:
            cv2.line(out, tuple(int(v) for v in pts[a]), tuple(int(v) for v in pts[b]), colour, thick, cv2.LINE_AA)
        track = getattr(obj, "id", "")
        text = f"{'#' + track + ' ' if track else ''}{obj.class_name} {obj.confidence:.2f} {obj.centre[2]:.2f} m"
        x, y = int(uv[:, 0].min()), max(int(uv[:, 1].min()) - 6, 12)
        cv2.putText(out, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thick + 2)
        cv2.putText(out, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thick)
    return out


def save_markers(rgb: np.ndarray, array: MarkerArray, k, path: Path) -> None:
    """The markers received on object_markers, rendered offline over the camera image."""
    texts = {m.id: m for m in array.markers if m.type == Marker.TEXT_VIEW_FACING}
    boxes = [MarkerBox(m, texts.get(m.id)) for m in array.markers if m.type == Marker.CUBE]
    cv2.imwrite(str(path), cv2.cvtColor(draw_markers(rgb, boxes, k), cv2.COLOR_RGB2BGR))
    kinds = sorted(
        {
            "DELETEALL" if m.action == Marker.DELETEALL else ("CUBE" if m.type == Marker.CUBE else "TEXT")
            for m in array.markers
        }
    )
    print(f"  object_markers: {len(array.markers)} markers ({', '.join(kinds)}), rendered: {path}")


def seg_graph(path: Path, mask_640: np.ndarray, box_640: tuple[int, int, int, int]) -> Path:
    """A YOLOv8-seg ONNX graph ([1, 4+1+32, 8400] + prototypes [1, 32, 160, 160]) reporting one object
    (`box_640` in the 640x640 input) whose mask is `mask_640`: a stand-in for a real -seg export."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    n = sum((640 // st) ** 2 for st in (8, 16, 32))
    head = np.zeros((1, 4 + 1 + 32, n), np.float32)
    cells = [(st, gy, gx) for st in (8, 16, 32) for gy in range(640 // st) for gx in range(640 // st)]
    head[0, 0] = [(gx + 0.5) * st for st, _, gx in cells]
    head[0, 1] = [(gy + 0.5) * st for st, gy, _ in cells]
    head[0, 2] = head[0, 3] = [st for st, _, _ in cells]
    x0, y0, x1, y1 = box_640
    head[0, :4, 0] = ((x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0)
    head[0, 4, 0], head[0, 5, 0] = 0.9, 1.0
    protos = np.zeros((1, 32, 160, 160), np.float32)
    protos[0, 0] = np.where(mask_640.reshape(160, 4, 160, 4).mean(axis=(1, 3)) > 0.5, 12.0, -12.0)
    nodes = [
        helper.make_node("ReduceSum", ["images"], ["s"], keepdims=0),
        helper.make_node("Mul", ["s", "zero"], ["z"]),
        helper.make_node("Add", ["c0", "z"], ["output0"]),
        helper.make_node("Add", ["c1", "z"], ["output1"]),
    ]
    inits = [
        numpy_helper.from_array(np.array(0.0, np.float32), "zero"),
        numpy_helper.from_array(head, "c0"),
        numpy_helper.from_array(protos, "c1"),
    ]
    g = helper.make_graph(
        nodes,
        "seg",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 640, 640])],
        [
            helper.make_tensor_value_info("output0", TensorProto.FLOAT, list(head.shape)),
            helper.make_tensor_value_info("output1", TensorProto.FLOAT, list(protos.shape)),
        ],
        inits,
    )
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    for key, value in {
        "task": "segment",
        "names": "{0: 'frame'}",
        "imgsz": "[640, 640]",
        "stride": "32",
        "author": "Ultralytics",
    }.items():
        model.metadata_props.add(key=key, value=value)
    onnx.save(model, path)
    return path


def part4_masks(node, out: Path, logs: Path) -> list[subprocess.Popen]:
    """Instance masks and markers from a segmentation model over DDS (returns the node it started)."""
    from ml_model_service.core.frames import pointcloud
    from ml_model_service.core.reading import masks
    from ml_model_service.core.reading.vision import Detection

    from .harness import scenes

    print("\n=== 4. Instance masks and RViz markers: a thin frame in front of a wall (seg model) ===")
    thin = scenes.thin_object("frame")
    s, k = thin.scene, thin.scene.intrinsics
    canvas = np.zeros((640, 640), bool)
    canvas[80:560] = thin.mask
    x0, y0, x1, y1 = thin.box
    model = seg_graph(logs / "thin_frame_seg.onnx", canvas, (x0, y0 + 80, x1, y1 + 80))
    proc = spawn_node(
        "vision_service",
        logs,
        {
            "model_path": str(model),
            "allowed_paths": [str(logs)],
            "use_depth": True,
            "always_on": True,
            "tracking": True,
        },
        namespace="/demo/seg",
    )[0]
    camera = Camera(node, "/demo/seg", streams=("image", "depth", "camera_info"))
    got: dict[str, list] = {"masks": [], "debug": [], "markers": [], "dets": []}
    node.create_subscription(Image, "/demo/seg/instance_masks", got["masks"].append, 10)
    node.create_subscription(Image, "/demo/seg/debug_image", got["debug"].append, 10)
    node.create_subscription(MarkerArray, "/demo/seg/object_markers", got["markers"].append, 10)
    node.create_subscription(Detection2DArray, "/demo/seg/detections", got["dets"].append, 10)
    camera.show(image_msg(s.rgb, "optical"), depth_msg(s.depth, "32FC1", "optical"), camera_info_msg(k, "optical"))
    try:
        wait_until(lambda: got["masks"] and got["debug"] and [a for a in got["markers"] if len(a.markers) > 1], 60, 0.1)
    finally:
        camera.close()
    if not got["masks"]:
        print("  no instance_masks received")
        return [proc]
    image = conversions.instance_masks_from_msg(got["masks"][-1])
    ids = [d.id for d in got["dets"][-1].detections] if got["dets"] else []
    print(
        f"  instance_masks: mono16 {image.shape[1]}x{image.shape[0]}, detections {np.unique(image)[1:].tolist()}"
        f" ({int((image > 0).sum())} pixels), IoU with the true frame {masks.iou(image == 1, thin.mask):.3f}"
        f"{', tracking ids ' + str(ids) if any(ids) else ''}"
    )
    tinted = np.zeros((*image.shape, 3), np.uint8)
    tinted[image > 0] = (40, 200, 255)
    cv2.imwrite(str(out / "thin_frame_instance_masks.png"), tinted)
    if got["debug"]:
        cv2.imwrite(
            str(out / "thin_frame_masks.png"),
            cv2.cvtColor(conversions.image_to_rgb(got["debug"][-1]), cv2.COLOR_RGB2BGR),
        )
    shown = [a for a in got["markers"] if len(a.markers) > 1]
    if shown:
        save_markers(s.rgb, shown[-1], k, out / "thin_frame_markers.png")
    # The gain, measured: points further than 2 cm from the frame's true surface, box cloud vs mask cloud.
    boxed = Detection(0, "frame", 0.9, x0, y0, x1, y1)
    masked = Detection(0, "frame", 0.9, x0, y0, x1, y1, mask=masks.Mask(thin.mask[y0:y1, x0:x1], x0, y0, (480, 640)))
    (b,), (m,) = (
        pointcloud.objects_from_detections(s.depth, s.rgb, k, [d], pointcloud.CloudConfig()) for d in (boxed, masked)
    )
    print(
        f"  off-object points: box {thin.off_object(b.points)}/{len(b.points)} (centre z {b.centre[2]:.2f} m: "
        f"the wall), mask {thin.off_object(m.points)}/{len(m.points)} (centre z {m.centre[2]:.2f} m)"
    )
    halves: list[np.ndarray] = []
    for name, obj in (("box", b), ("mask", m)):
        assert obj.size is not None  # set from the points when not given
        render_cloud(obj.points, obj.colours, obj.centre, obj.size, logs / f"thin_{name}.png", 560, 420)
        half = cv2.imread(str(logs / f"thin_{name}.png"))
        assert half is not None, f"render_cloud wrote no {name} picture"
        cv2.putText(half, f"cloud from the {name}", (12, 30), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (0, 0, 0), 2)
        halves.append(half)
    cv2.imwrite(str(out / "thin_frame_clouds.png"), cv2.hconcat(halves))
    print(
        f"  pictures: {out / 'thin_frame_masks.png'}, {out / 'thin_frame_instance_masks.png'}, "
        f"{out / 'thin_frame_markers.png'}, {out / 'thin_frame_clouds.png'}"
    )
    return [proc]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="out/demo", help="output folder")
    args = parser.parse_args()
    isolate_dds()  # before rclpy starts
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    logs = Path(tempfile.mkdtemp(prefix="demo-logs-", dir=out))
    procs: list[subprocess.Popen] = []
    spinner = BackgroundSpinner("demo_client")
    try:
        procs.append(spawn_node("model_service", logs, {"model_path": "ssd_mobilenet_v2_coco"}, namespace="/demo")[0])
        procs.append(
            spawn_node(
                "vision_service",
                logs,
                {
                    "model_service": "/demo/ml_model_service",
                    "use_depth": True,
                    "always_on": True,
                    "service_timeout": 10.0,
                },
                namespace="/demo/camera",
            )[0]
        )
        procs.append(
            spawn_node(
                "vision_service",
                logs,
                {  # a second node on the same camera
                    "model_path": "efficientnet_lite0",
                    "always_on": True,
                    "top_n": 1,
                    "confidence_threshold": 0.1,
                },
                namespace="/demo/classifier",
                remaps={"image": "/demo/camera/image"},
            )[0]
        )
        part1_model_service(spinner.node)
        part2_vision(spinner.node, out)
        part3_objects(spinner.node, out)
        procs += part4_masks(spinner.node, out, logs)
    finally:
        for p in procs:
            p.send_signal(signal.SIGINT)
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        spinner.close()
    print(f"\nnode logs: {logs}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
