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
import zlib
from collections.abc import Mapping
from pathlib import Path

_ID_NAME = re.compile(r"^\s*(\d+)[\s:,]+(.+?)\s*$")
_WHOLE = re.compile(r"^\s*[-+]?\d+\s*$")


class Labels:
    """Index → class name. Unknown indices are named by their number."""

    def __init__(self, names: Mapping[int, str], source: str = "") -> None:
        try:
            self.names = dict(sorted((int(k), str(v)) for k, v in names.items()))
        except (TypeError, ValueError, OverflowError) as exc:
            raise ValueError(f"labels {source}: class ids must be whole numbers ({exc})") from exc
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
    found = [_ID_NAME.match(ln) for ln in lines]
    matches = [m for m in found if m is not None]
    if len(matches) == len(found):
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


def _class_id(key: object, source: str) -> int:
    """A class id from metadata: a whole number (an int, an integral float or a string of digits)."""
    if isinstance(key, str) and _WHOLE.match(key):
        return int(key)  # above int()'s digit limit: ValueError
    if isinstance(key, int) and not isinstance(key, bool):
        return key
    if isinstance(key, float) and key.is_integer():
        return int(key)
    raise ValueError(f"{source}: class id {key!r} is not a whole number")


def metadata_labels(raw: str, source: str) -> Labels | None:
    """Labels from model metadata text: a Python literal dict (id → name, as Ultralytics writes `names`) or list,
    else label file text; None for another literal. Raises ValueError with the reason for names it cannot read."""
    try:
        value = ast.literal_eval(raw)
    except (ValueError, SyntaxError):  # not a literal: label file text ("person, bicycle, ...")
        return parse_labels(raw, source)
    except (TypeError, MemoryError, RecursionError, OverflowError) as exc:  # e.g. {[1]: 'x'}, deep nesting
        raise ValueError(f"{source}: the class names cannot be read ({type(exc).__name__}: {exc})") from exc
    if isinstance(value, dict):
        return Labels({_class_id(k, source): v for k, v in value.items()}, source)
    if isinstance(value, (list, tuple)):
        return Labels.from_list([str(v) for v in value], source)
    return None


#: Metadata keys exporters keep class names under: Ultralytics `names`, others `labels`/`classes`/`class_names`,
#: PaddleClas `label_list`, PaddleOCR `character` (its dictionary, one entry per line).
EMBEDDED_LABEL_KEYS = ("names", "labels", "classes", "class_names", "label_list", "character")


def embedded_labels(
    model_path: str | Path,
    onnx_metadata: Mapping[str, str] | None = None,
    limit: int = 1 << 20,
    shown: str | Path | None = None,
) -> Labels | None:
    """Labels a model carries itself: a TFLite file's zip metadata (at most `limit` bytes are read, whatever the
    archive declares), or ONNX metadata under one of EMBEDDED_LABEL_KEYS. `shown`: the path named in sources and
    messages (the operator's file, where `model_path` is a private copy). Raises ValueError, saying why, for
    labels that are there but cannot be read."""
    source = Path(shown or model_path)
    model_path = Path(model_path)
    if onnx_metadata:
        for key in EMBEDDED_LABEL_KEYS:
            if key in onnx_metadata:
                labels = metadata_labels(onnx_metadata[key], f"{source}#{key}")
                if labels is not None:
                    return labels
    if model_path.suffix == ".tflite" and zipfile.is_zipfile(model_path):
        try:
            with zipfile.ZipFile(model_path) as archive:
                for member in archive.namelist():
                    if member.endswith(".txt") and "label" in member.lower():
                        with archive.open(member) as f:
                            raw = f.read(limit + 1)  # a header may lie about the size: never read past the limit
                        if len(raw) > limit:
                            raise ValueError(f"its labels {member} are above the limit of {limit} bytes")
                        return parse_labels(raw.decode("utf-8", errors="replace"), f"{source}#{member}")
        except (
            zipfile.BadZipFile,
            zipfile.LargeZipFile,
            NotImplementedError,
            RuntimeError,
            EOFError,
            OSError,
            zlib.error,
        ) as exc:  # a damaged, encrypted or oddly compressed archive
            raise ValueError(f"{source}: the labels in its zip metadata cannot be read ({exc})") from exc
    return None
