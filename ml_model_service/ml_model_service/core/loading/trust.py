"""The trust boundary for files: which folders model and label files may come from, their checksums,
and bounded label reading.

Anyone on the robot's DDS domain can call a node's services and set its parameters, so a node must
never open a file the operator did not allow. `ModelPolicy` holds the operator's folders (fixed at
start-up); `resolve` turns a caller's path into a real file inside them or refuses with one message,
the same whether the file is missing, a directory, unreadable or outside (no oracle of which files
exist). Files listed in a `SHA256SUMS` (the bundled models' folder always has one; a model repository
may) are verified before use.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ..runtimes.backend import ModelLoadError
from ..runtimes.oip_backend import ServerRef, is_server_ref, parse_server_ref
from .bundled import BUNDLED_DIR
from .labels import Labels, parse_labels

#: Largest label file read (bytes).
MAX_LABEL_BYTES = 1024 * 1024
#: Largest SHA256SUMS file read (bytes).
MAX_SUMS_BYTES = 1024 * 1024
SUMS_NAME = "SHA256SUMS"
SWAP_DISABLED = (
    "model swapping is disabled on this node (allow_model_swap is false; it is read-only and set at start-up)"
)

_SUM_LINE = re.compile(r"^([0-9a-fA-F]{64}) [ *](.+)$")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class TrustError(ModelLoadError):
    """A file the policy refuses: outside the allowed folders, too large, not text, or a bad checksum."""


def _real(path: str | Path) -> Path:
    """The absolute path with `~`, `..` and every symlink resolved (the file need not exist)."""
    return Path(os.path.realpath(os.path.expanduser(str(path))))


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


class _DigestCache:
    """SHA256 of files, cached by (path, device, inode, size, mtime) so a hot swap does not rehash."""

    def __init__(self) -> None:
        self._cache: dict[tuple, str] = {}
        self._lock = threading.Lock()

    def digest(self, path: Path) -> str:
        st = path.stat()
        key = (str(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
        with self._lock:
            if key in self._cache:
                return self._cache[key]
        with open(path, "rb") as f:
            value = hashlib.file_digest(f, "sha256").hexdigest()
        with self._lock:
            if len(self._cache) > 256:
                self._cache.clear()
            self._cache[key] = value
        return value


DIGESTS = _DigestCache()


def sha256(path: str | Path) -> str:
    """Hex SHA256 of a file (cached by path, inode, size and modification time)."""
    return DIGESTS.digest(Path(path))


def read_sums(path: Path) -> dict[str, str]:
    """A SHA256SUMS file (`sha256sum` output: '<hex>  <name>' or '<hex> *<name>') → {name: hex}."""
    size = path.stat().st_size
    if size > MAX_SUMS_BYTES:
        raise TrustError(f"{path} is {size} bytes, above the limit of {MAX_SUMS_BYTES} bytes")
    sums = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        m = _SUM_LINE.match(line.strip())
        if m:
            sums[os.path.normpath(m.group(2).strip())] = m.group(1).lower()
    return sums


@dataclass(frozen=True)
class ModelPolicy:
    """Where model and label files may come from, and how they are checked.

    `allowed` None means unrestricted (the operator's own command line); otherwise a file is used
    only when its real path (after `..` and symlinks) lies inside one of the folders. `required_sums`
    are folders whose SHA256SUMS must list every file used from them (the bundled models)."""

    allowed: tuple[Path, ...] | None = None
    required_sums: tuple[Path, ...] = ()
    max_label_bytes: int = MAX_LABEL_BYTES
    #: Inference servers (`host:port`) models may be served from; None = any (the operator's command line).
    servers: tuple[str, ...] | None = None

    @classmethod
    def unrestricted(cls) -> ModelPolicy:
        """Any path (the CLI); bundled models are still verified against their checksums."""
        return cls(None, (_real(BUNDLED_DIR),))

    @classmethod
    def for_folders(
        cls,
        allowed_paths: Iterable[str | Path] = (),
        repository: str | Path | None = None,
        max_label_bytes: int = MAX_LABEL_BYTES,
        servers: Iterable[str] = (),
    ) -> ModelPolicy:
        """A node's policy: the folders in `allowed_paths`, or when that is empty the bundled models'
        folder and `repository`. The bundled models' folder is always allowed (its files are public).
        `servers` are the inference servers (`host:port`) allowed; none by default."""
        bundled = _real(BUNDLED_DIR)
        folders = [_real(p) for p in allowed_paths if str(p).strip()]
        if not folders and repository and str(repository).strip():
            folders.append(_real(repository))
        folders.append(bundled)
        hosts = tuple(dict.fromkeys(normalise_server(s) for s in servers if str(s).strip()))
        return cls(tuple(dict.fromkeys(folders)), (bundled,), max_label_bytes, hosts)

    @classmethod
    def at_start(
        cls, model_path: str, allowed_paths: Iterable[str], model_repository: str, allowed_servers: Iterable[str]
    ) -> ModelPolicy:
        """The policy a node's start-up parameters describe (the folders as in `for_folders`; the server of the
        start-up `model_path` is allowed too: the operator chose it)."""
        servers = [str(s) for s in allowed_servers]
        if is_server_ref(model_path):
            try:
                ref: ServerRef = parse_server_ref(model_path)
                servers.append(ref.address)
            except ModelLoadError:
                pass  # loading it reports the malformed reference
        return cls.for_folders(allowed_paths, model_repository or None, servers=servers)

    # --- servers ----------------------------------------------------------------------------------
    def check_server(self, address: str) -> None:
        """Refuse an inference server (`host:port`) the operator did not allow (TrustError)."""
        if self.servers is None or normalise_server(address) in self.servers:
            return
        allowed = ", ".join(self.servers) or "none"
        raise TrustError(
            f"inference server {address} is not allowed (allowed: {allowed}; the operator lists "
            "servers in allowed_servers, read-only, or gives one as model_path at start-up)"
        )

    # --- paths ------------------------------------------------------------------------------------
    def describe(self) -> str:
        """The allowed folders, for messages."""
        if self.allowed is None:
            return "any folder"
        return ", ".join(str(f) for f in self.allowed)

    def refusal(self, what: str, ref: str | Path) -> TrustError:
        """The one message for a path that cannot be used (missing, directory, unreadable or outside)."""
        if self.allowed is None:
            return TrustError(f"{what} file not found (or not a readable file): {str(ref)!r}")
        return TrustError(
            f"{what} file not found in the allowed folders: {str(ref)!r} "
            f"(allowed: {self.describe()}; the operator sets allowed_paths)"
        )

    def root_of(self, real: Path) -> Path | None:
        """The allowed folder holding `real`, or None (unrestricted policies: the file's own folder)."""
        if self.allowed is None:
            return real.parent
        for folder in self.allowed:
            if _inside(real, folder):
                return folder
        return None

    def allows(self, path: str | Path) -> bool:
        """True when the real path of `path` lies inside the allowed folders (existing or not)."""
        return self.root_of(_real(path)) is not None

    def resolve(self, ref: str | Path, what: str = "model") -> Path:
        """The real path of a readable regular file inside the allowed folders; else `refusal`."""
        real = _real(ref)
        if self.root_of(real) is None:
            raise self.refusal(what, ref)
        try:
            st = real.stat()
        except OSError:
            raise self.refusal(what, ref) from None
        if not stat.S_ISREG(st.st_mode) or not os.access(real, os.R_OK):
            raise self.refusal(what, ref)
        return real

    def check_folder(self, folder: str | Path, what: str = "model repository") -> Path:
        """The real path of a folder inside the allowed folders (a repository); else a refusal."""
        real = _real(folder)
        if self.root_of(real) is None or not real.is_dir():
            raise TrustError(f"{what} not found in the allowed folders: {str(folder)!r} (allowed: {self.describe()})")
        return real

    # --- integrity --------------------------------------------------------------------------------
    def verify(self, real: Path, what: str = "model", actual: str | None = None) -> str | None:
        """Check `real` against the nearest SHA256SUMS between its folder and its allowed folder (`actual`: the
        digest of the bytes in use, when they were hashed as they were read; else the file is hashed).
        Returns the digest when checked, None when no SHA256SUMS covers it; raises TrustError on a
        mismatch, or when a SHA256SUMS is present (or required) but does not list the file."""
        root = self.root_of(real) or real.parent
        folder = real.parent
        sums_file: Path | None
        while True:
            sums_file = folder / SUMS_NAME
            if sums_file.is_file():
                break
            if folder == root or folder == folder.parent or not _inside(folder, root):
                sums_file = None
                break
            folder = folder.parent
        required = any(_inside(real, f) for f in self.required_sums)
        if sums_file is None:
            if required:
                raise TrustError(
                    f"{what} file {real.name}: the bundled models' {SUMS_NAME} is missing, "
                    "so it cannot be verified; reinstall the package"
                )
            return None
        name = os.path.normpath(os.path.relpath(real, sums_file.parent))
        expected = read_sums(sums_file).get(name)
        if expected is None:
            raise TrustError(
                f"{what} file {name} is not listed in {sums_file}: add its SHA256 there "
                f"(sha256sum {name} >> {SUMS_NAME}) or remove the file"
            )
        actual = actual or sha256(real)
        if actual != expected:
            raise TrustError(
                f"{what} file {real} failed its integrity check: SHA256 {actual} does not match "
                f"{expected} in {sums_file} (corrupted or modified copy; restore the file)"
            )
        return actual

    # --- labels -----------------------------------------------------------------------------------
    def read_labels(self, ref: str | Path, what: str = "label") -> Labels:
        """Read a label file inside the allowed folders: at most `max_label_bytes`, UTF-8 text."""
        real = self.resolve(ref, what)
        return self.read_resolved_labels(real, what, source=str(ref))

    def read_resolved_labels(self, real: Path, what: str = "label", source: str = "") -> Labels:
        """Read an already resolved label file (size limit, UTF-8 text, checksum when listed)."""
        size = real.stat().st_size
        if size > self.max_label_bytes:
            raise TrustError(
                f"{what} file {source or real} is {size} bytes, above the limit of {self.max_label_bytes} bytes"
            )
        self.verify(real, what)
        with open(real, "rb") as f:
            raw = f.read(self.max_label_bytes + 1)  # the file may have grown since stat
        if len(raw) > self.max_label_bytes:
            raise TrustError(f"{what} file {source or real} is above the limit of {self.max_label_bytes} bytes")
        return parse_labels(check_text(raw, f"{what} file {source or real}"), source or str(real))


def normalise_server(entry: str) -> str:
    """`host:port` in lower case, from an `allowed_servers` entry (a scheme or path is ignored)."""
    text = str(entry).strip().lower()
    text = text.split("://", 1)[-1]
    return text.split("/", 1)[0]


def check_text(raw: bytes, what: str) -> str:
    """UTF-8 text without control characters (tabs and line ends allowed); raises TrustError."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise TrustError(f"{what} is not UTF-8 text (byte {exc.start})") from None
    bad = _CONTROL.search(text)
    if bad:
        raise TrustError(f"{what} is not text: control character {bad.group()!r} at offset {bad.start()}")
    return text
