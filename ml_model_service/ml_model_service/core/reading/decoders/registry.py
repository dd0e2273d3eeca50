"""Choosing a decoder: the recognisers of every layout, tried in order, the first that recognises the outputs
returning the decoder built for them."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ...loading.labels import Labels
from ...metadata import ModelMetadata
from ..hints import ModelHints
from ..preprocess import RoleError
from . import classifier, detr, end2end, segmentation, ssd, suggest, yolo
from .base import (
    BOX_FORMATS,
    BOX_UNITS,
    MODEL_TYPES,
    SCORE_ACTIVATIONS,
    SEGMENTATION_LAYOUTS,
    TASKS,
    YOLO_FORMATS,
    Context,
    Decoder,
    DecoderConfig,
    Refused,
)

#: The layouts, in the order `model_type: auto` tries them: role -> its recogniser. A recogniser returns None for
#: outputs without its layout's structure, and refuses (`Refused`) outputs with its structure that fail its checks
#: (the search stops there).
RECOGNISERS: dict[str, Callable[[Context], Decoder | None]] = {
    "segmenter": segmentation.recognise,
    "end2end": end2end.recognise,
    "detr": detr.recognise,
    "yolo": yolo.recognise,
    "detector": ssd.recognise,
    "classifier": classifier.recognise,
}
#: What each recogniser looks for, said of outputs that it returned None for.
NOT_FOUND: dict[str, str] = {
    "segmenter": "no class map, or class scores at the input's size or at 1/2, 1/4, 1/8 of it with a label per "
    "class, as its only outputs",
    "end2end": "no [1, N, 6+] output of box, score and class id rows",
    "detr": "no [1, Q, 4] normalised boxes with [1, Q, C] class logits",
    "yolo": "no [1, 4+C, N] / [1, N, 5+C] output (or [1, N, 4] boxes + scores) with a candidate count on the YOLO "
    "grid of the input",
    "detector": "no boxes tensor ([1, N, 4] or [N, 4]) with per-box scores",
    "classifier": "not one output holding a single score vector",
}


#: How a recogniser's refusal ends (base.help_text), dropped where tried option sets replace it.
HELP_ENDINGS = ("to say how to read it", "no option can help")


def check_config(config: DecoderConfig) -> None:
    """Refuse option values outside their choices."""
    for what, value, allowed in (
        ("model_type", config.model_type, MODEL_TYPES),
        ("box_format", config.box_format, BOX_FORMATS),
        ("score_activation", config.score_activation, SCORE_ACTIVATIONS),
        ("box_units", config.box_units, BOX_UNITS),
        ("yolo_format", config.yolo_format, YOLO_FORMATS),
        ("task", config.task, TASKS),
        ("segmentation_layout", config.segmentation_layout, SEGMENTATION_LAYOUTS),
    ):
        if value not in allowed:
            raise RoleError(f"{what} {value!r} is not one of {', '.join(allowed)}")


def find_decoder(
    metadata: ModelMetadata,
    trial_outputs: dict[str, np.ndarray],
    config: DecoderConfig,
    labels: Labels | None,
    hints: ModelHints | None = None,
    input_hw: tuple[int, int] = (0, 0),
    size_input: bool = False,
) -> Decoder:
    """The decoder for this model (forced by `model_type` or found from metadata and a trial run)."""
    check_config(config)
    ctx = Context(metadata, trial_outputs, config, labels, hints or ModelHints(), input_hw, size_input)
    kind = config.model_type
    order = [kind] if kind != "auto" else list(RECOGNISERS)
    reasons: list[str] = []
    shapes = "; ".join(f"{n}: {np.asarray(a).dtype} {list(np.asarray(a).shape)}" for n, a in trial_outputs.items())
    for role in order:
        try:
            decoder = RECOGNISERS[role](ctx)
        except Refused as exc:
            # The outputs have this layout's structure but fail its checks: reading them as a looser layout
            # would be a guess, so the search stops here.
            tried = suggest.working(ctx, RECOGNISERS)
            reason = str(exc).split(". Model tensors:")[0]
            if tried:
                advice = suggest.advice(tried)
                reason = reason.rsplit("; ", 1)[0] if reason.endswith(HELP_ENDINGS) else reason
            else:
                advice = f"The option that can help: {exc.option}." if exc.option else "No option can help."
            raise Refused(
                f"the model's outputs look like the {role} layout but cannot be read as it: "
                f"{reason}. Model tensors: {metadata.describe_tensors()}. "
                f"Trial-run outputs: {shapes}. {advice}",
                exc.option,
            ) from exc
        if decoder is not None:
            return decoder
        reasons.append(f"{role}: {NOT_FOUND[role]}")
    advice = suggest.advice(suggest.working(ctx, RECOGNISERS))
    raise RoleError(
        f"the model fits no vision role ({', '.join(RECOGNISERS)}). Its tensors: "
        f"{metadata.describe_tensors()}. Trial-run outputs: {shapes}. Tried: {' | '.join(reasons)}. {advice}"
    )
