"""Make one real RF-DETR or YOLOX export with the framework's own exporter, and the framework's own detections on
the exported file (the reference).

Runs in an overlay of the exporters environment, never in the suite's: a venv whose site-packages holds a `.pth`
line naming build/exporters-venv's site-packages (CPU torch, torchvision, transformers, onnx, onnxruntime; see
scripts/requirements-exporters.txt), with scripts/requirements-rfdetr-yolox.txt installed into it with --no-deps:

    python3 -m venv V && echo EXPORTERS_VENV/lib/python3.11/site-packages > V/lib/python3.11/site-packages/base.pth
    V/bin/pip install --no-deps -r scripts/requirements-rfdetr-yolox.txt

YOLOX is not installable from PyPI (its sdist builds C++ ops in setup.py): its source (yolox 0.3.0's sdist, pure
Python models) is fetched from PyPI's simple index, checked against its sha256 and extracted (`fetch_yolox`, or
`--fetch-yolox DIR` alone), then imported from there (`--yolox-src DIR`: an extracted yolox-0.3.0/; without it, fetched
into the work folder). Weights are never downloaded (HF_HUB_OFFLINE): every model is built, randomly initialised, by
the framework's own code:

- rfdetr-coco: `RFDETRNano(pretrain_weights=None)` (384 x 384, patch 16: its windowed DINOv2 config is the one bundled
  in rfdetr/models/backbone/dinov2_configs, nothing from the Hub), with the COCO head of the published checkpoints
  (num_classes=90: 91 logits, slot i = COCO category id i), exported by `model.export()` (rfdetr-nano.onnx, input
  `input`, outputs `dets` [1, 300, 4] normalised cxcywh and `labels` [1, 300, 91] logits);
- rfdetr-finetuned: the same with num_classes=5 as fine-tuning on a 5-class dataset makes it (6 logits: slots 0-4 are
  the dataset's classes in order, slot 5 the no-object slot no target ever reaches), with the dataset's `labels.txt`;
- yolox: yolox-0.3.0/exps/default/yolox_s.py's model (640 x 640, 80 COCO classes), exported as tools/export_onnx.py
  does with `--decode_in_inference` (SiLU replaced, opset 11, input `images`, output `output` [1, 8400, 85]: cx, cy,
  w, h in input pixels, objectness, 80 class probabilities; then onnxsim, as its default), with COCO's `labels.txt`.
  YOLOX's random BatchNorm statistics (mean 0, variance 1, for 0-255 input) give constant outputs, so they are taken
  from the photos first (train-mode passes of the BatchNorm layers, cumulative averages), as training would set them.

Calibration: only the final score layers change (RF-DETR: `class_embed`; YOLOX: `cls_preds` and `obj_preds`). Each
class's output becomes a direction of its input features, standardised and scaled (SPREAD logit units per standard
deviation), and its bias is placed so that a random few candidates (queries; anchors) pass the threshold (0.5), no
candidate score lies within MARGIN of it and no box under MIN_BOX pixels (or, YOLOX, centred outside the photo)
passes. RF-DETR: random directions, standardised over the photos' queries. YOLOX: a random network's features vary
far more on textured photos than on smooth ones (chelsea's vary ~100 times less than astronaut's), so random
directions put every detection on the most textured photo; instead CLASSES_PER_PHOTO classes per photo each take,
at one pyramid level, the direction (a linear programme) that lifts a random candidate of their photo above every
candidate of the other photos, standardised by their photo's spread; the other classes are random and well below.
YOLOX's objectness is a random standardised direction per level around sigmoid(OBJ_BIAS). Slots no training target
reaches (COCO's id 0 and its 10 unused ids, the fine-tuned no-object slot) are set well below. The draw is repeated
(deterministically) until, with the framework's own post-processing, every photo has MIN_DETS to MAX_DETS detections
of several classes, no two photos the same classes and (YOLOX) no near tie between two classes or near the NMS
threshold.

    python make_rfdetr_yolox.py --model rfdetr-coco|rfdetr-finetuned|yolox --out DIR --photos a.png b.png \
        [--yolox-src yolox-0.3.0]
    python make_rfdetr_yolox.py --fetch-yolox DIR  # only fetch and extract YOLOX's sdist into DIR

DIR receives the exported file as its exporter names it (rfdetr-nano.onnx; yolox.onnx, export_onnx.py's default
name), `labels.txt` (rfdetr-finetuned: the dataset's 5 names; yolox: COCO's 80; none for rfdetr-coco, whose users
have rfdetr's built-in id -> name table) and `reference.json`: for each photo (at its own size, never resized
beforehand), the framework's own preprocessing, the exported ONNX file run by onnxruntime and the framework's own
post-processing (RF-DETR: its PostProcess with predict()'s `> threshold`; YOLOX: `yolox.utils.postprocess`, class
aware, NMS 0.45, boxes divided by the letterbox ratio), boxes xyxy in the photo's pixels, with cross-checks (the torch
model through the same steps; RF-DETR's own predict() and its ONNX helper `_run_inference`, and a cv2 resize of the
float image; YOLOX's other NMS settings).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import shutil
import sys
import tarfile
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing from the Hugging Face Hub, ever
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402
import torch  # noqa: E402
from export_run import arguments, read_image, run

MODELS = ("rfdetr-coco", "rfdetr-finetuned", "yolox")
THRESHOLD = 0.5  # the reader's default confidence
MARGIN = 0.02  # no candidate score within this of THRESHOLD (checked on the ONNX file's outputs)
DRAW_MARGIN = 0.025  # what the draws keep (a little more, for torch vs ONNX rounding)
MIN_DETS, MAX_DETS = 3, 25  # detections per photo
PER_PHOTO = 10  # detections per photo the draws aim at (on average)
ATTEMPTS = 60  # draws tried until every photo passes
SPREAD = 4.0  # class logit units per standard deviation of the class direction over the candidates
OBJ_SPREAD, OBJ_BIAS = 1.0, 2.0  # YOLOX objectness logit: mostly sigmoid 0.5 to 0.98
INACTIVE_GAP = 6.0  # logit units below the (THRESHOLD - margin) line for slots no target reaches
MIN_BOX = 6.0  # photo pixels: a detection's box at least this wide and high
NMS_IOU_MARGIN = 0.02  # YOLOX: no same-class pair of passing candidates with IoU within this of the NMS threshold
CLASSES_PER_PHOTO = 4  # YOLOX: classes whose detections a draw puts on each photo
LEVEL_ODDS = (0.4, 0.35, 0.25)  # YOLOX: the odds of the level (stride 8, 16, 32) a class's detections come from
OFF_LEVEL, OFF_SCALE = 8.0, 0.1  # YOLOX: a class at the levels its detections do not come from: scaled, lowered
MIN_SEPARATION = 0.5  # YOLOX: the photo's spreads by which its chosen candidate must clear the other photos'
LP_ROWS = 1500  # YOLOX: rows the linear programme starts with and adds per round
FINETUNED_CLASSES = ["hard-hat", "safety-vest", "gloves", "boots", "goggles"]  # a user's dataset, in its order
IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]
YOLOX_EXP = "yolox_s"  # exps/default/yolox_s.py: 640 x 640, depth 0.33, width 0.50
YOLOX_NMS = 0.45  # yolox.utils.postprocess's default (the ONNXRuntime demo's too)
YOLOX_ONNX = "yolox.onnx"  # tools/export_onnx.py's default --output-name
YOLOX_SDIST = "yolox-0.3.0.tar.gz"
YOLOX_SHA256 = "1b8ee68846434408c40074f0806259fe3b9387181e562dbc435ea666533d8d08"
PYPI_SIMPLE = "https://pypi.org/simple/yolox/"


def seed_everything(seed: int = 0) -> None:
    np.random.seed(seed)
    torch.manual_seed(seed)


def fetch_yolox(folder: Path, index: str = PYPI_SIMPLE) -> Path:
    """YOLOX 0.3.0's source: its sdist, found on PyPI's simple index (the PEP 691 JSON form, else the HTML page),
    checked against its sha256 and extracted into `folder`. Returns the extracted root (`folder`/yolox-0.3.0)."""
    request = urllib.request.Request(index, headers={"Accept": "application/vnd.pypi.simple.v1+json, text/html;q=0.1"})
    with urllib.request.urlopen(request, timeout=60) as answer:
        kind, body = answer.headers.get_content_type(), answer.read()
    if kind.endswith("json"):
        urls = [f["url"] for f in json.loads(body)["files"] if f["filename"] == YOLOX_SDIST]
    else:
        hrefs = re.findall(r'href="([^"]+)"', body.decode())
        urls = [urllib.parse.urljoin(index, h) for h in hrefs if h.split("#")[0].endswith("/" + YOLOX_SDIST)]
    if not urls:
        raise SystemExit(f"{index} lists no {YOLOX_SDIST}")
    with urllib.request.urlopen(urls[0].split("#")[0], timeout=120) as answer:
        data = answer.read()
    if hashlib.sha256(data).hexdigest() != YOLOX_SHA256:
        raise SystemExit(f"{YOLOX_SDIST}: sha256 {hashlib.sha256(data).hexdigest()}, expected {YOLOX_SHA256}")
    folder.mkdir(parents=True, exist_ok=True)
    archive = folder / YOLOX_SDIST
    archive.write_bytes(data)
    with tarfile.open(archive) as tar:
        if hasattr(tarfile, "data_filter"):
            tar.extractall(folder, filter="data")
        else:  # Python before 3.11.4
            tar.extractall(folder)
    return folder / YOLOX_SDIST.removesuffix(".tar.gz")


def logit(p: np.ndarray) -> np.ndarray:
    return np.log(p) - np.log1p(-p)


def place_biases(z: np.ndarray, gain: np.ndarray, want: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """Per class c, the bias b of the logit SPREAD * z[:, c] + b (score: gain * sigmoid(logit)) that lets the
    feasible number of candidates nearest want[c] pass THRESHOLD, no candidate score lying within DRAW_MARGIN of it
    and no candidate outside `allowed` passing. want[c] < 0: a slot no target reaches, set INACTIVE_GAP lower."""
    with np.errstate(divide="ignore", invalid="ignore"):
        up, down = (THRESHOLD + DRAW_MARGIN) / gain, (THRESHOLD - DRAW_MARGIN) / gain
        need = np.where(up < 1, logit(np.minimum(up, 0.999999)), np.inf)  # the logit a passing candidate needs
        under = np.where(down < 1, logit(np.minimum(down, 0.999999)), np.inf)  # the logit a failing one stays under
    biases = np.empty(z.shape[1])
    for c in range(z.shape[1]):
        hi, lo = need - SPREAD * z[:, c], under - SPREAD * z[:, c]  # bias above hi: passes; below lo: fails
        if want[c] < 0:
            biases[c] = lo.min() - INACTIVE_GAP
            continue
        order = np.argsort(hi, kind="stable")
        hi, lo, ok = hi[order], lo[order], (allowed[:, c] if allowed.ndim == 2 else allowed)[order]
        rest = np.append(np.minimum.accumulate(lo[::-1])[::-1], np.inf)  # rest[k]: min lo of all but the first k
        bad = np.flatnonzero(~ok)
        top = min(bad[0] if bad.size else len(hi), 4 * int(want[c]) + 8)
        ks = np.arange(top + 1)
        feasible = np.concatenate([[True], hi[:top] < rest[1 : top + 1]])
        k = int(ks[feasible][np.argmin(np.abs(ks[feasible] - want[c]))])
        if k == 0:
            biases[c] = rest[0] - 0.5
        else:
            biases[c] = (hi[k - 1] + min(rest[k], hi[k - 1] + 2.0)) / 2
    return biases


def draw_layer(features: np.ndarray, seed: int, active: np.ndarray, allowed: np.ndarray, photos: int):
    """A random class layer on `features` [n, D] (weight [C, D], bias [C], both float64) from `seed`: standardised
    random directions scaled by SPREAD, biases from place_biases for Poisson-drawn pass counts."""
    rng = np.random.default_rng(seed)
    directions = rng.standard_normal((features.shape[1], len(active)))
    raw = features @ directions
    mean, std = raw.mean(0), raw.std(0) + 1e-12
    z = (raw - mean) / std
    mean_passes = PER_PHOTO * photos / max(1, int(active.sum()))  # spread over the active classes
    want = np.where(active, rng.poisson(mean_passes, len(active)), -1)
    biases = place_biases(z, np.ones(len(z)), want, allowed)
    weight = (SPREAD * directions / std).T
    return weight, biases - SPREAD * mean / std


def verdict(predictions: list[dict], min_classes: int) -> str:
    """'' when every photo has MIN_DETS to MAX_DETS detections of min_classes+ classes, boxes of positive size, and
    no two photos the same class counts; otherwise why not."""
    counts = []
    for i, p in enumerate(predictions):
        n = len(p["cls"])
        if not MIN_DETS <= n <= MAX_DETS:
            return f"photo {i}: {n} detections"
        if len(set(p["cls"])) < min_classes:
            return f"photo {i}: classes {sorted(set(p['cls']))}"
        boxes = np.asarray(p["xyxy"]).reshape(-1, 4)
        if ((boxes[:, 2:] - boxes[:, :2]) <= 0).any():
            return f"photo {i}: a box without size"
        counts.append(tuple(np.bincount(p["cls"], minlength=128)))
    if len(set(counts)) < len(counts):
        return "two photos with the same classes"
    return ""


def session(path: Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def max_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)).max(initial=0.0))


def relative_diff(a: np.ndarray, b: np.ndarray) -> float:
    """max |a - b| / max(1, |b|): absolute for small values, relative for large ones (YOLOX's boxes in pixels)."""
    b = np.asarray(b, np.float64)
    return float((np.abs(np.asarray(a, np.float64) - b) / np.maximum(1.0, np.abs(b))).max(initial=0.0))


def same_detections(a: dict, b: dict, box_tol: float = 0.5, conf_tol: float = 2e-3) -> bool:
    """The same classes in the same order, boxes within box_tol pixels, scores within conf_tol."""
    if list(a["cls"]) != list(b["cls"]):
        return False
    return max_diff(a["xyxy"], b["xyxy"]) <= box_tol and max_diff(a["conf"], b["conf"]) <= conf_tol


def as_lists(xyxy, cls, conf) -> dict:
    return {
        "xyxy": np.asarray(xyxy, np.float64).reshape(-1, 4).tolist(),
        "cls": [int(c) for c in np.asarray(cls).reshape(-1)],
        "conf": [float(c) for c in np.asarray(conf).reshape(-1)],
    }


# ----------------------------------------------------------------------------------------------------------- RF-DETR


def rfdetr_post(postprocess, boxes: torch.Tensor, logits: torch.Tensor, size_hw: tuple[int, int]) -> dict:
    """RF-DETR's own post-processing on one image's outputs ([1, Q, 4] normalised cxcywh, [1, Q, C] logits):
    PostProcess (sigmoid, top num_select (query, class) pairs over all slots, cxcywh -> xyxy scaled to the photo
    and clamped) and predict()'s `scores > threshold`."""
    result = postprocess(
        {"pred_logits": logits.float(), "pred_boxes": boxes.float()}, target_sizes=torch.tensor([size_hw])
    )[0]
    keep = result["scores"] > THRESHOLD
    return as_lists(result["boxes"][keep].numpy(), result["labels"][keep].numpy(), result["scores"][keep].numpy())


def cv2_input(photo: Path, res: int, kind: str) -> np.ndarray:
    """The photo as a reader might prepare it for RF-DETR with cv2 (INTER_LINEAR to res x res, ImageNet mean and
    std, NCHW RGB): resized as 0-1 float32 (`kind` "float") or as uint8 (`kind` "uint8")."""
    rgb: np.ndarray = cv2.cvtColor(read_image(photo), cv2.COLOR_BGR2RGB)
    rgb = rgb.astype(np.float32) / 255 if kind == "float" else rgb
    small: np.ndarray = cv2.resize(rgb, (res, res), interpolation=cv2.INTER_LINEAR).astype(np.float32)
    small = small / 255 if kind == "uint8" else small
    x = (small - np.array(IMAGENET_MEAN, np.float32)) / np.array(IMAGENET_STD, np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None], dtype=np.float32)


def make_rfdetr(name: str, out: Path, photos: list[Path]) -> dict:
    """RF-DETR Nano (COCO head, or `name` rfdetr-finetuned: a 5-class head), calibrated, exported by its own
    export(), and RF-DETR's own detections on the exported file."""
    from PIL import Image
    from rfdetr import RFDETRNano
    from rfdetr.assets.coco_classes import COCO_CLASSES
    from rfdetr.export._onnx.inference import _run_inference
    from rfdetr.export._runtime.preprocess import preprocess_to_nchw

    finetuned = name == "rfdetr-finetuned"
    seed_everything(0)
    kwargs = {"num_classes": len(FINETUNED_CLASSES)} if finetuned else {}
    model = RFDETRNano(pretrain_weights=None, **kwargs)  # random init; the DINOv2 config is rfdetr's bundled one
    if finetuned:
        model.model.class_names = list(FINETUNED_CLASSES)  # what training on the dataset records
    net = model.model.model.eval()
    head = net.class_embed
    slots = head.out_features
    res = model.model.resolution
    # the slots a training target reaches: the dataset's classes (not the last, no-object, slot); COCO's 80 ids
    active = np.arange(slots) < len(FINETUNED_CLASSES) if finetuned else np.isin(np.arange(slots), list(COCO_CLASSES))
    sizes = [Image.open(p).size[::-1] for p in photos]  # (h, w)

    def prepare(path: Path) -> np.ndarray:
        """RF-DETR's preprocessing (predict()'s and its ONNX helper's): RGB, 0-1, resized to res x res (bilinear,
        half-pixel, no antialias: torchvision on the float tensor), ImageNet mean and std."""
        with Image.open(path) as image:
            return preprocess_to_nchw(image, res, res, 3)

    inputs = [prepare(p) for p in photos]
    seen: dict[str, torch.Tensor] = {}
    hook = head.register_forward_hook(lambda _m, args, _o: seen.__setitem__("h", args[0].detach()))
    with torch.no_grad():
        raw = net(torch.from_numpy(np.concatenate(inputs)))
    hook.remove()
    hs = seen["h"][-1] if seen["h"].dim() == 4 else seen["h"]  # the last decoder layer's [B, Q, D]
    boxes = raw["pred_boxes"]
    features = hs.double().flatten(0, 1).numpy()
    # a candidate may pass only with a box of MIN_BOX+ pixels inside its photo
    scale = torch.tensor([[w, h, w, h] for h, w in sizes], dtype=torch.float64)[:, None]
    cx, cy, bw, bh = boxes.double().unbind(-1)
    xyxy = (torch.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], -1) * scale).clamp(min=0)
    xyxy = torch.minimum(xyxy, scale)
    allowed = ((xyxy[..., 2:] - xyxy[..., :2]) >= MIN_BOX).all(-1).flatten().numpy()
    postprocess = model.model.postprocess
    min_classes = 2 if finetuned else 3
    for attempt in range(ATTEMPTS):
        weight, bias = draw_layer(features, attempt, active, allowed, len(photos))
        logits = torch.from_numpy(features @ weight.T + bias).view(len(photos), -1, slots)
        drawn = [rfdetr_post(postprocess, boxes[i : i + 1], logits[i : i + 1], sizes[i]) for i in range(len(photos))]
        why = verdict(drawn, min_classes)
        print(f"calibration attempt {attempt}: {[len(f['cls']) for f in drawn]} detections, {why or 'passes'}")
        if not why:
            break
    else:
        raise SystemExit(f"no calibration in {ATTEMPTS} attempts")
    with torch.no_grad():
        head.weight.copy_(torch.from_numpy(weight).to(head.weight.dtype))
        head.bias.copy_(torch.from_numpy(bias).to(head.bias.dtype))

    np.random.seed(0)  # export()'s dummy input
    started = time.monotonic()
    exported = Path(model.export(output_dir=str(out), verbose=False))
    print(f"exported {exported} in {time.monotonic() - started:.1f} s")
    if finetuned:
        (out / "labels.txt").write_text("\n".join(FINETUNED_CLASSES) + "\n")
    runner = session(exported)
    output_names = [o.name for o in runner.get_outputs()]
    input_name = runner.get_inputs()[0].name
    background = -1 if finetuned else None  # the helper's slot to drop: the no-object slot; COCO's last is class 90
    names = model.class_names
    id_to_name = dict(COCO_CLASSES) if not finetuned else dict(enumerate(names))
    predictions, torch_diffs, relative, checks = [], [], [], []
    for i, (photo, x) in enumerate(zip(photos, inputs)):
        dets, labels = runner.run(output_names, {input_name: x})
        with torch.no_grad():
            ours = net(torch.from_numpy(x))
        torch_diffs.append(
            {
                "dets": max_diff(dets, ours["pred_boxes"].numpy()),
                "labels": max_diff(labels, ours["pred_logits"].numpy()),
            }
        )
        relative.append(
            max(relative_diff(dets, ours["pred_boxes"].numpy()), relative_diff(labels, ours["pred_logits"].numpy()))
        )
        # a reader's likely resizes: cv2 on the 0-1 float image (RF-DETR's to ~1e-4), cv2 on the uint8 image
        cv2_outputs = {
            kind: runner.run(output_names, {input_name: cv2_input(photo, res, kind)}) for kind in ("float", "uint8")
        }
        scores = 1 / (1 + np.exp(-labels.astype(np.float64)))
        nearest = float(np.abs(scores - THRESHOLD).min())
        if nearest <= MARGIN:
            raise SystemExit(f"{photo.name}: a score {nearest:.4f} from {THRESHOLD} in the ONNX outputs")
        found = rfdetr_post(postprocess, torch.from_numpy(dets), torch.from_numpy(labels), sizes[i])
        found["names"] = [id_to_name.get(c, "__background__" if c == slots - 1 else "") for c in found["cls"]]
        predictions.append(found)
        torch_found = rfdetr_post(postprocess, ours["pred_boxes"], ours["pred_logits"], sizes[i])
        predicted = model.predict(str(photo), threshold=THRESHOLD)  # rfdetr's own API, on the torch model
        helper, _ = _run_inference(runner, photo, threshold=THRESHOLD, background_class_id=background)
        alike = {
            k: rfdetr_post(postprocess, torch.from_numpy(d), torch.from_numpy(c), sizes[i])
            for k, (d, c) in cv2_outputs.items()
        }
        checks.append(
            {
                "nearest_score_to_threshold": round(abs(nearest), 5),
                "cv2_float_resize_same": same_detections(found, alike["float"], 1.0, MARGIN),
                "cv2_uint8_resize_same": same_detections(found, alike["uint8"], 1.0, MARGIN),
                "torch_same": same_detections(found, torch_found),
                "predict_same": same_detections(
                    found, as_lists(predicted.xyxy, predicted.class_id, predicted.confidence)
                ),
                "predict_names_same": list(predicted.data["class_name"]) == found["names"],
                "onnx_helper_same": same_detections(found, as_lists(helper.xyxy, helper.class_id, helper.confidence)),
            }
        )
    why = verdict(predictions, min_classes)
    if why:
        raise SystemExit(f"the ONNX file's detections: {why}")
    result = {
        "model": name,
        "exporter": f"rfdetr {version('rfdetr')} export",
        "file": exported.name,
        "threshold": THRESHOLD,
        "photos": [p.name for p in photos],
        "photo_sizes": [list(s) for s in sizes],
        "input_name": input_name,
        "input_size": [res, res],
        "preprocessing": {
            "mean": IMAGENET_MEAN,
            "std": IMAGENET_STD,
            "bgr": False,
            "range": "0-1",
            "pad": "none",
            "resize": "stretch",
            "interpolation": "bilinear, half-pixel centres, no antialias (torchvision resize of the 0-1 float "
            "tensor, antialias=False)",
            "equivalent": "cv2.resize(rgb.astype(float32) / 255, (W, H), interpolation=cv2.INTER_LINEAR) matches it "
            "to ~1e-4 (checks: cv2_float_resize_same); resizing the uint8 image first moves it by up to 1/255 and "
            "changes this random-weight model's detections (checks: cv2_uint8_resize_same)",
        },
        "output_names": output_names,
        "output_shapes": [list(o.shape) for o in runner.get_outputs()],
        "outputs": {
            "dets": "boxes [1, Q, 4]: cx, cy, w, h normalised to the input (not clipped)",
            "labels": "logits [1, Q, C]: per-class sigmoid, no softmax",
        },
        "num_logits": slots,
        "num_queries": int(boxes.shape[1]),
        "postprocess": {
            "function": "rfdetr.models.postprocess.PostProcess, then predict()'s scores > threshold",
            "num_select": postprocess.num_select,
            "score": "sigmoid of each (query, class) logit; the top num_select pairs over all slots (the last "
            "included), descending score; a query can give several detections",
            "boxes": "cxcywh -> xyxy, times (W, H) of the photo, clamped to the photo",
        },
        "label_mapping": (
            f"slots 0-{slots - 2}: labels.txt's lines in order; slot {slots - 1}: no-object (no training target; "
            "PostProcess ranks it like any class, predict() names it '__background__', the ONNX helper "
            "_run_inference drops it by default, background_class_id=-1)"
            if finetuned
            else "slot = COCO category id (1-90; 0 and 12, 26, 29, 30, 45, 66, 68, 69, 71, 83 unused), named by "
            "rfdetr.assets.coco_classes.COCO_CLASSES; the ONNX helper needs background_class_id=None (its default "
            "-1 would drop slot 90, toothbrush)"
        ),
        "class_names": {str(k): v for k, v in sorted(id_to_name.items())},
        "active_slots": [int(i) for i in np.flatnonzero(active)],
        "predictions": predictions,
        "max_diff_torch_vs_onnx": max(relative),
        "max_diff_definition": "max over the outputs of |torch - onnx| / max(1, |torch|)",
        "torch_vs_onnx": torch_diffs,
        "checks": checks,
    }
    needed = ("torch_same", "predict_same", "predict_names_same", "onnx_helper_same")
    if not all(c[k] for c in checks for k in needed):
        raise SystemExit(f"cross-checks disagree: {checks}")
    return result


# ------------------------------------------------------------------------------------------------------------- YOLOX


def yolox_post(output: torch.Tensor, ratio: float, num_classes: int, nms: float = YOLOX_NMS, agnostic: bool = False):
    """YOLOX's own post-processing of one image's decoded output [1, A, 5 + C]: yolox.utils.postprocess (cxcywh ->
    xyxy, score obj * max class probability >= conf, NMS) and the demo's `boxes / ratio` (not clipped)."""
    from yolox.utils import postprocess

    found = postprocess(output.clone(), num_classes, THRESHOLD, nms, class_agnostic=agnostic)[0]
    if found is None:
        return {**as_lists(np.zeros((0, 4)), [], []), "obj": [], "cls_conf": []}
    result = as_lists((found[:, :4] / ratio).numpy(), found[:, 6].numpy(), (found[:, 4] * found[:, 5]).numpy())
    return {**result, "obj": found[:, 4].tolist(), "cls_conf": found[:, 5].tolist()}


def iou_matrix(boxes: np.ndarray) -> np.ndarray:
    """IoU of every pair of xyxy boxes (torchvision's formula: no +1)."""
    lt = np.maximum(boxes[:, None, :2], boxes[None, :, :2])
    rb = np.minimum(boxes[:, None, 2:], boxes[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=-1)
    area = np.prod(boxes[:, 2:] - boxes[:, :2], axis=-1)
    return inter / (area[:, None] + area[None, :] - inter)


def yolox_ambiguity(output: torch.Tensor) -> str:
    """'' unless, among one image's passing candidates, a class argmax is a near tie or a same-class pair's IoU lies
    within NMS_IOU_MARGIN of the NMS threshold (either could flip between implementations)."""
    out = output[0].double().numpy()
    cls = out[:, 5:]
    top2 = np.sort(cls, axis=1)[:, -2:]
    passing = out[:, 4] * top2[:, 1] >= THRESHOLD
    if not passing.any():
        return ""
    if (top2[passing, 1] - top2[passing, 0] < 1e-3).any():
        return "a near tie between two classes"
    boxes = np.concatenate([out[passing, :2] - out[passing, 2:4] / 2, out[passing, :2] + out[passing, 2:4] / 2], 1)
    labels = cls[passing].argmax(1)
    iou = iou_matrix(boxes)
    same = (labels[:, None] == labels[None, :]) & ~np.eye(len(labels), dtype=bool)
    if (same & (np.abs(iou - YOLOX_NMS) < NMS_IOU_MARGIN)).any():
        return "a same-class IoU near the NMS threshold"
    return ""


def separating_direction(target: np.ndarray, others: np.ndarray) -> tuple[np.ndarray, float]:
    """The direction u (every |u_i| <= 1) maximising the margin t by which `target` [D] projects above every row of
    `others` [n, D], and t: a linear programme on the hardest rows, grown by the rows its answer violates."""
    from scipy.optimize import linprog

    dim = len(target)
    rows = np.argsort(-(others @ (target - others.mean(0))))[:LP_ROWS]
    u = np.zeros(dim)
    for _ in range(20):
        found = linprog(
            np.r_[np.zeros(dim), -1.0],
            A_ub=np.hstack([others[rows] - target, np.ones((len(rows), 1))]),
            b_ub=np.zeros(len(rows)),
            bounds=[(-1, 1)] * dim + [(None, None)],
            method="highs",
        )
        if found.status != 0:
            break
        u, t = found.x[:dim], found.x[dim]
        slack = (target - others) @ u - t
        worse = np.flatnonzero(slack < -1e-9)
        if worse.size == 0:
            break
        rows = np.union1d(rows, worse[np.argsort(slack[worse])[:LP_ROWS]])
    return u, float(((target - others) @ u).min())


def calibrate_yolox(
    features: dict[str, list[np.ndarray]],
    decoded: torch.Tensor,
    allowed: np.ndarray,
    post: Callable[[torch.Tensor], list[dict]],
) -> list:
    """YOLOX's final score layers drawn until the photos' detections pass (`post`: the framework's post-processing
    of a [B, A, 5 + C] output, per photo). Objectness: a random direction per level, standardised over the level's
    anchors, around sigmoid(OBJ_BIAS). Classes: CLASSES_PER_PHOTO per photo, each from one level, along the direction
    (a linear programme) that lifts a random candidate of its photo above every candidate of the other photos,
    standardised by its photo's spread (a random network's features vary far more on some photos than on others:
    random directions would put every detection on the most textured photo); the other classes random, well below.
    Returns per level ((objectness weight, bias), (class weight, bias))."""
    photos, num_classes = decoded.shape[0], decoded.shape[2] - 5
    cls_x, obj_x = features["cls"], features["obj"]
    levels, dim = len(cls_x), cls_x[0].shape[-1]
    counts = [x.shape[1] for x in cls_x]
    level_of = np.concatenate([np.full(photos * n, k) for k, n in enumerate(counts)])  # rows: level, photo, anchor
    photo_of = np.concatenate([np.repeat(np.arange(photos), n) for n in counts])
    allowed_rows = np.concatenate([v.reshape(-1) for v in np.split(allowed, np.cumsum(counts)[:-1], axis=1)])

    def anchors(rows: np.ndarray) -> np.ndarray:
        """Rows (level, photo, anchor) -> [B, A, ...], the head's order."""
        parts = np.split(rows, np.cumsum(counts)[:-1] * photos)
        return np.concatenate([v.reshape(photos, n, *v.shape[1:]) for v, n in zip(parts, counts)], axis=1)

    whitened = []  # per level: (mean, whitening) of the class features
    for x in cls_x:
        flat = x.reshape(-1, dim)
        values, vectors = np.linalg.eigh(np.cov(flat, rowvar=False))
        values = np.maximum(values, 0) + 1e-3 * values.mean()
        whitened.append((flat.mean(0), vectors @ np.diag(values**-0.5) @ vectors.T))
    for attempt in range(ATTEMPTS):
        rng = np.random.default_rng(10_000 + attempt)
        obj_layers, obj_logit = [], []
        for x in obj_x:
            raw = x.reshape(-1, x.shape[-1]) @ (r := rng.standard_normal(int(x.shape[-1])))
            mean, std = raw.mean(), raw.std() + 1e-12
            obj_layers.append((OBJ_SPREAD * r[None] / std, np.array([OBJ_BIAS - OBJ_SPREAD * mean / std])))
            obj_logit.append(OBJ_SPREAD * (raw - mean) / std + OBJ_BIAS)
        gain = 1 / (1 + np.exp(-np.concatenate(obj_logit)))
        weights, offsets = np.empty((levels, num_classes, dim)), np.empty((levels, num_classes))
        for k, x in enumerate(cls_x):  # z = x . weight + offset: random directions, standardised per level
            raw = x.reshape(-1, dim) @ (r := rng.standard_normal((dim, num_classes)))
            mean, std = raw.mean(0), raw.std(0) + 1e-12
            weights[k], offsets[k] = (r / std).T, -mean / std
        want = np.full(num_classes, -1)
        passable = np.zeros((len(level_of), num_classes), bool)
        for j, c in enumerate(rng.permutation(num_classes)[: CLASSES_PER_PHOTO * photos]):
            i, k = j % photos, rng.choice(levels, p=LEVEL_ODDS)
            mean_x, whiten = whitened[k]
            y = (cls_x[k] - mean_x) @ whiten
            own = allowed[i, sum(counts[:k]) : sum(counts[: k + 1])]  # its anchors that may pass (boxes in the photo)
            others = np.concatenate([np.delete(y, i, axis=0).reshape(-1, dim), y[i, ~own]])  # and the rest, below
            pool = np.flatnonzero(own)
            for a in rng.choice(pool, min(5, len(pool)), replace=False):
                u, margin = separating_direction(y[i, a], others)
                spread = float((y[i] @ u).std()) + 1e-12
                if margin / spread >= MIN_SEPARATION:
                    break
            else:
                continue  # no direction found: the class stays below
            direction = whiten @ u
            weights[:, c] *= OFF_SCALE  # its other levels: a tenth of their random direction, OFF_LEVEL lower
            offsets[:, c] = offsets[:, c] * OFF_SCALE - OFF_LEVEL
            weights[k, c] = direction / spread
            offsets[k, c] = -(mean_x @ direction + float((y[i] @ u).mean())) / spread
            want[c] = 1 + rng.poisson(PER_PHOTO / CLASSES_PER_PHOTO - 1)
            passable[:, c] = allowed_rows & (photo_of == i) & (level_of == k)
        z = np.concatenate([x.reshape(-1, dim) @ weights[k].T + offsets[k] for k, x in enumerate(cls_x)])
        biases = place_biases(z, gain, want, passable)
        output = decoded.clone()
        output[..., 4] = torch.from_numpy(anchors(gain))
        output[..., 5:] = torch.from_numpy(anchors(1 / (1 + np.exp(-(SPREAD * z + biases)))))
        found = post(output)
        why = verdict(found, 3) or next((w for i in range(photos) if (w := yolox_ambiguity(output[i : i + 1]))), "")
        print(f"calibration attempt {attempt}: {[len(f['cls']) for f in found]} detections, {why or 'passes'}")
        if not why:
            return [(obj_layers[k], (SPREAD * weights[k], SPREAD * offsets[k] + biases)) for k in range(levels)]
    raise SystemExit(f"no calibration in {ATTEMPTS} attempts")


def import_package(name: str, folder: Path) -> None:
    """Import the package in `folder` as `name` (its submodules then import as usual), leaving sys.path as it is."""
    spec = importlib.util.spec_from_file_location(
        name, folder / "__init__.py", submodule_search_locations=[str(folder)]
    )
    if spec is None or spec.loader is None:
        raise ImportError(f"no package {name} in {folder}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)


def make_yolox(out: Path, photos: list[Path], source: Path | None) -> dict:
    """YOLOX-s from the sdist's exps/default/yolox_s.py, calibrated, exported as tools/export_onnx.py does with
    --decode_in_inference, and YOLOX's own detections on the exported file (`source`: the extracted sdist, or None
    to fetch it)."""
    if source is None:
        source = fetch_yolox(out / "yolox-src")
    import_package("yolox", source.resolve() / "yolox")
    from torch import nn
    from yolox import __version__
    from yolox.data.data_augment import preproc
    from yolox.data.datasets import COCO_CLASSES
    from yolox.exp import get_exp
    from yolox.models.network_blocks import SiLU
    from yolox.utils import replace_module

    seed_everything(0)
    exp = get_exp(str(source / "exps" / "default" / f"{YOLOX_EXP}.py"), None)
    model = exp.get_model().eval()  # random init, YOLOX's own (biases at prior 0.01)
    head = model.head
    num_classes = exp.num_classes
    size = tuple(exp.test_size)  # (h, w)
    images = [read_image(p) for p in photos]  # BGR, as YOLOX's demo reads them
    prepared = [preproc(img, size) for img in images]  # letterbox at the top left, pad 114, 0-255, CHW float32
    batch = torch.from_numpy(np.stack([p[0] for p in prepared]))
    ratios = [p[1] for p in prepared]

    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average
        m.train()  # only the BatchNorm layers: the model stays in inference mode
    with torch.no_grad():
        model(batch)
    model.eval()

    seen: dict[tuple[str, int], torch.Tensor] = {}
    hooks = []
    for kind, convs in (("cls", head.cls_preds), ("obj", head.obj_preds)):
        for k, conv in enumerate(convs):
            hooks.append(conv.register_forward_hook(lambda _m, a, _o, key=(kind, k): seen.__setitem__(key, a[0])))
    with torch.no_grad():
        decoded = model(batch)  # [B, A, 5 + C]: cx, cy, w, h (input pixels), obj, class probabilities
    for hook in hooks:
        hook.remove()
    levels = len(head.cls_preds)
    features = {
        kind: [seen[(kind, k)].double().flatten(2).transpose(1, 2).numpy() for k in range(levels)]
        for kind in ("cls", "obj")
    }  # [B, h * w, D] per level, the head's anchor order
    boxes = decoded[..., :4].double().numpy()
    resized = np.array([[int(img.shape[1] * r), int(img.shape[0] * r)] for img, r in zip(images, ratios)])
    inside = (boxes[..., :2] >= 0).all(-1) & (boxes[..., :2] < resized[:, None, :]).all(-1)
    fits = ((boxes[..., 2:] >= MIN_BOX * np.array(ratios)[:, None, None]) & (boxes[..., 2:] <= min(size))).all(-1)
    layers = calibrate_yolox(
        features,
        decoded,
        inside & fits,
        lambda out: [yolox_post(out[i : i + 1], ratios[i], num_classes) for i in range(len(photos))],
    )
    with torch.no_grad():
        for k, ((w_obj, b_obj), (w_cls, b_cls)) in enumerate(layers):
            for conv, weight, bias in ((head.obj_preds[k], w_obj, b_obj), (head.cls_preds[k], w_cls, b_cls)):
                conv.weight.copy_(torch.from_numpy(weight).view_as(conv.weight).to(conv.weight.dtype))
                conv.bias.copy_(torch.from_numpy(bias).to(conv.bias.dtype))

    # tools/export_onnx.py's steps, with --decode_in_inference (and its defaults: opset 11, onnxsim)
    model = replace_module(model, nn.SiLU, SiLU)
    model.head.decode_in_inference = True
    exported = out / YOLOX_ONNX
    dummy = torch.randn(1, 3, size[0], size[1])
    started = time.monotonic()
    export = getattr(torch.onnx, "_export", None)  # what export_onnx.py calls; gone from recent torch
    with torch.no_grad():
        if export is not None:
            export(model, dummy, str(exported), input_names=["images"], output_names=["output"], opset_version=11)
        else:  # the same TorchScript-based exporter
            torch.onnx.export(
                model,
                (dummy,),
                str(exported),
                input_names=["images"],
                output_names=["output"],
                opset_version=11,
                dynamo=False,
            )
    import onnx
    from onnxsim import simplify

    simplified, check = simplify(onnx.load(str(exported)))
    if not check:
        raise SystemExit("Simplified ONNX model could not be validated")
    onnx.save(simplified, str(exported))
    print(f"exported {exported} in {time.monotonic() - started:.1f} s")
    (out / "labels.txt").write_text("\n".join(COCO_CLASSES) + "\n")

    runner = session(exported)
    input_name = runner.get_inputs()[0].name
    output_names = [o.name for o in runner.get_outputs()]
    predictions, torch_diffs, relative, checks = [], [], [], []
    variants = {"class_agnostic 0.45": (0.45, True), "class_aware 0.65": (0.65, False), "demo 0.3": (0.3, True)}
    for photo, (x, ratio) in zip(photos, prepared):
        answer = torch.from_numpy(runner.run(output_names, {input_name: x[None]})[0])
        with torch.no_grad():
            ours = model(torch.from_numpy(x[None]))
        torch_diffs.append(
            {
                "boxes_px": max_diff(answer[..., :4].numpy(), ours[..., :4].numpy()),
                "scores": max_diff(answer[..., 4:].numpy(), ours[..., 4:].numpy()),
            }
        )
        relative.append(relative_diff(answer.numpy(), ours.numpy()))
        pairs = (answer[0, :, 4:5] * answer[0, :, 5:]).double().numpy()
        nearest = float(np.abs(pairs - THRESHOLD).min())
        if nearest <= MARGIN:
            raise SystemExit(f"{photo.name}: a score {nearest:.4f} from {THRESHOLD} in the ONNX outputs")
        ambiguity = yolox_ambiguity(answer)
        if ambiguity:
            raise SystemExit(f"{photo.name}: {ambiguity} in the ONNX outputs")
        found = yolox_post(answer, ratio, num_classes)
        found["names"] = [COCO_CLASSES[c] for c in found["cls"]]
        predictions.append(found)
        candidates = int((pairs.max(1) >= THRESHOLD).sum())
        checks.append(
            {
                "nearest_score_to_threshold": round(nearest, 5),
                "candidates_before_nms": candidates,
                "torch_same": same_detections(found, yolox_post(ours, ratio, num_classes)),
                **{
                    f"nms {k} same": same_detections(found, yolox_post(answer, ratio, num_classes, nms, agnostic))
                    for k, (nms, agnostic) in variants.items()
                },
            }
        )
    why = verdict(predictions, 3)
    if why:
        raise SystemExit(f"the ONNX file's detections: {why}")
    if not all(c["torch_same"] for c in checks):
        raise SystemExit(f"torch and ONNX disagree: {checks}")
    return {
        "model": "yolox",
        "exporter": "yolox tools/export_onnx.py",
        "exporter_version": f"yolox {__version__} ({YOLOX_EXP}, --decode_in_inference, opset 11, onnxsim)",
        "file": exported.name,
        "threshold": THRESHOLD,
        "photos": [p.name for p in photos],
        "photo_sizes": [list(img.shape[:2]) for img in images],
        "input_name": input_name,
        "input_size": list(size),
        "preprocessing": {
            "mean": [0.0, 0.0, 0.0],
            "std": [1.0, 1.0, 1.0],
            "bgr": True,
            "range": "0-255",
            "pad": "top_left",
            "pad_value": 114,
            "resize": "letterbox",
            "interpolation": "cv2.INTER_LINEAR on the uint8 BGR image",
            "ratio": "r = min(H / h, W / w); the image resized to (int(w * r), int(h * r)) at the top left",
            "ratios": [float(r) for r in ratios],
            "resized_wh": resized.tolist(),
        },
        "output_names": output_names,
        "output_shapes": [list(o.shape) for o in runner.get_outputs()],
        "outputs": {
            "output": "[1, A, 5 + C]: cx, cy, w, h in input pixels (decoded: grid offsets and exp(wh) times the "
            "stride, strides 8/16/32, anchors level by level, row-major), objectness (sigmoid), C class "
            "probabilities (sigmoid)",
        },
        "num_logits": num_classes,
        "num_anchors": int(decoded.shape[1]),
        "postprocess": {
            "function": "yolox.utils.postprocess, then the demo's boxes / ratio",
            "conf_thre": THRESHOLD,
            "nms_thre": YOLOX_NMS,
            "class_agnostic": False,
            "score": "obj * max class probability >= conf_thre (one class per anchor: the argmax)",
            "boxes": "cxcywh -> xyxy in input pixels, divided by the letterbox ratio, not clipped",
        },
        "label_mapping": "class index = line of labels.txt (COCO's 80 names, yolox.data.datasets.COCO_CLASSES)",
        "predictions": predictions,
        "max_diff_torch_vs_onnx": max(relative),
        "max_diff_definition": "max over the output of |torch - onnx| / max(1, |torch|)",
        "torch_vs_onnx": torch_diffs,
        "checks": checks,
    }


def main() -> None:
    parser = arguments(__doc__, MODELS, required=False)
    parser.add_argument("--yolox-src", type=Path, help="an extracted yolox-0.3.0 sdist (default: fetched from PyPI)")
    parser.add_argument("--fetch-yolox", type=Path, metavar="DIR", help="only fetch and extract YOLOX's sdist")
    args = parser.parse_args()
    if args.fetch_yolox:
        print(fetch_yolox(args.fetch_yolox.resolve()))
        return
    if not (args.model and args.out and args.photos):
        parser.error("--model, --out and --photos are required")
    out = args.out.resolve()
    photos = [p.resolve() for p in args.photos]
    torch.set_num_threads(max(1, os.cpu_count() or 1))

    def make(work: Path) -> dict:
        if args.model != "yolox":
            return make_rfdetr(args.model, work, photos)
        made = make_yolox(work, photos, args.yolox_src.resolve() if args.yolox_src else None)
        shutil.rmtree(work / "yolox-src", ignore_errors=True)
        return made

    reference = run(out, make)
    for photo, found in zip(reference["photos"], reference["predictions"]):
        print(f"  {photo}: {len(found['cls'])} detections, classes {sorted(set(found['cls']))}")
    print(json.dumps({"checks": reference["checks"], "max_diff_torch_vs_onnx": reference["max_diff_torch_vs_onnx"]}))
    print(f"{args.model}: {out} in {reference['seconds']} s")


if __name__ == "__main__":
    main()
