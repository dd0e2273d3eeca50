"""Make one real export with its exporter, and the exporter's own predictions on it (the reference).

Runs in the exporters environment (`build/exporters-venv`: Ultralytics, CPU torch, torchvision, onnx; see
scripts/requirements-exporters.txt), never in the suite's. Weights are never downloaded: the model is built from
the package's bundled architecture (an Ultralytics yaml) and its weights are made to give input-dependent
detections at normal confidence:

- BatchNorm statistics are taken from the photos (train-mode passes with cumulative averages);
- each class-score layer is standardised over the photos' candidates and scaled, so the top ~0.005 % of
  candidate scores pass 0.5 (a trained model's scores are similarly rare and confident).

    python make_export.py --arch yolo11n.yaml --out DIR --photos a.png b.png [--export-arg nms=True ...]

DIR receives the exported file (or folder) and `reference.json`: for each photo, the exporter's own
`predict` on the exported file (`YOLO(exported).predict`), with boxes in source pixels.
"""

from __future__ import annotations

import argparse
import ast
import json
import math
import os
import shutil
from pathlib import Path

os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("YOLO_VERBOSE", "False")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from ultralytics import RTDETR, YOLO  # noqa: E402

TOP_SHARE = 0.00005  # share of candidate class scores made to pass 0.5
SPREAD = 1.5  # logit units per standard deviation of a class layer's output


def _value(text: str):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _read(path: Path) -> np.ndarray:
    image = cv2.imread(str(path))
    if image is None:
        raise SystemExit(f"cannot read the image {path}")
    return image


def _batch(photos: list[np.ndarray], imgsz: int) -> torch.Tensor:
    boxes = []
    for p in photos:
        r = imgsz / max(p.shape[:2])
        small = cv2.resize(p, (round(p.shape[1] * r), round(p.shape[0] * r)))
        box = np.full((imgsz, imgsz, 3), 114, np.uint8)
        box[: small.shape[0], : small.shape[1]] = small
        boxes.append(box[..., ::-1])  # BGR -> RGB
    array = np.stack(boxes).transpose(0, 3, 1, 2).astype(np.float32) / 255.0
    return torch.from_numpy(np.ascontiguousarray(array))


def _crops(photos: list[np.ndarray], size: int) -> torch.Tensor:
    """Photos as a classifier sees them: shorter side to `size`, the centre (Ultralytics' classify_transforms)."""
    crops = []
    for p in photos:
        r = size / min(p.shape[:2])
        small = cv2.resize(
            p, (max(size, int(p.shape[1] * r)), max(size, int(p.shape[0] * r))), interpolation=cv2.INTER_AREA
        )
        y0, x0 = (small.shape[0] - size) // 2, (small.shape[1] - size) // 2
        crops.append(small[y0 : y0 + size, x0 : x0 + size, ::-1])  # BGR -> RGB
    array = np.stack(crops).transpose(0, 3, 1, 2).astype(np.float32) / 255.0
    return torch.from_numpy(np.ascontiguousarray(array))


def _class_layers(net: torch.nn.Module) -> list[torch.nn.Module]:
    """The last layer of every class-score branch (YOLO heads' cv3 / one2one_cv3, RT-DETR's score heads)."""
    head = net.model[-1]
    layers: list[torch.nn.Module] = []
    for name in ("cv3", "one2one_cv3"):
        for branch in getattr(head, name, None) or []:
            last = branch[-1] if isinstance(branch, torch.nn.Sequential) else branch
            if isinstance(last, torch.nn.Conv2d):
                layers.append(last)
    for name in ("dec_score_head", "enc_score_head"):
        part = getattr(head, name, None)
        if isinstance(part, torch.nn.ModuleList):
            layers.extend(m for m in part if isinstance(m, torch.nn.Linear))
        elif isinstance(part, torch.nn.Linear):
            layers.append(part)
    if getattr(head, "linear", None) is not None and isinstance(head.linear, torch.nn.Linear):
        layers.append(head.linear)  # classifiers
    return layers


def calibrate(net: torch.nn.Module, batch: torch.Tensor) -> None:
    """BatchNorm statistics from the photos, then every class layer standardised and scaled."""
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None  # cumulative average
    net.train()
    with torch.no_grad():
        for _ in range(2):
            net(batch)
    net.eval()
    for layer in _class_layers(net):
        seen: list[torch.Tensor] = []

        def keep(_module, _inputs, out, seen=seen):
            seen.append(out.detach().flatten())

        hook = layer.register_forward_hook(keep)
        with torch.no_grad():
            net(batch)
        hook.remove()
        if not seen:
            continue
        values = torch.cat(seen).float()
        mean, std = values.mean(), values.std().clamp(min=1e-6)
        z_top = torch.quantile(((values - mean) / std)[:1_000_000], 1 - TOP_SHARE)
        with torch.no_grad():
            layer.weight.mul_(SPREAD / std)
            layer.bias.copy_(SPREAD * (layer.bias - mean) / std - SPREAD * z_top)


def shift_to_candidates(net: torch.nn.Module, batch: torch.Tensor, count: int, threshold: float = 0.05) -> None:
    """The class layers shifted so that `count` candidates of the first photo score at least `threshold` (what
    NMS gets from a trained model on a busy scene; the benchmark's setting, NMS pre-filter 0.05)."""
    with torch.no_grad():
        out = net(batch[:1])
    y = out[0] if isinstance(out, (list, tuple)) else out  # [1, 4+C(+extra), N] scores
    best = y[0, 4 : 4 + len(net.names)].max(0).values
    edge = torch.sort(best, descending=True).values[min(count, len(best) - 1)].clamp(1e-6, 1 - 1e-6)
    shift = math.log(threshold / (1 - threshold)) - float(torch.log(edge / (1 - edge)))
    with torch.no_grad():
        for layer in _class_layers(net):
            layer.bias.add_(shift)


def probe_classifier(net: torch.nn.Module, batch: torch.Tensor) -> None:
    """A classifier's last layer made a linear probe of the photos: photo i's features score class 7 * i + 3
    well above the rest (a trained model's margin, which interpolation differences cannot flip), every other
    class stays as calibrated."""
    head = net.model[-1]
    seen: list[torch.Tensor] = []
    hook = head.linear.register_forward_hook(lambda _m, inputs, _out: seen.append(inputs[0].detach()))
    with torch.no_grad():
        net(batch)
    hook.remove()
    features = seen[0]
    centred = features - features.mean(0, keepdim=True)
    with torch.no_grad():
        for i, row in enumerate(centred):
            cls = 7 * i + 3
            head.linear.weight[cls] = 8.0 * row / row.norm().clamp(min=1e-6) ** 2
            head.linear.bias[cls] = -8.0 * float(row @ features.mean(0)) / float(row.norm().clamp(min=1e-6) ** 2)


def reference(model, photos: list[Path], task: str, imgsz: int) -> list[dict]:
    """The exporter's own predictions on the exported file, per photo."""
    found = []
    for photo in photos:
        result = model.predict(str(photo), imgsz=imgsz, conf=0.25, verbose=False)[0]
        item: dict = {"photo": photo.name, "names": {int(k): v for k, v in result.names.items()}}
        if task == "classify":
            item["probs"] = result.probs.data.cpu().numpy().astype(float).tolist()
        elif task == "obb":
            obb = result.obb
            item["xywhr"] = obb.xywhr.cpu().numpy().astype(float).tolist()
            item["xyxy"] = obb.xyxy.cpu().numpy().astype(float).tolist()
            item["conf"] = obb.conf.cpu().numpy().astype(float).tolist()
            item["cls"] = obb.cls.cpu().numpy().astype(int).tolist()
        else:
            boxes = result.boxes
            item["xyxy"] = boxes.xyxy.cpu().numpy().astype(float).tolist()
            item["conf"] = boxes.conf.cpu().numpy().astype(float).tolist()
            item["cls"] = boxes.cls.cpu().numpy().astype(int).tolist()
            if result.keypoints is not None:
                item["keypoints"] = result.keypoints.data.cpu().numpy().astype(float).tolist()
            if result.masks is not None:
                item["mask_pixels"] = [int(m.sum()) for m in result.masks.data.cpu().numpy() > 0.5]
                item["mask_shape"] = list(result.masks.data.shape[1:])
        found.append(item)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", required=True, help="bundled architecture, e.g. yolo11n.yaml, rtdetr-l.yaml")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--photos", nargs="+", type=Path, required=True)
    parser.add_argument("--imgsz", type=int, default=640)
    parser.add_argument("--candidates", type=int, default=0, help="shift classes so N candidates pass 0.05")
    parser.add_argument("--kpt-names", nargs="*", default=[], help="pose: keypoint names (as a dataset gives)")
    parser.add_argument("--export-arg", action="append", default=[], help="KEY=VALUE passed to export()")
    args = parser.parse_args()
    args.out = args.out.resolve()
    args.photos = [p.resolve() for p in args.photos]
    torch.manual_seed(0)
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    work = args.out.with_name(args.out.name + ".work")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    os.chdir(work)
    cls = RTDETR if "rtdetr" in args.arch else YOLO
    model = cls(args.arch)
    photos = [_read(p) for p in args.photos]
    calibrate(model.model, _batch(photos, args.imgsz))
    if args.candidates:
        shift_to_candidates(model.model, _batch(photos, args.imgsz), args.candidates)
    if model.task == "classify":
        probe_classifier(model.model, _crops(photos, args.imgsz))
    if model.task == "pose" and args.kpt_names:
        model.model.kpt_names = {i: list(args.kpt_names) for i in range(len(model.model.names))}  # as training sets
    weights = work / (Path(args.arch).stem + ".pt")
    model.save(str(weights))
    export_args = {"format": "onnx"} | dict(a.split("=", 1) for a in args.export_arg)
    exported = Path(cls(str(weights)).export(imgsz=args.imgsz, **{k: _value(v) for k, v in export_args.items()}))
    task = model.task
    runner = cls(str(exported)) if cls is RTDETR else cls(str(exported), task=task)
    ref = reference(runner, args.photos, task, args.imgsz)
    args.out.mkdir(parents=True, exist_ok=True)
    target = args.out / exported.name
    shutil.rmtree(target, ignore_errors=True)
    shutil.move(str(exported), target)
    (args.out / "reference.json").write_text(
        json.dumps({"task": task, "file": exported.name, "export_args": export_args, "photos": ref})
    )
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
