"""core/frames/pointcloud.py: object clouds built from instance masks keep to the object."""

from __future__ import annotations

import pytest

from ml_model_service.core.frames import pointcloud
from ml_model_service.core.reading import masks
from ml_model_service.core.reading.vision import Detection
from ml_model_service_dev.harness import scenes


@pytest.mark.parametrize("kind", ["frame", "lamp"])
def test_mask_clouds_leave_the_wall_out_of_a_thin_object(kind):
    """Points off the object's true surface (> 2 cm from it), box vs mask: at least 90 % fewer."""
    thin = scenes.thin_object(kind)
    x0, y0, x1, y1 = thin.box
    boxed = Detection(0, "thing", 0.9, x0, y0, x1, y1)
    masked = Detection(
        0, "thing", 0.9, x0, y0, x1, y1, mask=masks.Mask(thin.mask[y0:y1, x0:x1], x0, y0, thin.mask.shape)
    )
    s, config = thin.scene, pointcloud.CloudConfig()
    (box_obj,) = pointcloud.objects_from_detections(s.depth, s.rgb, s.intrinsics, [boxed], config)
    (mask_obj,) = pointcloud.objects_from_detections(s.depth, s.rgb, s.intrinsics, [masked], config)
    off_box, off_mask = thin.off_object(box_obj.points), thin.off_object(mask_obj.points)
    print(f"{kind}: off-object points, box {off_box}/{len(box_obj.points)}, mask {off_mask}/{len(mask_obj.points)}")
    assert off_box > 0.5 * len(box_obj.points)  # the box's cloud is mostly wall
    assert off_mask <= 0.1 * off_box
    assert abs(float(mask_obj.centre[2]) - 1.5) < 0.05  # at the object's depth, not the wall's
