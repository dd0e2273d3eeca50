"""Offline command: check a model before deploying it, with the same code the nodes run.

    ml_model_cli metadata MODEL
    ml_model_cli infer MODEL --input NAME=FILE.npy [...]
    ml_model_cli detect [--model M] [--labels L] [--threshold T] IMAGE...
    ml_model_cli classify [--model M] [--labels L] [--top N] IMAGE...

MODEL is a file path, a model repository name (with --repository) or a bundled name. Output is JSON
(one object per image per line for detect/classify). No ROS needed.
"""
from __future__ import annotations

import argparse
import json
import sys

import cv2
import numpy as np

from .core.model import BUNDLED, DEFAULT_CLASSIFIER, DEFAULT_DETECTOR, Model
from .core.vision import FilterConfig, VisionConfig, VisionModel


def _model(args, default: str) -> Model:
    return Model(args.model or default, args.labels or "", repository=args.repository,
                 providers=args.providers.split(","), num_threads=args.threads)


def read_rgb(path: str) -> np.ndarray:
    """An image file as RGB uint8."""
    bgr = cv2.imread(path, cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f"cannot read image {path}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def cmd_metadata(args) -> int:
    model = _model(args, DEFAULT_DETECTOR)
    print(json.dumps({**model.metadata.to_dict(), "warnings": model.warnings}, indent=2))
    return 0


def cmd_infer(args) -> int:
    model = _model(args, DEFAULT_DETECTOR)
    inputs = {}
    for item in args.input:
        name, sep, file = item.partition("=")
        if not sep:
            raise ValueError(f"--input {item!r} is not NAME=FILE.npy")
        inputs[name] = np.load(file, allow_pickle=False)
    outputs = model.infer(inputs)
    print(json.dumps({"outputs": [{"name": n, "data_type": a.dtype.name, "shape": list(a.shape),
                                   "data": a.tolist()} for n, a in outputs.items()]}))
    return 0


def _vision(args, default: str) -> VisionModel:
    model = _model(args, default)
    config = VisionConfig(filters=FilterConfig(confidence_threshold=args.threshold))
    return VisionModel(model, model.labels, config)


def _per_image(args, default: str, run) -> int:
    vision = _vision(args, default)
    status = 0
    for path in args.images:
        try:
            rgb = read_rgb(path)
        except ValueError as exc:
            print(json.dumps({"image": path, "error": str(exc)}))
            status = 1
            continue
        print(json.dumps({"image": path, "width": rgb.shape[1], "height": rgb.shape[0], **run(vision, rgb)}))
    return status


def cmd_detect(args) -> int:
    return _per_image(args, DEFAULT_DETECTOR,
                      lambda v, rgb: {"detections": [d.to_dict() for d in v.detect(rgb)]})


def cmd_classify(args) -> int:
    return _per_image(args, DEFAULT_CLASSIFIER,
                      lambda v, rgb: {"classifications": [c.to_dict() for c in v.classify(rgb, args.top)]})


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ml_model_cli", description=__doc__.split("\n\n")[0])
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--labels", default="", help="label file (default: beside or inside the model)")
    common.add_argument("--repository", default=None, help="model repository folder")
    common.add_argument("--providers", default="cpu", help="onnxruntime providers, comma-separated")
    common.add_argument("--threads", type=int, default=0, help="inference threads (0 = default)")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("metadata", parents=[common], help="print a model's metadata")
    p.add_argument("model")
    p.set_defaults(func=cmd_metadata)
    p = sub.add_parser("infer", parents=[common], help="run a model on .npy inputs")
    p.add_argument("model")
    p.add_argument("--input", action="append", default=[], metavar="NAME=FILE.npy")
    p.set_defaults(func=cmd_infer)
    for name, func, default, threshold in (("detect", cmd_detect, DEFAULT_DETECTOR, 0.5),
                                           ("classify", cmd_classify, DEFAULT_CLASSIFIER, 0.0)):
        p = sub.add_parser(name, parents=[common], help=f"{name} images (default model: {default})")
        p.add_argument("--model", default="", help=f"model path or name (bundled: {', '.join(BUNDLED)})")
        p.add_argument("--threshold", type=float, default=threshold, help="minimum confidence")
        if name == "classify":
            p.add_argument("--top", type=int, default=5, help="classifications per image (<= 0: all)")
        p.add_argument("images", nargs="+")
        p.set_defaults(func=func)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code = args.func(args)
    except (OSError, ValueError, RuntimeError) as exc:
        print(json.dumps({"error": str(exc)}), file=sys.stderr)
        code = 2
    sys.exit(code)


if __name__ == "__main__":
    main()
