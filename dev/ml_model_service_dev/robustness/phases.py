"""The phases against the model service and the vision node's topics: fuzzed Infer calls and messages, restarts,
swaps, floods, leaks, bit-flipped models."""

from __future__ import annotations

import importlib
import random
import secrets
import shutil
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ml_model_service.core.tensors import DTYPES

from ..harness.messages import camera_info_msg, depth_msg, image_msg
from ..harness.photos import photo
from ..harness.waits import wait_until
from ..paths import REPO as ROOT
from ..system import rss_mib as rss_mb
from .common import Harness, Outputs, camera_stream, classes_of, percentile

if TYPE_CHECKING:
    from rclpy.client import Client

# --- inputs ---------------------------------------------------------------------------------------


# --- phase: Infer fuzz -----------------------------------------------------------------------------

_DTYPES = list(DTYPES)  # the wire names the model service accepts


def fuzz_tensor(rng: random.Random, good_name: str):
    """One random tensor message: mostly broken in one or more ways."""
    from ml_model_service_interfaces.msg import Tensor

    name = rng.choice(
        [
            good_name,
            good_name,
            "",
            "x" * rng.randint(1, 300),
            "images",
            "\u00e9\u4e2d\x01",
            good_name + " ",
            f"t{rng.randint(0, 9)}",
        ]
    )
    dtype = rng.choice(_DTYPES + ["uint8"] * 6 + ["complex64", "", "float8", "UINT8", "str", "object"])
    kind = rng.randrange(9)
    if kind == 0:
        shape = [1, 300, 300, 3]
    elif kind == 1:
        shape = [rng.randint(0, 3) for _ in range(rng.randint(0, 6))]
    elif kind == 2:
        shape = [1, 0, 2**62, 2**62]
    elif kind == 3:
        shape = [rng.choice([2**31, 2**40, 2**63 - 1, 10**12]) for _ in range(rng.randint(1, 4))]
    elif kind == 4:
        shape = [rng.randint(-(2**63), -1)] + [3]
    elif kind == 5:
        shape = [1] * rng.randint(9, 64)
    elif kind == 6:
        shape = [2**21, 2**21, 2**21]  # overflows int64 when multiplied
    elif kind == 7:
        shape = [rng.randint(1, 64) for _ in range(rng.randint(1, 4))]
    else:
        shape = [1, 300, 300, 3]
    nbytes = rng.choice([0, 1, 7, 270000, 269999, rng.randint(0, 65536)])
    if kind == 0 and dtype == "uint8" and rng.random() < 0.7:
        nbytes = 270000
    return Tensor(name=name, data_type=dtype, shape=shape, data=rng.randbytes(min(nbytes, 270001)))


def phase_infer(h: Harness, count: int, seconds: float) -> dict:
    from ml_model_service.ros.remote_model import call
    from ml_model_service_interfaces.srv import Infer

    ns = "/fuzz"
    proc = h.model_service(ns)
    remote = h.remote(ns, proc=proc)
    good_name = remote.metadata.inputs[0].name
    spec = remote.metadata.inputs[0]
    import cv2

    # many threads call it at once
    client: Client[Any, Any] = h.node.create_client(Infer, f"{ns}/ml_model_service/infer")
    valid = {good_name: cv2.resize(photo(), (spec.shape[2], spec.shape[1]))[None].astype(np.uint8)}
    before = rss_mb(proc.pid)
    outcomes: Counter = Counter()
    examples: dict[str, str] = {}
    lock = threading.Lock()
    deadline = time.monotonic() + seconds
    issued = [0]

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        while time.monotonic() < deadline:
            with lock:
                if issued[0] >= count:
                    return
                issued[0] += 1
            tensors = [fuzz_tensor(rng, good_name) for _ in range(rng.choice([0, 1, 1, 1, 1, 2, 3]))]
            try:
                r = call(client, Infer.Request(inputs=tensors), 10.0)
                key = "ok" if r.success else r.message.split(":")[0]
            except Exception as exc:
                key, r = f"client error {type(exc).__name__}", None
            with lock:
                outcomes[key] += 1
                if key not in examples and r is not None:
                    examples[key] = r.message[:160]

    t0 = time.monotonic()
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    timeline = []
    while any(t.is_alive() for t in threads):
        time.sleep(2.0)
        timeline.append(round(rss_mb(proc.pid)))
    for t in threads:
        t.join(seconds + 30)
    elapsed = time.monotonic() - t0
    alive = proc.poll() is None
    after = rss_mb(proc.pid)
    # still correct afterwards?
    check = remote.infer(valid) if alive else {}
    _, classes, scores, n = check.values() if check else (None, None, None, None)
    detected = False
    if alive:
        assert classes is not None and scores is not None and n is not None, "the detector gave no outputs"
        detected = any(int(c) == 3 and s > 0.5 for c, s in zip(classes[0, : int(n[0])], scores[0, : int(n[0])]))
    log = Path(proc.log_path).read_text(errors="replace")
    h.stop(proc)
    total = sum(outcomes.values())
    return {
        "requests": total,
        "seconds": round(elapsed, 1),
        "per_s": round(total / max(elapsed, 1e-9)),
        "crashes": 0 if alive else 1,
        "outcomes": dict(outcomes),
        "clean_refusals": sum(v for k, v in outcomes.items() if k in ("bad request", "busy")),
        "other_failures": sum(v for k, v in outcomes.items() if k not in ("ok", "bad request", "busy")),
        "tracebacks_in_log": log.count("Traceback"),
        "rss_mb_before": round(before),
        "rss_mb_after": round(after),
        "rss_mb_every_2s": timeline,
        "correct_after": bool(detected),
        "examples": examples,
    }


# --- phase: topic fuzz -----------------------------------------------------------------------------


def _png_bomb(width: int, height: int, rng: random.Random) -> bytes:
    import struct
    import zlib

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = struct.pack(">I", 13) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    idat = zlib.compress(bytes(rng.randint(1000, 250_000)))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk
        + struct.pack(">I", len(idat))
        + b"IDAT"
        + idat
        + struct.pack(">I", zlib.crc32(b"IDAT" + idat))
    )


def fuzz_image(rng: random.Random, depth: bool):
    from sensor_msgs.msg import Image

    enc = rng.choice(
        ["16UC1", "32FC1", "mono16", "rgb8", "", "16UC3", "32FC2"]
        if depth
        else [
            "rgb8",
            "bgr8",
            "rgba8",
            "bgra8",
            "mono8",
            "mono16",
            "8UC3",
            "yuv422",
            "",
            "bayer_rggb8",
            "32FC1",
            "rgb16",
        ]
    )
    w = rng.choice([0, 1, 2, 3, 17, 640, 1920, 65535, 2**31 - 1, 2**32 - 1, rng.randint(0, 800)])
    h = rng.choice([0, 1, 2, 5, 480, 1080, 65535, 2**31 - 1, 2**32 - 1, rng.randint(0, 600)])
    step = rng.choice([0, w, w * 2, w * 3, w * 4, (w * 3 + 7) & 0xFFFFFFFF, rng.randint(0, 5000)]) & 0xFFFFFFFF
    n = rng.choice([0, 1, 100, min(step * h, 2_000_000), rng.randint(0, 300_000)])
    msg = Image(
        height=h & 0xFFFFFFFF,
        width=w & 0xFFFFFFFF,
        encoding=enc,
        is_bigendian=rng.randint(0, 1),
        step=step,
        data=rng.randbytes(n),
    )
    msg.header.frame_id = rng.choice(["camera", "", "other"])
    return msg


def fuzz_camera_info(rng: random.Random):
    from sensor_msgs.msg import CameraInfo

    bad = [0.0, float("nan"), float("inf"), -500.0, 1e-30, 1e30]
    k = [rng.choice(bad + [500.0, 320.0, 240.0, 1.0]) for _ in range(9)]
    msg = CameraInfo(
        height=rng.choice([0, 480, 2**32 - 1, 1]),
        width=rng.choice([0, 640, 2**32 - 1, 1]),
        distortion_model=rng.choice(["plumb_bob", "", "weird"]),
        d=[rng.random() for _ in range(rng.choice([0, 5, 1000]))],
        k=k,
    )
    msg.header.frame_id = "camera"
    return msg


def fuzz_compressed(rng: random.Random, jpeg: bytes, png: bytes):
    from sensor_msgs.msg import CompressedImage

    choice = rng.randrange(6)
    if choice == 0:
        data = rng.randbytes(rng.randint(0, 5000))
    elif choice == 1:
        data = jpeg[: rng.randint(0, len(jpeg))]
    elif choice == 2:
        data = png[: rng.randint(0, len(png))]
    elif choice == 3:
        data = _png_bomb(rng.choice([60000, 100000, 2**31 - 1]), rng.choice([60000, 100000]), rng)
    elif choice == 4:  # JPEG declaring 65000 x 65000
        data = (
            b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
            b"\xff\xc0\x00\x11\x08\xfd\xe8\xfd\xe8\x03\x01\x22\x00\x02\x11\x01\x03\x11\x01" + jpeg[20:]
        )
    else:
        flipped = bytearray(jpeg)
        for _ in range(rng.randint(1, 20)):
            flipped[rng.randrange(len(flipped))] = rng.randrange(256)
        data = bytes(flipped)
    return CompressedImage(format=rng.choice(["jpeg", "png", "", "rgb8; jpeg compressed bgr8"]), data=data)


def phase_topics(h: Harness, count: int, seconds: float) -> dict:
    import cv2
    from diagnostic_msgs.msg import DiagnosticStatus
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import CameraInfo, CompressedImage, Image

    from ml_model_service.core.frames.pointcloud import Intrinsics

    svc_ns, raw_ns, comp_ns = "/tsvc", "/traw", "/tcomp"
    svc = h.model_service(svc_ns)
    h.remote(svc_ns, proc=svc)
    raw = h.vision(raw_ns, svc_ns, use_depth=True, image_qos="reliable")
    comp = h.vision(comp_ns, svc_ns, use_compressed=True, image_qos="reliable")
    rgb = photo()
    small = cv2.resize(rgb, (640, 480))
    ok_img, ok_depth = image_msg(small), depth_msg(np.full((480, 640), 2.0), "16UC1")
    ok_info = camera_info_msg(Intrinsics(500.0, 500.0, 320.0, 240.0, 640, 480), distortion=[0.0] * 5)
    jpeg = cv2.imencode(".jpg", cv2.cvtColor(small, cv2.COLOR_RGB2BGR))[1].tobytes()
    png = cv2.imencode(".png", cv2.cvtColor(cv2.resize(small, (320, 240)), cv2.COLOR_RGB2BGR))[1].tobytes()
    qos = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
    pubs = {
        "image": h.node.create_publisher(Image, f"{raw_ns}/image", qos),
        "depth": h.node.create_publisher(Image, f"{raw_ns}/depth", qos),
        "camera_info": h.node.create_publisher(CameraInfo, f"{raw_ns}/camera_info", qos),
        "compressed": h.node.create_publisher(CompressedImage, f"{comp_ns}/image/compressed", qos),
    }
    out_raw, out_comp = Outputs(h.node, raw_ns), Outputs(h.node, comp_ns)
    status: dict[str, DiagnosticStatus] = {}
    latched = QoSProfile(depth=1, durability=DurabilityPolicy.VOLATILE, reliability=ReliabilityPolicy.RELIABLE)
    subs = [
        h.node.create_subscription(
            DiagnosticStatus, f"{ns}/vision_service/status", lambda m, ns=ns: status.__setitem__(ns, m), latched
        )
        for ns in (raw_ns, comp_ns)
    ]
    # wait for both vision nodes to produce from valid frames first
    from sensor_msgs.msg import CompressedImage as CI

    def valid_once():
        stamp = h.node.get_clock().now().to_msg()
        for m in (ok_img, ok_depth, ok_info):
            m.header.stamp = stamp
        pubs["image"].publish(ok_img)
        pubs["depth"].publish(ok_depth)
        pubs["camera_info"].publish(ok_info)
        c = CI(format="jpeg", data=jpeg)
        c.header.stamp = stamp
        c.header.frame_id = "camera"
        pubs["compressed"].publish(c)

    ready = wait_until(lambda: (valid_once(), out_raw.detections and out_comp.detections)[1], 90, 0.2)
    rss_before = {"vision_raw": rss_mb(raw.pid), "vision_compressed": rss_mb(comp.pid)}
    rng = random.Random(1234)
    sent: Counter = Counter()
    t0 = time.monotonic()
    period = seconds / count
    timeline: list[int] = []
    for i in range(count):
        if i % max(1, count // 10) == 0:
            timeline.append(round(rss_mb(raw.pid)))
        if time.monotonic() - t0 > seconds + 10:
            break
        if i % 10 == 0:
            valid_once()
            sent["valid frame sets"] += 1
        else:
            which = rng.choice(["image", "depth", "camera_info", "compressed", "compressed", "depth_pair"])
            stamp = h.node.get_clock().now().to_msg()
            if which == "image":
                msg = fuzz_image(rng, False)
            elif which == "depth":
                msg = fuzz_image(rng, True)
            elif which == "camera_info":
                msg = fuzz_camera_info(rng)
            elif which == "compressed":
                msg = fuzz_compressed(rng, jpeg, png)
            else:  # a good colour frame paired with a bad depth frame and bad intrinsics: 2D must still come out
                for m in (ok_img,):
                    m.header.stamp = stamp
                pubs["image"].publish(ok_img)
                msg, which = fuzz_image(rng, True), "depth"
                info = fuzz_camera_info(rng)
                info.header.stamp = stamp
                pubs["camera_info"].publish(info)
                sent["camera_info"] += 1
            msg.header.stamp = stamp
            pubs[which].publish(msg)
            sent[which] += 1
        target = t0 + (i + 1) * period
        delay = target - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    fuzz_end = time.monotonic()
    time.sleep(1.5)
    # afterwards: still detecting?
    mark = time.monotonic()
    after_ok = wait_until(
        lambda: (
            valid_once(),
            [m for t, m in out_raw.detections if t > mark] and [m for t, m in out_comp.detections if t > mark],
        )[1],
        20,
        0.2,
    )
    rss_after = {"vision_raw": rss_mb(raw.pid), "vision_compressed": rss_mb(comp.pid)}
    alive = {
        "vision_raw": raw.poll() is None,
        "vision_compressed": comp.poll() is None,
        "model_service": svc.poll() is None,
    }
    during = [m for t, m in out_raw.detections if t0 <= t <= fuzz_end]
    stats = {}
    for ns, msg in status.items():
        stats[ns] = {kv.key: kv.value for kv in msg.values if kv.key not in ("last_error",)}
        stats[ns]["message"] = msg.message[:200]
    for s in subs:
        h.node.destroy_subscription(s)
    for p in pubs.values():
        h.node.destroy_publisher(p)
    out_raw.close()
    out_comp.close()
    tracebacks = sum(Path(p.log_path).read_text(errors="replace").count("Traceback") for p in (raw, comp, svc))
    for p in (raw, comp, svc):
        h.stop(p)
    return {
        "messages": sum(sent.values()) + 3 * sent["valid frame sets"],
        "sent": dict(sent),
        "seconds": round(fuzz_end - t0, 1),
        "ready_before_fuzz": bool(ready),
        "crashes": sum(not a for a in alive.values()),
        "alive": alive,
        "detections_during_fuzz": len(during),
        "still_detecting_after": bool(after_ok),
        "rss_mb_before": {k: round(v) for k, v in rss_before.items()},
        "rss_mb_after": {k: round(v) for k, v in rss_after.items()},
        "vision_raw_rss_mb_during": timeline,
        "tracebacks_in_logs": tracebacks,
        "status_counters": stats,
    }


def _served_vision(h: Harness, svc_ns: str, vis_ns: str) -> tuple[Any, Any, Any, Outputs]:
    """A model service in `svc_ns`, once it serves, and a vision node in `vis_ns` reading through it, its outputs
    watched: (service process, RemoteModel of the service, vision process, outputs)."""
    svc = h.model_service(svc_ns)
    remote = h.remote(svc_ns, proc=svc)
    vis = h.vision(vis_ns, svc_ns)
    return svc, remote, vis, Outputs(h.node, vis_ns)


# --- phase: kill -9 and restart of the model service ----------------------------------------------


def phase_restart(h: Harness, cycles: int, outage: float) -> dict:
    import cv2

    svc_ns, vis_ns = "/rsvc", "/rvis"
    svc, _, vis, outputs = _served_vision(h, svc_ns, vis_ns)
    stream = camera_stream(h.node, vis_ns, 30.0, (image_msg(cv2.resize(photo(), (640, 480))),))
    runs = []
    try:
        if not wait_until(lambda: outputs.detections, 60):
            raise RuntimeError("the vision node produced no detections before the first kill")
        for _ in range(cycles):
            time.sleep(1.0)
            t_kill = time.monotonic()
            svc.kill()  # SIGKILL: no goodbye on DDS
            svc.wait(5)
            time.sleep(outage)
            svc = h.model_service(svc_ns)
            h.remote(svc_ns, proc=svc, timeout=60)
            t_serving = time.monotonic()
            first = wait_until(lambda ts=t_serving: [t for t, _ in list(outputs.detections) if t > ts], 20, 0.01)
            t_back = first[0] if first else float("nan")
            frames = [t for t in stream.sent if t_kill <= t <= (t_back if first else time.monotonic())]
            runs.append(
                {
                    "recovery_s_after_serving": round(t_back - t_serving, 2) if first else None,
                    "service_restart_s": round(t_serving - t_kill - outage, 2),
                    "frames_without_output": len(frames),
                }
            )
        vision_alive = vis.poll() is None
        log = Path(vis.log_path).read_text(errors="replace")
    finally:
        stream.close()
        outputs.close()
    h.stop(vis)
    h.stop(svc)
    recoveries = [r["recovery_s_after_serving"] for r in runs if r["recovery_s_after_serving"] is not None]
    return {
        "cycles": runs,
        "max_recovery_s": max(recoveries) if recoveries else None,
        "recovered": len(recoveries),
        "crashes": 0 if vision_alive else 1,
        "vision_log_unavailable_lines": log.count("unavailable"),
        "vision_log_changed_lines": log.count("changed"),
    }


# --- phase: hot swaps under a stream ---------------------------------------------------------------


def phase_swap(h: Harness, seconds: float, every: float) -> dict:
    import cv2

    from ml_model_service.core.loading.bundled import BUNDLED_DIR
    from ml_model_service.core.loading.labels import load_labels

    coco = set(load_labels(BUNDLED_DIR / "coco_labels.txt").names.values())
    imagenet = set(load_labels(BUNDLED_DIR / "imagenet_labels.txt").names.values())
    svc_ns, vis_ns = "/ssvc", "/svis"
    svc, remote, vis, outputs = _served_vision(h, svc_ns, vis_ns)
    stream = camera_stream(h.node, vis_ns, 30.0, (image_msg(cv2.resize(photo(), (640, 480))),))
    cycle = [
        "ssd_mobilenet_v2_coco_tflite",
        "ssd_mobilenet_v2_coco",
        "efficientnet_lite0",
        "ssd_mobilenet_v2_coco",
        "efficientnet_lite0_tflite",
        "ssd_mobilenet_v2_coco_tflite",
    ]
    swaps, failures = 0, []
    try:
        if not wait_until(lambda: outputs.detections, 60):
            raise RuntimeError("the vision node produced no detections before the swaps")
        time.sleep(1.0)
        b0, bn = time.monotonic(), len(outputs.detections)
        time.sleep(4.0)
        baseline_hz = (len(outputs.detections) - bn) / (time.monotonic() - b0)
        t0 = time.monotonic()
        sent0 = len(stream.sent)
        i = 0
        while time.monotonic() - t0 < seconds:
            time.sleep(every)
            response = remote.load(cycle[i % len(cycle)])
            i += 1
            swaps += 1
            if not response.success:
                failures.append(response.message[:200])
        remote.load("ssd_mobilenet_v2_coco")
        time.sleep(2.0)
        t_end = time.monotonic()
        sent = len(stream.sent) - sent0
    finally:
        stream.close()
    dets = [m for t, m in outputs.detections if t0 <= t <= t_end]
    clss = [m for t, m in outputs.classifications if t0 <= t <= t_end]
    garbled_d = [classes_of(m) for m in dets if not classes_of(m) <= coco or "motorcycle" not in classes_of(m)]
    garbled_c = [[r.class_id for r in m.results] for m in clss if any(r.class_id not in imagenet for r in m.results)]
    outputs.close()
    log = Path(vis.log_path).read_text(errors="replace")
    alive = vis.poll() is None and svc.poll() is None
    h.stop(vis)
    h.stop(svc)
    return {
        "seconds": round(t_end - t0, 1),
        "swaps": swaps,
        "swap_failures": failures,
        "frames_sent": sent,
        "outputs_hz_without_swaps": round(baseline_hz, 1),
        "outputs_hz_with_swaps": round((len(dets) + len(clss)) / (t_end - t0), 1),
        "detections": len(dets),
        "classifications": len(clss),
        "frames_without_output": max(0, sent - len(dets) - len(clss)),
        "garbled_frames": len(garbled_d) + len(garbled_c),
        "garbled_examples": (garbled_d + garbled_c)[:3],
        "crashes": 0 if alive else 1,
        "vision_log_model_changed": log.lower().count("model changed"),
        "vision_log_unavailable": log.count("unavailable"),
    }


# --- phase: 1080p flood ----------------------------------------------------------------------------


def phase_flood(h: Harness, seconds: float, rate: float) -> dict:
    import cv2

    svc_ns, vis_ns = "/fsvc", "/fvis"
    svc, _, vis, outputs = _served_vision(h, svc_ns, vis_ns)
    frame = image_msg(cv2.resize(photo(), (1920, 1080)))
    warm = camera_stream(h.node, vis_ns, 5.0, (frame,))
    ok = wait_until(lambda: outputs.detections, 60)
    warm.close()
    time.sleep(1.0)
    before = {"vision": rss_mb(vis.pid), "model_service": rss_mb(svc.pid)}
    n0 = len(outputs.detections)
    latencies: list[float] = []

    def stamp_latency() -> None:
        for t, m in outputs.detections[n0:]:
            stamp = m.header.stamp.sec + m.header.stamp.nanosec * 1e-9
            latencies.append(time.time() - (time.monotonic() - t) - stamp)

    stream = camera_stream(h.node, vis_ns, rate, (frame,))
    timeline = []
    for _ in range(int(seconds)):
        time.sleep(1.0)
        timeline.append(round(rss_mb(vis.pid)))
    stream.close()
    sent_rate = len(stream.sent) / seconds
    time.sleep(2.0)
    after = {"vision": rss_mb(vis.pid), "model_service": rss_mb(svc.pid)}
    stamp_latency()
    produced = len(outputs.detections) - n0
    outputs.close()
    alive = vis.poll() is None and svc.poll() is None
    h.stop(vis)
    h.stop(svc)
    return {
        "seconds": seconds,
        "ready": bool(ok),
        "sent_hz": round(sent_rate, 1),
        "outputs_hz": round(produced / seconds, 1),
        "latency_ms_p50": round(percentile(latencies, 50) * 1000),
        "latency_ms_p90": round(percentile(latencies, 90) * 1000),
        "latency_ms_max": round(max(latencies) * 1000) if latencies else None,
        "rss_mb_before": {k: round(v) for k, v in before.items()},
        "rss_mb_after": {k: round(v) for k, v in after.items()},
        "vision_rss_mb_each_second": timeline,
        "crashes": 0 if alive else 1,
    }


# --- phase: leak probe -----------------------------------------------------------------------------


class Everything:
    """Raw bytes of every message on every topic of the graph (both QoS flavours, so latched topics too)."""

    def __init__(self, node) -> None:
        self.node = node
        self.chunks: list[bytes] = []
        self.subs: dict[tuple, object] = {}
        self.topics: set[str] = set()

    def refresh(self) -> None:
        from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

        flavours = {
            "volatile": QoSProfile(depth=100, reliability=ReliabilityPolicy.BEST_EFFORT),
            "latched": QoSProfile(
                depth=100, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL
            ),
        }
        for topic, types in self.node.get_topic_names_and_types():
            for type_name in types:
                try:
                    pkg, kind, name = type_name.split("/")
                    msg_type = getattr(importlib.import_module(f"{pkg}.{kind}"), name)
                except Exception:
                    continue
                for flavour, qos in flavours.items():
                    key = (topic, type_name, flavour)
                    if key not in self.subs:
                        self.subs[key] = self.node.create_subscription(
                            msg_type, topic, self.chunks.append, qos, raw=True
                        )
                        self.topics.add(topic)

    def close(self) -> None:
        for sub in self.subs.values():
            self.node.destroy_subscription(sub)


def phase_leak(h: Harness) -> dict:
    from rcl_interfaces.srv import SetParameters
    from rclpy.parameter import Parameter

    from ml_model_service.ros.remote_model import call

    token = f"SECRET-{secrets.token_hex(12)}"
    secret_dir = h.work / "outside"
    secret_dir.mkdir()
    secret = secret_dir / "labels.txt"
    secret.write_text("\n".join(f"{i} {token}-{i}" for i in range(5)) + "\n")
    (secret_dir / "evil.onnx").write_text(f"{token}\n")
    (h.allowed / "link_labels.txt").symlink_to(secret)
    (h.allowed / "link_model.onnx").symlink_to(secret_dir / "evil.onnx")
    model_dir = h.allowed / "trojan"
    model_dir.mkdir()
    shutil.copy(
        ROOT / "ml_model_service/ml_model_service/models/ssd_mobilenet_v2_coco_qdq.onnx", model_dir / "model.onnx"
    )
    (model_dir / "labels.txt").symlink_to(secret)  # labels "beside" the model lead out

    svc_ns, vis_ns = "/lsvc", "/lvis"
    svc = h.model_service(svc_ns, model_repository=str(h.allowed))
    remote = h.remote(svc_ns, proc=svc)
    vis = h.vision(vis_ns, svc_ns)
    local = h.spawn(
        "vision_service",
        "/llocal",
        {"model_path": "ssd_mobilenet_v2_coco", "always_on": True, "allowed_paths": [str(h.allowed)]},
    )
    import cv2

    # both vision nodes see a camera, so they use (and rebuild from) whatever the model service sends
    frame = image_msg(cv2.resize(photo(), (640, 480)))
    streams = [camera_stream(h.node, ns, 5.0, (frame,)) for ns in (vis_ns, "/llocal")]
    everything = Everything(h.node)
    time.sleep(3.0)
    everything.refresh()
    answers: list[str] = []
    attempts = 0
    tricks = [
        str(secret),
        f"{h.allowed}/../outside/labels.txt",
        str(h.allowed / "link_labels.txt"),
        f"{h.allowed}/trojan/../../outside/labels.txt",
        "/etc/shadow",
        "/etc/passwd",
        "~/.bashrc",
        "/proc/self/environ",
        str(secret_dir),
    ]
    model_tricks = [
        str(secret_dir / "evil.onnx"),
        str(h.allowed / "link_model.onnx"),
        "trojan",
        "../outside/evil",
        str(secret),
    ]
    for trick in tricks:
        attempts += 1
        answers.append(str(remote.load("ssd_mobilenet_v2_coco", trick)))
    for trick in model_tricks:
        attempts += 1
        answers.append(str(remote.load(trick)))
    for node in (f"{svc_ns}/ml_model_service", f"{vis_ns}/vision_service", "/llocal/vision_service"):
        client: Client[Any, Any] = h.node.create_client(SetParameters, f"{node}/set_parameters")
        for name, values in (
            ("label_path", tricks),
            ("model_path", model_tricks),
            ("model_repository", [str(secret_dir), "/etc"]),
        ):
            for value in values:
                attempts += 1
                try:
                    r = call(
                        client,
                        SetParameters.Request(parameters=[Parameter(name, value=value).to_parameter_msg()]),
                        20.0,
                    )
                    answers.append(str(r))
                except Exception as exc:
                    answers.append(f"{node}: {exc}")
        h.node.destroy_client(client)
    answers.append(str(remote.fetch_metadata()))
    time.sleep(2.5)  # status and label_info go out at 1 Hz / on change
    everything.refresh()
    time.sleep(1.5)
    blob = b"".join(everything.chunks) + "\n".join(answers).encode()
    leaked = blob.count(token.encode())
    # positive control: a label file inside the allowed folders does travel (so the probe can see data)
    control = f"CONTROL-{secrets.token_hex(8)}"
    (h.allowed / "control.txt").write_text("\n".join(f"{i} {control}-{i}" for i in range(90)) + "\n")
    control_answer = str(remote.load("ssd_mobilenet_v2_coco", str(h.allowed / "control.txt")))
    time.sleep(3.0)
    everything.refresh()
    time.sleep(1.0)
    control_blob = b"".join(everything.chunks)
    control_seen = {"load_model answer": control_answer.count(control), "topics": control_blob.count(control.encode())}
    content_bytes = sum(len(line) for line in secret.read_text().splitlines() if line.encode() in blob)
    alive = all(p.poll() is None for p in (svc, vis, local))
    for stream in streams:
        stream.close()
    everything.close()
    for p in (svc, vis, local):
        h.stop(p)
    return {
        "attempts": attempts,
        "topics_watched": len(everything.topics),
        "messages_seen": len(everything.chunks),
        "token_occurrences": leaked,
        "leaked_bytes": content_bytes,
        "control_token_seen": control_seen,
        "crashes": 0 if alive else 3 - sum(p.poll() is None for p in (svc, vis, local)),
    }


# --- phase: bit-flipped copies ----------------------------------------------------------------------


def phase_bitflip(h: Harness, copies: int) -> dict:
    from ml_model_service.core.loading.bundled import BUNDLED, BUNDLED_DIR
    from ml_model_service.core.loading.model import Model
    from ml_model_service.core.loading.trust import ModelPolicy, TrustError
    from ml_model_service.core.runtimes.backend import ModelLoadError

    repo = h.work / "flipped"
    repo.mkdir()
    shutil.copy(BUNDLED_DIR / "SHA256SUMS", repo / "SHA256SUMS")
    policy = ModelPolicy.for_folders([repo])
    files = sorted({b.file for b in BUNDLED.values()})
    rng = random.Random(99)
    loaded, refused_checksum, refused_other = 0, 0, 0
    t0 = time.monotonic()
    for i in range(copies):
        name = files[i % len(files)]
        data = bytearray((BUNDLED_DIR / name).read_bytes())
        data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        (repo / name).write_bytes(bytes(data))
        try:
            Model(str(repo / name), policy=policy, providers=["cpu"])
            loaded += 1
        except TrustError:
            refused_checksum += 1
        except ModelLoadError:
            refused_other += 1
    return {
        "copies": copies,
        "loaded": loaded,
        "refused_by_checksum": refused_checksum,
        "refused_otherwise": refused_other,
        "seconds": round(time.monotonic() - t0, 1),
    }


# --- summary ---------------------------------------------------------------------------------------


#: Each phase's summary line: a template (`str.format_map`) of its figures and of those `FIGURES` adds.
SUMMARY_LINES = {
    "infer": "Infer fuzz: {requests} requests in {seconds} s, crashes {crashes}, clean refusals {clean_refusals}, "
    "other failures {other_failures}, ok {ok}, tracebacks {tracebacks_in_log}, RSS {rss_mb_before} -> "
    "{rss_mb_after} MB (every 2 s {rss_mb_every_2s}), correct afterwards {correct_after}",
    "topics": "Topic fuzz: {messages} messages in {seconds} s, crashes {crashes}, 2D detections during the fuzz "
    "{detections_during_fuzz}, detecting afterwards {still_detecting_after}, RSS {rss_mb_before} -> {rss_mb_after} "
    "MB (raw node during the fuzz {vision_raw_rss_mb_during}), tracebacks {tracebacks_in_logs}",
    "restart": "kill -9 / restart: {recovered}/{cycle_count} recovered, recovery after the service serves again "
    "{recoveries} s (max {max_recovery_s}), frames without output {lost}, crashes {crashes}",
    "swap": "Hot swaps at 30 Hz: {swaps} swaps in {seconds} s, {frames_sent} frames, {detections} detections + "
    "{classifications} classifications ({outputs_hz_with_swaps} Hz; {outputs_hz_without_swaps} Hz without swaps), "
    "garbled {garbled_frames}, without output {frames_without_output}, crashes {crashes}",
    "flood": "1080p flood: sent {sent_hz} Hz for {seconds} s, outputs {outputs_hz} Hz, latency p50/p90/max "
    "{latency_ms_p50}/{latency_ms_p90}/{latency_ms_max} ms, RSS {rss_mb_before} -> {rss_mb_after} MB (vision each "
    "second {vision_rss_mb_each_second}), crashes {crashes}",
    "leak": "Leak probe: {attempts} attempts, {topics_watched} topics / {messages_seen} messages watched, token seen "
    "{token_occurrences} times, leaked bytes {leaked_bytes}, crashes {crashes} (control token from an allowed label "
    "file seen: {control_token_seen})",
    "bitflip": "Bit-flipped copies: {copies} copies, loaded {loaded}, refused by checksum {refused_by_checksum}, "
    "refused otherwise {refused_otherwise}",
    "malformed": "Malformed messages ({seconds} s at {rate_hz} Hz): {node_lines}; crashes {crashes}, tracebacks "
    "{tracebacks_in_logs}",
    "burst": "Infer bursts: {burst_lines}; serves after {serves_after}, crashes {crashes}, tracebacks "
    "{tracebacks_in_log}",
    "waiting": "Waiting GetDetections ({call_s} s, answered success={answer_success}): parameter reads max "
    "{max_param_read_s} s {param_read_s}, ~/status {status_per_s}/s, /diagnostics {diagnostics_per_s}/s, crashes "
    "{crashes}",
    "startup": "Unreadable start-up model: alive after 5 s {alive_after_5s}, status level {status_level} "
    "'{status_message:.80}', GetMetadata success {metadata_success} '{metadata_message:.40}', LoadModel ssd "
    "{load_model_success}, tracebacks {tracebacks_in_log}",
    "hostile_models": "Hostile models: {model_lines}; crashes {crashes}",
}
#: The malformed phase's figures of each node, and the burst phase's of each burst.
MALFORMED_NODE = (
    "{node}: good {good_answered}/{good_sent} answered ({ratio}), malformed {malformed_sent} sent / "
    "{malformed_counted} counted (frames skipped unread {skipped_counted}), status level {status_level} (max "
    "{status_max_level})"
)
BURST = (
    "{calls} ({clients} clients): {answered} answered ({ok} ok + {busy} busy), {lost} lost, served "
    "{served_by_node}, max {max_answer_s} s"
)
HOSTILE_MODELS = ("tflite_huge_input", "onnx_expand_1gib", "onnx_expand_1gib_dynamic", "jpeg_7000x7000")


def _hostile_models(x: dict) -> str:
    parts = []
    for key in HOSTILE_MODELS:
        y = x.get(key, {})
        if "skipped" in y or "error" in y:
            parts.append(f"{key}: {y.get('skipped') or y.get('error')}")
            continue
        extra = f", good {y['good_answered']}/{y['good_sent']} answered" if "good_sent" in y else ""
        parts.append(f"{key}: refused {y.get('refused')}, peak RSS +{y.get('peak_growth_mb')} MB{extra}")
    return "; ".join(parts)


def _answer(x: dict, key: str) -> dict:
    """A service's answer in the figures (None where none came)."""
    return x[key] or {}


#: Figures a phase's summary line reads that its results hold only inside others.
FIGURES: dict[str, Callable[[dict], dict[str, Any]]] = {
    "infer": lambda x: {"ok": x["outcomes"].get("ok", 0)},
    "restart": lambda x: {
        "cycle_count": len(x["cycles"]),
        "recoveries": [c["recovery_s_after_serving"] for c in x["cycles"]],
        "lost": [c["frames_without_output"] for c in x["cycles"]],
    },
    "malformed": lambda x: {
        "node_lines": "; ".join(MALFORMED_NODE.format_map({**n, "node": k}) for k, n in x["nodes"].items())
    },
    "burst": lambda x: {"burst_lines": ", ".join(BURST.format_map(b) for b in x["bursts"])},
    "waiting": lambda x: {"answer_success": _answer(x, "call_answer").get("success")},
    "startup": lambda x: {
        "metadata_success": _answer(x, "get_metadata").get("success"),
        "metadata_message": _answer(x, "get_metadata").get("message", ""),
    },
    "hostile_models": lambda x: {"model_lines": _hostile_models(x)},
}


def summary_line(phase: str, x: dict) -> str:
    """A phase's summary line, from its figures."""
    derived = FIGURES[phase](x) if phase in FIGURES else {}
    return SUMMARY_LINES[phase].format_map({**x, **derived})


def summary(results: dict) -> list[str]:
    """The summary: a line of figures per phase that ran, a line per phase that failed."""
    lines = ["", "=== robustness summary ==="]
    for phase in SUMMARY_LINES:
        x = results.get(phase)
        if x is not None and "error" not in x:
            lines.append(summary_line(phase, x))
    lines += [f"{name}: phase failed: {x['error']}" for name, x in results.items() if "error" in x]
    return lines
