"""Label files in the forms found in the wild.

- one label per line (blank lines skipped), index = line number;
- "id name" per line with sparse ids (TFLite/Coral COCO files such as the bundled coco_labels.txt);
- a single line of labels separated by commas (or, failing that, spaces);
- labels embedded in a model (TFLite zip metadata; Ultralytics' ONNX `names` metadata).
"""
from __future__ import annotations

import ast
import re
import zipfile
from collections.abc import Mapping
from pathlib import Path

_ID_NAME = re.compile(r"^\s*(\d+)[\s:,]+(.+?)\s*$")


class Labels:
    """Index → class name. Unknown indices are named by their number."""

    def __init__(self, names: Mapping[int, str], source: str = "") -> None:
        self.names = dict(sorted((int(k), str(v)) for k, v in names.items()))
        self.source = source

    @classmethod
    def from_list(cls, names: list[str], source: str = "") -> Labels:
        return cls(dict(enumerate(names)), source)

    def __len__(self) -> int:
        return len(self.names)

    def __bool__(self) -> bool:
        return bool(self.names)

    def name(self, index: int) -> str:
        """The class name of `index`, or the index as text when the labels do not cover it."""
        return self.names.get(int(index), str(int(index)))

    @property
    def span(self) -> int:
        """Largest index + 1: the length an output axis must have to be covered by these labels."""
        return max(self.names) + 1 if self.names else 0


def parse_labels(text: str, source: str = "") -> Labels:
    """Parse label file text (see module docstring for the forms)."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if not lines:
        return Labels({}, source)
    if len(lines) == 1:
        line = lines[0]
        parts = [p.strip() for p in line.split(",")] if "," in line else line.split()
        return Labels.from_list([p for p in parts if p], source)
    matches = [_ID_NAME.match(ln) for ln in lines]
    if all(matches):
        ids = [int(m.group(1)) for m in matches]
        if len(set(ids)) == len(ids):
            return Labels({i: m.group(2) for i, m in zip(ids, matches)}, source)
    return Labels.from_list(lines, source)


def load_labels(path: str | Path) -> Labels:
    """Read a label file; raises FileNotFoundError / ValueError with the path in the message."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"label file not found: {path}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"label file {path} is not UTF-8 text: {exc}") from exc
    return parse_labels(text, str(path))


def embedded_labels(model_path: str | Path, onnx_metadata: Mapping[str, str] | None = None) -> Labels | None:
    """Labels a model carries itself: a TFLite file's zip metadata, or ONNX metadata `names`/`labels`."""
    model_path = Path(model_path)
    if onnx_metadata:
        for key in ("names", "labels", "classes"):
            if key in onnx_metadata:
                raw = onnx_metadata[key]
                try:
                    value = ast.literal_eval(raw)
                except (ValueError, SyntaxError):
                    return parse_labels(raw, f"{model_path}#{key}")
                if isinstance(value, dict):
                    return Labels(value, f"{model_path}#{key}")
                if isinstance(value, (list, tuple)):
                    return Labels.from_list([str(v) for v in value], f"{model_path}#{key}")
    if model_path.suffix == ".tflite" and zipfile.is_zipfile(model_path):
        with zipfile.ZipFile(model_path) as archive:
            for member in archive.namelist():
                if member.endswith(".txt") and "label" in member.lower():
                    text = archive.read(member).decode("utf-8", errors="replace")
                    return parse_labels(text, f"{model_path}#{member}")
    return None
