"""`backend: auto` for a model file: the runtimes that can load it are timed once, at its first load on this
machine, and the fastest one whose outputs match the file's own runtime's (onnxruntime for .onnx, LiteRT for
.tflite) runs it. The choice is cached in a user cache file (`cache_path`, never beside the model), keyed by the
model's SHA-256 and the machine (CPU model, usable cores, runtime versions) and the thread and provider
settings, so later loads open one runtime and measure nothing; a changed model or machine is measured again.

Why: which runtime is fastest depends on the model and the CPU (OpenVINO ran a YOLO11n at 640 in about half
onnxruntime's time on an AMD EPYC VM, while onnxruntime is the faster for the bundled int8 SSD there), so it
is measured rather than guessed from the extension.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..metadata import TensorSpec
from .backend import Backend, ModelLoadError
from .choice_cache import RUNTIME_NAMES, ChoiceCache
from .compare import outputs_match, tensors_match

#: The runtimes that may run a file, by extension; the first is the reference whose outputs the others must
#: reproduce (and what runs the file when nothing else is faster).
CANDIDATES: dict[str, tuple[str, ...]] = {
    ".onnx": ("onnx", "openvino", "openvino_f32"),
    ".tflite": ("tflite", "openvino", "openvino_f32"),
    ".xml": ("openvino", "openvino_f32"),
}
#: Tried only when the one named was not used because its outputs differ (OpenVINO's default precision is bf16
#: on CPUs with AVX512-BF16 or AMX: faster, and it rounds differently; at f32 it matches onnxruntime).
FALLBACK_OF = {"openvino_f32": "openvino"}
#: Another runtime is chosen only when it is at least this much faster (a tie keeps the file's own runtime).
MIN_GAIN = 0.05
#: Timed runs per runtime (in turn, after WARMUP runs each), fewer when one run is slow (`TIME_BUDGET_S`).
RUNS, WARMUP, TIME_BUDGET_S = 7, 2, 3.0
#: Part of every cache key: raised when the suite changes how it sets up a runtime (session options, precision),
#: so choices measured with the old set-up are measured again.
CHOICE_VERSION = 6
#: Side of an open spatial input dimension in the measurement (a multiple of every YOLO stride).
_OPEN_SIDE = 320


@dataclass
class Choice:
    """What `backend: auto` chose for one model on this machine, and why."""

    runtime: str  # onnx | tflite | openvino
    reason: str
    timings_ms: dict[str, float] = field(default_factory=dict)  # best ms per run of each runtime measured
    rejected: dict[str, str] = field(default_factory=dict)  # runtime → why it was not used
    measured_at: str = ""
    cost_s: float = 0.0  # what the measurement cost at first load
    cached: bool = False

    @property
    def kind(self) -> str:
        """The backend kind that runs it (openvino_f32 is OpenVINO)."""
        return FALLBACK_OF.get(self.runtime, self.runtime)

    def summary(self) -> str:
        """One line for metadata, status and logs."""
        when = f"cached choice measured {self.measured_at}" if self.cached else f"measured now in {self.cost_s:.1f} s"
        text = f"auto: {RUNTIME_NAMES.get(self.runtime, self.runtime)}, {self.reason} ({when})"
        for name, why in self.rejected.items():
            text += f"; {RUNTIME_NAMES.get(name, name)} not used: {why}"
        return text


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "-"


def cpu_name() -> str:
    """The CPU's model name ("" where the system does not say)."""
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        return next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "")
    return ""


def machine_fingerprint() -> dict[str, str]:
    """What a choice depends on besides the model: CPU model, usable cores, runtime versions."""
    cpu = cpu_name()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return {
        "cpu": cpu or os.uname().machine,
        "cores": str(cores),
        "onnxruntime": _version("onnxruntime") if _version("onnxruntime") != "-" else _version("onnxruntime-gpu"),
        "openvino": _version("openvino"),
        "litert": _version("ai-edge-litert"),
    }


def _model_files(path: Path) -> list[Path]:
    weights = path.with_suffix(".bin")
    return [path, weights] if path.suffix.lower() == ".xml" and weights.is_file() else [path]


def choice_key(digest: str, machine: dict[str, str], num_threads: int, providers: list[str] | tuple[str, ...]) -> str:
    """The cache key: the model, the machine and the settings a measurement was made with."""
    text = json.dumps([CHOICE_VERSION, digest, machine, num_threads, [p.lower() for p in providers]], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def dead_leaves(height: int, width: int, channels: int, rng: np.random.Generator) -> np.ndarray:
    """A synthetic picture (H, W, C) in [0, 255]: overlapping squares of random colour and size (edges and flat
    regions at every scale, as in photographs), with mild sensor noise. A smooth pattern elicits far smaller
    differences between runtimes than a photograph does (measured on YOLO11n under bf16), this about as large."""
    image = np.empty((height, width, channels), np.float32)
    image[:] = rng.uniform(0, 255, channels)
    side = max(height, width)
    for _ in range(300):
        r = max(1, int(side * rng.uniform(0.01, 0.15)))
        y, x = int(rng.integers(0, height)), int(rng.integers(0, width))
        image[max(0, y - r) : y + r, max(0, x - r) : x + r] = rng.uniform(0, 255, channels)
    return np.clip(image + rng.normal(0, 8, image.shape), 0, 255)


def sample_inputs(specs: list[TensorSpec]) -> dict[str, np.ndarray]:
    """Deterministic inputs for the measurement: images (3-D or 4-D inputs) a `dead_leaves` picture, other float
    inputs noise; open dimensions 1 (batch) or `_OPEN_SIDE`; small integer inputs (image sizes such as RT-DETR's
    orig_target_sizes) the open side."""
    rng = np.random.default_rng(0)
    feeds = {}
    for spec in specs:
        shape = [
            d if d > 0 else (1 if i == 0 and len(spec.shape) == 4 else _OPEN_SIDE) for i, d in enumerate(spec.shape)
        ]
        if len(shape) == 4 and all(d <= 0 for d in spec.shape[1:]):
            shape[1] = 3  # every axis open (PyTorch exports such as optimum's): an NCHW image, as the pipeline reads it
        dtype = np.dtype(spec.data_type)
        if len(shape) <= 2 and dtype.kind in "iu":
            feeds[spec.name] = np.full(shape, _OPEN_SIDE, dtype)
            continue
        if len(shape) in (3, 4):
            axes = list(range(len(shape) - 3, len(shape)))  # the image's three axes (after the batch)
            channel = min(axes, key=lambda a: (shape[a] not in (1, 3, 4), shape[a]))
            h_axis, w_axis = (a for a in axes if a != channel)
            picture = dead_leaves(shape[h_axis], shape[w_axis], shape[channel], rng)
            values = np.moveaxis(picture, (0, 1, 2), (h_axis - axes[0], w_axis - axes[0], channel - axes[0]))
            values = values.reshape(shape)
        else:
            values = np.clip(127.5 + rng.normal(0, 60, shape), 0, 255)
        if dtype.kind == "f":
            feeds[spec.name] = (values / 255.0).astype(dtype)
        elif dtype == np.int8:
            feeds[spec.name] = (values - 128).astype(np.int8)
        elif dtype == np.bool_:
            feeds[spec.name] = values > 127
        else:
            feeds[spec.name] = values.astype(dtype)
    return feeds


def _time_in_turn(calls: dict[str, Callable[[], object]]) -> dict[str, float]:
    """The best ms of each call over runs taken in turn (load changes fall on all alike)."""
    samples: dict[str, list[float]] = {name: [] for name in calls}
    for name, call in calls.items():  # warm-up: lazy allocation, first-run compilation; the first timing
        for _ in range(WARMUP):
            t0 = time.perf_counter()
            call()
            samples[name] = [time.perf_counter() - t0]
    slowest = max(s[0] for s in samples.values()) if samples else 0.0
    runs = max(3, min(RUNS, int(TIME_BUDGET_S / max(slowest * len(calls), 1e-6))))
    for name in calls:
        samples[name] = []
    for _ in range(runs):
        for name, call in calls.items():
            t0 = time.perf_counter()
            call()
            samples[name].append(time.perf_counter() - t0)
    # the best run: other processes on a shared machine only ever add time, so the fastest run is the steadiest
    # estimate of what each runtime costs (medians of a few runs swung 2x between runtimes under load)
    return {name: 1000 * min(s) for name, s in samples.items()}


def measure(path: Path, opener: Callable[[str], Backend]) -> tuple[Backend, Choice]:
    """Open `path` with every candidate runtime (`opener(name)`), check each reproduces the reference's outputs
    on `sample_inputs`, time them in turn; returns the fastest backend (the others are released) and the choice.
    The reference runtime must load the file (its ModelLoadError is raised); the others may fail."""
    started = time.perf_counter()
    names = CANDIDATES.get(path.suffix.lower(), ())
    if not names:
        raise ModelLoadError(
            f"cannot tell the backend of {path} from its extension; set backend to onnx, tflite or openvino"
        )
    reference = opener(names[0])
    backends, rejected = {names[0]: reference}, {}
    try:
        feeds = sample_inputs(reference.inputs)
        expected = reference.infer(feeds)
    except Exception as exc:  # noqa: BLE001 - a model that needs other inputs: nothing to compare, keep the reference
        return reference, Choice(names[0], f"not measured: the sample run failed ({exc})", measured_at=_now())
    reduced: set[str] = set()  # runtimes that loaded at a reduced precision and changed the outputs
    for name in names[1:]:
        fallback_of = FALLBACK_OF.get(name)
        if fallback_of is not None and fallback_of not in reduced:
            continue  # the float32 variant only where the default precision changed the outputs
        backend: Backend | None = None
        unlike = ""  # tensors reported otherwise: no precision can help
        try:
            backend = opener(name)
            unlike = tensors_match(reference, backend)
            problem = unlike or outputs_match(expected, backend.infer(feeds))
        except Exception as exc:  # noqa: BLE001 - any failure of another runtime only excludes it
            problem = " ".join(str(exc).split())[:200]
        if not problem and backend is not None:
            backends[name] = backend
            continue
        precision = backend.info.get("inference_precision", "") if backend is not None else ""
        if precision and precision not in ("f32", "float32") and not unlike:
            reduced.add(name)
            problem += f" (at OpenVINO's default precision here, {precision})"
        rejected[name] = problem
    timings = _time_in_turn({name: functools.partial(b.infer, feeds) for name, b in backends.items()})
    best = min(timings, key=lambda n: timings[n])
    if best != names[0] and timings[best] > (1 - MIN_GAIN) * timings[names[0]]:
        best = names[0]
    others = ", ".join(f"{RUNTIME_NAMES[n]} {timings[n]:.1f} ms" for n in timings if n != best)
    reason = f"{timings[best]:.1f} ms per run (best of a few)" + (f" against {others}" if others else "")
    if best != names[0]:
        reason += f", outputs match {RUNTIME_NAMES[names[0]]}'s"
    elif not others:
        reason += " (the only runtime that " + ("reproduces its outputs)" if rejected else "loads it here)")
    chosen = backends.pop(best)
    backends.clear()  # the others are released
    choice = Choice(best, reason, {n: round(t, 3) for n, t in timings.items()}, rejected, _now())
    choice.cost_s = round(time.perf_counter() - started, 2)
    return chosen, choice


def _still_agrees(path: Path, backend: Backend, runtime: str, opener: Callable[[str], Backend]) -> bool:
    """Whether a cached runtime other than the file's own reproduces the reference's outputs on the sample
    inputs: the cache file can be edited, so its word alone never puts an unchecked runtime to work."""
    names = CANDIDATES.get(path.suffix.lower(), ())
    if not names or runtime == names[0]:
        return True
    try:
        reference = opener(names[0])
        feeds = sample_inputs(reference.inputs)
        return not (tensors_match(reference, backend) or outputs_match(reference.infer(feeds), backend.infer(feeds)))
    except Exception:  # noqa: BLE001 - not comparable here: measure afresh
        return False


def _now() -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime())


def choose(
    path: Path,
    opener: Callable[[str], Backend],
    num_threads: int = 0,
    providers: list[str] | tuple[str, ...] = (),
    cache: ChoiceCache | None = None,
    digest: str | None = None,
) -> tuple[Backend, Choice]:
    """The backend `backend: auto` runs `path` with: the cached choice for this model, machine and settings,
    else `measure` (and cache it). The backend's info gets `runtime_choice` (`Choice.summary`). `digest`: the
    model files' SHA-256 where the caller hashed them as it read them (else they are hashed here)."""
    cache = cache or ChoiceCache()
    key = choice_key(digest or cache.digest(_model_files(path)), machine_fingerprint(), num_threads, providers)
    entry = cache.get(key)
    choice = Choice(**entry) if entry is not None else None
    backend: Backend | None = None
    if choice is not None:
        try:
            backend = opener(choice.runtime)
            choice.cached = True
            if not _still_agrees(path, backend, choice.runtime, opener):
                backend = None  # a cache entry whose runtime disagrees with the reference: never used
        except ModelLoadError:
            backend = None  # the cached runtime no longer loads it: measure again
    if backend is None or choice is None:
        backend, choice = measure(path, opener)
        cache.put(key, asdict(choice))
    if cache.warning:
        backend.warnings.append(cache.warning)
    backend.info["runtime_choice"] = choice.summary()
    backend.choice = choice  # type: ignore[attr-defined]
    return backend, choice
