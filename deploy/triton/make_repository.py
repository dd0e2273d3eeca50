#!/usr/bin/env python3
"""Write a Triton Inference Server model repository for the bundled ONNX models.

    python3 deploy/triton/make_repository.py [OUT]      (default: deploy/triton/model_repository)

with the suite on the Python path (`source env.sh`, or a sourced workspace where ml_model_service is installed).

Each model gets `<name>/config.pbtxt` (platform onnxruntime_onnx, tensors read from the ONNX file, the
class labels in the `labels` parameter, which the suite's Open Inference Protocol backend reads) and
`<name>/1/model.onnx` (a copy of the bundled file, checked against the package's SHA256SUMS). The
config.pbtxt files are committed; the model files are copied by this script.
"""
from __future__ import annotations

import hashlib
import shutil
import sys
from pathlib import Path

from ml_model_service.core.loading.bundled import BUNDLED, BUNDLED_DIR
from ml_model_service.core.loading.trust import read_sums
from ml_model_service.core.runtimes.onnxruntime_backend import OnnxBackend

ROOT = Path(__file__).resolve().parents[2]

#: Repository name → bundled model name.
MODELS = {"ssd": "ssd_mobilenet_v2_coco", "efficientnet_lite0": "efficientnet_lite0"}
TRITON_TYPES = {"float32": "TYPE_FP32", "float16": "TYPE_FP16", "float64": "TYPE_FP64", "uint8": "TYPE_UINT8",
                "int8": "TYPE_INT8", "int16": "TYPE_INT16", "int32": "TYPE_INT32", "int64": "TYPE_INT64",
                "bool": "TYPE_BOOL", "uint16": "TYPE_UINT16", "uint32": "TYPE_UINT32", "uint64": "TYPE_UINT64"}


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def config_text(name: str, bundled: str) -> str:
    """config.pbtxt for one bundled ONNX model."""
    b = BUNDLED[bundled]
    backend = OnnxBackend(BUNDLED_DIR / b.file, providers=["cpu"], num_threads=1)

    def tensors(specs) -> str:
        return ",\n".join(f'  {{ name: "{s.name}" data_type: {TRITON_TYPES[s.data_type]} dims: {list(s.shape)} }}'
                          for s in specs)

    labels = (BUNDLED_DIR / b.labels).read_text(encoding="utf-8").strip()
    return (f"# {b.description}\n# Written by deploy/triton/make_repository.py from {b.file}; labels from {b.labels}.\n"
            f'name: "{name}"\nplatform: "onnxruntime_onnx"\nmax_batch_size: 0\n'
            f"input [\n{tensors(backend.inputs)}\n]\noutput [\n{tensors(backend.outputs)}\n]\n"
            "# One instance on the first GPU where Triton has one; on the CPU otherwise.\n"
            "instance_group [ { count: 1 kind: KIND_AUTO } ]\n"
            f'parameters {{ key: "labels" value {{ string_value: "{_escape(labels)}" }} }}\n')


def main(argv: list[str]) -> int:
    out = Path(argv[0]) if argv else Path(__file__).resolve().parent / "model_repository"
    sums = read_sums(BUNDLED_DIR / "SHA256SUMS")
    for name, bundled in MODELS.items():
        folder = out / name
        (folder / "1").mkdir(parents=True, exist_ok=True)
        (folder / "config.pbtxt").write_text(config_text(name, bundled), encoding="utf-8")
        source = BUNDLED_DIR / BUNDLED[bundled].file
        if hashlib.sha256(source.read_bytes()).hexdigest() != sums.get(source.name):
            raise SystemExit(f"{source} does not match the package's SHA256SUMS; reinstall the package")
        shutil.copyfile(source, folder / "1" / "model.onnx")
        print(f"{folder}: config.pbtxt, 1/model.onnx ({source.name})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
