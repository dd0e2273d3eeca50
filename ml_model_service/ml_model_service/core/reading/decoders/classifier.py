"""Classifiers: one score vector, with a leading background score where the labels are one short."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...metadata import TensorSpec
from .base import ClassificationDecoder, Context
from .scores import TOL, activate, check_probabilities, dequantize, tolerance


@dataclass(eq=False)
class ClassifierDecoder(ClassificationDecoder):
    """One score vector; softmax when values fall outside [0, 1] (sigmoid for a single value), unless
    `score_activation` says otherwise."""

    role = "classifier"

    tensor: str
    spec: TensorSpec | None
    background_offset: int  # 1: a leading background score the labels leave out
    activation: str = "auto"
    describe: str = ""

    def decode(self, outputs: dict[str, np.ndarray]) -> np.ndarray:
        """Probabilities indexed like the labels."""
        scores = dequantize(np.asarray(outputs[self.tensor]), self.spec).reshape(-1).astype(np.float64)
        activation = self.activation
        if activation == "auto":
            outside = scores.size and (scores.min() < -TOL or scores.max() > 1 + TOL)
            activation = ("sigmoid" if scores.size == 1 else "softmax") if outside else "none"
        scores = activate(scores, activation)
        check_probabilities(
            scores,
            f"scores in {self.tensor!r} after {activation}",
            "score_activation",
            self.describe,
            tolerance(self.spec),
        )
        return scores[self.background_offset :]

    def score_count(self, outputs: dict[str, np.ndarray]) -> int:
        """How many class scores `outputs` hold (a leading background score left out)."""
        return int(np.prod(np.asarray(outputs[self.tensor]).shape)) - self.background_offset


def recognise(ctx: Context) -> ClassifierDecoder | None:
    """A classifier: one output (or the one named as probability) holding a single score vector."""
    roles = ctx.by_role()
    name = roles.get("probability")
    if name is None:
        if len(ctx.metadata.outputs) != 1:
            return None
        name = ctx.metadata.outputs[0].name
    shape = ctx.shape(name)
    if sum(1 for d in shape if d != 1) > 1:
        return None
    size = int(np.prod(shape))
    offset = 1 if ctx.labels and size == ctx.labels.span + 1 else 0
    decoder = ClassifierDecoder(
        name, ctx.spec(name), offset, ctx.config.score_activation, ctx.metadata.describe_tensors()
    )
    decoder.decode(ctx.outputs)
    return decoder
