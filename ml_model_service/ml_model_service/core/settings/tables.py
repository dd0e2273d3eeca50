"""The one parameter table of both nodes, ROS-free: every parameter of the model service
(`MODEL_SERVICE_PARAMS`) and of the vision node (`VISION_PARAMS`), their shared model parameters first
(`MODEL_PARAMS`), and the checks on a set of values. The nodes declare it (`ros/parameters.py`), the CLI reads
the same names from flags or a node's YAML file, `configs` turns values into the core's configuration objects
and `files` writes the shipped parameter files from it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..reading.decoders.base import (
    MODEL_TYPES,
)
from ..reading.input_plan import DEFAULT_CROP_FRACTION
from ..reading.preprocess import INPUT_RANGES, MAX_INPUT_PIXELS, PAD_CORNERS, RESIZE_MODES
from .camera_table import MULTICAMERA_PARAMS
from .decoder_table import DECODER_PARAMS
from .model_table import LIFECYCLE_PARAMS, MODEL_PARAMS, MODEL_SERVICE_PARAMS  # noqa: F401 (the table's parts)
from .params import (  # noqa: F401 (defaults: re-exported with the table)
    FILTERS,
    MODEL,
    RUNNER,
    TIER_ORDER,
    Param,
    by_name,
    check_input_size,
    check_keypoint_shape,
    check_nonzero,
    check_pairs,
    check_permutation,
    check_role,
    check_score,
    defaults,
)


def _per_channel(name: str, default: float, description: str, check: Callable[[Any], str] | None = None) -> Param:
    """A preprocessing parameter with a value for each of the R, G and B channels."""
    return Param(name, [default] * 3, description, item_type=float, length=3, tier=MODEL, check=check)


VISION_PARAMS = (
    MODEL_PARAMS
    + LIFECYCLE_PARAMS
    + [
        Param(
            "model_service",
            "",
            "Node name of a remote model service (e.g. /ml_model_service) to use instead of a model in this process.",
            read_only=True,
        ),
        Param(
            "service_timeout",
            5.0,
            "Seconds to wait for a remote model service call or a camera frame (a "
            "request/response call waits in its own thread, never in the node's executor).",
            0.1,
            60.0,
        ),
        Param(
            "model_type",
            "auto",
            "How to read the outputs: auto, detector (boxes/scores/classes: TFLite "
            "post-processing, torchvision, official RT-DETR/D-FINE), yolo (raw YOLO v5/v8/v11, seg/pose heads, split "
            "boxes+scores), end2end ([1,N,6] rows: YOLO26, YOLOv10, nms=True, Ultralytics RT-DETR), detr (normalised "
            "boxes + class logits), classifier or segmenter (a class for every pixel: class scores [1,C,h,w] / "
            "[1,h,w,C] or a class map [1,h,w]).",
            choices=MODEL_TYPES,
            tier=MODEL,
        ),
        Param("confidence_threshold", 0.5, "Minimum score of a detection or classification.", 0.0, 1.0, tier=FILTERS),
        Param(
            "label_confidences",
            [],
            "Per-label minimum scores, 'label:min'; when set, only listed labels are kept.",
            tier=FILTERS,
            check=check_pairs("label_confidences", check_score),
        ),
        Param(
            "classes",
            [],
            "Keep only these class names (empty: all); segmenters: the classes segmentation_points carry (the "
            "class map keeps every class).",
            tier=FILTERS,
        ),
        Param("top_n", 5, "Classifications published per image (<= 0: all above the threshold).", -1, 100000),
        Param("iou_threshold", 0.45, "NMS IoU threshold (raw YOLO layouts).", 0.0, 1.0, tier=MODEL),
        Param(
            "max_detections",
            100,
            "Detections kept (after NMS for raw YOLO layouts; end2end and DETR too).",
            1,
            100000,
            tier=MODEL,
        ),
        Param("agnostic_nms", False, "Class-agnostic NMS (raw YOLO layouts).", tier=MODEL),
        _per_channel("input_mean", 0.0, "Float inputs: (v/255 - mean)/std, per RGB channel."),
        _per_channel("input_std", 1.0, "Float inputs: standard deviation per channel (non-zero).", check_nonzero),
        Param("input_bgr", False, "Feed the model BGR instead of RGB.", tier=MODEL),
        Param(
            "input_range",
            "unit",
            "Float inputs: unit ((v/255 - mean)/std, values in [0, 1] by default) or byte (the same times 255: "
            "0-255 pixel values by default, as YOLOX and Caffe-style models take).",
            choices=INPUT_RANGES,
            tier=MODEL,
        ),
        Param(
            "letterbox_position",
            "center",
            "Letterbox: center (grey bars on both sides: Ultralytics) or top_left (bars right and below: YOLOX).",
            choices=PAD_CORNERS,
            tier=MODEL,
        ),
        Param(
            "resize_mode",
            "auto",
            "auto (letterbox for YOLO, centre crop for the bundled and Ultralytics "
            "classifiers, stretch otherwise), stretch, letterbox or center_crop (shorter side to size/crop_fraction, "
            "then the centre).",
            choices=("auto", *RESIZE_MODES),
            tier=MODEL,
        ),
        Param(
            "input_size",
            [],
            "Model input size for open (dynamic) input dimensions: [size] or [height, width]; "
            "empty: the model's imgsz metadata, else the image size (rounded up to the stride when letterboxed). "
            "Ignored for fixed inputs.",
            item_type=int,
            tier=MODEL,
            check=check_input_size,
        ),
        Param(
            "input_shortest_edge",
            [],
            "Open input dimensions follow the image, aspect kept, with its shorter side scaled to [shortest] and "
            "its longer side at most [shortest, longest] (Hugging Face DETR processors: [800, 1333]); empty: the "
            "model's preprocessor_config.json, else input_size. input_size, when set, wins.",
            item_type=int,
            tier=MODEL,
            check=check_input_size,
        ),
        Param(
            "crop_fraction",
            DEFAULT_CROP_FRACTION,
            "center_crop: share of the shorter side kept (0.875: 256 -> 224; Ultralytics classifiers take 1.0, "
            "their own crop, unless this is set to another value).",
            0.05,
            1.0,
            tier=MODEL,
        ),
    ]
    + DECODER_PARAMS
    + [
        Param(
            "mask_threshold",
            0.5,
            "Mask probability above which a pixel belongs to the object (segmentation models).",
            0.0,
            1.0,
            tier=MODEL,
        ),
        Param(
            "tracking",
            False,
            "Tracking ids: each Detection2D (and its Detection3D and markers) gets an id that "
            "stays with the same object across frames (Norfair: Kalman filter + IoU matching). Off: ids stay empty.",
        ),
        Param(
            "tracker_max_age",
            30,
            "Frames a track survives unseen (at most: an object seen n frames survives min(n, this)).",
            1,
            10000,
        ),
        Param(
            "tracker_min_iou",
            0.1,
            "Least IoU between a detection and a track's predicted box for the detection to continue it.",
            0.01,
            1.0,
        ),
        Param(
            "tracker_min_hits",
            1,
            "Frames a new object must be seen before it gets an id (1: at once); at most tracker_max_age.",
            1,
            10000,
        ),
        Param("tracker_class_aware", True, "Only detections of the same class continue a track."),
        Param(
            "publish_masks",
            True,
            "Publish instance_masks (mono16; pixel = index + 1 of the detection in "
            "detections, 0 = background) for segmentation models, while subscribed.",
        ),
        Param(
            "publish_markers",
            True,
            "Publish object_markers (visualization_msgs/MarkerArray: a box and a label per 3D object) with objects.",
        ),
        Param(
            "max_image_pixels",
            50000000,
            "Largest decoded image (width x height) accepted from topics and "
            "services; compressed images are checked before decoding.",
            1,
            1000000000,
            read_only=True,
        ),
        Param(
            "max_decode_pixels_per_s",
            70000000,
            "Decode budget of the compressed image topic: pixels (as the "
            "images declare them) decoded per second at most, over a 1 s burst (1080p at 30 Hz is 62 M); a frame "
            "beyond it is skipped with a count (decode_budget), so images that are costly to decode cannot starve the "
            "node. 0: no budget.",
            0,
            10000000000,
            read_only=True,
        ),
        Param(
            "max_input_pixels",
            MAX_INPUT_PIXELS,
            "Largest model input (height x width) the vision pipeline will feed.",
            1,
            1000000000,
            read_only=True,
        ),
        Param("publish_class_names", True, "ObjectHypothesis.class_id holds the class name (true) or its index."),
        Param("use_compressed", False, "Subscribe to image/compressed (jpeg/png) instead of image.", read_only=True),
        Param(
            "image_qos",
            "sensor_data",
            "Subscriber QoS: sensor_data (best effort) or reliable.",
            choices=("sensor_data", "reliable"),
            read_only=True,
        ),
        Param("always_on", False, "Process frames even when nobody listens to any output."),
        Param(
            "pin_worker",
            True,
            "Keep the worker thread (it runs the model for the camera stream) on the first "
            "allowed CPU core, the one pin_threads keeps free of onnxruntime's pool threads, so caller and pool "
            "never queue on one core (only for a model in this process whose pool pin_threads pinned: onnxruntime, "
            "LiteRT). Turn off where busy processes share that core.",
        ),
        Param("publish_debug_image", True, "Publish debug_image with boxes and labels drawn (when subscribed)."),
        Param("use_depth", False, "Subscribe to depth and camera_info and publish 3D objects.", read_only=True),
        Param(
            "object_mode",
            "detections",
            "detections (detector boxes → objects) or obstacles (no model: plane "
            "removal and clustering of the depth cloud).",
            choices=("detections", "obstacles"),
            read_only=True,
        ),
        Param(
            "target_frame",
            "",
            "Frame of the 3D results (objects, object_points, object_markers, segmentation_points and the 3D "
            "services), e.g. base_link or map: transformed with tf2 at the image's stamp. Empty: the camera's frame "
            "(the image's frame_id). A frame whose transform is missing loses its 3D only (counted as tf_errors, "
            "status WARN naming both frames). Needs tf2_ros.",
        ),
        Param("tf_timeout", 0.05, "Seconds to wait for the target_frame transform at the image's stamp.", 0.0, 1.0),
        Param("depth_unit_scale", 0.0, "Metres per depth unit; 0 = by encoding (16UC1 mm, 32FC1 m).", 0.0, 1000.0),
        Param("sync_slop", 0.05, "Largest stamp difference (s) between a colour frame and its depth frame.", 0.0, 10.0),
        Param("min_depth", 0.1, "Nearest valid depth (m).", 0.0, 1000.0),
        Param("max_depth", 10.0, "Farthest valid depth (m).", 0.0, 1000.0),
        Param(
            "depth_band", 0.5, "Half-width (m) of the depth band kept around an object's dominant depth.", 0.01, 100.0
        ),
        Param("mean_k", 20, "Outlier removal: neighbours per point.", 1, 1000),
        Param("sigma", 2.0, "Outlier removal: standard deviations allowed.", 0.0, 100.0),
        Param("min_points", 30, "Smallest point count of an object.", 1, 10000000),
        Param(
            "max_points_per_object",
            800,
            "Detections: an object's depth pixels are sampled on a grid of at most "
            "this many points (speed and message size).",
            10,
            10000000,
        ),
        Param("voxel_size", 0.02, "Obstacles: voxel downsampling size (m).", 0.0, 10.0),
        Param("plane_min_points", 500, "Obstacles: fewest points for the ground plane.", 3, 10000000),
        Param("plane_max_distance", 0.1, "Obstacles: largest point distance (m) from the plane.", 0.0, 10.0),
        Param(
            "ground_normal",
            [0.0, -1.0, 0.0],
            "Obstacles: expected plane normal in the camera optical frame.",
            item_type=float,
            length=3,
        ),
        Param(
            "ground_angle_tolerance_deg",
            30.0,
            "Obstacles: allowed angle (deg) between plane and ground_normal.",
            0.0,
            180.0,
        ),
        Param("cluster_radius", 0.1, "Obstacles: clustering radius (m).", 0.001, 100.0),
        Param("cluster_min_points", 10, "Obstacles: smallest cluster.", 1, 10000000),
    ]
    + MULTICAMERA_PARAMS
)

VISION_OPTIONS = VISION_PARAMS


#: Every parameter of either node, by name.
PARAMETERS = by_name([*MODEL_SERVICE_PARAMS, *VISION_PARAMS])


def default_of(name: str) -> Any:
    """The table's default of parameter `name` (of either node; lists copied)."""
    p = PARAMETERS[name]
    return list(p.default) if p.is_list else p.default


def value_of(values: Mapping[str, Any], name: str) -> Any:
    """`values[name]`, or the table's default where `values` lacks it."""
    return values[name] if name in values else default_of(name)


def validate(values: Mapping[str, Any], params: Sequence[Param]) -> str:
    """ "" when every value (and their combination) is acceptable, else the first reason."""
    table = by_name(params)
    for name, value in values.items():
        if name in table:
            reason = table[name].validate(value)
            if reason:
                return reason
    hits, age = value_of(values, "tracker_min_hits"), value_of(values, "tracker_max_age")
    if hits > age:
        return f"tracker_min_hits {hits} must be at most tracker_max_age {age}"
    if "min_depth" in values and "max_depth" in values and values["min_depth"] >= values["max_depth"]:
        return f"min_depth {values['min_depth']} must be below max_depth {values['max_depth']}"
    return ""


def changed_tier(old: Mapping[str, Any], new: Mapping[str, Any], params: Sequence[Param]) -> str | None:
    """The most expensive tier among the parameters whose value differs (None: nothing changed)."""
    table = by_name(params)
    tiers = {table[n].effective_tier for n in new if n in table and old.get(n) != new[n]}
    return max(tiers, key=TIER_ORDER.index) if tiers else None
