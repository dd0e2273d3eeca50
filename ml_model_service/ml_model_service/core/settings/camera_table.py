"""The vision node's several-camera parameters, part of the one table (`tables.VISION_PARAMS` ends with them),
and the per-camera overrides derived from the table's own entries: camera `<name>` may set
`<name>.<parameter>` for each parameter in `CAMERA_OVERRIDES`, declared with that parameter's type, range,
allowed values and tier (so validated as the node-wide one), and defaulting to the node-wide value.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from .params import Param

#: a camera name: a ROS name token (`<name>/image` is a relative topic, `<name>.use_depth` a parameter)
CAMERA_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
MAX_CAMERAS = 16

#: parameters each camera may set for itself (where cameras differ in practice)
CAMERA_OVERRIDES = (
    "use_depth",
    "use_compressed",
    "image_qos",
    "depth_unit_scale",
    "sync_slop",
    "min_depth",
    "max_depth",
    "tracking",
)


def check_cameras(value: Any) -> str:
    """ "" when `value` is a usable camera list, else why not."""
    names = list(value)
    if len(names) > MAX_CAMERAS:
        return f"cameras: at most {MAX_CAMERAS} cameras, got {len(names)}"
    for name in names:
        if not CAMERA_NAME.match(name):
            return f"cameras: {name!r} is not a camera name (a letter, then letters, digits or _)"
    dupes = sorted({n for n in names if names.count(n) > 1})
    return f"cameras: {', '.join(dupes)} named more than once" if dupes else ""


MULTICAMERA_PARAMS = [
    Param(
        "cameras",
        [],
        "Camera names for one node serving several cameras with one model: camera NAME reads NAME/image (or "
        "NAME/image/compressed), NAME/depth, NAME/camera_info and publishes NAME/detections, NAME/objects... "
        "(relative to the node's namespace); each may override " + ", ".join(CAMERA_OVERRIDES) + " as "
        "NAME.<parameter>. Frames are served latest per camera, oldest-waiting first. Empty: one camera on image.",
        read_only=True,
        check=check_cameras,
    ),
    Param(
        "max_batch",
        0,
        "Several cameras: frames of different cameras one inference call carries at most, where the model takes "
        "a batch (a dynamic or fixed batch dimension; batch-1 models run one frame a call). 0: the cameras "
        "shared out over the cores (calls run one per core at once).",
        0,
        64,
    ),
    Param(
        "batch_wait",
        0.0,
        "Several cameras, a model that batches: seconds the oldest waiting frame may wait for other cameras' "
        "frames to fill a batch (0: serve what is waiting at once, best on CPU).",
        0.0,
        1.0,
    ),
]


def camera_params(camera: str, params: Sequence[Param], values: Mapping[str, Any]) -> list[Param]:
    """The override parameters of `camera`: the table's entries renamed `<camera>.<name>`, defaulting to the
    node-wide `values`."""
    table = {p.name: p for p in params}
    return [
        replace(
            table[name],
            name=f"{camera}.{name}",
            default=list(values[name]) if table[name].is_list else values[name],
            description=f"Camera {camera}: {table[name].description} (default: the node's {name})",
        )
        for name in CAMERA_OVERRIDES
        if name in table
    ]


def camera_overrides(camera: str, overrides: Mapping[str, Any]) -> dict[str, Any]:
    """`camera`'s own overrides among `overrides` (`{"<camera>.<name>": value}`), by parameter name."""
    prefix = f"{camera}."
    return {key[len(prefix) :]: value for key, value in overrides.items() if key.startswith(prefix)}


def camera_values(camera: str, values: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """The node-wide `values` with `camera`'s overrides (`{"<camera>.<name>": value}`) applied."""
    return {**values, **camera_overrides(camera, overrides)}
