"""Make one real Hugging Face DETR-family detector export with its framework, and the framework's own answer on it
(the reference).

Runs in the Hugging Face exporters environment (`build/hf-exporters-venv`: transformers 4, optimum, optimum-onnx,
timm of scripts/requirements-hf-exporters.txt over `build/exporters-venv`'s CPU torch, onnx and onnxruntime), never
in the suite's. Nothing is ever downloaded (HF_HUB_OFFLINE): the model is built from its transformers Config class,
small (a tiny ResNet or HGNetV2 backbone, one or two 64-wide transformer layers, 50 or 100 queries), with a real
COCO id2label, and its random weights are made to give image-dependent detections:

- the weights' initial spread (INIT: init_std / initializer_range) is raised where transformers' default leaves
  every query alike (DETR, Conditional and DAB-DETR, Deformable DETR); YOLOS' detection tokens and position
  embeddings (zeros in transformers) are drawn as YOLOS' own code draws them;
- RT-DETR, RT-DETRv2 and D-FINE: every BatchNorm normalises the photos (statistics from them, scale 1, shift 0:
  their random ones shrink the features to nothing), and the encoder's score head, whose top num_queries pick the
  queries, is drawn again until the kept and the dropped scores are SELECTION_GAP apart on every photo (so every
  runtime keeps the same queries); Conditional DETR's reference points are rescaled off the image's edges;
- where the boxes come out degenerate (saturated at the edges, or all alike), the box head's last Linear is refitted
  (least squares) to give boxes of varied places and sizes that follow the photos: BOX_MEAN and BOX_STD of the
  pre-sigmoid (cx, cy, w, h), or BOX_RELATIVE_* around RT-DETR's anchors; D-FINE's and DAB-DETR's are kept;
- the final class head (the Linear the returned `logits` come from: `class_labels_classifier`, `class_embed`, the
  last decoder layer's `class_embed[-1]`) becomes a random mix of the few directions of its input (the queries'
  states on the photos) whose photo-and-query interaction is largest against their total variance, SPREAD logit
  units per standard deviation; one shift (the no-object logit's bias for the softmax models DETR and YOLOS, minus
  every class bias for the sigmoid ones) then gives every photo MIN_DETECTIONS to MAX_DETECTIONS detections at
  THRESHOLD with the framework's post-processing, no candidate score within SHIFT_MARGIN of it; the head is drawn
  again (deterministically) until the photos also give MIN_CLASSES classes overall, not the same on every photo.

The export is the one the framework's users make: optimum's `main_export(DIR_IN, output=DIR,
task="object-detection")` of the saved model folder for the architectures optimum supports (detr, yolos, rt_detr,
rt_detr_v2, d_fine); for the others (conditional_detr, deformable_detr, dab_detr) `torch.onnx.export` of the
model's (logits, pred_boxes) with the input `pixel_values`, dynamic batch, height and width (opset OPSET, the
TorchScript exporter), then `config.save_pretrained(DIR)` and the image processor's `save_pretrained(DIR)`.
Deformable DETR's export traces its spatial shapes as constants (the dynamo exporter too): it runs at its export
size only, so its processor resizes to DEFORMABLE_SIZE.

    python make_hf_detection.py --model NAME --out DIR --photos a.png b.png ...

DIR receives what the exporter leaves (`model.onnx`, `config.json`, `preprocessor_config.json`) and
`reference.json`: per photo, fed at its native size (the folder's processor, `AutoImageProcessor.from_pretrained
(DIR)`, resizes it), the processor's `post_process_object_detection` of the ONNX file's outputs run by onnxruntime
(threshold 0.5, target size the photo's (height, width)): boxes xyxy in the photo's pixels, class ids, scores; with
the ONNX file's inputs and outputs, the processor's input sizes, each photo's smallest |score - threshold| over every
candidate, and the torch model's largest difference from the ONNX outputs. The run fails (and leaves DIR.work)
unless every photo has MIN_DETECTIONS..MAX_DETECTIONS detections, no score within MARGIN of the threshold and no box
without area.
"""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"  # nothing is ever downloaded
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import importlib.metadata as metadata  # noqa: E402
import random  # noqa: E402
import shutil  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import onnx  # noqa: E402
import onnxruntime as ort  # noqa: E402
import torch  # noqa: E402
import transformers as T  # noqa: E402
from export_run import arguments, run, weights_digest
from PIL import Image  # noqa: E402

OPTIMUM = ("detr", "yolos", "rt_detr", "rt_detr_v2", "d_fine")
TORCH_EXPORT = ("conditional_detr", "deformable_detr", "dab_detr")
MODELS = OPTIMUM + TORCH_EXPORT
#: COCO category names (contiguous ids, as RT-DETR's and D-FINE's checkpoints number them).
LABELS = ["person", "bicycle", "car", "motorcycle", "bus", "dog", "cat", "chair", "cup", "potted plant"]
THRESHOLD = 0.5  # the suite's default confidence
MIN_DETECTIONS, MAX_DETECTIONS, TARGET_DETECTIONS = 3, 25, 10  # per photo
MIN_CLASSES = 3  # over all the photos
MARGIN = 0.02  # no candidate score within this of THRESHOLD on the ONNX file (checked)
SHIFT_MARGIN = 0.05  # ... and the shift chosen for none within this on the torch model: room for runtimes' rounding
SPREAD = 4.0  # logit units per standard deviation of the head's input directions
COMPONENTS = 4  # photo-dependent directions that the classes (and the boxes) mix
RIDGE = 1e-2  # added to the features' covariance (share of its mean variance): bounded head weights
#: the boxes' pre-sigmoid (cx, cy, w, h) where a box head is calibrated: mean and standard deviation (relative: of
#: the change to the model's own reference boxes)
BOX_MEAN, BOX_STD = (0.0, 0.0, -1.7, -1.7), (0.9, 0.9, 0.45, 0.45)
BOX_RELATIVE_MEAN, BOX_RELATIVE_STD = (0.0, 0.0, 0.3, 0.3), (0.3, 0.3, 0.4, 0.4)
SELECTION_GAP = 1e-3  # RT-DETR, D-FINE: the last kept encoder score at least this above the first dropped one
ATTEMPTS = 40  # heads drawn until the detections pass
OPSET = 17  # torch.onnx.export's opset (optimum picks its own)
#: the weights' initial standard deviation (init_std / initializer_range): transformers' defaults (0.02; RT-DETR's
#: and D-FINE's 0.01) where they do; raised where they leave these small random models' queries all alike.
INIT = {
    "detr": 0.3,
    "yolos": 0.02,
    "rt_detr": 0.01,
    "rt_detr_v2": 0.01,
    "d_fine": 0.01,
    "conditional_detr": 0.5,
    "deformable_detr": 0.1,
    "dab_detr": 0.3,
}
DEFORMABLE_SIZE = {"height": 800, "width": 800}  # Deformable DETR's export size (see build)
SMALL = dict(encoder_layers=1, decoder_layers=2, encoder_attention_heads=2, decoder_attention_heads=2)


def seed_everything(seed: int = 0) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def labels() -> dict:
    id2label = dict(enumerate(LABELS))
    return {"id2label": id2label, "label2id": {v: k for k, v in id2label.items()}}


def resnet(stages: list[str]) -> T.ResNetConfig:
    """A tiny ResNet backbone (channels 32, 64, 128 at stages 2, 3, 4)."""
    return T.ResNetConfig(embedding_size=16, hidden_sizes=[16, 32, 64, 128], depths=[1, 1, 1, 1], out_features=stages)


@dataclass
class Built:
    model: torch.nn.Module
    processor: T.BaseImageProcessor  # the image processor a checkpoint of this architecture carries
    head: torch.nn.Linear  # the Linear the returned logits come from
    softmax: bool  # DETR / YOLOS: softmax with a last no-object class; else sigmoid over (query, class) pairs
    box_head: torch.nn.Linear | None = None  # the last Linear of an output-only box head, to calibrate
    box_relative: bool = False  # the boxes calibrated around the references the model adds (RT-DETR's anchors)
    normalise: bool = False  # BatchNorms normalise the photos (RT-DETR, D-FINE: random ones shrink features to ~0)
    selection_head: torch.nn.Linear | None = None  # RT-DETR, D-FINE: the encoder scores whose top-k are the queries


def build(name: str) -> Built:
    """The random-initialised model (eval mode), its image processor and its final class head."""
    seed_everything(MODELS.index(name))
    no_timm = dict(use_timm_backbone=False, use_pretrained_backbone=False, backbone=None)
    if name == "detr":
        config = T.DetrConfig(
            **no_timm, backbone_config=resnet(["stage4"]), d_model=64, encoder_ffn_dim=128, decoder_ffn_dim=128,
            num_queries=50, init_std=INIT[name], **SMALL, **labels(),
        )  # fmt: skip
        model = T.DetrForObjectDetection(config)
        head, box = model.class_labels_classifier, model.bbox_predictor.layers[-1]
        return Built(model.eval(), T.DetrImageProcessor(), head, True, box)
    if name == "yolos":
        config = T.YolosConfig(
            hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=128,
            num_detection_tokens=50, initializer_range=INIT[name], **labels(),
        )  # fmt: skip
        model = T.YolosForObjectDetection(config)
        embeddings = model.vit.embeddings  # zeros in transformers; truncated normal (0.02) in YOLOS' own code
        for token in (embeddings.cls_token, embeddings.detection_tokens, embeddings.position_embeddings):
            torch.nn.init.trunc_normal_(token.data, std=0.02)
        head = model.class_labels_classifier.layers[-1]
        return Built(model.eval(), T.YolosImageProcessor(), head, True, model.bbox_predictor.layers[-1])
    if name in ("rt_detr", "rt_detr_v2", "d_fine"):
        common = dict(
            encoder_hidden_dim=64, encoder_ffn_dim=128, encoder_attention_heads=2, d_model=64,
            decoder_in_channels=[64, 64, 64], decoder_ffn_dim=128, decoder_layers=2, decoder_attention_heads=2,
            num_queries=100, initializer_range=INIT[name], **labels(),
        )  # fmt: skip
        if name == "d_fine":
            backbone = T.HGNetV2Config(
                stem_channels=[3, 16, 16], stage_in_channels=[16, 32, 64, 128], stage_mid_channels=[8, 16, 32, 64],
                stage_out_channels=[32, 64, 128, 256], stage_num_blocks=[1, 1, 1, 1],
                stage_numb_of_layers=[2, 2, 2, 2], hidden_sizes=[32, 64, 128, 256],
                out_features=["stage2", "stage3", "stage4"],
            )  # fmt: skip
            config = T.DFineConfig(
                backbone_config=backbone, encoder_in_channels=[64, 128, 256], depth_mult=0.34, lqe_hidden_dim=16,
                **common,
            )  # fmt: skip
            model = T.DFineForObjectDetection(config)
        else:
            cls_config, cls_model = {
                "rt_detr": (T.RTDetrConfig, T.RTDetrForObjectDetection),
                "rt_detr_v2": (T.RTDetrV2Config, T.RTDetrV2ForObjectDetection),
            }[name]
            config = cls_config(
                backbone_config=resnet(["stage2", "stage3", "stage4"]), encoder_in_channels=[32, 64, 128],
                depth_mult=0.34, **common,
            )  # fmt: skip
            model = cls_model(config)
        # the last decoder layer's heads (its box refinement is output-only); D-FINE's boxes are distributions over
        # edge distances (not a sigmoid of a Linear): left as the encoder proposes them
        head, box = model.model.decoder.class_embed[-1], model.model.decoder.bbox_embed[-1].layers[-1]
        return Built(
            model.eval(), T.RTDetrImageProcessor(), head, False, None if name == "d_fine" else box,
            box_relative=True, normalise=True, selection_head=model.model.enc_score_head,
        )  # fmt: skip
    if name == "conditional_detr":
        config = T.ConditionalDetrConfig(
            **no_timm, backbone_config=resnet(["stage4"]), d_model=64, encoder_ffn_dim=128, decoder_ffn_dim=128,
            num_queries=50, init_std=INIT[name], **SMALL, **labels(),
        )  # fmt: skip
        model = T.ConditionalDetrForObjectDetection(config)
        # its reference points (from the query embeddings alone) saturate at the image's edges with these weights:
        # the reference head's last layer rescaled to give them mean 0, standard deviation 1 before their sigmoid
        reference_head = model.model.decoder.ref_point_head
        with torch.no_grad():
            points = reference_head(model.model.query_position_embeddings.weight)
            mean, std = points.mean(0), points.std(0)
            reference_head.layers[-1].weight.div_(std[:, None])
            reference_head.layers[-1].bias.sub_(mean).div_(std)
        head, box = model.class_labels_classifier, model.bbox_predictor.layers[-1]
        return Built(model.eval(), T.ConditionalDetrImageProcessor(), head, False, box)
    if name == "deformable_detr":
        config = T.DeformableDetrConfig(
            **no_timm, backbone_config=resnet(["stage2", "stage3", "stage4"]), d_model=64, encoder_ffn_dim=128,
            decoder_ffn_dim=128, num_queries=100, init_std=INIT[name], **SMALL, **labels(),
        )  # fmt: skip
        model = T.DeformableDetrForObjectDetection(config)
        head, box = model.class_embed[-1], model.bbox_embed[-1].layers[-1]
        # torch.onnx.export traces its levels' spatial shapes as constants (with the dynamo exporter too): the file
        # runs at its export size only, so its processor resizes every photo to that size
        processor = T.DeformableDetrImageProcessor(size=dict(DEFORMABLE_SIZE))
        return Built(model.eval(), processor, head, False, box)
    if name == "dab_detr":
        config = T.DabDetrConfig(
            **no_timm, backbone_config=resnet(["stage4"]), hidden_size=64, encoder_ffn_dim=128, decoder_ffn_dim=128,
            num_queries=50, init_std=INIT[name], **SMALL, **labels(),
        )  # fmt: skip
        model = T.DabDetrForObjectDetection(config)
        # transformers has no DAB-DETR image processor: Conditional DETR's (sigmoid, top-k post-processing) fits its
        # sigmoid class head, as RT-DETR's does RT-DETRv2 and D-FINE
        return Built(model.eval(), T.ConditionalDetrImageProcessor(), model.class_embed, False)
    raise SystemExit(f"unknown model {name}")


def rgb(path: Path) -> Image.Image:
    return Image.open(path).convert("RGB")


def normalise_batchnorms(model: torch.nn.Module, batch: torch.Tensor) -> int:
    """Every BatchNorm (torch's, and transformers' frozen ones) made to normalise its input on the photos: statistics
    from them (taken in one pass, each layer's before it runs), scale 1 and shift 0. The number of layers."""
    norms = [
        m
        for m in model.modules()
        if isinstance(m, torch.nn.BatchNorm2d) or type(m).__name__.endswith("FrozenBatchNorm2d")
    ]

    def normalise(module: torch.nn.Module, inputs: tuple) -> None:
        x = inputs[0].detach().double()
        module.running_mean.copy_(x.mean(dim=(0, 2, 3)))
        module.running_var.copy_(x.var(dim=(0, 2, 3), unbiased=False))
        module.weight.data.fill_(1.0)
        module.bias.data.zero_()

    hooks = [m.register_forward_pre_hook(normalise) for m in norms]
    with torch.no_grad():
        model(pixel_values=batch)
    for hook in hooks:
        hook.remove()
    return len(norms)


def forward(model: torch.nn.Module, pixel_values: torch.Tensor, head: torch.nn.Linear | None = None):
    """The model's output on one image; with `head`, also the head's input (its last call: the last layer)."""
    seen: list[torch.Tensor] = []
    hook = head.register_forward_hook(lambda _m, inputs, _o: seen.append(inputs[0].detach())) if head else None
    with torch.no_grad():
        output = model(pixel_values=pixel_values)
    if hook:
        hook.remove()
    return (output, seen[-1][0]) if head else output


def candidate_scores(logits: torch.Tensor, softmax: bool) -> torch.Tensor:
    """Every score the post-processing thresholds: the best real class's softmax probability per query (DETR,
    YOLOS), or the sigmoid of every (query, class) logit."""
    if softmax:
        return logits.softmax(-1)[..., :-1].max(-1).values.flatten()
    return logits.sigmoid().flatten()


def photo_directions(features: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean [D], basis [D, COMPONENTS]): the directions of the head's input whose photo-and-query interaction
    (what is left of the features once the photo's mean and the query's mean over the photos are taken away) is
    largest against their total variance; unit total variance."""
    x = torch.stack(features).double()  # [P, Q, D]
    mean = x.mean(dim=(0, 1))
    total = (x - mean).flatten(0, 1)
    total = total.T @ total / len(total)
    total += torch.eye(len(total), dtype=total.dtype) * RIDGE * total.diagonal().mean()
    interaction = (x - x.mean(1, keepdim=True) - x.mean(0, keepdim=True) + mean).flatten(0, 1)
    interaction = interaction.T @ interaction / len(interaction)
    inverse = torch.linalg.inv(torch.linalg.cholesky(total))
    _, vectors = torch.linalg.eigh(inverse @ interaction @ inverse.T)
    return mean, inverse.T @ vectors[:, -COMPONENTS:]


def choose_shift(logits: list[torch.Tensor], softmax: bool) -> tuple[float, list[int], float] | None:
    """(shift, detections per photo, margin): the shift (added to the no-object logit, or taken from every class
    logit) giving every photo MIN..MAX detections, nearest TARGET on average, with no candidate score within
    SHIFT_MARGIN of THRESHOLD; None if there is none."""
    values = torch.cat([x.flatten() for x in logits]).double()
    grid = torch.linspace(float(values.min()) - 2, float(values.max()) + 2, 8001, dtype=torch.float64)[:, None]
    counts, margins = [], []
    for x in logits:
        x = x.double()
        if softmax:  # the best real class's probability per query, for every shift of the no-object logit
            top = x[:, :-1].max(-1).values
            rest = torch.logsumexp(x[:, :-1], -1) - top
            scores = 1 / (rest.exp() + torch.exp(grid + x[:, -1] - top))  # [G, Q]
        else:
            scores = torch.sigmoid(x.flatten() - grid)  # [G, Q * C]
        counts.append((scores > THRESHOLD).sum(1))
        margins.append((scores - THRESHOLD).abs().min(1).values)
    counts, margin = torch.stack(counts, 1), torch.stack(margins, 1).min(1).values  # [G, P], [G]
    ok = (counts.min(1).values >= MIN_DETECTIONS) & (counts.max(1).values <= MAX_DETECTIONS) & (margin >= SHIFT_MARGIN)
    if not ok.any():
        return None
    distance = (counts.double().mean(1) - TARGET_DETECTIONS).abs() - margin * 1e-3  # nearest TARGET, then widest
    best = int(torch.where(ok, distance, torch.inf).argmin())
    return float(grid[best]), counts[best].tolist(), float(margin[best])


def logit(p: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    p = p.double().clamp(eps, 1 - eps)
    return torch.log(p / (1 - p))


def calibrate_boxes(built: Built, head: torch.nn.Linear, inputs: list[torch.Tensor]) -> dict:
    """The box head's last Linear (`head`: the model's `box_head`) refitted (least squares) so that the boxes'
    pre-sigmoid (cx, cy, w, h), with whatever reference the model adds to it, become BOX_MEAN plus BOX_STD times a
    random mix of the photos' directions of its input: boxes of varied places and sizes, following the photos."""
    model = built.model
    with torch.no_grad():
        head.weight.zero_()
        head.bias.zero_()
    passes = [forward(model, x, head) for x in inputs]
    features = torch.cat([f.double() for _, f in passes])  # [P * Q, D]
    base = torch.cat([logit(o.pred_boxes[0]) for o, _ in passes])  # what the model adds to the head's output
    mean, basis = photo_directions([f.double() for _, f in passes])
    projections = (features - mean) @ basis  # unit variance
    generator = torch.Generator().manual_seed(0)
    mix = torch.randn(basis.shape[1], 4, generator=generator, dtype=torch.float64)
    spread = (projections @ (mix / mix.norm(dim=0))).clamp(-2, 2)  # the tails cut: no huge or edge-most boxes
    centre, scale = (BOX_RELATIVE_MEAN, BOX_RELATIVE_STD) if built.box_relative else (BOX_MEAN, BOX_STD)
    target = torch.tensor(centre, dtype=torch.float64) + spread * torch.tensor(scale, dtype=torch.float64)
    if built.box_relative:
        target = target + base
    design = torch.cat([features, features.new_ones(len(features), 1)], 1)
    gram = design.T @ design + torch.eye(design.shape[1], dtype=design.dtype) * RIDGE * design.diagonal().mean()
    solution = torch.linalg.solve(gram, design.T @ (target - base))  # [D + 1, 4]
    with torch.no_grad():
        head.weight.copy_(solution[:-1].T.to(head.weight.dtype))
        head.bias.copy_(solution[-1].to(head.bias.dtype))
    boxes = torch.cat([forward(model, x).pred_boxes[0] for x in inputs])
    fit = float((logit(boxes) - target).abs().max())
    quantiles = torch.quantile(boxes, torch.tensor([0.0, 0.5, 1.0]), dim=0)
    print(f"boxes calibrated: pre-sigmoid within {fit:.2f} of the target, min / median / max (cx, cy, w, h)")
    print(quantiles.numpy().round(3))
    return {"box_relative": built.box_relative, "box_mean": centre, "box_std": scale, "box_fit": round(fit, 4)}


def selection_gaps(built: Built, head: torch.nn.Linear, inputs: list[torch.Tensor]) -> list[float]:
    """Per photo: the last kept encoder score (the num_queries-th, over its best class, from `head`) minus the first
    dropped."""
    seen: list[torch.Tensor] = []
    hook = head.register_forward_hook(lambda _m, _i, output: seen.append(output.detach()))
    for x in inputs:
        forward(built.model, x)
    hook.remove()
    k = built.model.config.num_queries
    return [float(s[0].max(-1).values.topk(k + 1).values[-2:].diff().neg()) for s in seen]


def separate_selection(built: Built, head: torch.nn.Linear, inputs: list[torch.Tensor]) -> dict:
    """RT-DETR and D-FINE keep as queries the top num_queries of the encoder's scores (`enc_score_head`): that head is
    drawn again (xavier uniform, as transformers draws it; its bias kept) until on every photo the last kept score
    is SELECTION_GAP above the first dropped one, so that every runtime keeps the same queries (`head`: the
    model's `selection_head`)."""
    bound = (6 / (head.in_features + head.out_features)) ** 0.5
    for attempt in range(ATTEMPTS):
        if attempt:
            generator = torch.Generator().manual_seed(attempt)
            with torch.no_grad():
                head.weight.copy_((torch.rand(head.weight.shape, generator=generator) * 2 - 1) * bound)
        gaps = selection_gaps(built, head, inputs)
        print(f"selection attempt {attempt}: gaps {[f'{g:.1e}' for g in gaps]}")
        if min(gaps) >= SELECTION_GAP:
            return {"selection_attempt": attempt, "selection_gaps": [round(g, 6) for g in gaps]}
    raise SystemExit(f"no encoder score head in {ATTEMPTS} attempts separates the kept queries by {SELECTION_GAP}")


def calibrate(built: Built, processor, inputs: list[torch.Tensor]) -> dict:
    """The head made a random mix of the photos' directions, scaled by SPREAD and shifted (see the module's
    docstring); drawn again, deterministically, until the framework's post-processing of the photos passes.
    The logits are linear in the head's weights (D-FINE adds its quality term, which does not depend on them):
    each draw is predicted from one pass, then checked by running the model."""
    model, head = built.model, built.head
    with torch.no_grad():
        head.weight.zero_()
        head.bias.zero_()
    passes = [forward(model, x, head) for x in inputs]
    features = [f.double() for _, f in passes]
    base = [o.logits[0].double() for o, _ in passes]  # what the logits are without the head
    mean, basis = photo_directions(features)
    for attempt in range(ATTEMPTS):
        generator = torch.Generator().manual_seed(attempt)
        mix = torch.randn(len(LABELS), basis.shape[1], generator=generator, dtype=torch.float64)
        weight = SPREAD * mix @ basis.T  # [C, D]
        bias = -weight @ mean
        if built.softmax:  # the no-object class: no weight, its bias the shift
            weight = torch.cat([weight, weight.new_zeros(1, weight.shape[1])])
            bias = torch.cat([bias, bias.new_zeros(1)])
        predicted = [b + f @ weight.T + bias for b, f in zip(base, features)]
        chosen = choose_shift(predicted, built.softmax)
        if chosen is None:
            print(f"calibration attempt {attempt}: no shift gives {MIN_DETECTIONS}..{MAX_DETECTIONS} per photo")
            continue
        shift, counts, margin = chosen
        if built.softmax:
            bias[-1] += shift
        else:
            bias -= shift
        with torch.no_grad():
            head.weight.copy_(weight.to(head.weight.dtype))
            head.bias.copy_(bias.to(head.bias.dtype))
        outputs = [forward(model, x) for x in inputs]
        predicted = [b + f @ weight.T + bias for b, f in zip(base, features)]
        error = max(float((o.logits[0] - p).abs().max()) for o, p in zip(outputs, predicted))
        results = [processor.post_process_object_detection(o, threshold=THRESHOLD)[0]["labels"] for o in outputs]
        results = [r.tolist() for r in results]
        seen = {c for r in results for c in r}
        distinct = len({tuple(sorted(r)) for r in results}) > 1
        print(
            f"calibration attempt {attempt}: shift {shift:.3f}, detections {[len(r) for r in results]} "
            f"(predicted {counts}, logits within {error:.1e}), margin {margin:.3f}, classes {sorted(seen)}"
        )
        if len(seen) >= MIN_CLASSES and distinct and [len(r) for r in results] == counts:
            return {"attempt": attempt, "spread": SPREAD, "shift": round(shift, 6), "components": COMPONENTS}
    raise SystemExit(f"no calibration in {ATTEMPTS} attempts gives {MIN_DETECTIONS}+ detections on every photo")


class Detections(torch.nn.Module):
    """The model giving (logits, pred_boxes): what users export with torch.onnx.export."""

    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, pixel_values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        output = self.net(pixel_values=pixel_values)
        return output.logits, output.pred_boxes


def export_optimum(source: Path, out: Path) -> str:
    """optimum's own export of the saved model folder (it copies config.json and preprocessor_config.json)."""
    from optimum.exporters.onnx import main_export

    main_export(str(source), output=str(out), task="object-detection")
    return f"optimum {metadata.version('optimum')}"


def export_torch(built: Built, processor, example: torch.Tensor, out: Path) -> str:
    """torch.onnx.export of (logits, pred_boxes), dynamic batch, height and width; the config and the processor
    saved beside it."""
    dynamic = {0: "batch_size", 2: "height", 3: "width"}
    with torch.no_grad():
        torch.onnx.export(
            Detections(built.model).eval(),
            (example,),
            str(out / "model.onnx"),
            input_names=["pixel_values"],
            output_names=["logits", "pred_boxes"],
            dynamic_axes={"pixel_values": dynamic, "logits": {0: "batch_size"}, "pred_boxes": {0: "batch_size"}},
            opset_version=OPSET,
            dynamo=False,
        )
    built.model.config.save_pretrained(out)
    processor.save_pretrained(out)
    return "torch.onnx.export"


def describe(path: Path) -> dict:
    """The ONNX file's opset, inputs and outputs (names, element types, shapes with their symbolic dimensions)."""
    model = onnx.load(str(path), load_external_data=False)

    def values(items) -> list[dict]:
        return [
            {
                "name": v.name,
                "type": onnx.TensorProto.DataType.Name(v.type.tensor_type.elem_type),
                "shape": [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim],
            }
            for v in items
        ]

    opset = max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    return {"opset": opset, "inputs": values(model.graph.input), "outputs": values(model.graph.output)}


def session(path: Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def make(name: str, out: Path, photos: list[Path]) -> dict:
    built = build(name)
    source = out.with_name(out.name + ".model")  # the saved transformers model (optimum's input), removed after
    shutil.rmtree(source, ignore_errors=True)
    built.processor.save_pretrained(source)
    processor = T.AutoImageProcessor.from_pretrained(source)  # the class a user of the folder gets
    inputs = [processor(images=rgb(p), return_tensors="pt")["pixel_values"] for p in photos]
    calibration = {}
    if built.normalise:
        height, width = min(x.shape[-2] for x in inputs), min(x.shape[-1] for x in inputs)  # one batch: cropped
        batch = torch.cat([x[..., :height, :width] for x in inputs])
        calibration["normalised_batchnorms"] = normalise_batchnorms(built.model, batch)
    if built.selection_head is not None:
        calibration.update(separate_selection(built, built.selection_head, inputs))
    if built.box_head is not None:
        calibration.update(calibrate_boxes(built, built.box_head, inputs))
    calibration.update(calibrate(built, processor, inputs))
    built.model.save_pretrained(source)
    started = time.monotonic()
    if name in OPTIMUM:
        exporter = export_optimum(source, out)
    else:
        example = processor(images=rgb(photos[0]), return_tensors="pt")["pixel_values"]
        exporter = export_torch(built, processor, example, out)
    print(f"exported {out / 'model.onnx'} with {exporter} in {time.monotonic() - started:.1f} s")
    shutil.rmtree(source)
    folder = T.AutoImageProcessor.from_pretrained(out)  # the exported folder's processor, as a user loads it
    runner = session(out / "model.onnx")
    input_name = runner.get_inputs()[0].name
    output_names = [o.name for o in runner.get_outputs()]
    sizes, predictions, logit_diffs, box_diffs, matched_diffs, masks = [], [], [], [], [], []
    max_logit, margins = 0.0, []
    for photo in photos:
        image = rgb(photo)
        fed = folder(images=image, return_tensors="np")
        masks.append(bool("pixel_mask" in fed and not fed["pixel_mask"].all()))
        pixel_values = fed["pixel_values"]
        sizes.append(list(pixel_values.shape[-2:]))
        answer = dict(zip(output_names, runner.run(None, {input_name: pixel_values})))
        reference = forward(built.model, torch.from_numpy(pixel_values))
        logits, boxes = torch.from_numpy(answer["logits"]), torch.from_numpy(answer["pred_boxes"])
        logit_diffs.append(float((logits - reference.logits).abs().max()))
        max_logit = max(max_logit, float(reference.logits.abs().max()))
        box_diffs.append(float((boxes - reference.pred_boxes).abs().max()))
        # each ONNX query against its nearest torch query: RT-DETR's and D-FINE's queries come in the order of
        # their encoder scores, which near-ties can change between runtimes (the set of queries is the same)
        rows = torch.cat([logits, boxes], -1)[0], torch.cat([reference.logits, reference.pred_boxes], -1)[0]
        matched_diffs.append(float(torch.cdist(*rows, p=float("inf")).min(1).values.max()))
        margins.append(float((candidate_scores(logits, built.softmax) - THRESHOLD).abs().min()))
        result = folder.post_process_object_detection(
            type(reference)(logits=logits, pred_boxes=boxes), threshold=THRESHOLD, target_sizes=[image.size[::-1]]
        )[0]
        predictions.append(
            {
                "xyxy": [[round(float(v), 4) for v in box] for box in result["boxes"]],
                "cls": [int(c) for c in result["labels"]],
                "conf": [round(float(s), 6) for s in result["scores"]],
            }
        )
    with_mask = "pixel_mask" in folder(images=rgb(photos[0]), return_tensors="np")
    return {
        "model": name,
        "architecture": type(built.model).__name__,
        "exporter": exporter,
        "versions": {
            p: metadata.version(p) for p in ("transformers", "optimum", "optimum-onnx", "torch", "onnxruntime")
        },
        "file": "model.onnx",
        "onnx": describe(out / "model.onnx"),
        "processor": type(folder).__name__,
        "processor_gives_pixel_mask": with_mask,
        "pixel_mask_padded": masks,
        "threshold": THRESHOLD,
        "photos": [p.name for p in photos],
        "photo_sizes": [list(rgb(p).size[::-1]) for p in photos],
        "input_sizes": sizes,
        "predictions": predictions,
        "num_queries": int(reference.logits.shape[1]),
        "num_logits": int(reference.logits.shape[2]),
        "id2label": {str(k): v for k, v in built.model.config.id2label.items()},
        # the ONNX file against the torch model, each ONNX query against its nearest torch query (logits and boxes)
        "max_logit_diff": max(matched_diffs),
        "max_logit_diff_by_index": max(logit_diffs),  # RT-DETR, D-FINE: near-tied queries may come in another order
        "max_box_diff_by_index": max(box_diffs),
        "logit_diffs_by_index": logit_diffs,
        "logit_diffs": matched_diffs,
        "max_abs_logit": max_logit,
        "score_margins": margins,  # per photo: the smallest |score - threshold| of every candidate, kept or not
        "calibration": calibration,
        "parameters": sum(p.numel() for p in built.model.parameters()),
        "weights_sha256": weights_digest(built.model),
    }


def check(reference: dict) -> list[str]:
    """Print one line on the reference (detections per photo, classes, the smallest |score - threshold| of every
    candidate, boxes without area or beyond the photo) and return what fails the calibration's promises."""
    predictions = reference["predictions"]
    counts = [len(p["cls"]) for p in predictions]
    classes = sorted({c for p in predictions for c in p["cls"]})
    degenerate = sum(b[2] <= b[0] or b[3] <= b[1] for p in predictions for b in p["xyxy"])
    beyond = sum(
        b[0] < 0 or b[1] < 0 or b[2] > w or b[3] > h
        for p, (h, w) in zip(predictions, reference["photo_sizes"])
        for b in p["xyxy"]
    )
    margin = min(reference["score_margins"])
    print(
        f"{reference['model']}: {reference['exporter']}, {reference['seconds']} s, detections {counts}, classes "
        f"{classes}, min |score - {THRESHOLD}| {margin:.4f}, boxes without area {degenerate}, beyond the photo "
        f"{beyond} of {sum(counts)}, inputs {reference['input_sizes']}, max logit diff "
        f"{reference['max_logit_diff']:.1e} (query by query: {reference['max_logit_diff_by_index']:.1e})"
    )
    failures = []
    if min(counts) < MIN_DETECTIONS or max(counts) > MAX_DETECTIONS:
        failures.append(f"detections per photo {counts} not within {MIN_DETECTIONS}..{MAX_DETECTIONS}")
    if len(classes) < MIN_CLASSES or len({tuple(sorted(p["cls"])) for p in predictions}) < 2:
        failures.append(f"classes {classes}: fewer than {MIN_CLASSES}, or the same on every photo")
    if margin < MARGIN:
        failures.append(f"a score within {margin:.4f} of the threshold")
    if degenerate:
        failures.append(f"{degenerate} boxes without area")
    return failures


def main() -> None:
    args = arguments(__doc__, MODELS).parse_args()
    photos = [p.resolve() for p in args.photos]
    # one thread: these models are small, and threads that compete for the cores with other exporters run many
    # times slower than one
    torch.set_num_threads(1)
    run(args.out.resolve(), lambda work: make(args.model, work, photos), check)


if __name__ == "__main__":
    main()
