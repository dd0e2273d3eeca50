"""Every node parameter, with its descriptor, in one place.

Empty-list defaults are declared by type (ROS cannot infer the type of `[]`) and read back as `[]`.
Map-like parameters (label_confidences, remap_*) are string arrays of "key:value" entries, which a YAML
parameter file writes as `["person:0.6", "car:0.4"]`.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.exceptions import ParameterUninitializedException
from rclpy.node import Node
from rclpy.parameter import Parameter

_ARRAY_TYPES = {str: Parameter.Type.STRING_ARRAY, float: Parameter.Type.DOUBLE_ARRAY,
                int: Parameter.Type.INTEGER_ARRAY, bool: Parameter.Type.BOOL_ARRAY}


@dataclass(frozen=True)
class Param:
    """A parameter: name, default, description; optional numeric range; read-only after start."""

    name: str
    default: Any
    description: str
    low: float | None = None
    high: float | None = None
    read_only: bool = False
    item_type: type = str  # element type of an empty-list default


def declare(node: Node, params: Sequence[Param]) -> dict[str, Any]:
    """Declare all `params` on `node` with descriptors; return their current values by name."""
    values = {}
    for p in params:
        desc = ParameterDescriptor(description=p.description, read_only=p.read_only)
        if p.low is not None and isinstance(p.default, float):
            desc.floating_point_range = [FloatingPointRange(from_value=float(p.low), to_value=float(p.high))]
        elif p.low is not None and isinstance(p.default, int):
            desc.integer_range = [IntegerRange(from_value=int(p.low), to_value=int(p.high), step=1)]
        default = _ARRAY_TYPES[p.item_type] if isinstance(p.default, list) and not p.default else p.default
        node.declare_parameter(p.name, default, desc)
        values[p.name] = get(node, p.name)
    return values


def get(node: Node, name: str) -> Any:
    """A parameter's value; an unset empty-list parameter reads as []."""
    try:
        value = node.get_parameter(name).value
    except ParameterUninitializedException:
        return []
    return list(value) if isinstance(value, (list, tuple)) or hasattr(value, "tolist") else value


def parse_pairs(entries: Sequence[str], what: str) -> dict[str, str]:
    """["a:b", ...] → {"a": "b"}; the last ':' separates, so keys may hold ':' (e.g. 'Out:1:score')."""
    pairs = {}
    for entry in entries:
        key, sep, value = str(entry).rpartition(":")
        if not sep or not key.strip():
            raise ValueError(f"{what}: entry {entry!r} is not of the form 'key:value'")
        pairs[key.strip()] = value.strip()
    return pairs


MODEL_PARAMS = [
    Param("model_path", "", "Model file (.onnx/.tflite), a model repository name, or a bundled name "
          "(ssd_mobilenet_v2_coco, ssd_mobilenet_v2_coco_tflite, efficientnet_lite0, efficientnet_lite0_tflite). "
          "Empty: the bundled SSD detector. Settable at run time (hot swap)."),
    Param("label_path", "", "Label file; empty: labels beside the model, or embedded in it."),
    Param("backend", "auto", "auto (from the file extension), onnx or tflite."),
    Param("execution_providers", ["cuda", "cpu"], "onnxruntime providers in order of preference "
          "(cuda, tensorrt, cpu, or full names). Unavailable ones are skipped with a warning."),
    Param("num_threads", 0, "Inference threads (0 = the runtime's default).", 0, 256),
    Param("model_repository", "", "Folder of models addressable by name: <name>/ (one model file + labels.txt) "
          "or <name>.onnx/.tflite with <name>.txt."),
    Param("allowed_paths", [], "Folders model and label files may be loaded from (after resolving '..' and "
          "symlinks). Empty: the bundled models and model_repository only.", read_only=True),
    Param("allow_model_swap", True, "Allow changing the model at run time (~/load_model, model_path).",
          read_only=True),
]

MODEL_SERVICE_PARAMS = MODEL_PARAMS + [
    Param("max_request_bytes", 268435456, "Largest Infer request (all input tensors together), bytes.",
          1, 4294967296, read_only=True),
    Param("max_concurrent_infer", 4, "Infer calls run at once; more are refused as busy.", 1, 64,
          read_only=True),
]

VISION_PARAMS = MODEL_PARAMS + [
    Param("model_service", "", "Node name of a remote model service (e.g. /ml_model_service) to use instead of "
          "a model in this process.", read_only=True),
    Param("service_timeout", 5.0, "Seconds to wait for a remote model service call.", 0.1, 600.0),
    Param("model_type", "auto", "auto, detector (SSD-style boxes/scores/classes), yolo (raw YOLO v5/v8) or "
          "classifier."),
    Param("confidence_threshold", 0.5, "Minimum score of a detection or classification.", 0.0, 1.0),
    Param("label_confidences", [], "Per-label minimum scores, 'label:min'; when set, only listed labels are kept."),
    Param("classes", [], "Keep only these class names (empty: all)."),
    Param("top_n", 5, "Classifications published per image (<= 0: all above the threshold).", -1, 100000),
    Param("iou_threshold", 0.45, "NMS IoU threshold (YOLO outputs).", 0.0, 1.0),
    Param("max_detections", 100, "Detections kept after NMS (YOLO outputs).", 1, 100000),
    Param("agnostic_nms", False, "Class-agnostic NMS (YOLO outputs)."),
    Param("input_mean", [0.0, 0.0, 0.0], "Float inputs: (v/255 - mean)/std, per RGB channel.", item_type=float),
    Param("input_std", [1.0, 1.0, 1.0], "Float inputs: standard deviation per channel (non-zero).",
          item_type=float),
    Param("input_bgr", False, "Feed the model BGR instead of RGB."),
    Param("resize_mode", "auto", "auto (letterbox for YOLO, stretch otherwise), stretch or letterbox."),
    Param("box_order", [1, 0, 3, 2], "Positions of x_min, y_min, x_max, y_max in a box of an SSD-style model "
          "(default: the model gives ymin, xmin, ymax, xmax).", item_type=int),
    Param("box_units", "auto", "auto, proportional or pixels (of the model input)."),
    Param("yolo_format", "auto", "auto, v5 ([1,N,5+C], objectness) or v8 ([1,4+C,N])."),
    Param("remap_input_names", [], "'model_tensor:image' for the image input when it is not the first."),
    Param("remap_output_names", [], "'model_tensor:role' with role location, score, category, count or "
          "probability."),
    Param("max_image_pixels", 50000000, "Largest decoded image (width x height) accepted from topics and "
          "services; compressed images are checked before decoding.", 1, 1000000000, read_only=True),
    Param("max_input_pixels", 16777216, "Largest model input (height x width) the vision pipeline will feed.",
          1, 1000000000, read_only=True),
    Param("publish_class_names", True, "ObjectHypothesis.class_id holds the class name (true) or its index."),
    Param("use_compressed", False, "Subscribe to image/compressed (jpeg/png) instead of image.", read_only=True),
    Param("image_qos", "sensor_data", "Subscriber QoS: sensor_data (best effort) or reliable.", read_only=True),
    Param("always_on", False, "Process frames even when nobody listens to any output."),
    Param("publish_debug_image", True, "Publish debug_image with boxes and labels drawn (when subscribed)."),
    Param("use_depth", False, "Subscribe to depth and camera_info and publish 3D objects.", read_only=True),
    Param("object_mode", "detections", "detections (detector boxes → objects) or obstacles (no model: plane "
          "removal and clustering of the depth cloud).", read_only=True),
    Param("depth_unit_scale", 0.0, "Metres per depth unit; 0 = by encoding (16UC1 mm, 32FC1 m).", 0.0, 1000.0),
    Param("sync_slop", 0.05, "Largest stamp difference (s) between a colour frame and its depth frame.",
          0.0, 10.0),
    Param("min_depth", 0.1, "Nearest valid depth (m).", 0.0, 1000.0),
    Param("max_depth", 10.0, "Farthest valid depth (m).", 0.0, 1000.0),
    Param("depth_band", 0.5, "Half-width (m) of the depth band kept around an object's dominant depth.",
          0.01, 100.0),
    Param("mean_k", 20, "Outlier removal: neighbours per point.", 1, 1000),
    Param("sigma", 2.0, "Outlier removal: standard deviations allowed.", 0.0, 100.0),
    Param("min_points", 30, "Smallest point count of an object.", 1, 10000000),
    Param("max_points_per_object", 800, "Detections: an object's depth pixels are sampled on a grid of at most "
          "this many points (speed and message size).", 10, 10000000),
    Param("voxel_size", 0.02, "Obstacles: voxel downsampling size (m).", 0.0, 10.0),
    Param("plane_min_points", 500, "Obstacles: fewest points for the ground plane.", 3, 10000000),
    Param("plane_max_distance", 0.1, "Obstacles: largest point distance (m) from the plane.", 0.0, 10.0),
    Param("ground_normal", [0.0, -1.0, 0.0], "Obstacles: expected plane normal in the camera optical frame.",
          item_type=float),
    Param("ground_angle_tolerance_deg", 30.0, "Obstacles: allowed angle (deg) between plane and ground_normal.",
          0.0, 180.0),
    Param("cluster_radius", 0.1, "Obstacles: clustering radius (m).", 0.001, 100.0),
    Param("cluster_min_points", 10, "Obstacles: smallest cluster.", 1, 10000000),
]
