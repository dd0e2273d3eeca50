"""The models shipped with the package: their files and labels in `models/` (checksummed there by SHA256SUMS).
`backend: auto` measures which runtime runs each fastest here, as for any model file (runtimes.choice)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

BUNDLED_DIR = Path(__file__).resolve().parents[2] / "models"


@dataclass(frozen=True)
class BundledModel:
    file: str
    labels: str
    description: str


#: Models shipped with the package (see models/PROVENANCE.md).
BUNDLED: dict[str, BundledModel] = {
    "ssd_mobilenet_v2_coco": BundledModel(
        "ssd_mobilenet_v2_coco_qdq.onnx",
        "coco_labels.txt",
        "SSD MobileNet V2 COCO detector (int8 QDQ ONNX, TFLite detection post-processing)",
    ),
    "ssd_mobilenet_v2_coco_tflite": BundledModel(
        "mobilenet_ssd_v2_coco_quant_postprocess.tflite",
        "coco_labels.txt",
        "SSD MobileNet V2 COCO detector (int8 TFLite, Coral)",
    ),
    "efficientnet_lite0": BundledModel(
        "efficientnet_lite0_qdq.onnx",
        "imagenet_labels.txt",
        "EfficientNet-Lite0 ImageNet classifier (int8 QDQ ONNX; uint8 softmax output, value/256)",
    ),
    "efficientnet_lite0_tflite": BundledModel(
        "efficientnet_lite0.tflite", "imagenet_labels.txt", "EfficientNet-Lite0 ImageNet classifier (int8 TFLite)"
    ),
}
DEFAULT_DETECTOR = "ssd_mobilenet_v2_coco"
DEFAULT_CLASSIFIER = "efficientnet_lite0"
