"""Whether another runtime gives a model file's answers (`backend: auto`, runtimes.choice): the same tensors
(names, types, the file's quantisation) and the same output values within a tolerance."""

from __future__ import annotations

import numpy as np

from .backend import Backend

#: Outputs match when every value is within ABS_TOL + REL_TOL x the reference output's range.
REL_TOL, ABS_TOL = 0.02, 1e-3


def _attribute_axis(shape: tuple[int, ...]) -> int | None:
    """The axis that lists each candidate's values (box, scores...: the shorter of the last two when there are two
    beside the batch), whose entries get their own range: a [1, 84, 8400] YOLO head's scores are then held to a
    tolerance of their own [0, 1], not of the boxes' 640 pixels."""
    if len(shape) < 3:
        return None
    return len(shape) - 2 if shape[-2] < shape[-1] else len(shape) - 1


def outputs_match(reference: dict[str, np.ndarray], other: dict[str, np.ndarray]) -> str:
    """ "" when `other` reproduces `reference` (same names and shapes, every value within ABS_TOL + REL_TOL x the
    range of its entry of the attribute axis (`_attribute_axis`; of the whole output for 1-D and 2-D ones); for
    8- and 16-bit quantised outputs, of the type's range), else what differs."""
    if list(reference) != list(other):
        return f"outputs {list(other)} instead of {list(reference)}"
    for name, ref in reference.items():
        got = np.asarray(other[name])
        ref = np.asarray(ref)
        if got.shape != ref.shape:
            return f"output {name!r} has shape {list(got.shape)} instead of {list(ref.shape)}"
        if not ref.size:
            continue
        a, b = ref.astype(np.float64), got.astype(np.float64)
        if not np.array_equal(np.isfinite(a), np.isfinite(b)):
            return f"output {name!r} has non-finite values where the reference has none, or the other way"
        a, b = np.where(np.isfinite(a), a, 0.0), np.where(np.isfinite(b), b, 0.0)
        axis = _attribute_axis(ref.shape)
        others = tuple(i for i in range(ref.ndim) if i != axis)
        span = np.ptp(a, axis=others, keepdims=True) if axis is not None else np.float64(np.ptp(a))
        if ref.dtype.kind in "iu" and ref.dtype.itemsize <= 2:  # quantised values: int8 arithmetic rounds apart
            span = np.maximum(span, float(np.iinfo(ref.dtype).max) - float(np.iinfo(ref.dtype).min))
        excess = np.abs(a - b) - (ABS_TOL + REL_TOL * span)
        if float(excess.max()) > 0:
            at = np.unravel_index(int(excess.argmax()), excess.shape)
            allowed = float(ABS_TOL + REL_TOL * np.broadcast_to(span, excess.shape)[at])
            return (
                f"output {name!r} differs by up to {float(np.abs(a - b)[at]):.4g} at {list(map(int, at))} "
                f"(allowed there {allowed:.4g})"
            )
    return ""


#: Tensor properties the file gives (LiteRT reads a .tflite's quantisation) that every runtime must report alike:
#: the model service's clients dequantise outputs with them.
_SPEC_EXTRAS = ("quantization_scale", "quantization_zero_point")


def tensors_match(reference: Backend, other: Backend) -> str:
    """ "" when `other` reports the reference's tensors (names, types and quantisation), else what differs: a
    runtime that drops a quantised output's scale would leave its callers unable to read it."""
    for kind in ("inputs", "outputs"):
        ours, theirs = getattr(reference, kind), getattr(other, kind)
        want, got = [(s.name, s.data_type) for s in ours], [(s.name, s.data_type) for s in theirs]
        if want != got:
            return f"its {kind} are {got}, not {want}"
        for a, b in zip(ours, theirs):
            lost = [k for k in _SPEC_EXTRAS if k in a.extra and a.extra.get(k) != b.extra.get(k)]
            if lost:
                return f"it does not report the {' and '.join(lost)} of tensor {a.name!r}"
    return ""
