"""Several images through one inference call, where the model accepts a batch, ROS-free.

A model batches when its image input has a batch axis that is dynamic (-1) or fixed at N > 1, it has no
other inputs (the size inputs of RT-DETR exports are [1, 2]), and a trial run at batch 2 gives every output
with the batch as its first axis (an export whose post-processing flattens the batch cannot be split per
image). Images are preprocessed one by one exactly as for a single frame, their tensors stacked (a fixed
batch of N padded with copies of the last), the outputs split per image and each decoded on its own, so a
frame's results are those of the single-frame path. Images whose tensors differ in shape (open input
dimensions that follow each image's size, Ultralytics' rect letterbox of a dynamic export) go in separate
calls: cameras of one size share one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..runtimes.batcher import infer_stacked
from .decoders.base import RawDetections
from .preprocess import Transform
from .results import Segmentation
from .vision import Classification, Detection, VisionModel


@dataclass(frozen=True)
class BatchSupport:
    """How many images one call may carry (1: one at a time) and why not more."""

    size: int
    fixed: bool = False  # a fixed batch of `size`: fewer images are padded
    reason: str = ""


#: images one call carries at most for a dynamic batch axis
MAX_DYNAMIC_BATCH = 64


def batch_support(vision: VisionModel) -> BatchSupport:
    """Whether (and how far) `vision`'s model batches; probed once, with a grey trial image, and cached."""
    cached = getattr(vision, "_batch_support", None)
    if cached is not None:
        return cached
    support = _probe(vision)
    vision._batch_support = support  # type: ignore[attr-defined]
    return support


def _probe(vision: VisionModel) -> BatchSupport:
    layout = vision.layout
    if not layout.batched or layout.batch == 1:
        return BatchSupport(1, reason="the model's batch dimension is 1")
    if vision.size_inputs or len(vision.runner.metadata.inputs) != 1:
        return BatchSupport(1, reason="the model has inputs besides the image")
    fixed = layout.batch > 1
    n = layout.batch if fixed else 2
    hw = vision.input_hw or (320, 320)
    tensor = vision._tensor(np.full((*hw, 3), 114, np.uint8))[0][layout.name]  # noqa: SLF001
    try:
        out = vision.runner.infer({layout.name: np.repeat(tensor, n, axis=0)})
    except Exception as exc:  # a batch the runtime refuses: one at a time
        return BatchSupport(1, reason=f"a batch of {n} failed: {exc}")
    unsplit = [k for k, v in out.items() if not (v.ndim and v.shape[0] == n)]
    if unsplit:
        return BatchSupport(1, reason=f"outputs {unsplit} do not have the batch as their first axis")
    return BatchSupport(n if fixed else MAX_DYNAMIC_BATCH, fixed)


def infer_batch(vision: VisionModel, rgbs: list[np.ndarray]) -> list[tuple[dict[str, np.ndarray], Transform]]:
    """Each image's outputs (batch axis of 1, as a single-frame run gives them) and preprocessing transform,
    in the order given; as few inference calls as the model's batch support and the tensor shapes allow."""
    support = batch_support(vision)
    name = vision.layout.name
    prepared = [vision._tensor(rgb) for rgb in rgbs]  # noqa: SLF001 (the single-frame preprocessing)
    results: list[tuple[dict[str, np.ndarray], Transform] | None] = [None] * len(rgbs)
    if support.size <= 1:
        for i, (inputs, transform) in enumerate(prepared):
            results[i] = (vision.run(inputs), transform)
        return results  # type: ignore[return-value]
    groups: dict[tuple, list[int]] = {}
    for i, (inputs, _) in enumerate(prepared):
        groups.setdefault(inputs[name].shape, []).append(i)
    for members in groups.values():
        for start in range(0, len(members), support.size):
            chunk = members[start : start + support.size]
            if len(chunk) == 1 and not support.fixed:
                i = chunk[0]
                results[i] = (vision.run(prepared[i][0]), prepared[i][1])
                continue
            tensors = [prepared[i][0] for i in chunk]
            if support.fixed:
                tensors += [tensors[-1]] * (support.size - len(chunk))
            split = infer_stacked(vision.runner.infer, tensors)
            if split is None:  # the probe's batch split; this one did not
                raise RuntimeError(f"a batch of {len(tensors)} gave outputs without the batch as their first axis")
            for outputs, i in zip(split, chunk):
                results[i] = (outputs, prepared[i][1])
    return results  # type: ignore[return-value]


def detect_batch(vision: VisionModel, rgbs: list[np.ndarray]) -> list[list[Detection]]:
    """`vision.detect` of each image, through as few inference calls as the model allows."""
    out = []
    for outputs, transform in infer_batch(vision, rgbs):
        raw: RawDetections = vision.decode_detections(outputs, transform)
        out.append(vision.keep_detections(raw, transform.source_width, transform.source_height))
    return out


def classify_batch(vision: VisionModel, rgbs: list[np.ndarray], n: int = 5) -> list[list[Classification]]:
    """`vision.classify(rgb, n)` of each image, through as few inference calls as the model allows."""
    return [vision.keep_classifications(outputs, n) for outputs, _ in infer_batch(vision, rgbs)]


def segment_batch(vision: VisionModel, rgbs: list[np.ndarray]) -> list[Segmentation]:
    """`vision.segment` of each image, through as few inference calls as the model allows."""
    return [vision.decode_segmentation(outputs, transform) for outputs, transform in infer_batch(vision, rgbs)]
