"""A vision node's several cameras (core/settings/camera_table.py): camera names checked, per-camera override
parameters derived from the table, and a camera's values with its overrides applied."""

from __future__ import annotations

from ml_model_service.core.settings.camera_table import (
    MAX_CAMERAS,
    camera_overrides,
    camera_params,
    camera_values,
    check_cameras,
)
from ml_model_service.core.settings.tables import VISION_PARAMS, by_name, defaults, validate


def test_camera_names_and_overrides_come_from_the_table():
    """The override parameters are the table's entries, renamed, with the node's value as default."""
    values = {**defaults(VISION_PARAMS), "use_depth": True}
    params = by_name(camera_params("cam0", VISION_PARAMS, values))
    assert params["cam0.use_depth"].default is True and params["cam0.use_depth"].read_only
    assert params["cam0.image_qos"].choices == ("sensor_data", "reliable")
    assert "cam0.image_qos: 'x' is not one of" in params["cam0.image_qos"].validate("x")
    assert "outside" in params["cam0.depth_unit_scale"].validate(-1.0)
    merged = camera_values("cam0", values, {"cam0.min_depth": 20.0, "cam1.use_depth": False})
    assert merged["min_depth"] == 20.0 and merged["use_depth"] is True
    assert "min_depth 20.0 must be below max_depth" in validate(merged, VISION_PARAMS)
    assert check_cameras(["cam0", "cam_1"]) == ""
    assert "'front/left' is not a camera name" in check_cameras(["front/left"])
    assert "cam0 named more than once" in check_cameras(["cam0", "cam0"])


def test_at_most_max_cameras_and_only_the_cameras_own_overrides():
    names = [f"cam{i}" for i in range(MAX_CAMERAS)]
    assert check_cameras(names) == ""
    assert f"at most {MAX_CAMERAS} cameras, got {MAX_CAMERAS + 1}" in check_cameras([*names, "extra"])
    overrides = {"cam1.min_depth": 0.3, "cam10.min_depth": 0.9, "cam1": 1, "use_depth": True}
    assert camera_overrides("cam1", overrides) == {"min_depth": 0.3}  # not cam10's, not node-wide ones
    values = defaults(VISION_PARAMS)
    params = by_name(camera_params("cam1", VISION_PARAMS, values))
    assert set(params) == {
        f"cam1.{n}"
        for n in (
            "use_depth",
            "use_compressed",
            "image_qos",
            "depth_unit_scale",
            "sync_slop",
            "min_depth",
            "max_depth",
            "tracking",
        )
    }
    assert "Camera cam1:" in params["cam1.min_depth"].description
