"""Reading scores and probabilities: integer outputs dequantised, activations, and the checks every decoder
makes (scores in [0, 1], whole class ids): what fails them is refused, not rescaled."""

from __future__ import annotations

import math

import numpy as np

from ...metadata import TensorSpec
from .base import Refused, help_text

TOL = 1e-3  # fp16 rounding


def dequantize(array: np.ndarray, spec: TensorSpec | None) -> np.ndarray:
    """Integer scores/probabilities → float. Uses the model's quantisation parameters when known, else the
    TFLite convention for quantised softmax outputs (uint8: v/256; int8: (v+128)/256)."""
    if array.dtype.kind == "f":
        return array.astype(np.float32, copy=False)
    extra = spec.extra if spec else {}
    if "quantization_scale" in extra:
        scale = float(extra["quantization_scale"])
        zero = int(extra.get("quantization_zero_point", 0))
        return (array.astype(np.float32) - zero) * scale
    if array.dtype == np.uint8:
        return array.astype(np.float32) / 256.0
    if array.dtype == np.int8:
        return (array.astype(np.float32) + 128.0) / 256.0
    return array.astype(np.float32)


def value_range(values: np.ndarray) -> tuple[float, float]:
    return (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)


def tolerance(spec: TensorSpec | None) -> float:
    """How far outside [0, 1] a score may fall by rounding: fp16 rounding, or one quantisation step."""
    scale = (spec.extra if spec else {}).get("quantization_scale")
    try:
        return max(TOL, float(scale or 0.0))
    except ValueError:
        return TOL


def check_probabilities(values: np.ndarray, what: str, option: str | None, tensors: str, tol: float = TOL) -> None:
    """Scores must lie in [0, 1] (no rescaling of percentages: out-of-range values are a misread)."""
    low, high = value_range(values)
    if not (math.isfinite(low) and math.isfinite(high)) or low < -tol or high > 1 + tol:
        raise Refused(
            f"{what} range from {low:.4g} to {high:.4g}, outside [0, 1]: they are not confidences, so "
            f"the outputs are not what this layout expects; {help_text(option)}. Model tensors: {tensors}",
            option,
        )


def check_class_ids(values: np.ndarray, what: str, option: str | None, tensors: str, limit: int = 0) -> None:
    """Class ids must be whole, non-negative numbers (below `limit` when known)."""
    if values.size == 0:
        return
    bad = (np.abs(values - np.rint(values)) > 1e-3) | (values < -TOL) | ~np.isfinite(values)
    if limit:
        bad |= values > limit - 1 + TOL
    if bad.any():
        low, high = value_range(values)
        raise Refused(
            f"{what} hold {int(bad.sum())} values that are not class ids (range {low:.4g} to {high:.4g}"
            f"{f', {limit} classes' if limit else ''}); {help_text(option)}. Model tensors: {tensors}",
            option,
        )


def activate(scores: np.ndarray, activation: str, axis: int = -1) -> np.ndarray:
    if activation == "sigmoid":
        return 1.0 / (1.0 + np.exp(-np.clip(scores, -80, 80)))
    if activation == "softmax":
        exp = np.exp(scores - scores.max(axis=axis, keepdims=True))
        return exp / exp.sum(axis=axis, keepdims=True)
    return scores
