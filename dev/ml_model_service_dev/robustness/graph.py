"""Robustness phases for what another participant on the graph, a dying camera or a bad model can do:
bytes that do not deserialise, bursts of Infer calls, a call that waits for a
frame, a start-up model that cannot be read, and models or images that ask for far too much memory.

Each phase takes the Harness of `common.py` and returns its figures as a dict.
"""

from __future__ import annotations

import contextlib
import random
import resource
import shutil
import struct
import threading
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..harness.messages import image_msg
from ..harness.photos import photo
from ..harness.waits import wait_until
from ..paths import REPO as ROOT
from ..system import proc_kb
from .common import Harness, Outputs, percentile

if TYPE_CHECKING:
    from diagnostic_msgs.msg import DiagnosticStatus
    from rclpy.client import Client

MODELS = ROOT / "ml_model_service" / "ml_model_service" / "models"


# --- helpers --------------------------------------------------------------------------------------


def level_of(status) -> int:
    """A DiagnosticStatus level as an int (rclpy gives it as one byte)."""
    level = status.level
    return level[0] if isinstance(level, (bytes, bytearray)) else int(level)


class StatusLog:
    """Every ~/status (DiagnosticStatus, latched) of one node, with its receipt time."""

    def __init__(self, node, topic: str) -> None:
        from diagnostic_msgs.msg import DiagnosticStatus
        from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

        qos = QoSProfile(depth=10, durability=DurabilityPolicy.VOLATILE, reliability=ReliabilityPolicy.RELIABLE)
        self.node = node
        self.messages: list[tuple[float, DiagnosticStatus]] = []
        self.sub = node.create_subscription(
            DiagnosticStatus, topic, lambda m: self.messages.append((time.monotonic(), m)), qos
        )

    def latest(self, before: float | None = None) -> dict:
        """{"level", "message", "values"} of the newest status (received before `before` if given; {} when
        none came)."""
        found = [m for t, m in list(self.messages) if before is None or t <= before]
        if not found:
            return {}
        msg = found[-1]
        return {"level": level_of(msg), "message": msg.message, "values": {kv.key: kv.value for kv in msg.values}}

    def max_level(self, t0: float, t1: float) -> int | None:
        """The highest level received between t0 and t1 (None when none came)."""
        return max((level_of(m) for t, m in list(self.messages) if t0 <= t <= t1), default=None)

    def counter(self, key: str) -> int:
        try:
            return int(self.latest().get("values", {}).get(key, 0))
        except ValueError:
            return 0

    def between(self, t0: float, t1: float) -> int:
        return sum(1 for t, _ in list(self.messages) if t0 <= t <= t1)

    def close(self) -> None:
        self.node.destroy_subscription(self.sub)


class Memory:
    """A process's resident memory while a block runs: VmRSS sampled every 50 ms, and VmHWM (its peak, reset
    first through /proc/PID/clear_refs where the kernel allows it)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak_kb = max(self.peak_kb, proc_kb(self.pid, "VmRSS"))
            self._stop.wait(0.05)

    def __enter__(self) -> Memory:
        with contextlib.suppress(OSError):
            Path(f"/proc/{self.pid}/clear_refs").write_text("5")  # VmHWM := VmRSS
        self.rss_before = proc_kb(self.pid, "VmRSS")
        self.hwm_before = proc_kb(self.pid, "VmHWM")
        self.peak_kb = self.rss_before
        self._thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self._stop.set()
        self._thread.join(2)
        self.hwm_after = proc_kb(self.pid, "VmHWM")

    def figures(self) -> dict:
        peak = max(self.peak_kb, self.hwm_after if self.hwm_after > self.hwm_before else 0)
        return {
            "rss_mb_before": round(self.rss_before / 1024),
            "rss_mb_peak_sampled": round(self.peak_kb / 1024),
            "vmhwm_mb_before": round(self.hwm_before / 1024),
            "vmhwm_mb_after": round(self.hwm_after / 1024),
            "peak_growth_mb": round(max(0, peak - self.rss_before) / 1024),
        }


def limit_address_space(pid: int, headroom_gib: float) -> float | None:
    """Cap a node's address space at its size now + `headroom_gib` (so a model that is not refused fails
    there instead of taking the machine); the cap in GiB, None where it could not be set."""
    limit = proc_kb(pid, "VmSize") * 1024 + int(headroom_gib * 2**30)
    try:
        resource.prlimit(pid, resource.RLIMIT_AS, (limit, limit))
    except (OSError, ValueError, AttributeError):
        return None
    return round(limit / 2**30, 1)


def tracebacks(*procs) -> int:
    return sum(Path(p.log_path).read_text(errors="replace").count("Traceback") for p in procs)


def _client(h: Harness, srv_type, name: str, timeout: float = 20.0, proc=None, depth: int | None = None):
    """A client of service `name` once it is there (an error when `proc`, the node behind it, exits first);
    `depth`: its queues' depth (None: rclpy's default service QoS, keep-last 10)."""
    client: Client[Any, Any]
    if depth is None:
        client = h.node.create_client(srv_type, name)
    else:
        from rclpy.qos import QoSProfile, ReliabilityPolicy

        client = h.node.create_client(
            srv_type, name, qos_profile=QoSProfile(depth=depth, reliability=ReliabilityPolicy.RELIABLE)
        )
    deadline = time.monotonic() + timeout
    while not client.wait_for_service(timeout_sec=0.2):
        if proc is not None:
            _alive(proc)
        if time.monotonic() > deadline:
            raise RuntimeError(f"{name} is not available after {timeout:.0f} s")
    return client


def _alive(*procs) -> None:
    """Raise when one of the node processes has exited (its log named)."""
    for proc in procs:
        if proc.poll() is not None:
            raise RuntimeError(f"a node exited ({proc.returncode}); log {proc.log_path}")


def _call(client, request, timeout: float):
    """(response, seconds); response None when the call timed out or failed."""
    from ml_model_service.ros.remote_model import RemoteError, call

    t = time.monotonic()
    try:
        return call(client, request, timeout), time.monotonic() - t
    except RemoteError:
        return None, time.monotonic() - t


def _jpeg(rgb: np.ndarray, quality: int = 90) -> bytes:
    import cv2

    return cv2.imencode(".jpg", np.ascontiguousarray(rgb[:, :, ::-1]), [cv2.IMWRITE_JPEG_QUALITY, quality])[1].tobytes()


# --- phase: malformed serialised messages ---------------------------------------------------------


def malformed_bytes(msg, kind: str, rng: random.Random) -> bytes:
    """`msg` (Image or CompressedImage) serialised, then broken as a hostile publisher would: the data
    sequence's length runs past the end, the encoding/format string's length says 2^31, the message cut to a
    third; or random garbage of random length."""
    from rclpy.serialization import serialize_message
    from sensor_msgs.msg import Image

    if kind == "garbage":
        return rng.randbytes(rng.randint(1, 4096))
    raw = bytearray(serialize_message(msg))
    n = len(msg.data)
    at = len(raw) - n - 4  # the data sequence's length field: the sequence ends the message
    if struct.unpack_from("<I", raw, at)[0] != n:
        raise RuntimeError(f"unexpected serialised layout of {type(msg).__name__}")
    if kind == "data_past_end":
        struct.pack_into("<I", raw, at, n + 1000 + rng.randrange(2**20))
    elif kind == "string_2_31":
        text = (msg.encoding if isinstance(msg, Image) else msg.format).encode() + b"\0"
        struct.pack_into("<I", raw, raw.index(struct.pack("<I", len(text)) + text), 2**31)
    elif kind == "truncated":
        raw = raw[: len(raw) // 3]
    return bytes(raw)


MALFORMED_KINDS = ("data_past_end", "string_2_31", "truncated", "garbage")


def phase_malformed(h: Harness, seconds: float, rate: float = 10.0) -> dict:
    import cv2
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import CompressedImage, Image

    svc_ns = "/msvc"
    topics = {"raw": ("/mraw", "image", Image), "compressed": ("/mcomp", "image/compressed", CompressedImage)}
    svc = h.model_service(svc_ns)
    h.remote(svc_ns, proc=svc)
    procs = {
        "raw": h.vision("/mraw", svc_ns, image_qos="reliable"),
        "compressed": h.vision("/mcomp", svc_ns, use_compressed=True, image_qos="reliable"),
    }
    small = cv2.resize(photo(), (640, 480))
    good = {"raw": image_msg(small), "compressed": CompressedImage(format="jpeg", data=_jpeg(small))}
    qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    pubs = {k: h.node.create_publisher(t, f"{ns}/{topic}", qos) for k, (ns, topic, t) in topics.items()}
    outputs = {k: Outputs(h.node, ns) for k, (ns, _, _) in topics.items()}
    status = {k: StatusLog(h.node, f"{ns}/vision_service/status") for k, (ns, _, _) in topics.items()}

    def publish_good(key: str, frame_id: str) -> None:
        msg = good[key]
        msg.header.frame_id = frame_id
        msg.header.stamp = h.node.get_clock().now().to_msg()
        pubs[key].publish(msg)

    def warmed() -> bool:
        _alive(svc, *procs.values())
        for key in topics:
            publish_good(key, "warm")
        return all(any(m.header.frame_id == "warm" for _, m in outputs[k].detections) for k in topics)

    ready = bool(wait_until(warmed, 90, 0.3))
    time.sleep(1.0)
    base = {k: {c: status[k].counter(c) for c in ("malformed", "skipped", "errors")} for k in topics}
    rng = random.Random(4321)
    sent_good: Counter = Counter()
    sent_bad: dict[str, Counter] = {k: Counter() for k in topics}
    period = 1.0 / rate
    t0 = time.monotonic()
    i = 0
    while time.monotonic() - t0 < seconds:
        for key in topics:
            publish_good(key, f"good-{key}-{i}")
            sent_good[key] += 1
        time.sleep(period / 2)
        for key in topics:
            kind = MALFORMED_KINDS[(i + rng.randrange(len(MALFORMED_KINDS))) % len(MALFORMED_KINDS)]
            pubs[key].publish(malformed_bytes(good[key], kind, rng))
            sent_bad[key][kind] += 1
        i += 1
        delay = t0 + i * period - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    t_end = time.monotonic()
    elapsed = t_end - t0
    wait_until(
        lambda: all(
            sum(1 for _, m in outputs[k].detections if m.header.frame_id.startswith("good-")) >= sent_good[k]
            for k in topics
        ),
        3.0,
        0.2,
    )
    time.sleep(1.2)  # one more status after the last message
    per: dict[str, dict] = {}
    for key in topics:
        answered = {m.header.frame_id for _, m in outputs[key].detections if m.header.frame_id.startswith("good-")}
        during, after = status[key].latest(t_end), status[key].latest()
        delta = {c: status[key].counter(c) - v for c, v in base[key].items()}
        per[key] = {
            "good_sent": sent_good[key],
            "good_answered": len(answered),
            "ratio": round(len(answered) / max(1, sent_good[key]), 3),
            "malformed_sent": sum(sent_bad[key].values()),
            "malformed_by_kind": dict(sent_bad[key]),
            "malformed_counted": delta["malformed"],
            "skipped_counted": delta["skipped"],
            "errors_counted": delta["errors"],
            "last_error": after.get("values", {}).get("last_error", "")[:160],
            "status_level": during.get("level"),
            "status_message": during.get("message", "")[:200],
            "status_max_level": status[key].max_level(t0 + 3.0, t_end),
            "status_level_after": after.get("level"),
            "status_message_after": after.get("message", "")[:200],
            "processing_ms": after.get("values", {}).get("processing_ms"),
            "unanswered_ids": sorted(
                int(f.rsplit("-", 1)[1]) for f in {f"good-{key}-{j}" for j in range(sent_good[key])} - answered
            )[:40],
            "crashed": procs[key].poll() is not None,
        }
    alive = {**{f"vision_{k}": p.poll() is None for k, p in procs.items()}, "model_service": svc.poll() is None}
    n_tracebacks = tracebacks(svc, *procs.values())
    for key in topics:
        outputs[key].close()
        status[key].close()
        h.node.destroy_publisher(pubs[key])
    for p in (*procs.values(), svc):
        h.stop(p)
    return {
        "seconds": round(elapsed, 1),
        "ready": ready,
        "rate_hz": rate,
        "nodes": per,
        "min_ratio": min(x["ratio"] for x in per.values()),
        "crashes": sum(not a for a in alive.values()),
        "tracebacks_in_logs": n_tracebacks,
    }


# --- phase: bursts of simultaneous Infer calls ----------------------------------------------------


def phase_burst(h: Harness, sizes: tuple[int, ...] = (20, 40, 80), timeout: float = 30.0) -> dict:
    """Bursts through 4 clients whose response queues hold a whole burst (so only the node can lose a call),
    then the largest burst again through 4 clients with rclpy's default service QoS (keep-last 10)."""
    import cv2

    from ml_model_service.ros import conversions
    from ml_model_service_interfaces.srv import Infer

    ns = "/bsvc"
    proc = h.model_service(ns)
    remote = h.remote(ns, proc=proc)
    spec = remote.metadata.inputs[0]
    tensor = cv2.resize(photo(), (spec.shape[2], spec.shape[1]))[None].astype(np.uint8)
    request = Infer.Request(inputs=[conversions.tensor_to_msg(spec.name, tensor)])
    depth = max(sizes)
    pools = {
        f"depth {depth}": [_client(h, Infer, f"{ns}/ml_model_service/infer", depth=depth) for _ in range(4)],
        "default QoS": [_client(h, Infer, f"{ns}/ml_model_service/infer") for _ in range(4)],
    }
    status = StatusLog(h.node, f"{ns}/ml_model_service/status")
    warm, _ = _call(pools[f"depth {depth}"][0], request, timeout)
    bursts = []

    def served() -> int:  # Infer calls the service answered, by its own counters
        return sum(status.counter(c) for c in ("infer_ok", "infer_busy", "infer_failed"))

    for n, pool in [(n, f"depth {depth}") for n in sizes] + [(depth, "default QoS")]:
        clients = pools[pool]
        time.sleep(1.2)
        served0 = served()
        barrier = threading.Barrier(n)
        results: list[tuple[str, float, str]] = []
        lock = threading.Lock()

        def one(i: int, barrier=barrier, results=results, lock=lock, clients=clients) -> None:
            barrier.wait()
            r, seconds = _call(clients[i % len(clients)], request, timeout)
            if r is None:
                outcome, message = "lost", ""
            elif r.success:
                outcome, message = "ok", ""
            else:
                outcome, message = ("busy" if r.message.startswith("busy") else "other"), r.message[:160]
            with lock:
                results.append((outcome, seconds, message))

        threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(n)]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout + 15)
        outcomes = Counter(o for o, _, _ in results)
        answered = [s for o, s, _ in results if o != "lost"]
        time.sleep(1.2)  # the service's counters go out at 1 Hz
        bursts.append(
            {
                "calls": n,
                "clients": pool,
                "answered": outcomes["ok"] + outcomes["busy"] + outcomes["other"],
                "ok": outcomes["ok"],
                "busy": outcomes["busy"],
                "other": outcomes["other"],
                "lost": outcomes["lost"] + (n - len(results)),
                "max_answer_s": round(max(answered), 2) if answered else None,
                "p50_answer_s": round(percentile(answered, 50), 2) if answered else None,
                "burst_s": round(time.monotonic() - t0, 1),
                "served_by_node": served() - served0,
                "other_examples": sorted({m for o, _, m in results if o == "other"})[:2],
            }
        )
    alive = proc.poll() is None
    after, _ = _call(pools[f"depth {depth}"][0], request, timeout) if alive else (None, 0.0)
    status.close()
    n_tracebacks = tracebacks(proc)
    for c in (c for pool in pools.values() for c in pool):
        h.node.destroy_client(c)
    h.stop(proc)
    return {
        "bursts": bursts,
        "warm_up_ok": bool(warm and warm.success),
        "serves_after": bool(after and after.success),
        "lost": sum(b["lost"] for b in bursts if b["clients"] != "default QoS"),
        "crashes": 0 if alive else 1,
        "tracebacks_in_log": n_tracebacks,
    }


# --- phase: a GetDetections waiting for a camera frame --------------------------------------------


def phase_waiting(h: Harness, wait: float = 25.0, reads: int = 5) -> dict:
    from diagnostic_msgs.msg import DiagnosticArray
    from rcl_interfaces.srv import GetParameters

    from ml_model_service_interfaces.srv import GetDetections

    ns = "/wvis"
    node = f"{ns}/vision_service"
    proc = h.spawn(
        "vision_service",
        ns,
        {
            "model_path": "ssd_mobilenet_v2_coco",
            "service_timeout": wait,
            "execution_providers": ["cpu"],
            "allowed_paths": [str(h.allowed)],
        },
    )
    params = _client(h, GetParameters, f"{node}/get_parameters", 60.0, proc)
    request = GetParameters.Request(names=["confidence_threshold"])
    ready = wait_until(lambda: _call(params, request, 5.0)[0] or proc.poll() is not None, 60, 0.2)
    status = StatusLog(h.node, f"{node}/status")
    diagnostics: list[float] = []
    diag_sub = h.node.create_subscription(
        DiagnosticArray,
        "/diagnostics",
        lambda m: diagnostics.extend(time.monotonic() for s in m.status if s.name.startswith(node)),
        50,
    )
    detections = _client(h, GetDetections, f"{node}/get_detections")
    answer: list = []
    t_start = time.monotonic()
    t_end: list[float] = []

    def waiting() -> None:
        answer.append(_call(detections, GetDetections.Request(), wait + 20)[0])
        t_end.append(time.monotonic())

    thread = threading.Thread(target=waiting, daemon=True)
    thread.start()
    time.sleep(1.0)
    latencies: list[float] = []
    failed_reads = 0
    spacing = (wait - 4.0) / reads
    for _ in range(reads):
        r, seconds = _call(params, request, 10.0)
        latencies.append(seconds)
        failed_reads += r is None
        time.sleep(max(0.0, spacing - seconds))
    still_waiting = thread.is_alive()
    thread.join(wait + 25)
    end = t_end[0] if t_end else time.monotonic()
    window = (t_start + 0.5, end)
    r = answer[0] if answer else None
    alive = proc.poll() is None
    status.close()
    h.node.destroy_subscription(diag_sub)
    n_tracebacks = tracebacks(proc)
    h.stop(proc)
    span = max(1e-9, window[1] - window[0])
    return {
        "ready": bool(ready),
        "service_timeout_s": wait,
        "call_s": round(end - t_start, 1),
        "call_answer": None if r is None else {"success": r.success, "message": r.message[:160]},
        "waiting_during_reads": still_waiting,
        "param_read_s": [round(x, 3) for x in latencies],
        "max_param_read_s": round(max(latencies), 3),
        "failed_param_reads": failed_reads,
        "status_per_s": round(status.between(*window) / span, 2),
        "diagnostics_per_s": round(sum(1 for t in diagnostics if window[0] <= t <= window[1]) / span, 2),
        "crashes": 0 if alive else 1,
        "tracebacks_in_log": n_tracebacks,
    }


# --- phase: a start-up model that cannot be read --------------------------------------------------


def identity_model(path: Path, metadata: dict[str, str]) -> Path:
    """A tiny ONNX model (Identity on float [1,3,32,32]) with `metadata` in its metadata_props."""
    import onnx
    from onnx import TensorProto, helper

    spec = [1, 3, 32, 32]
    graph = helper.make_graph(
        [helper.make_node("Identity", ["images"], ["out"])],
        "identity",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, spec)],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, spec)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    for key, value in metadata.items():
        model.metadata_props.add(key=key, value=value)
    onnx.save(model, path)
    return path


def phase_startup(h: Harness) -> dict:
    from ml_model_service_interfaces.srv import GetMetadata, LoadModel

    folder = h.work / "startup"
    folder.mkdir(exist_ok=True)
    path = identity_model(folder / "bad_names.onnx", {"names": "{1e999: 'x'}", "task": "detect"})
    ns = "/usvc"
    t0 = time.monotonic()
    proc = h.model_service(ns, model_path=str(path), allowed_paths=[str(folder)])
    status = StatusLog(h.node, f"{ns}/ml_model_service/status")
    meta: Client[Any, Any] = h.node.create_client(GetMetadata, f"{ns}/ml_model_service/get_metadata")
    up = wait_until(lambda: meta.wait_for_service(timeout_sec=0.2) or proc.poll() is not None, 30, 0.1)
    time.sleep(max(0.0, 5.0 - (time.monotonic() - t0)))
    alive_5s = proc.poll() is None
    wait_until(lambda: status.messages, 5.0)
    before = status.latest()
    r_meta, _ = _call(meta, GetMetadata.Request(), 10.0) if alive_5s else (None, 0.0)
    load: Client[Any, Any] = h.node.create_client(LoadModel, f"{ns}/ml_model_service/load_model")
    r_load, load_s = (
        _call(load, LoadModel.Request(model_path="ssd_mobilenet_v2_coco"), 60.0) if alive_5s else (None, 0.0)
    )
    mark = time.monotonic()
    wait_until(lambda: [t for t, _ in status.messages if t > mark + 0.2], 3.0)
    after = status.latest()
    alive = proc.poll() is None
    status.close()
    h.node.destroy_client(meta)
    h.node.destroy_client(load)
    n_tracebacks = tracebacks(proc)
    h.stop(proc)
    return {
        "served": bool(up) and alive_5s,
        "alive_after_5s": alive_5s,
        "status_level": before.get("level"),
        "status_message": before.get("message", "")[:240],
        "get_metadata": None if r_meta is None else {"success": r_meta.success, "message": r_meta.message[:160]},
        "load_model_success": bool(r_load and r_load.success),
        "load_model_message": (r_load.message[:160] if r_load else "no answer"),
        "load_model_s": round(load_s, 1),
        "status_level_after_load": after.get("level"),
        "status_message_after_load": after.get("message", "")[:160],
        "crashes": 0 if alive else 1,
        "tracebacks_in_log": n_tracebacks,
    }


# --- phase: models and images that ask for too much memory -----------------------------------------


def tflite_with_input(src: Path, dst: Path, dims: list[int]) -> list[int]:
    """A copy of TFLite model `src` whose first input tensor declares `dims` (the shape vector of the
    flatbuffer edited in place, same rank; shape_signature too where present). Returns the old shape."""
    from flatbuffers import encode, number_types
    from flatbuffers.table import Table

    buf = bytearray(src.read_bytes())

    def child(table: Table, field: int, j: int) -> Table:  # element j of a vector of tables
        return Table(table.Bytes, table.Indirect(table.Vector(table.Offset(field)) + 4 * j))

    def ints(table: Table, field: int) -> tuple[int, int]:  # (start, length) of an int32 vector
        o = table.Offset(field)
        return (table.Vector(o), table.VectorLen(o)) if o else (0, 0)

    model = Table(buf, encode.Get(number_types.UOffsetTFlags.packer_type, buf, 0))
    subgraph = child(model, 8, 0)  # Model.subgraphs
    inputs, _ = ints(subgraph, 6)  # SubGraph.inputs
    tensor = child(subgraph, 4, struct.unpack_from("<i", buf, inputs)[0])  # SubGraph.tensors[inputs[0]]
    start, length = ints(tensor, 4)  # Tensor.shape
    old = [struct.unpack_from("<i", buf, start + 4 * i)[0] for i in range(length)]
    if length != len(dims):
        raise ValueError(f"input rank {length} != {len(dims)}")
    for field in (4, 18):  # Tensor.shape, Tensor.shape_signature
        start, length = ints(tensor, field)
        if start and length == len(dims):
            struct.pack_into(f"<{len(dims)}i", buf, start, *dims)
    dst.write_bytes(bytes(buf))
    return old


def expand_model(path: Path, side: int, dynamic: bool = False) -> Path:
    """An ONNX model that Expands a 1-element float input to a [side, side] float output; with `dynamic` the
    shape is the input's value ([x, x]), so only a run shows the output's size (declared [rows, cols])."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weights: list[TensorProto]
    out: list[str | int]
    if dynamic:
        nodes = [
            helper.make_node("Cast", ["x"], ["s"], to=TensorProto.INT64),
            helper.make_node("Concat", ["s", "s"], ["shape"], axis=0),
        ]
        weights, out = [], ["rows", "cols"]
    else:
        nodes, weights, out = [], [numpy_helper.from_array(np.array([side, side], np.int64), "shape")], [side, side]
    graph = helper.make_graph(
        nodes + [helper.make_node("Expand", ["x", "shape"], ["y"])],
        "expand",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, out)],
        weights,
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    return path


def jpeg_declaring(width: int, height: int) -> bytes:
    """A JPEG of about 640 bytes (8x8 colour pixels of data) whose SOF0 header declares width x height."""
    import cv2

    tiny = (np.random.default_rng(7).random((8, 8, 3)) * 255).astype(np.uint8)
    data = bytearray(cv2.imencode(".jpg", tiny, [cv2.IMWRITE_JPEG_QUALITY, 10])[1].tobytes())
    sof = data.index(b"\xff\xc0")
    struct.pack_into(">HH", data, sof + 5, height, width)
    return bytes(data)


def _hostile_tflite(proc, load, folder: Path, dims: list[int]) -> dict:
    from ml_model_service_interfaces.srv import LoadModel

    try:
        import flatbuffers  # noqa: F401
    except ImportError:
        return {"skipped": "the flatbuffers package is not installed: no TFLite model could be edited"}
    src = MODELS / "mobilenet_ssd_v2_coco_quant_postprocess.tflite"
    path = folder / "huge_input.tflite"
    old = tflite_with_input(src, path, dims)
    with Memory(proc.pid) as mem:
        r, seconds = _call(load, LoadModel.Request(model_path=str(path)), 120.0)
    return {
        "input_shape": dims,
        "was": old,
        "declared_input_mb": round(int(np.prod(dims)) / 2**20),
        "refused": bool(r is not None and not r.success),
        "answered": r is not None,
        "message": (r.message[:400] if r else "no answer"),
        "seconds": round(seconds, 1),
        **mem.figures(),
        "alive": proc.poll() is None,
    }


def _hostile_expand(h: Harness, proc, ns: str, load, folder: Path, side: int, dynamic: bool) -> dict:
    from ml_model_service.ros import conversions
    from ml_model_service_interfaces.srv import Infer, LoadModel

    path = expand_model(folder / f"expand{'_dynamic' if dynamic else ''}.onnx", side, dynamic)
    x = np.array([float(side) if dynamic else 1.0], np.float32)
    with Memory(proc.pid) as mem:
        r_load, load_s = _call(load, LoadModel.Request(model_path=str(path)), 60.0)
        r = None
        infer_s = 0.0
        if r_load is not None and r_load.success:
            infer = _client(h, Infer, f"{ns}/ml_model_service/infer", 10.0)
            request = Infer.Request(inputs=[conversions.tensor_to_msg("x", x)])
            r, infer_s = _call(infer, request, 90.0)
            h.node.destroy_client(infer)
    got = sum(len(t.data) for t in r.outputs) if r is not None and r.success else 0
    r = None if r is None else {"success": r.success, "message": r.message[:400]}
    return {
        "output_shape": [side, side],
        "declared": "[rows, cols]" if dynamic else f"[{side}, {side}]",
        "output_mb": round(side * side * 4 / 2**20),
        "load_success": bool(r_load and r_load.success),
        "load_message": (r_load.message[:400] if r_load else "no answer"),
        "load_s": round(load_s, 1),
        "infer_answer": r,
        "infer_s": round(infer_s, 1),
        "output_mb_received": round(got / 2**20),
        "refused": bool(r_load is not None and not r_load.success) or bool(r is not None and not r["success"]),
        **mem.figures(),
        "alive": proc.poll() is None,
    }


def _hostile_jpeg(h: Harness, vis, ns: str, seconds: float, rate: float, good_rate: float) -> dict:
    import cv2
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import CompressedImage

    bomb = jpeg_declaring(7000, 7000)
    good = _jpeg(cv2.resize(photo(), (640, 480)))
    pub = h.node.create_publisher(
        CompressedImage, f"{ns}/image/compressed", QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    )
    outputs = Outputs(h.node, ns)
    status = StatusLog(h.node, f"{ns}/vision_service/status")

    def send(data: bytes, frame_id: str) -> None:
        msg = CompressedImage(format="jpeg", data=data)
        msg.header.frame_id = frame_id
        msg.header.stamp = h.node.get_clock().now().to_msg()
        pub.publish(msg)

    def warmed() -> bool:
        _alive(vis)
        send(good, "warm")
        return any(m.header.frame_id == "warm" for _, m in outputs.detections)

    ready = bool(wait_until(warmed, 90, 0.3))
    time.sleep(1.0)
    errors0 = status.counter("errors")
    # bombs at `rate`, good frames at `good_rate` halfway between two bombs
    tick = 1.0 / (2 * rate)
    every_good = max(1, round(2 * rate / good_rate))
    sent: Counter[str] = Counter()
    with Memory(vis.pid) as mem:
        t0 = time.monotonic()
        k = 0
        while time.monotonic() - t0 < seconds:
            if k % 2 == 0:
                send(bomb, f"bomb-{sent['bomb']}")
                sent["bomb"] += 1
            elif k % every_good == every_good // 2:
                send(good, f"good-{sent['good']}")
                sent["good"] += 1
            k += 1
            delay = t0 + k * tick - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        elapsed = time.monotonic() - t0
        time.sleep(2.0)
    answered = {m.header.frame_id for _, m in outputs.detections}
    latest = status.latest()
    figures = {
        "jpeg_bytes": len(bomb),
        "declared": "7000x7000",
        "seconds": round(elapsed, 1),
        "bombs_sent": sent["bomb"],
        "good_sent": sent["good"],
        "bombs_answered": sum(f.startswith("bomb-") for f in answered),
        "good_answered": sum(f.startswith("good-") for f in answered),
        "errors_counted": status.counter("errors") - errors0,
        "refused": not any(f.startswith("bomb-") for f in answered),
        "message": latest.get("values", {}).get("last_error", "")[:400],
        "status_level": latest.get("level"),
        "status_message": latest.get("message", "")[:200],
        "ready": ready,
        **mem.figures(),
        "alive": vis.poll() is None,
    }
    outputs.close()
    status.close()
    h.node.destroy_publisher(pub)
    return figures


def phase_hostile_models(
    h: Harness, tflite_dims: list[int] | None = None, side: int = 16384, seconds: float = 10.0
) -> dict:
    from ml_model_service_interfaces.srv import LoadModel

    folder = h.allowed / "hostile"
    folder.mkdir(exist_ok=True)
    svc_ns, vis_ns = "/hsvc", "/hvis"
    svc = h.model_service(svc_ns, allowed_paths=[str(folder)])
    vis = h.spawn(
        "vision_service",
        vis_ns,
        {
            "model_path": "ssd_mobilenet_v2_coco",
            "use_compressed": True,
            "always_on": True,
            "execution_providers": ["cpu"],
            "allowed_paths": [str(h.allowed)],
        },
    )
    h.remote(svc_ns, proc=svc)
    cap = limit_address_space(svc.pid, 10.0)
    load = _client(h, LoadModel, f"{svc_ns}/ml_model_service/load_model")
    results: dict[str, dict] = {}
    for name, run in (
        ("tflite_huge_input", lambda: _hostile_tflite(svc, load, folder, tflite_dims or [1, 16384, 16384, 3])),
        ("onnx_expand_1gib", lambda: _hostile_expand(h, svc, svc_ns, load, folder, side, False)),
        ("onnx_expand_1gib_dynamic", lambda: _hostile_expand(h, svc, svc_ns, load, folder, side, True)),
    ):
        if svc.poll() is not None:
            results[name] = {"skipped": f"the model service exited ({svc.returncode})"}
            continue
        try:
            results[name] = run()
        except Exception as exc:  # report and go on with the next model
            results[name] = {"error": f"{type(exc).__name__}: {exc}"}
    back = None
    if svc.poll() is None:
        back, _ = _call(load, LoadModel.Request(model_path="ssd_mobilenet_v2_coco"), 60.0)
    try:
        results["jpeg_7000x7000"] = _hostile_jpeg(h, vis, vis_ns, seconds, 30.0, 10.0)
    except Exception as exc:
        results["jpeg_7000x7000"] = {"error": f"{type(exc).__name__}: {exc}"}
    alive = {"model_service": svc.poll() is None, "vision": vis.poll() is None}
    h.node.destroy_client(load)
    n_tracebacks = {"model_service": tracebacks(svc), "vision": tracebacks(vis)}
    for p in (vis, svc):
        h.stop(p)
    shutil.rmtree(folder, ignore_errors=True)
    return {
        **results,
        "model_service_address_space_cap_gib": cap,
        "model_service_serves_after": bool(back and back.success),
        "crashes": sum(not a for a in alive.values()),
        "alive": alive,
        "tracebacks_in_logs": n_tracebacks,
    }
