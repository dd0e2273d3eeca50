"""Offline command: check a model before deploying it, with the same code the nodes run.

    ml_model_cli metadata MODEL
    ml_model_cli infer MODEL --input NAME=FILE.npy [...]
    ml_model_cli detect [--model M] [--labels L] [--params-file vision.yaml] [--OPTION VALUE ...] IMAGE...
    ml_model_cli classify [--model M] [--labels L] [--top N] [--OPTION VALUE ...] IMAGE...
    ml_model_cli segment --model M --out DIR [--labels L] [--OPTION VALUE ...] IMAGE...

MODEL is a file path, a model repository name (with --repository) or a bundled name. Every decoding, preprocessing
and filter parameter of the vision node is a flag of the same name (`--input_size 320`, `--box_format cxcywh`,
`--input_mean 0.485,0.456,0.406`), or comes from the node's own YAML parameter file (`--params-file`; flags win).
Output is JSON: one object per image per line for detect/classify/segment, with `class_id` beside `class_name`;
`segment` also writes DIR/<image stem>_classes.png (each pixel's class index at the image's size: 8-bit for up to
256 classes, else 16-bit) and DIR/<image stem>_overlay.png. Every failure is a JSON `error` (stdout for one image,
stderr for the whole command) and a non-zero exit status (1: some images failed; 2: the command failed). No ROS
needed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from .core.frames.visualize import overlay_classes
from .core.loading.bundled import BUNDLED, DEFAULT_CLASSIFIER, DEFAULT_DETECTOR
from .core.loading.model import Model
from .core.reading.vision import VisionModel
from .core.settings.configs import vision_config
from .core.settings.params import FILTERS, MODEL, Param
from .core.settings.tables import VISION_OPTIONS, defaults
from .core.settings.typed import VisionSettings
from .core.text import parse_number

#: Node parameters that select the model; the CLI's own flags (--model, --labels...) set them.
_RUNNER = {
    "model_path": "model",
    "label_path": "labels",
    "model_repository": "repository",
    "execution_providers": "providers",
    "num_threads": "threads",
    "backend": "backend",
}


def vision_params() -> list[Param]:
    """The node's decoding, preprocessing and filter parameters, as CLI options."""
    return [
        p for p in VISION_OPTIONS if p.effective_tier in (MODEL, FILTERS) or p.name in ("top_n", "max_input_pixels")
    ]


class CliError(ValueError):
    """A usage error, reported as JSON."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse would print usage and exit; report JSON instead
        raise CliError(f"{self.prog}: {message}")


def _convert(param: Param, text: Any) -> Any:
    """A flag or YAML value → the parameter's type, validated."""
    value = text
    if isinstance(text, str) and not param.is_list and not isinstance(param.default, (bool, str)):
        number = parse_number(text)
        if number is None:
            raise CliError(f"--{param.name}: {text!r} is not a number")
        value = int(number) if isinstance(param.default, int) and number.is_integer() else number
    value = param.coerce(value)
    reason = param.validate(value)
    if reason:
        raise CliError(reason)
    return value


def read_params_file(path: str, node: str = "vision_service") -> dict[str, Any]:
    """The `ros__parameters` of a node's YAML file: the `/**` section, then `<node>` / `/<node>`, else the only
    section."""
    import yaml

    try:
        doc = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError, UnicodeDecodeError) as exc:
        raise CliError(f"cannot read parameter file {path}: {exc}") from exc
    if not isinstance(doc, dict):
        raise CliError(f"parameter file {path} is not a mapping of node names to ros__parameters")
    sections = {str(k).strip("/"): v for k, v in doc.items() if isinstance(v, dict) and "ros__parameters" in v}
    merged: dict[str, Any] = {}
    for key in ("**", node):
        if key in sections:
            merged.update(sections[key]["ros__parameters"] or {})
    if not merged and len(sections) == 1:
        merged = dict(next(iter(sections.values()))["ros__parameters"] or {})
    if not merged and sections:
        raise CliError(f"parameter file {path} has sections {sorted(sections)} but none for '/**' or {node!r}")
    return merged


def option_settings(args: argparse.Namespace) -> VisionSettings:
    """Defaults < parameter file < flags, validated."""
    params = vision_params()
    values = defaults(VISION_OPTIONS)
    table = {p.name: p for p in params}
    values["confidence_threshold"] = getattr(args, "default_threshold", values["confidence_threshold"])
    if getattr(args, "params_file", None):
        for name, value in read_params_file(args.params_file).items():
            if name in table:
                values[name] = _convert(table[name], value)
            elif name in _RUNNER and getattr(args, _RUNNER[name], None) in (None, "", 0):
                setattr(args, _RUNNER[name], ",".join(value) if isinstance(value, list) else value)
    for p in params:
        given = getattr(args, f"opt_{p.name}", None)
        if given is not None:
            values[p.name] = _convert(p, given)
    if getattr(args, "threshold", None) is not None:
        values["confidence_threshold"] = _convert(table["confidence_threshold"], args.threshold)
    if getattr(args, "top", None) is not None:
        values["top_n"] = args.top
    return VisionSettings.of(values)


def _model(args, default: str) -> Model:
    providers = args.providers if isinstance(args.providers, str) else ",".join(args.providers)
    return Model(
        args.model or default,
        args.labels or "",
        repository=args.repository or None,
        backend=getattr(args, "backend", None) or "auto",
        providers=providers.split(","),
        num_threads=int(args.threads or 0),
    )


def read_rgb(path: str) -> np.ndarray:
    """An image file as RGB uint8."""
    bgr = cv2.imread(path, cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f"cannot read image {path}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _vision_summary(vision: VisionModel) -> dict:
    return {
        "role": vision.role,
        "resize_mode": vision.resize_mode,
        "input_size": list(vision.input_hw) if vision.input_hw else "follows the image",
        "labels": len(vision.labels) if vision.labels else 0,
        **({"labels_from": vision.labels.source} if vision.labels else {}),
        **({"read_from": vision.hints.sources} if vision.hints.sources else {}),
        "warnings": vision.warnings,
    }


def cmd_metadata(args) -> int:
    model = _model(args, DEFAULT_DETECTOR)
    try:
        vision = _vision_summary(VisionModel(model, model.labels, vision_config(option_settings(args))))
    except ValueError as exc:
        vision = {"error": str(exc)}
    print(json.dumps({**model.metadata.to_dict(), "warnings": model.warnings, "vision": vision}, indent=2))
    return 0


def cmd_infer(args) -> int:
    model = _model(args, DEFAULT_DETECTOR)
    inputs = {}
    for item in args.input:
        name, sep, file = item.partition("=")
        if not sep:
            raise CliError(f"--input {item!r} is not NAME=FILE.npy")
        inputs[name] = np.load(file, allow_pickle=False)
    outputs = model.infer(inputs)
    print(
        json.dumps(
            {
                "outputs": [
                    {"name": n, "data_type": a.dtype.name, "shape": list(a.shape), "data": a.tolist()}
                    for n, a in outputs.items()
                ]
            }
        )
    )
    return 0


def _per_image(args, default: str, run) -> int:
    settings = option_settings(args)
    model = _model(args, default)
    vision = VisionModel(model, model.labels, vision_config(settings))
    for warning in model.warnings + vision.warnings:
        print(json.dumps({"warning": warning}), file=sys.stderr)
    status = 0
    for path in args.images:
        try:
            rgb = read_rgb(path)
            result = run(vision, rgb, settings, path)
        except Exception as exc:  # one bad image or frame: say why, go on with the others
            print(json.dumps({"image": path, "error": str(exc)}))
            status = 1
            continue
        print(json.dumps({"image": path, "width": rgb.shape[1], "height": rgb.shape[0], **result}))
    return status


def cmd_detect(args) -> int:
    return _per_image(
        args, DEFAULT_DETECTOR, lambda v, rgb, _settings, _path: {"detections": [d.to_dict() for d in v.detect(rgb)]}
    )


def cmd_classify(args) -> int:
    return _per_image(
        args,
        DEFAULT_CLASSIFIER,
        lambda v, rgb, s, _path: {"classifications": [c.to_dict() for c in v.classify(rgb, s.top_n)]},
    )


def cmd_segment(args) -> int:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    def run(vision: VisionModel, rgb: np.ndarray, _settings: VisionSettings, path: str) -> dict:
        result = vision.segment(rgb)
        stem = Path(path).stem
        classes, overlay = out / f"{stem}_classes.png", out / f"{stem}_overlay.png"
        if not cv2.imwrite(str(classes), result.classes):
            raise ValueError(f"cannot write {classes}")
        cv2.imwrite(str(overlay), cv2.cvtColor(overlay_classes(rgb, result.classes), cv2.COLOR_RGB2BGR))
        return {"segmentation": str(classes), "overlay": str(overlay), "classes": result.to_dict()["classes"]}

    return _per_image(args, "", run)


def _add_vision_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("vision options (the vision node's parameters; lists comma-separated)")
    group.add_argument(
        "--params-file",
        "--params_file",
        dest="params_file",
        default=None,
        help="the vision node's YAML parameter file ('/**' or 'vision_service' ros__parameters)",
    )
    for p in vision_params():
        if p.name in ("confidence_threshold", "top_n"):
            continue  # --threshold and --top below
        default = p.default if not isinstance(p.default, list) else ",".join(map(str, p.default)) or "[]"
        hint = f" ({p.constraints()})" if p.choices or p.low is not None else ""
        group.add_argument(
            f"--{p.name}",
            f"--{p.name.replace('_', '-')}",
            dest=f"opt_{p.name}",
            default=None,
            metavar="VALUE",
            help=f"{p.description}{hint} Default: {default}.",
        )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="ml_model_cli", description=__doc__.split("\n\n")[0])
    common = _Parser(add_help=False)
    common.add_argument("--labels", default="", help="label file (default: beside or inside the model)")
    common.add_argument("--repository", default=None, help="model repository folder")
    common.add_argument("--providers", default="cpu", help="onnxruntime providers, comma-separated")
    common.add_argument("--threads", type=int, default=0, help="inference threads (0 = default)")
    common.add_argument("--backend", default="auto", help="auto, onnx or tflite")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    p = sub.add_parser("metadata", parents=[common], help="print a model's metadata and how it is read")
    p.add_argument("model")
    _add_vision_options(p)
    p.set_defaults(func=cmd_metadata)
    p = sub.add_parser("infer", parents=[common], help="run a model on .npy inputs")
    p.add_argument("model")
    p.add_argument("--input", action="append", default=[], metavar="NAME=FILE.npy")
    p.set_defaults(func=cmd_infer)
    for name, func, default, threshold in (
        ("detect", cmd_detect, DEFAULT_DETECTOR, 0.5),
        ("classify", cmd_classify, DEFAULT_CLASSIFIER, 0.0),
    ):
        p = sub.add_parser(name, parents=[common], help=f"{name} images (default model: {default})")
        p.add_argument("--model", default="", help=f"model path or name (bundled: {', '.join(BUNDLED)})")
        p.add_argument(
            "--threshold",
            "--confidence_threshold",
            "--confidence-threshold",
            dest="threshold",
            type=float,
            default=None,
            help=f"minimum confidence (default {threshold})",
        )
        p.set_defaults(default_threshold=threshold)
        if name == "classify":
            p.add_argument(
                "--top",
                "--top_n",
                "--top-n",
                dest="top",
                type=int,
                default=None,
                help="classifications per image (<= 0: all; default 5)",
            )
        _add_vision_options(p)
        p.add_argument("images", nargs="+")
        p.set_defaults(func=func)
    p = sub.add_parser("segment", parents=[common], help="a class for every pixel of each image (a segmenter)")
    p.add_argument("--model", required=True, help="model path or name (a semantic-segmentation model)")
    p.add_argument("--out", required=True, help="folder for <image stem>_classes.png and <image stem>_overlay.png")
    p.set_defaults(default_threshold=0.5)
    _add_vision_options(p)
    p.add_argument("images", nargs="+")
    p.set_defaults(func=cmd_segment)
    return parser


def main(argv: list[str] | None = None) -> int:
    code = 2
    try:
        args = build_parser().parse_args(argv)
        code = args.func(args)
    except SystemExit as exc:  # --help
        code = exc.code if isinstance(exc.code, int) else 0
    except Exception as exc:  # every failure is one JSON line, never a traceback
        print(json.dumps({"error": str(exc) or type(exc).__name__}), file=sys.stderr)
        code = 2
    sys.exit(code)


if __name__ == "__main__":
    main()
