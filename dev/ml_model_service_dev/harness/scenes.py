"""Synthetic RGB-D scenes with known geometry, ray-cast exactly (for tests, benchmarks and demos)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ml_model_service.core.frames.pointcloud import Intrinsics
from ml_model_service.core.scenes import motorcycle_rgbd  # noqa: F401 (the real sample, shipped for bring-up)


@dataclass
class Box3D:
    """An axis-aligned box in the camera optical frame (metres), with a colour."""

    lo: tuple[float, float, float]
    hi: tuple[float, float, float]
    colour: tuple[int, int, int] = (200, 40, 40)


@dataclass
class Scene:
    depth: np.ndarray  # float32 metres, NaN where nothing is hit
    rgb: np.ndarray
    intrinsics: Intrinsics
    boxes_2d: list[tuple[int, int, int, int]] = field(default_factory=list)  # per object: x0, y0, x1, y1 (pixels)
    visible_points: list[np.ndarray] = field(default_factory=list)  # per object: its visible surface points


def render(
    objects: list[Box3D],
    width: int = 640,
    height: int = 480,
    f: float = 525.0,
    wall_z: float | None = 3.0,
    floor_y: float | None = 1.0,
) -> Scene:
    """Ray-cast boxes in front of an optional wall (z = wall_z) above an optional floor (y = floor_y)."""
    k = Intrinsics(f, f, (width - 1) / 2.0, (height - 1) / 2.0, width, height)
    us, vs = np.meshgrid(np.arange(width, dtype=np.float64), np.arange(height, dtype=np.float64))
    dx, dy = (us - k.cx) / k.fx, (vs - k.cy) / k.fy  # ray direction (dx, dy, 1): t along the ray = z
    depth = np.full((height, width), np.inf)
    rgb = np.zeros((height, width, 3), np.uint8)
    if wall_z is not None:
        depth[:] = wall_z
        rgb[:] = (90, 110, 140)
    if floor_y is not None:
        with np.errstate(divide="ignore"):
            z_floor = np.where(dy > 1e-9, floor_y / dy, np.inf)
        hit = z_floor < depth
        depth[hit] = z_floor[hit]
        rgb[hit] = (120, 120, 100)
    masks: list[np.ndarray] = []
    for box in objects:
        lo, hi = np.asarray(box.lo, float), np.asarray(box.hi, float)
        t_near = np.full(depth.shape, -np.inf)
        t_far = np.full(depth.shape, np.inf)
        for axis, d in enumerate((dx, dy, np.ones_like(dx))):
            with np.errstate(divide="ignore", invalid="ignore"):
                t1, t2 = lo[axis] / d, hi[axis] / d
            parallel = np.abs(d) < 1e-12
            inside = (lo[axis] <= 0) & (hi[axis] >= 0)
            t1 = np.where(parallel, np.where(inside, -np.inf, np.inf), t1)
            t2 = np.where(parallel, np.where(inside, np.inf, -np.inf), t2)
            t_near = np.maximum(t_near, np.minimum(t1, t2))
            t_far = np.minimum(t_far, np.maximum(t1, t2))
        hit = (t_near <= t_far) & (t_near > 0) & (t_near < depth)
        depth[hit] = t_near[hit]
        rgb[hit] = box.colour
        for m in masks:
            m &= ~hit
        masks.append(hit)
    depth = np.where(np.isfinite(depth), depth, np.nan).astype(np.float32)
    scene = Scene(depth, rgb, k)
    for hit in masks:
        vs_hit, us_hit = np.nonzero(hit)
        if len(us_hit) == 0:
            scene.boxes_2d.append((0, 0, 0, 0))
            scene.visible_points.append(np.zeros((0, 3), np.float32))
            continue
        scene.boxes_2d.append((int(us_hit.min()), int(vs_hit.min()), int(us_hit.max()) + 1, int(vs_hit.max()) + 1))
        z = depth[vs_hit, us_hit].astype(np.float64)
        scene.visible_points.append(np.column_stack(((us_hit - k.cx) * z / k.fx, (vs_hit - k.cy) * z / k.fy, z)))
    return scene


@dataclass
class ThinObject:
    """A thin object made of box parts (a frame or a lamp) in front of a wall: the ray-cast scene, the
    object's true pixels (`mask`), its 2D box, and its parts (to measure points off its true surface)."""

    scene: Scene
    parts: list[Box3D]
    mask: np.ndarray
    box: tuple[int, int, int, int]

    def distance(self, points: np.ndarray) -> np.ndarray:
        """Each point's distance (m) to the object's solid parts (0 on or inside)."""
        best = np.full(len(points), np.inf)
        for part in self.parts:
            lo, hi = np.asarray(part.lo), np.asarray(part.hi)
            gap = np.maximum(np.maximum(lo - points, 0.0), points - hi)
            best = np.minimum(best, np.linalg.norm(gap, axis=1))
        return best

    def off_object(self, points: np.ndarray, tolerance: float = 0.02) -> int:
        """How many points lie further than `tolerance` from the object's true surface."""
        return int(np.count_nonzero(self.distance(np.asarray(points, np.float64)) > tolerance))


def thin_object(
    kind: str = "frame", width: int = 640, height: int = 480, z: float = 1.5, wall_z: float = 2.2, bar: float = 0.04
) -> ThinObject:
    """A thin object `bar` metres thick at depth `z` in front of a wall at `wall_z`, above a floor:
    `frame`: a square picture frame 0.8 m across (the wall shows through its middle);
    `lamp`: an L-shaped floor lamp (a pole and an arm: the box's empty corner is wall)."""
    colour = (230, 180, 40)
    if kind == "frame":
        s, t = 0.4, bar
        parts = [
            Box3D((-s, -s, z), (s, -s + t, z + t), colour),
            Box3D((-s, s - t, z), (s, s, z + t), colour),
            Box3D((-s, -s, z), (-s + t, s, z + t), colour),
            Box3D((s - t, -s, z), (s, s, z + t), colour),
        ]
    elif kind == "lamp":
        parts = [
            Box3D((-0.3, -0.5, z), (-0.3 + bar, 0.6, z + bar), colour),
            Box3D((-0.3, -0.5, z), (0.35, -0.5 + bar, z + bar), colour),
        ]
    else:
        raise ValueError(f"kind {kind!r} is not frame or lamp")
    scene = render(parts, width, height, wall_z=wall_z, floor_y=1.0)
    mask = np.zeros(scene.depth.shape, bool)
    visible = [p for p in scene.visible_points if len(p)]
    us, vs = [], []
    for x0, y0, x1, y1 in scene.boxes_2d:
        if x1 > x0:
            us += [x0, x1]
            vs += [y0, y1]
    # The union of the parts' pixels: where the ray-cast depth lies on a part.
    k = scene.intrinsics
    yy, xx = np.nonzero(np.isfinite(scene.depth))
    z_all = scene.depth[yy, xx].astype(np.float64)
    pts = np.column_stack(((xx - k.cx) * z_all / k.fx, (yy - k.cy) * z_all / k.fy, z_all))
    obj = ThinObject(scene, parts, mask, (min(us), min(vs), max(us), max(vs)))
    on = obj.distance(pts) < 1e-6
    mask[yy[on], xx[on]] = True
    scene.visible_points = [np.concatenate(visible)] if visible else []
    return obj
