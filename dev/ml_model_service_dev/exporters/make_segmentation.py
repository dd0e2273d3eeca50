"""Make one real semantic-segmentation export with its framework, and the framework's own answer on it (the
reference).

Runs in the exporters environment (`build/exporters-venv`: CPU torch, torchvision, transformers, onnx,
onnxruntime; see scripts/requirements-exporters.txt), never in the suite's. Weights are never downloaded: the
model is built by its constructor (torchvision) or from a config (transformers) and its random weights are made to
give image-dependent class maps:

- BatchNorm statistics are taken from the photos (train-mode passes of the BatchNorm layers, cumulative averages);
- the final classifier (1 x 1 conv) becomes a random mix of the few most spatially coherent directions of its input
  features on the photos (so the maps follow regions of the photos, not the random network's pixel noise);
- each class channel is then standardised over the photos' pixels and scaled by a spread (SPREAD, more where
  needed so near-ties stay rare), so that every photo's argmax map has several image-dependent regions: at least 3
  classes of 3 % or more, none over 80 %, under 0.1 % of pixels with a top-2 margin below 1e-3 (printed and kept in
  reference.json; the classifier is drawn again, deterministically, until every photo passes).

    python make_segmentation.py --model lraspp|deeplabv3|lraspp-argmax|segformer --out DIR --photos a.png b.png

DIR receives `model.onnx` (segformer: with `config.json` and `preprocessor_config.json`, as a Hugging Face export
folder), `labels.txt` (torchvision), the photos fed (`photos/`, resized to the model's input with cv2 INTER_LINEAR;
segformer also the native photos, `native/`), the reference maps (`reference/`, 8-bit PNG class ids, made from the
ONNX file run by onnxruntime; `reference/torch-*`: the same from the torch model) and `reference.json`.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import onnxruntime as ort
import torch
import torch.nn.functional as F
from export_run import arguments, read_image, run, weights_digest
from PIL import Image

MODELS = ("lraspp", "deeplabv3", "lraspp-argmax", "segformer")
#: torchvision's segmentation weights' categories (Pascal VOC's 20 and the background).
VOC_LABELS = [
    "__background__",
    "aeroplane",
    "bicycle",
    "bird",
    "boat",
    "bottle",
    "bus",
    "car",
    "cat",
    "chair",
    "cow",
    "diningtable",
    "dog",
    "horse",
    "motorbike",
    "person",
    "pottedplant",
    "sheep",
    "sofa",
    "train",
    "tvmonitor",
]
#: Cityscapes' 19 evaluation classes (what the SegFormer Cityscapes checkpoints name).
CITYSCAPES_LABELS = [
    "road",
    "sidewalk",
    "building",
    "wall",
    "fence",
    "pole",
    "traffic light",
    "traffic sign",
    "vegetation",
    "terrain",
    "sky",
    "person",
    "rider",
    "car",
    "truck",
    "bus",
    "train",
    "motorcycle",
    "bicycle",
]
IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]
TORCHVISION_SIZE = 520
SEGFORMER_SIZE = 512
SPREAD, MAX_SPREAD = 8.0, 64.0  # logit units per standard deviation of a class channel (at least, at most)
MIN_CLASSES, MIN_SHARE, MAX_SHARE = 3, 0.03, 0.80  # per photo: >= 3 classes of >= 3 %, none above 80 %
TIE_MARGIN, MAX_TIES = 1e-3, 0.001  # share of pixels whose top-2 margin is under 1e-3: below 0.1 %
ATTEMPTS = 40  # classifier draws tried until the maps pass
COMPONENTS = 3  # coherent directions of the classifier's input that the classes mix
SMOOTH = 8  # smoothing window (for coherence): 1/SMOOTH of the feature map's side
SECONDARY = 0.3  # weight of a second classifier (LRASPP's low-level one) against the first


def seed_everything(seed: int = 0) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


class OutOnly(torch.nn.Module):
    """A torchvision segmentation model giving only its "out" map (not the dict, not aux)."""

    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)["out"]


class Argmax(torch.nn.Module):
    """The class map itself: the model's "out" argmax over classes (int64 [1, H, W])."""

    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)["out"].argmax(1)


class LogitsOnly(torch.nn.Module):
    """SegFormer giving its logits tensor (not the ModelOutput)."""

    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.net(pixel_values=pixel_values).logits


def build(name: str):
    """(model, logits function, classifier convs, labels); the first classifier conv takes the shift."""
    seed_everything(0)
    if name == "segformer":
        from transformers import SegformerConfig, SegformerForSemanticSegmentation

        config = SegformerConfig(
            num_labels=len(CITYSCAPES_LABELS),
            id2label=dict(enumerate(CITYSCAPES_LABELS)),
            label2id={v: k for k, v in enumerate(CITYSCAPES_LABELS)},
        )
        net = SegformerForSemanticSegmentation(config).eval()
        return net, lambda x: net(pixel_values=x).logits, [net.decode_head.classifier], CITYSCAPES_LABELS
    from torchvision.models import segmentation

    if name == "deeplabv3":
        net = segmentation.deeplabv3_mobilenet_v3_large(
            weights=None, weights_backbone=None, num_classes=len(VOC_LABELS), aux_loss=False
        ).eval()
        convs = [net.classifier[4]]
    else:
        net = segmentation.lraspp_mobilenet_v3_large(
            weights=None, weights_backbone=None, num_classes=len(VOC_LABELS)
        ).eval()
        convs = [net.classifier.high_classifier, net.classifier.low_classifier]
    return net, lambda x: net(x)["out"], convs, VOC_LABELS


def map_stats(logits: torch.Tensor, labels: list[str]) -> dict:
    """Class shares and near-tie shares of post-processed logits [C, H, W] (the map is their argmax)."""
    top2 = logits.topk(2, dim=0).values
    margin = top2[0] - top2[1]
    classes = logits.argmax(0)
    counts = torch.bincount(classes.flatten(), minlength=len(labels)).double() / classes.numel()
    return {
        "class_shares": {labels[i]: round(float(c), 5) for i, c in enumerate(counts) if c > 0},
        "near_ties": {
            "1e-3": float((margin < 1e-3).double().mean()),
            "1e-2": float((margin < 1e-2).double().mean()),
            "1e-1": float((margin < 1e-1).double().mean()),
        },
        "median_margin": float(margin.median()),
    }


def passes(stats: dict) -> bool:
    shares = list(stats["class_shares"].values())
    return (
        sum(s >= MIN_SHARE for s in shares) >= MIN_CLASSES
        and max(shares) <= MAX_SHARE
        and stats["near_ties"]["1e-3"] < MAX_TIES
    )


def _conv_inputs(logits_of, convs: list[torch.nn.Conv2d], batch: torch.Tensor) -> list[torch.Tensor]:
    seen: dict[int, torch.Tensor] = {}

    def keeper(index: int):
        return lambda _module, inputs, _out: seen.__setitem__(index, inputs[0].detach())

    hooks = [conv.register_forward_hook(keeper(i)) for i, conv in enumerate(convs)]
    with torch.no_grad():
        logits_of(batch)
    for hook in hooks:
        hook.remove()
    return [seen[i] for i in range(len(convs))]


def shape_classifier(convs: list[torch.nn.Conv2d], features: list[torch.Tensor], seed: int) -> None:
    """Each classifier conv (1 x 1) made a random mix of the COMPONENTS most spatially coherent directions of its
    input (those whose variance the photos' smoothed features keep best, whitened), so the class maps follow
    regions of the photos rather than the random network's pixel noise."""
    generator = torch.Generator().manual_seed(seed)
    for i, (conv, x) in enumerate(zip(convs, features)):
        assert conv.kernel_size == (1, 1), conv
        x = x.double()
        width = max(3, (min(x.shape[-2:]) // SMOOTH) | 1)
        smooth = F.avg_pool2d(x, width, stride=1, padding=width // 2, count_include_pad=False)
        mean = x.mean(dim=(0, 2, 3))
        # within each photo (each photo's mean taken away): directions that vary across a photo, not between photos
        values = (x - x.mean(dim=(2, 3), keepdim=True)).transpose(0, 1).flatten(1)  # [D, pixels]
        total = values @ values.T / values.shape[1]
        total += torch.eye(len(total), dtype=total.dtype) * 1e-3 * total.diagonal().mean()
        smooth = (smooth - smooth.mean(dim=(2, 3), keepdim=True)).transpose(0, 1).flatten(1)
        kept = smooth @ smooth.T / smooth.shape[1]
        lower = torch.linalg.cholesky(total)
        inverse = torch.linalg.inv(lower)
        _, vectors = torch.linalg.eigh(inverse @ kept @ inverse.T)
        k = min(COMPONENTS, vectors.shape[1])
        basis = inverse.T @ vectors[:, -k:]  # unit variance over the pixels, most coherent last
        mix = torch.randn(conv.out_channels, k, generator=generator, dtype=torch.float64)
        weight = mix @ basis.T * (1.0 if i == 0 else SECONDARY)
        with torch.no_grad():
            conv.weight.copy_(weight.view_as(conv.weight).to(conv.weight.dtype))
            conv.bias.copy_((-weight @ mean).to(conv.bias.dtype))


def calibrate(net: torch.nn.Module, logits_of, convs: list[torch.nn.Conv2d], batch: torch.Tensor, labels) -> None:
    """BatchNorm statistics from the photos, then the classifier shaped on the features' coherent directions,
    standardised per class channel and scaled; drawn again (deterministically) until every photo's map passes."""
    bns = [m for m in net.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average
    net.eval()
    for m in bns:
        m.train()  # only the BatchNorm layers: dropout stays off
    with torch.no_grad():
        for _ in range(2):
            logits_of(batch)
    net.eval()
    size = batch.shape[-2:]
    features = _conv_inputs(logits_of, convs, batch)
    for attempt in range(ATTEMPTS):
        shape_classifier(convs, features, attempt)
        with torch.no_grad():
            raw = F.interpolate(logits_of(batch).double(), size=size, mode="bilinear", align_corners=False)
            mean, std = raw.mean(dim=(0, 2, 3)), raw.std(dim=(0, 2, 3)).clamp(min=1e-12)
            logits = (raw - mean.view(1, -1, 1, 1)) / std.view(1, -1, 1, 1)
            # the spread: SPREAD, or more where a photo's top-2 margins (bilinear upsampling makes wide boundary
            # bands of small margins) would leave over half of MAX_TIES of its pixels within TIE_MARGIN
            top2 = logits.topk(2, dim=1).values
            margins = (top2[:, 0] - top2[:, 1]).flatten(1)[:, ::7]
            low = float(torch.quantile(margins, MAX_TIES / 2, dim=1).min())
            spread = min(max(SPREAD, TIE_MARGIN / max(low, 1e-9)), MAX_SPREAD)
            scale = spread / std
            for i, conv in enumerate(convs):
                conv.weight.mul_(scale.view(-1, 1, 1, 1).to(conv.weight.dtype))
                bias = conv.bias * scale.to(conv.bias.dtype)
                conv.bias.copy_(bias - (mean * scale).to(conv.bias.dtype) if i == 0 else bias)
            logits = (logits * spread).float()  # what the model now gives (up to rounding)
        stats = [map_stats(logit, labels) for logit in logits]
        ok = all(passes(s) for s in stats)
        print(f"calibration attempt {attempt}: spread {spread:.1f}, {'passes' if ok else 'fails'}")
        for s in stats:
            top = sorted(s["class_shares"].items(), key=lambda kv: -kv[1])[:5]
            print(f"  top classes {top}, near-ties {s['near_ties']}")
        if ok:
            return
    raise SystemExit(f"no calibration in {ATTEMPTS} attempts gives maps of {MIN_CLASSES}+ classes")


def resized_photos(sources: list[Path], folder: Path, size: int) -> list[Path]:
    """The photos at size x size (cv2 INTER_LINEAR), saved as PNG: the pixels both sides are fed."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for src in sources:
        image = read_image(src)
        path = folder / f"{src.stem}.png"
        cv2.imwrite(str(path), cv2.resize(image, (size, size), interpolation=cv2.INTER_LINEAR))
        paths.append(path)
    return paths


def rgb(path: Path) -> Image.Image:
    return Image.open(path).convert("RGB")


def torchvision_input(path: Path) -> torch.Tensor:
    """torchvision's own preprocessing for its segmentation weights (ImageNet mean and std), on a photo already at
    the model's size."""
    from torchvision.transforms import functional as TF

    return TF.normalize(TF.to_tensor(rgb(path)), mean=IMAGENET_MEAN, std=IMAGENET_STD)[None]


def save_map(classes: torch.Tensor, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    array = classes.cpu().numpy()
    cv2.imwrite(str(path), array.astype(np.uint8 if array.max(initial=0) < 256 else np.uint16))


def agreement(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a == b).double().mean())


def export_onnx(module: torch.nn.Module, example: torch.Tensor, path: Path, input_name: str, output_name: str) -> None:
    with torch.no_grad():
        torch.onnx.export(
            module,
            (example,),
            str(path),
            input_names=[input_name],
            output_names=[output_name],
            opset_version=17,
            dynamo=False,
        )


def session(path: Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


@dataclass
class Records:
    """Per photo: its reference maps (on the ONNX file, on the torch model), their agreement, the map's statistics."""

    refs: list[str] = field(default_factory=list)
    torch_refs: list[str] = field(default_factory=list)
    agree: list[float] = field(default_factory=list)
    shares: list[dict[str, float]] = field(default_factory=list)
    ties: list[dict[str, float]] = field(default_factory=list)


def record(out: Path, name: str, onnx_map, torch_map, stats: dict, records: Records) -> None:
    """Save the framework's map on the ONNX file (the reference) and on the torch model, and note both, their
    agreement and the map's statistics in `records`."""
    save_map(onnx_map, out / "reference" / name)
    save_map(torch_map, out / "reference" / f"torch-{name}")
    records.refs.append(f"reference/{name}")
    records.torch_refs.append(f"reference/torch-{name}")
    records.agree.append(agreement(onnx_map, torch_map))
    records.shares.append(stats["class_shares"])
    records.ties.append(stats["near_ties"])


def make_torchvision(name: str, out: Path, sources: list[Path]) -> dict:
    net, logits_of, convs, labels = build(name)
    photos = resized_photos(sources, out / "photos", TORCHVISION_SIZE)
    inputs = [torchvision_input(p) for p in photos]
    calibrate(net, logits_of, convs, torch.cat(inputs), labels)
    argmax = name == "lraspp-argmax"
    module = (Argmax if argmax else OutOnly)(net).eval()
    model = out / "model.onnx"
    started = time.monotonic()
    export_onnx(module, inputs[0], model, "input", "out")
    print(f"exported {model} in {time.monotonic() - started:.1f} s")
    (out / "labels.txt").write_text("\n".join(labels) + "\n")
    runner = session(model)
    records = Records()
    for photo, x in zip(photos, inputs):
        h, w = read_image(photo).shape[:2]
        with torch.no_grad():
            logits = logits_of(x)
        stats = map_stats(F.interpolate(logits, size=(h, w), mode="bilinear", align_corners=False)[0], labels)
        answer = torch.from_numpy(runner.run(None, {"input": x.numpy()})[0])
        if argmax:
            ours_onnx = answer[0]
            ours_torch = module(x)[0]
        else:  # torchvision's own post-processing: the "out" map at the photo's size, argmax over classes
            ours_onnx = F.interpolate(answer, size=(h, w), mode="bilinear", align_corners=False).argmax(1)[0]
            ours_torch = F.interpolate(logits, size=(h, w), mode="bilinear", align_corners=False).argmax(1)[0]
        record(out, photo.name, ours_onnx, ours_torch, stats, records)
    return {
        "model": name,
        "file": "model.onnx",
        "input_name": "input",
        "output_name": "out",
        "output": "class ids int64 [1, H, W]" if argmax else "logits float32 [1, C, H, W]",
        "input_size": [TORCHVISION_SIZE, TORCHVISION_SIZE],
        "preprocessing": {"rescale": 1 / 255, "mean": IMAGENET_MEAN, "std": IMAGENET_STD, "layout": "NCHW RGB"},
        "labels": labels,
        "photos": [f"photos/{p.name}" for p in photos],
        "reference": records.refs,
        "torch_reference": records.torch_refs,
        "torch_vs_onnx_agreement": records.agree,
        "class_shares": records.shares,
        "near_ties": records.ties,
        "weights_sha256": weights_digest(net),
    }


def make_segformer(out: Path, sources: list[Path]) -> dict:
    from transformers import AutoImageProcessor, SegformerImageProcessor

    net, logits_of, convs, labels = build("segformer")
    processor = SegformerImageProcessor(size={"height": SEGFORMER_SIZE, "width": SEGFORMER_SIZE})
    photos = resized_photos(sources, out / "photos", SEGFORMER_SIZE)
    native = out / "native"
    native.mkdir(parents=True, exist_ok=True)
    natives = []
    for src in sources:
        natives.append(native / f"{src.stem}.png")
        shutil.copyfile(src, natives[-1])

    def prepare(path: Path, proc=processor) -> torch.Tensor:
        return proc(images=rgb(path), return_tensors="pt")["pixel_values"]

    inputs = [prepare(p) for p in photos]
    calibrate(net, logits_of, convs, torch.cat(inputs), labels)
    net.save_pretrained(out)
    processor.save_pretrained(out)
    for weights in list(out.glob("*.safetensors")) + list(out.glob("*.bin")):
        weights.unlink()  # the export is model.onnx (as Hugging Face export folders are): no torch weights
    model = out / "model.onnx"
    started = time.monotonic()
    export_onnx(LogitsOnly(net).eval(), inputs[0], model, "pixel_values", "logits")
    print(f"exported {model} in {time.monotonic() - started:.1f} s")
    loaded = AutoImageProcessor.from_pretrained(out)  # what a user of the folder gets
    print(f"the folder's processor: {type(loaded).__name__}")
    try:
        from transformers import SegformerImageProcessorPil
    except ImportError:  # transformers 4: SegformerImageProcessor is the PIL one
        SegformerImageProcessorPil = None
    pil = SegformerImageProcessorPil(size=processor.size) if SegformerImageProcessorPil else None
    runner = session(model)
    result: dict = {
        "model": "segformer",
        "file": "model.onnx",
        "input_name": "pixel_values",
        "output_name": "logits",
        "output": "logits float32 [1, C, H/4, W/4]",
        "input_size": [SEGFORMER_SIZE, SEGFORMER_SIZE],
        "processor": type(processor).__name__,
        "folder_processor": type(loaded).__name__,
        "labels": labels,
        "photos": [f"photos/{p.name}" for p in photos],
        "native_photos": [f"native/{p.name}" for p in natives],
    }
    for kind, fed in (("", photos), ("native_", natives)):
        records = Records()
        pil_refs: list[str] = []
        pil_agree: list[float] = []
        prefix = "native-" if kind else ""
        for photo in fed:
            h, w = read_image(photo).shape[:2]
            x = prepare(photo)
            with torch.no_grad():
                logits = logits_of(x)
            answer = SimpleNamespace(logits=torch.from_numpy(runner.run(None, {"pixel_values": x.numpy()})[0]))
            ours_onnx = processor.post_process_semantic_segmentation(answer, target_sizes=[(h, w)])[0]
            ours_torch = processor.post_process_semantic_segmentation(
                SimpleNamespace(logits=logits), target_sizes=[(h, w)]
            )[0]
            stats = map_stats(F.interpolate(logits, size=(h, w), mode="bilinear", align_corners=False)[0], labels)
            record(out, f"{prefix}{photo.name}", ours_onnx, ours_torch, stats, records)
            if pil is not None:  # the PIL backend's resize of the same photo, for comparison
                y = prepare(photo, pil)
                pil_answer = SimpleNamespace(logits=torch.from_numpy(runner.run(None, {"pixel_values": y.numpy()})[0]))
                pil_map = processor.post_process_semantic_segmentation(pil_answer, target_sizes=[(h, w)])[0]
                save_map(pil_map, out / "reference" / f"pil-{prefix}{photo.name}")
                pil_refs.append(f"reference/pil-{prefix}{photo.name}")
                pil_agree.append(agreement(ours_onnx, pil_map))
                print(f"{prefix}{photo.name}: input max |torchvision - PIL backend| {float((x - y).abs().max()):.4f}")
        result[f"{kind}reference"] = records.refs
        result[f"{kind}torch_reference"] = records.torch_refs
        result[f"{kind}torch_vs_onnx_agreement"] = records.agree
        result[f"{kind}class_shares" if kind else "class_shares"] = records.shares
        result[f"{kind}near_ties"] = records.ties
        if pil is not None:
            result[f"{kind}pil_reference"] = pil_refs
            result[f"{kind}pil_vs_reference_agreement"] = pil_agree
    result["weights_sha256"] = weights_digest(net)
    return result


def main() -> None:
    args = arguments(__doc__, MODELS).parse_args()
    out = args.out.resolve()
    sources = [p.resolve() for p in args.photos]
    torch.set_num_threads(max(1, os.cpu_count() or 1))

    def make(work: Path) -> dict:
        if args.model == "segformer":
            return make_segformer(work, sources)
        return make_torchvision(args.model, work, sources)

    reference = run(out, make)
    print(json.dumps({k: v for k, v in reference.items() if "share" in k or "agree" in k or "ties" in k}, indent=1))
    print(f"{args.model}: {out} in {reference['seconds']} s")


if __name__ == "__main__":
    main()
