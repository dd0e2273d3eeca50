"""core/frames/pipeline.py: one frame through the model, the tracker and the depth image."""

from __future__ import annotations

from ml_model_service.core.frames import pipeline
from ml_model_service.core.frames.tracking import Tracker


def test_pipeline_gives_ids_and_objects_carry_them(tmp_path):
    """A designed YOLO graph sees the ray-cast box; through the pipeline with depth, ids reach the objects."""
    from test_byom_layouts import NCHW, graph, load, raw_v8, ultralytics_props

    from ml_model_service_dev.harness import scenes

    scene = scenes.render([scenes.Box3D((-0.2, -0.2, 1.0), (0.2, 0.2, 1.3))])  # 640x480: letterbox pad 80
    x0, y0, x1, y1 = scene.boxes_2d[0]
    out = raw_v8(objects=[((x0, y0 + 80, x1, y1 + 80), 0, 0.9)])
    vision, _ = load(graph(tmp_path / "box.onnx", NCHW, {"output0": out}, ultralytics_props()))
    tracker = Tracker()
    depth = pipeline.Depth(lambda: scene.depth, lambda: scene.intrinsics)
    ids = []
    for _ in range(3):
        r = pipeline.run(vision, scene.rgb, depth=depth, tracker=tracker)
        assert r.objects and r.objects[0].id == r.detections[0].id != ""
        ids.append(r.detections[0].id)
    assert len(set(ids)) == 1
