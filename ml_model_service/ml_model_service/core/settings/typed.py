"""Typed views of the parameter table: an attribute for each parameter, an enum for each choice list.
Generated from tables.py by `python3 -m ml_model_service.core.settings` (test_config keeps it in sync): do
not edit."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from .view import SettingsView

Backend = StrEnum("Backend", ["AUTO", "ONNX", "TFLITE", "OPENVINO"])

ModelType = StrEnum("ModelType", ["AUTO", "DETECTOR", "YOLO", "END2END", "DETR", "CLASSIFIER", "SEGMENTER"])

InputRange = StrEnum("InputRange", ["UNIT", "BYTE"])

LetterboxPosition = StrEnum("LetterboxPosition", ["CENTER", "TOP_LEFT"])

ResizeMode = StrEnum("ResizeMode", ["AUTO", "STRETCH", "LETTERBOX", "CENTER_CROP"])

BoxFormat = StrEnum("BoxFormat", ["AUTO", "XYXY", "CXCYWH"])

ScoreActivation = StrEnum("ScoreActivation", ["AUTO", "NONE", "SIGMOID", "SOFTMAX"])

BoxUnits = StrEnum("BoxUnits", ["AUTO", "PROPORTIONAL", "PIXELS"])

YoloFormat = StrEnum("YoloFormat", ["AUTO", "V5", "V8"])

Task = StrEnum("Task", ["AUTO", "DETECT", "SEGMENT", "POSE", "OBB"])

SegmentationLayout = StrEnum("SegmentationLayout", ["AUTO", "NCHW", "NHWC"])

ImageQos = StrEnum("ImageQos", ["SENSOR_DATA", "RELIABLE"])

ObjectMode = StrEnum("ObjectMode", ["DETECTIONS", "OBSTACLES"])


@dataclass(frozen=True)
class ModelSettings(SettingsView):
    """The parameters both nodes share: the model and the lifecycle."""

    model_path: str
    label_path: str
    backend: Backend
    execution_providers: tuple[str, ...]
    num_threads: int
    pin_threads: bool
    model_repository: str
    allowed_paths: tuple[str, ...]
    allowed_servers: tuple[str, ...]
    server_timeout: float
    allow_model_swap: bool
    autostart: bool


@dataclass(frozen=True)
class ModelServiceSettings(ModelSettings):
    """The model service node's parameters."""

    max_request_bytes: int
    max_concurrent_infer: int
    max_batch: int
    batch_wait: float
    infer_queue_depth: int


@dataclass(frozen=True)
class VisionSettings(ModelSettings):
    """The vision node's parameters."""

    model_service: str
    service_timeout: float
    model_type: ModelType
    confidence_threshold: float
    label_confidences: tuple[str, ...]
    classes: tuple[str, ...]
    top_n: int
    iou_threshold: float
    max_detections: int
    agnostic_nms: bool
    input_mean: tuple[float, float, float]
    input_std: tuple[float, float, float]
    input_bgr: bool
    input_range: InputRange
    letterbox_position: LetterboxPosition
    resize_mode: ResizeMode
    input_size: tuple[int, ...]
    input_shortest_edge: tuple[int, ...]
    crop_fraction: float
    box_order: tuple[int, ...]
    box_format: BoxFormat
    score_activation: ScoreActivation
    box_units: BoxUnits
    yolo_format: YoloFormat
    task: Task
    keypoint_shape: tuple[int, ...]
    segmentation_layout: SegmentationLayout
    remap_input_names: tuple[str, ...]
    remap_output_names: tuple[str, ...]
    mask_threshold: float
    tracking: bool
    tracker_max_age: int
    tracker_min_iou: float
    tracker_min_hits: int
    tracker_class_aware: bool
    publish_masks: bool
    publish_markers: bool
    max_image_pixels: int
    max_decode_pixels_per_s: int
    max_input_pixels: int
    publish_class_names: bool
    use_compressed: bool
    image_qos: ImageQos
    always_on: bool
    pin_worker: bool
    publish_debug_image: bool
    use_depth: bool
    object_mode: ObjectMode
    target_frame: str
    tf_timeout: float
    depth_unit_scale: float
    sync_slop: float
    min_depth: float
    max_depth: float
    depth_band: float
    mean_k: int
    sigma: float
    min_points: int
    max_points_per_object: int
    voxel_size: float
    plane_min_points: int
    plane_max_distance: float
    ground_normal: tuple[float, float, float]
    ground_angle_tolerance_deg: float
    cluster_radius: float
    cluster_min_points: int
    cameras: tuple[str, ...]
    max_batch: int
    batch_wait: float
