"""A private copy of every file a model consists of, made from the bytes that were checked: runtimes load the
copy, never the operator's files.

A model is more than the file named: an OpenVINO IR's weights (`.bin`), an ONNX model's external data files, the
`metadata.yaml` an exporter writes beside an IR, Hugging Face's `config.json` and `preprocessor_config.json`. Each
is opened once, without following a last symlink and without blocking (a FIFO is refused, not waited on), and must
be a regular file with one link (a hard link can be any file's contents), inside the allowed folders by the real
path of the open file, within the size bound. Its bytes are hashed as they are copied into a folder only this
process uses. So no file outside the allowed folders reaches a runtime whatever a model's files point to, and a
model file truncated or overwritten on disk after the load cannot crash the node (onnxruntime and LiteRT memory-map
their file) or change its answers.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import stat
import tempfile
import weakref
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from ..runtimes.backend import ModelLoadError
from ..runtimes.choice_cache import files_digest
from .sidecars import MAX_SIDECAR_BYTES, SIDECARS
from .trust import ModelPolicy, TrustError

#: Most bytes one model's files may hold together (model, weights, external data, metadata).
MAX_MODEL_BYTES = 8 * 1024**3
#: Largest `metadata.yaml` copied beside an IR model.
MAX_METADATA_BYTES = 1 << 20
#: ONNX external-data entries read from one model (each names a file; most models have one).
MAX_EXTERNAL_FILES = 4096
_PREFIX = "ml_model_service-model-"
_CHUNK = 1 << 20


@dataclass
class Snapshot:
    """The private copy of a model's files: `path` is the model file in it; `digest` the SHA-256 of the files a
    runtime reads (`choice_cache.files_digest`: the model file's own, or over its and its weights' in order);
    `digests` each original file's SHA-256."""

    path: Path
    digest: str
    digests: dict[Path, str] = field(default_factory=dict)

    def keep_until(self, owner: object) -> None:
        """Remove the private folder when `owner` is released (or at exit)."""
        weakref.finalize(owner, shutil.rmtree, str(self.path.parent), True)


def take(model: Path, policy: ModelPolicy, max_bytes: int = MAX_MODEL_BYTES) -> Snapshot:
    """The private copy of `model` (a real path inside the policy's folders) and of the files it needs."""
    folder = Path(tempfile.mkdtemp(prefix=f"{_PREFIX}{os.getpid()}-"))
    try:
        return _copy_all(model, policy, folder, max_bytes)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise


def _copy_all(model: Path, policy: ModelPolicy, folder: Path, max_bytes: int) -> Snapshot:
    budget = [max_bytes]
    digests: dict[Path, str] = {}
    data = _copy(model, folder / model.name, policy, budget, "model", digests, keep=model.suffix.lower() == ".onnx")
    runtime_files = [model]
    suffix = model.suffix.lower()
    if suffix == ".xml":
        weights = model.with_suffix(".bin")
        if os.path.lexists(weights):  # (a missing one: OpenVINO says so)
            _copy(weights, folder / weights.name, policy, budget, "model weights", digests)
            runtime_files.append(weights)
        meta = model.parent / "metadata.yaml"
        if os.path.lexists(meta):
            with contextlib.suppress(TrustError):  # optional: an unusable one is not read, as a missing one
                _copy(meta, folder / meta.name, policy, [min(budget[0], MAX_METADATA_BYTES)], "metadata", digests)
    elif suffix == ".onnx" and data is not None:
        for location in external_data_files(data, model.name):
            source = model.parent / location
            _copy(source, folder / location, policy, budget, "external data", digests)
            runtime_files.append(source)
    for name in SIDECARS:  # an exporter's configuration beside the model (Hugging Face's), optional as metadata.yaml
        sidecar = model.parent / name
        if os.path.lexists(sidecar) and not (folder / name).exists():
            with contextlib.suppress(TrustError, ModelLoadError):
                _copy(sidecar, folder / name, policy, [min(budget[0], MAX_SIDECAR_BYTES)], "sidecar", digests)
    return Snapshot(folder / model.name, files_digest([digests[f] for f in runtime_files]), digests)


def _copy(
    source: Path,
    dest: Path,
    policy: ModelPolicy,
    budget: list[int],
    what: str,
    digests: dict[Path, str],
    keep: bool = False,
) -> bytes | None:
    """Copy one checked file into the private folder (its digest into `digests`); its bytes when `keep`."""
    try:
        fd = os.open(source, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        raise policy.refusal(what, source) from None
    try:
        st = os.fstat(fd)
        opened = Path(os.readlink(f"/proc/self/fd/{fd}")) if os.path.exists("/proc/self/fd") else source
        if not stat.S_ISREG(st.st_mode) or policy.root_of(opened) is None:
            raise policy.refusal(what, source)
        if st.st_nlink > 1:
            raise TrustError(
                f"{what} file {source.name} has {st.st_nlink} hard links: a hard link can carry any file's "
                "contents, so it is not read; copy the file into the folder instead of linking it"
            )
        if st.st_size > budget[0]:
            raise TrustError(
                f"{what} file {source.name} is {st.st_size} bytes: the model's files may hold {budget[0]} bytes "
                "more at most"
            )
        budget[0] -= st.st_size
        dest.parent.mkdir(parents=True, exist_ok=True)
        sha = hashlib.sha256()
        kept = bytearray() if keep else None
        left = st.st_size
        with open(dest, "xb") as out:
            while left > 0:
                chunk = os.read(fd, min(_CHUNK, left))
                if not chunk:
                    break
                sha.update(chunk)
                out.write(chunk)
                if kept is not None:
                    kept += chunk
                left -= len(chunk)
        if left or os.fstat(fd).st_size != st.st_size:
            raise ModelLoadError(f"{what} file {source.name} changed while it was read; load it again")
        digests[source] = sha.hexdigest()
        return bytes(kept) if kept is not None else None
    except OSError as exc:
        raise ModelLoadError(f"cannot read {what} file {source.name}: {exc}") from exc
    finally:
        os.close(fd)


def external_data_files(data: bytes, name: str = "model") -> list[str]:
    """The external-data files an ONNX model's tensors name (relative paths inside its folder), each once;
    ModelLoadError for a location that leaves the folder. [] without the onnx package or for a file onnx
    cannot parse (onnxruntime then says what is wrong)."""
    try:
        import onnx
        from onnx.external_data_helper import _get_all_tensors
    except ImportError:
        return []
    try:
        proto = onnx.ModelProto.FromString(data)
    except Exception:  # noqa: BLE001 - not an ONNX file: the runtime refuses it with its own words
        return []
    found: dict[str, None] = {}
    for tensor in _get_all_tensors(proto):
        if tensor.data_location != onnx.TensorProto.EXTERNAL:
            continue
        location = next((e.value for e in tensor.external_data if e.key == "location"), "")
        rel = PurePosixPath(location)
        if not location or rel.is_absolute() or ".." in rel.parts or "\\" in location or "\0" in location:
            raise TrustError(
                f"{name}: tensor {tensor.name!r} keeps its data at {location!r}, outside the model's folder; "
                "external data must lie in the model's folder (onnx.save with a relative location)"
            )
        found[str(rel)] = None
        if len(found) > MAX_EXTERNAL_FILES:
            raise TrustError(f"{name}: its tensors name more than {MAX_EXTERNAL_FILES} external data files")
    return list(found)


def remove_stale() -> None:
    """Remove private copies left by processes that no longer run (a node that was killed)."""
    root = Path(tempfile.gettempdir())
    try:
        entries = list(root.glob(f"{_PREFIX}*"))
    except OSError:
        return
    for entry in entries:
        pid = entry.name[len(_PREFIX) :].split("-", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not Path(f"/proc/{pid}").exists():
            try:
                if entry.is_dir() and not entry.is_symlink() and entry.stat().st_uid == os.getuid():
                    shutil.rmtree(entry, ignore_errors=True)
            except OSError:
                continue
