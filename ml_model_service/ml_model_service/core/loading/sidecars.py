"""What an exporter leaves beside the model file: Hugging Face's `config.json` (`id2label`, the architecture) and
`preprocessor_config.json` (the image processor: size, rescale, normalisation), as `transformers`' `save_pretrained`
and `optimum-cli export onnx` write them.

Read from the model's private copy (`snapshot` copies them, bounded, from the model's own folder) into the
model's properties under `hf.` keys, which the vision pipeline reads like an Ultralytics export's metadata
(`reading.hints`) and which travel with the model's metadata to remote vision nodes. A file that is missing,
too large or not JSON is ignored, as a missing one; one that is read is named in `hf.sidecars`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from .labels import Labels

SIDECARS = ("config.json", "preprocessor_config.json")
#: Largest sidecar file read.
MAX_SIDECAR_BYTES = 1 << 20
#: The image processor's keys kept (as JSON text, under `hf.<key>`).
PROCESSOR_KEYS = (
    "do_resize",
    "size",
    "resample",
    "do_rescale",
    "rescale_factor",
    "do_normalize",
    "image_mean",
    "image_std",
    "do_pad",
    "do_center_crop",
    "crop_size",
    "crop_pct",
    "image_processor_type",
)
#: The placeholder names `transformers` gives a config without labels (LABEL_0, LABEL_1, ...).
_PLACEHOLDER = re.compile(r"^LABEL_\d+$")


def _load(path: Path) -> dict | None:
    try:
        if not path.is_file() or path.stat().st_size > MAX_SIDECAR_BYTES:
            return None
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


def sidecar_properties(folder: Path) -> dict[str, str]:
    """The `hf.` properties of the sidecars in `folder` (the model's private copy)."""
    props: dict[str, str] = {}
    read = []
    config = _load(folder / "config.json")
    if config is not None:
        read.append("config.json")
        labels = config.get("id2label")
        if isinstance(labels, dict) and labels:
            props["hf.id2label"] = json.dumps(labels)
        architectures = config.get("architectures")
        if isinstance(architectures, list) and architectures:
            props["hf.architectures"] = ",".join(str(a) for a in architectures)
        if isinstance(config.get("model_type"), str):
            props["hf.model_type"] = config["model_type"]
    processor = _load(folder / "preprocessor_config.json")
    if processor is not None:
        read.append("preprocessor_config.json")
        for key in PROCESSOR_KEYS:
            if key in processor:
                props[f"hf.{key}"] = json.dumps(processor[key])
    if read:
        props["hf.sidecars"] = ", ".join(read)
    return props


def sidecar_labels(props: dict[str, str], shown: str) -> Labels | None:
    """The class names of `config.json`'s `id2label` (None when it has none, or only transformers' LABEL_n
    placeholders). Raises ValueError for ids that are not whole numbers."""
    text = props.get("hf.id2label")
    if not text:
        return None
    names = json.loads(text)
    if all(_PLACEHOLDER.match(str(v)) for v in names.values()):
        return None
    try:
        ids = {int(str(k)): str(v) for k, v in names.items()}
    except ValueError as exc:
        raise ValueError(f"{shown}: id2label has an id that is not a whole number ({exc})") from exc
    return Labels(ids, f"{shown}#id2label")
