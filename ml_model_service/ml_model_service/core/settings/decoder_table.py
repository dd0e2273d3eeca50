"""The vision node's decoding options (part of the one parameter table, `tables.VISION_PARAMS`): how a model's
outputs are read where its metadata and a trial run leave it open."""

from __future__ import annotations

from ..reading.decoders.base import BOX_FORMATS, BOX_UNITS, SCORE_ACTIVATIONS, SEGMENTATION_LAYOUTS, TASKS, YOLO_FORMATS
from .params import MODEL, Param, check_keypoint_shape, check_pairs, check_permutation, check_role

DECODER_PARAMS = [
    Param(
        "box_order",
        [],
        "Positions of x_min, y_min, x_max, y_max in an SSD-style box; empty: auto (TFLite's "
        "ymin, xmin, ymax, xmax; corners for torchvision and orig_target_sizes models).",
        item_type=int,
        tier=MODEL,
        check=check_permutation,
    ),
    Param(
        "box_format",
        "auto",
        "End-to-end [1,N,6] and DETR boxes: auto (from the model's metadata), xyxy (corners) or cxcywh (centre, size).",
        choices=BOX_FORMATS,
        tier=MODEL,
    ),
    Param(
        "score_activation",
        "auto",
        "DETR class logits and classifier scores: auto, none, sigmoid or softmax "
        "(DETR: the last class is no-object); a segmenter's one-channel mask: sigmoid for logits.",
        choices=SCORE_ACTIVATIONS,
        tier=MODEL,
    ),
    Param("box_units", "auto", "auto, proportional or pixels (of the model input).", choices=BOX_UNITS, tier=MODEL),
    Param(
        "yolo_format",
        "auto",
        "auto, v5 ([1,N,5+C], objectness) or v8 ([1,4+C,N]).",
        choices=YOLO_FORMATS,
        tier=MODEL,
    ),
    Param(
        "task",
        "auto",
        "What follows the classes in each YOLO / end-to-end box row: auto (the model's task metadata, or a "
        "protos output), detect (nothing), segment (mask coefficients), pose (keypoints: keypoint_shape) or "
        "obb (one angle in radians: oriented boxes, published in BoundingBox2D.center.theta).",
        choices=TASKS,
        tier=MODEL,
    ),
    Param(
        "keypoint_shape",
        [],
        "Pose models: [keypoints, values per keypoint] (values: 2 for x, y or 3 for x, y, visibility); "
        "empty: the model's kpt_shape metadata.",
        item_type=int,
        tier=MODEL,
        check=check_keypoint_shape,
    ),
    Param(
        "segmentation_layout",
        "auto",
        "Segmenters: where the class scores sit, auto (from the shapes), nchw ([1, C, h, w]) or nhwc ([1, h, w, C]).",
        choices=SEGMENTATION_LAYOUTS,
        tier=MODEL,
    ),
    Param(
        "remap_input_names",
        [],
        "'model_tensor:image' for the image input when it is not the first.",
        tier=MODEL,
        check=check_pairs("remap_input_names"),
    ),
    Param(
        "remap_output_names",
        [],
        "'model_tensor:role' with role location, score, category, count or probability.",
        tier=MODEL,
        check=check_pairs("remap_output_names", check_role),
    ),
]
