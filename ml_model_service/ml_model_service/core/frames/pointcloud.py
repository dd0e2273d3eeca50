"""Depth + intrinsics → per-object point clouds and 3D boxes (ROS-free; numpy and open3d).

Two ways, as Viam's vision service has them:
- `objects_from_detections`: each 2D box's depth pixels — only the object's own pixels when the detection
  has an instance mask, so the wall or floor seen inside the box does not leak in — the object separated from
  what lies in front of or behind it (the depth layer around the dominant, centre-weighted depth, cut at
  empty depth gaps), back-projected, statistical outliers removed;
- `obstacles_from_depth`: the whole depth cloud, downsampled, the ground plane removed by RANSAC, the rest
  clustered (DBSCAN).
Boxes are axis-aligned in the camera optical frame: centre = mean of the points, size = extents.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ..reading.vision import Detection


class DepthError(ValueError):
    """Depth or intrinsics that cannot give a point cloud; the message says which."""


@dataclass(frozen=True)
class Intrinsics:
    """Pinhole intrinsics of the (colour) image the depth is aligned to."""

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int

    @classmethod
    def from_k(cls, k: Sequence[float], width: int, height: int) -> Intrinsics:
        """From a row-major 3x3 K (sensor_msgs/CameraInfo.k)."""
        fx, fy, cx, cy = float(k[0]), float(k[4]), float(k[2]), float(k[5])
        if not all(math.isfinite(v) for v in (fx, fy, cx, cy)) or fx <= 0 or fy <= 0:
            raise DepthError(f"camera intrinsics are zero or invalid (fx={fx}, fy={fy}, cx={cx}, cy={cy})")
        return cls(fx, fy, cx, cy, int(width), int(height))

    def scaled(self, width: int, height: int) -> Intrinsics:
        """The same camera at another resolution."""
        if self.width <= 0 or self.height <= 0 or (width, height) == (self.width, self.height):
            return Intrinsics(self.fx, self.fy, self.cx, self.cy, width, height)
        sx, sy = width / self.width, height / self.height
        return Intrinsics(self.fx * sx, self.fy * sy, self.cx * sx, self.cy * sy, width, height)


@dataclass
class CloudConfig:
    """Parameters of both methods (see the vision node's parameters)."""

    min_depth: float = 0.1
    max_depth: float = 10.0
    depth_band: float = 0.5  # largest distance (m) of an object's points from its dominant depth
    depth_gap: float = 0.1  # an empty depth run this long (m) separates two surfaces
    max_points_per_object: int = 800
    mean_k: int = 20
    sigma: float = 2.0
    min_points: int = 30
    voxel_size: float = 0.02
    plane_min_points: int = 500
    plane_max_distance: float = 0.1
    ground_normal: tuple[float, float, float] = (0.0, -1.0, 0.0)
    ground_angle_tolerance_deg: float = 30.0
    cluster_radius: float = 0.1
    cluster_min_points: int = 10
    max_cloud_points: int = 60000


@dataclass
class Object3D:
    """One object: its points (N, 3) in metres, their RGB colours, class, and axis-aligned box."""

    index: int
    class_index: int
    class_name: str
    confidence: float
    points: np.ndarray
    colours: np.ndarray
    size: np.ndarray | None = None  # extents; default: those of `points`
    id: str = ""  # tracking id of its detection ("" without tracking)
    detection: int = -1  # position of its detection in the frame's detections (-1: none, obstacles)
    orientation: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 1.0)  # of its box (x, y, z, w)
    centre: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.centre = self.points.mean(axis=0)
        if self.size is None:
            self.size = self.points.max(axis=0) - self.points.min(axis=0)


@dataclass(frozen=True)
class RigidTransform:
    """A rotation (unit quaternion x, y, z, w) then a translation (m): p' = R p + t."""

    translation: tuple[float, float, float]
    rotation: tuple[float, float, float, float]

    @property
    def matrix(self) -> np.ndarray:
        x, y, z, w = self.rotation
        return np.array(
            [
                [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
            ]
        )

    def apply(self, points: np.ndarray) -> np.ndarray:
        """(N, 3) points in the other frame, in their own dtype."""
        moved = points @ self.matrix.T + np.asarray(self.translation, dtype=np.float64)
        return moved.astype(points.dtype, copy=False)

    def rotate(self, q: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
        """This rotation composed with orientation `q` (Hamilton product R * q)."""
        ax, ay, az, aw = self.rotation
        bx, by, bz, bw = q
        return (
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
            aw * bw - ax * bx - ay * by - az * bz,
        )


def transform_objects(objects: list[Object3D], tf: RigidTransform) -> list[Object3D]:
    """The same objects in another frame: points and centres moved, boxes turned (their size unchanged)."""
    r, t = tf.matrix, np.asarray(tf.translation, dtype=np.float64)
    out = []
    for obj in objects:
        moved = copy.copy(obj)
        moved.points = tf.apply(obj.points)
        moved.centre = r @ np.asarray(obj.centre, dtype=np.float64) + t
        moved.orientation = tf.rotate(obj.orientation)
        out.append(moved)
    return out


def lift_points(metres: np.ndarray, k: Intrinsics, pixels: np.ndarray, radius: int = 2) -> np.ndarray:
    """(N, 2) pixel positions → (N, 3) camera-frame points: the median valid depth of the (2r+1)² window at
    each pixel, back-projected through `k`; NaN where the window has no valid depth."""
    h, w = metres.shape
    out = np.full((len(pixels), 3), np.nan)
    for i, (u, v) in enumerate(np.asarray(pixels, np.float64)):  # one window per keypoint (17 per person)
        if not (np.isfinite(u) and np.isfinite(v)):
            continue
        cu, cv = int(round(u)), int(round(v))
        window = metres[max(0, cv - radius) : min(h, cv + radius + 1), max(0, cu - radius) : min(w, cu + radius + 1)]
        valid = window[np.isfinite(window) & (window > 0)]
        if valid.size:
            z = float(np.median(valid))
            out[i] = ((u - k.cx) * z / k.fx, (v - k.cy) * z / k.fy, z)
    return out


def align_depth(depth: np.ndarray, width: int, height: int) -> np.ndarray:
    """Depth at the colour image's size; only a pure scale (same aspect ratio) can be undone."""
    dh, dw = depth.shape
    if (dw, dh) == (width, height):
        return depth
    if abs(dw / dh - width / height) > 0.01:
        raise DepthError(
            f"depth is {dw}x{dh} but colour is {width}x{height}: the aspect ratios differ, so the "
            "depth cannot be aligned by scaling (is it registered to the colour camera?)"
        )
    import cv2

    return cv2.resize(depth, (width, height), interpolation=cv2.INTER_NEAREST)


def _valid(z: np.ndarray, config: CloudConfig) -> np.ndarray:
    return np.isfinite(z) & (z >= config.min_depth) & (z <= config.max_depth)


def back_project(us: np.ndarray, vs: np.ndarray, z: np.ndarray, k: Intrinsics) -> np.ndarray:
    """Pixel coordinates and depths → (N, 3) points in the optical frame (x right, y down, z forward)."""
    return np.column_stack(((us - k.cx) * z / k.fx, (vs - k.cy) * z / k.fy, z)).astype(np.float32)


def dominant_layer(z: np.ndarray, weights: np.ndarray, config: CloudConfig) -> np.ndarray:
    """Mask of the depths that belong to the dominant surface: the centre-weighted histogram peak,
    extended while no empty gap of `depth_gap` interrupts it and within `depth_band`."""
    bin_w = max(config.depth_gap / 4.0, 0.005)
    lo, hi = float(z.min()), float(z.max())
    n_bins = max(1, int(math.ceil((hi - lo) / bin_w)) + 1)
    bins = np.minimum(((z - lo) / bin_w).astype(np.int64), n_bins - 1)
    weighted = np.bincount(bins, weights=weights, minlength=n_bins)
    counts = np.bincount(bins, minlength=n_bins)
    peak = int(weighted.argmax())
    gap_bins = max(1, int(round(config.depth_gap / bin_w)))
    band_bins = int(math.ceil(config.depth_band / bin_w))
    first = last = peak
    empty = 0
    for b in range(peak - 1, max(-1, peak - band_bins - 1), -1):
        empty = empty + 1 if counts[b] == 0 else 0
        if empty >= gap_bins:
            break
        if counts[b]:
            first = b
    empty = 0
    for b in range(peak + 1, min(n_bins, peak + band_bins + 1)):
        empty = empty + 1 if counts[b] == 0 else 0
        if empty >= gap_bins:
            break
        if counts[b]:
            last = b
    return (bins >= first) & (bins <= last)


def remove_outliers(points: np.ndarray, config: CloudConfig) -> np.ndarray:
    """Indices kept by open3d's statistical outlier removal (mean_k neighbours, sigma)."""
    if len(points) <= config.mean_k or config.sigma <= 0:
        return np.arange(len(points))
    import open3d as o3d

    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(points.astype(np.float64)))
    _, kept = cloud.remove_statistical_outlier(nb_neighbors=config.mean_k, std_ratio=config.sigma)
    return np.asarray(kept, dtype=np.int64)


def objects_from_detections(
    depth: np.ndarray, rgb: np.ndarray, k: Intrinsics, detections: Sequence[Detection], config: CloudConfig
) -> list[Object3D]:
    """One Object3D per detection with enough valid depth (depth in metres, aligned to `rgb`).

    The cloud is the box's pixels sampled on a grid of at most `max_points_per_object` (for speed and
    message size); the box's x/y size adds back the one sample spacing that grid sampling loses."""
    h, w = depth.shape
    objects: list[Object3D] = []
    for number, det in enumerate(detections):
        x0, y0 = max(0, int(math.floor(det.x_min))), max(0, int(math.floor(det.y_min)))
        x1, y1 = min(w, int(math.ceil(det.x_max))), min(h, int(math.ceil(det.y_max)))
        if x1 <= x0 or y1 <= y0:
            continue
        roi = depth[y0:y1, x0:x1]
        valid = _valid(roi, config)
        area = (x1 - x0) * (y1 - y0)
        mask = getattr(det, "mask", None)
        if mask is not None and mask.shape == (h, w):
            inside = mask.crop(x0, y0, x1, y1)
            valid &= inside
            area = max(1, int(np.count_nonzero(inside)))  # sample the object's pixels, not the box's
        step = max(1, int(math.ceil(math.sqrt(area / config.max_points_per_object))))
        off = (step - 1) // 2  # a grid centred in the box
        vs, us = np.nonzero(valid[off::step, off::step])
        if len(us) < config.min_points:
            continue
        vs, us = vs * step + off, us * step + off
        z = roi[vs, us]
        # Centre-weighted: the object is most likely at the box centre, background at its edges.
        nx, ny = (us - (x1 - x0) / 2.0) / (x1 - x0), (vs - (y1 - y0) / 2.0) / (y1 - y0)
        layer = dominant_layer(z, np.exp(-(nx * nx + ny * ny) / (2 * 0.25**2)), config)
        us, vs, z = us[layer], vs[layer], z[layer]
        points = back_project(us + x0, vs + y0, z, k)
        kept = remove_outliers(points, config)
        if len(kept) < config.min_points:
            continue
        points, us, vs = points[kept], us[kept], vs[kept]
        # The outermost samples lie up to one sample spacing inside the object's edges: add it back.
        spacing = step * float(points[:, 2].max()) / np.array([k.fx, k.fy])
        size = points.max(axis=0) - points.min(axis=0)
        size[:2] += np.where(size[:2] > 0, spacing, 0.0)
        objects.append(
            Object3D(
                len(objects),
                det.class_index,
                det.class_name,
                det.confidence,
                points,
                rgb[vs + y0, us + x0],
                size,
                getattr(det, "id", ""),
                number,
            )
        )
    return objects


def depth_cloud(
    depth: np.ndarray, rgb: np.ndarray | None, k: Intrinsics, config: CloudConfig
) -> tuple[np.ndarray, np.ndarray]:
    """All valid depth pixels (strided to at most `max_cloud_points`) → points and colours."""
    cloud = class_cloud(depth, None, rgb, k, config)
    return cloud.points, cloud.colours


@dataclass
class ClassCloud:
    """Points (N, 3) float32 metres, their colours (N, 3) uint8 and class indices (N,) uint16."""

    points: np.ndarray
    colours: np.ndarray
    classes: np.ndarray

    def moved(self, tf: RigidTransform) -> ClassCloud:
        """The same points in another frame."""
        return ClassCloud(tf.apply(self.points), self.colours, self.classes)


def class_cloud(
    depth: np.ndarray,
    classes: np.ndarray | None,
    rgb: np.ndarray | None,
    k: Intrinsics,
    config: CloudConfig,
    keep: np.ndarray | None = None,
) -> ClassCloud:
    """The valid depth pixels (strided to at most `max_cloud_points`) → points, colours and, with a class map
    (`classes`), each point's class (only the classes in `keep` when given; without a map, all 0)."""
    h, w = depth.shape
    step = max(1, int(math.ceil(math.sqrt(h * w / config.max_cloud_points))))
    sub = depth[::step, ::step]
    valid = _valid(sub, config)
    labels = classes[::step, ::step] if classes is not None else None
    if labels is not None and keep is not None:
        valid &= np.isin(labels, keep)
    vs, us = np.nonzero(valid)
    z = sub[vs, us]
    found = labels[vs, us].astype(np.uint16) if labels is not None else np.zeros(len(z), np.uint16)
    us, vs = us * step, vs * step
    colours = rgb[vs, us] if rgb is not None else np.full((len(z), 3), 200, np.uint8)
    return ClassCloud(back_project(us, vs, z, k), colours, found)


def obstacles_from_depth(
    depth: np.ndarray, rgb: np.ndarray | None, k: Intrinsics, config: CloudConfig
) -> list[Object3D]:
    """Obstacles: depth cloud → voxel downsample → ground plane removed (RANSAC) → DBSCAN clusters."""
    import open3d as o3d

    points, colours = depth_cloud(depth, rgb, k, config)
    if len(points) == 0:
        return []
    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(points.astype(np.float64)))
    cloud.colors = o3d.utility.Vector3dVector(colours.astype(np.float64) / 255.0)
    if config.voxel_size > 0:
        cloud = cloud.voxel_down_sample(config.voxel_size)
    pts = np.asarray(cloud.points)
    cols = (np.asarray(cloud.colors) * 255.0).round().astype(np.uint8)
    keep = np.ones(len(pts), dtype=bool)
    keep[find_ground(pts, config)] = False
    pts, cols = pts[keep], cols[keep]
    if len(pts) < config.cluster_min_points:
        return []
    rest = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(pts))
    labels = np.asarray(rest.cluster_dbscan(eps=config.cluster_radius, min_points=config.cluster_min_points))
    objects: list[Object3D] = []
    for label in range(labels.max() + 1 if labels.size else 0):
        member = labels == label
        if member.sum() < max(config.cluster_min_points, 1):
            continue
        objects.append(Object3D(len(objects), -1, "obstacle", 1.0, pts[member].astype(np.float32), cols[member]))
    return objects


def find_ground(points: np.ndarray, config: CloudConfig, max_planes: int = 3) -> np.ndarray:
    """Indices of the ground plane: the largest RANSAC plane whose normal lies within the angle tolerance of
    `ground_normal` and that holds at least `plane_min_points`; other large planes (walls) are skipped over."""
    import open3d as o3d

    normal = np.asarray(config.ground_normal, dtype=np.float64)
    normal /= np.linalg.norm(normal) or 1.0
    cos_tol = math.cos(math.radians(config.ground_angle_tolerance_deg))
    remaining = np.arange(len(points))
    for _ in range(max_planes):
        if len(remaining) < max(config.plane_min_points, 3):
            break
        cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(points[remaining]))
        model, inliers = cloud.segment_plane(
            distance_threshold=config.plane_max_distance, ransac_n=3, num_iterations=200
        )
        if len(inliers) < config.plane_min_points:
            break
        plane_normal = np.asarray(model[:3]) / (np.linalg.norm(model[:3]) or 1.0)
        if abs(float(plane_normal @ normal)) >= cos_tol:
            return remaining[np.asarray(inliers)]
        remaining = np.delete(remaining, np.asarray(inliers))
    return np.zeros(0, dtype=np.int64)
