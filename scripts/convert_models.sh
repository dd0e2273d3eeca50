#!/usr/bin/env bash
# Reproduce the bundled ONNX models from the bundled TFLite models (see
# ml_model_service/ml_model_service/models/PROVENANCE.md). Not run by CI: it installs TensorFlow
# (about 1.4 GB) into a throw-away virtual environment.
#
#   bash scripts/convert_models.sh [OUT_DIR]      (default: out/converted)
#
# Then compare: sha256sum OUT_DIR/*.onnx, or run `ml_model_cli detect --model OUT_DIR/...onnx IMAGE`.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MODELS="$ROOT/ml_model_service/ml_model_service/models"
OUT=$(realpath -m "${1:-$ROOT/out/converted}")
VENV=${CONVERT_VENV:-/tmp/ml_model_service-convert-venv}
mkdir -p "$OUT"
if [ ! -x "$VENV/bin/python" ]; then
  python3.11 -m venv "$VENV"
  "$VENV/bin/pip" install -q "tensorflow-cpu==2.15.1" "tf2onnx==1.16.1" "numpy<2"
fi
for model in mobilenet_ssd_v2_coco_quant_postprocess:ssd_mobilenet_v2_coco_qdq efficientnet_lite0:efficientnet_lite0_qdq; do
  src=${model%%:*}; dst=${model##*:}
  "$VENV/bin/python" -m tf2onnx.convert --tflite "$MODELS/$src.tflite" --output "$OUT/$dst.onnx" --opset 13
  # A float (dequantised) variant, about 24 MB for the SSD:
  "$VENV/bin/python" -m tf2onnx.convert --tflite "$MODELS/$src.tflite" --output "$OUT/${dst%_qdq}_float.onnx" \
    --opset 13 --dequantize
done
echo "converted models in $OUT"
