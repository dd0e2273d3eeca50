"""The runtime-choice cache of `backend: auto` (`choice`): a JSON file in the user's cache folder, never beside
the model, holding each model's SHA-256 by path (an unchanged file is not hashed again) and the choices by key.

The file is untrusted input: only a regular file of at most MAX_CACHE_BYTES is read (never a FIFO or a device),
its entries are checked against the schema and the invalid ones dropped (`warning` says so), and it is written
atomically, and only over a regular file or nothing. A cache that cannot be read or written only costs a
measurement; a cached choice is checked before use (`choice.choose`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import stat
import tempfile
from pathlib import Path

CACHE_ENV = "ML_MODEL_SERVICE_RUNTIME_CACHE"
#: The runtimes a choice may name (the keys a cache entry may hold), and how messages call them.
RUNTIME_NAMES = {"onnx": "onnxruntime", "tflite": "LiteRT", "openvino": "OpenVINO", "openvino_f32": "OpenVINO f32"}
#: What a stored choice holds (the fields of `choice.Choice` that are measured, not derived).
ENTRY_FIELDS = ("runtime", "reason", "timings_ms", "rejected", "measured_at")
_MAX_ENTRIES = 200
#: Largest runtime-choice cache read (bytes): 200 entries take about 100 KB.
MAX_CACHE_BYTES = 2 * 1024 * 1024
_HEX64 = re.compile(r"[0-9a-f]{64}")


def cache_path() -> Path:
    """The choice cache: $ML_MODEL_SERVICE_RUNTIME_CACHE, else $XDG_CACHE_HOME (or ~/.cache)
    /ml_model_service/runtime-choice.json."""
    explicit = os.environ.get(CACHE_ENV)
    if explicit:
        return Path(explicit).expanduser()
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "ml_model_service" / "runtime-choice.json"


def files_digest(parts: list[str]) -> str:
    """One SHA-256 for a model's files from theirs, in order (a runtime choice's key): a single file's own."""
    return parts[0] if len(parts) == 1 else hashlib.sha256("".join(parts).encode()).hexdigest()


class ChoiceCache:
    """The JSON cache file: model digests by path (so an unchanged file is not hashed again) and choices by key.

    The file is untrusted input: only a regular file of at most MAX_CACHE_BYTES is read (never a FIFO or a
    device), its entries are checked against the schema and the invalid ones dropped (`warning` says so), and it
    is written atomically, and only over a regular file or nothing. A cache that cannot be read or written only
    costs a measurement (the reason is in `warning`); a cached choice is checked before use (`choose`)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or cache_path()
        self.warning = ""
        self.data: dict = {"version": 1, "digests": {}, "choices": {}}
        try:
            raw = _read_regular(self.path, MAX_CACHE_BYTES)
        except FileNotFoundError:
            return
        except (OSError, ValueError) as exc:
            self.warning = f"backend auto: the runtime-choice cache {self.path} is not used ({exc}); measuring"
            return
        try:
            data = json.loads(raw)
        except (ValueError, RecursionError) as exc:  # RecursionError: a deeply nested document
            self.warning = f"backend auto: the runtime-choice cache {self.path} is not JSON ({exc}); rebuilt"
            return
        digests, choices, dropped = _valid_entries(data)
        self.data.update(digests=digests, choices=choices)
        if dropped:
            self.warning = f"backend auto: {dropped} invalid entries of the runtime-choice cache {self.path} dropped"

    def digest(self, files: list[Path]) -> str:
        """SHA-256 over `files` (a model and its weights file), remembered by path, size and mtime."""
        parts = []
        for file in files:
            st = file.stat()
            memo = self.data["digests"].get(str(file))
            if isinstance(memo, dict) and memo.get("size") == st.st_size and memo.get("mtime_ns") == st.st_mtime_ns:
                parts.append(str(memo.get("sha256")))
                continue
            sha = hashlib.sha256()
            with open(file, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    sha.update(block)
            self.data["digests"][str(file)] = {
                "size": st.st_size,
                "mtime_ns": st.st_mtime_ns,
                "sha256": sha.hexdigest(),
            }
            parts.append(sha.hexdigest())
        return files_digest(parts)

    def get(self, key: str) -> dict | None:
        """The choice stored under `key` (its ENTRY_FIELDS), or None."""
        entry = self.data["choices"].get(key)
        if not isinstance(entry, dict) or entry.get("runtime") not in RUNTIME_NAMES:
            return None
        return {k: entry[k] for k in ENTRY_FIELDS if k in entry}

    def put(self, key: str, choice: dict) -> None:
        """Store a choice's ENTRY_FIELDS and write atomically (a temporary file renamed over the cache), only
        over a regular file."""
        entry = {k: choice[k] for k in ENTRY_FIELDS}
        choices = self.data["choices"]
        choices[key] = entry
        for table in (choices, self.data["digests"]):
            while len(table) > _MAX_ENTRIES:
                table.pop(next(iter(table)))
        tmp = ""
        try:
            if os.path.lexists(self.path) and not self.path.is_file():
                raise OSError("it is not a regular file; it is left as it is")
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".runtime-choice-")
            with os.fdopen(fd, "w") as f:
                json.dump(self.data, f, indent=1)
            os.replace(tmp, self.path)
            tmp = ""
        except OSError as exc:
            self.warning = f"backend auto: the runtime choice could not be cached in {self.path} ({exc})"
        finally:
            if tmp:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)


def _read_regular(path: Path, limit: int) -> str:
    """A regular file's text, at most `limit` bytes, opened without blocking (a FIFO is refused, not waited on)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ValueError("not a regular file")
        raw = f.read(limit + 1)
    if len(raw) > limit:
        raise ValueError(f"above {limit} bytes")
    return raw.decode("utf-8")


def _valid_entries(data: object) -> tuple[dict, dict, int]:
    """(digests, choices, entries dropped) of a parsed cache: the entries that have the schema's form."""
    if not isinstance(data, dict) or data.get("version") != 1:
        return {}, {}, 1
    digests, choices, dropped = {}, {}, 0
    raw_digests: dict = data["digests"] if isinstance(data.get("digests"), dict) else {}
    raw_choices: dict = data["choices"] if isinstance(data.get("choices"), dict) else {}
    dropped += int(not isinstance(data.get("digests"), dict)) + int(not isinstance(data.get("choices"), dict))
    for path, memo in list(raw_digests.items())[-_MAX_ENTRIES:]:
        if (
            isinstance(memo, dict)
            and all(isinstance(memo.get(k), int) and not isinstance(memo.get(k), bool) for k in ("size", "mtime_ns"))
            and isinstance(memo.get("sha256"), str)
            and _HEX64.fullmatch(memo["sha256"])
        ):
            digests[str(path)] = {k: memo[k] for k in ("size", "mtime_ns", "sha256")}
        else:
            dropped += 1
    for key, entry in list(raw_choices.items())[-_MAX_ENTRIES:]:
        if (
            isinstance(entry, dict)
            and entry.get("runtime") in RUNTIME_NAMES
            and isinstance(entry.get("reason"), str)
            and isinstance(entry.get("measured_at"), str)
            and isinstance(entry.get("timings_ms"), dict)
            and all(isinstance(v, (int, float)) for v in entry["timings_ms"].values())
            and isinstance(entry.get("rejected"), dict)
            and all(isinstance(v, str) for v in entry["rejected"].values())
        ):
            choices[str(key)] = {k: entry[k] for k in ENTRY_FIELDS}
        else:
            dropped += 1
    return digests, choices, dropped
