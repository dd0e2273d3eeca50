"""`make bench`: the speed figures of the README and the targets the suite must reach, all measured in one run.

Ratios are against the raw model measured in the same run (the machine is shared and absolute figures
move between runs). For the bundled SSD detector in ONNX and TFLite, with the backends' one thread policy:

1. raw model: `session.run` / `interpreter.invoke` alone (whatever runtime `backend: auto` picks, as the node
   does by default) on a paced 30 Hz loop (so pool threads that spin between runs are paid for): median wall ms
   and CPU ms per run, single-threaded and with the default policy, in rounds at the start and after every
   node window (the ratios then divide figures of the same minutes);
2. the core pipeline (VisionModel.detect on a 640x480 frame): median ms and ratio to the raw model;
3. the vision node in its own process (default parameters, model in process) on a 30 Hz 640x480 stream of a
   photograph: frames answered / sent, node CPU per answered frame / CPU of one single-threaded raw run;
4. latency header stamp -> `detections` received at 10 Hz, model in process and through a model service
   (against a raw run paced at 10 Hz), and for reference a bare rclpy node that echoes each image's header;
5. the node's CPU while nobody listens (no frames; camera publishing) and while listened to without frames,
   beside a bare rclpy node with a 1 Hz timer;
6. other core figures (classifier, image conversion, object clouds, obstacles, semantic segmentation: the
   runtime call of LRASPP and SegFormer against the pipeline to a 640x480 class map) and Infer through the
   model service against in this process;
7. several cameras (`bench/multicam.py`): one node with 4 cameras at 7.5 Hz against 4 single-camera nodes;
8. side by side with Ultralytics' predictor on the same YOLO11n ONNX export (bench/peer.py): per-frame ms,
   the runtime call, ratios, for `backend: auto` and each runtime, and the bundled SSD's pipeline against its call.

How many cores other processes used meanwhile is measured and printed: on a busy machine the wall times,
frame rates and verdicts are not to be trusted. Options: --seconds, --repeat, --core-only, --only node|core|peer.
"""

from __future__ import annotations

import argparse
import gc
import math
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from ml_model_service.core.frames import imaging, pipeline, pointcloud
from ml_model_service.core.frames.tracking import Tracker
from ml_model_service.core.loading.model import Model
from ml_model_service.core.reading.vision import Detection, VisionModel
from ml_model_service.core.runtimes.threads import default_threads
from ml_model_service.ros import dds

from ..harness.scenes import Box3D, render
from ..system import isolate_dds
from . import peer as bench_peer
from .common import (
    CAMERA_HZ,
    OtherLoad,
    Paced,
    PacedLoop,
    load_note,
    log,
    machine,
    photograph,
    timed,
    timed_in_turn,
)
from .peer import raw_call

if TYPE_CHECKING:  # bench.stream needs ROS; --core-only does not
    from .stream import Camera, Client, NodeProcess, StreamResult

#: label -> (bundled model, num_threads: 0 = the default policy). "ONNX, 1 thread" shows the thread trade of
#: issue 19: less CPU per frame for a model that finishes well inside the frame period, at a longer latency.
DETECTORS = {
    "ONNX": ("ssd_mobilenet_v2_coco", 0),
    "TFLite": ("ssd_mobilenet_v2_coco_tflite", 0),
    "ONNX, 1 thread": ("ssd_mobilenet_v2_coco", 1),
}
LATENCY_HZ = 10.0
# The 10 Hz latency windows: each node gets LATENCY_SPAN x --seconds of frames in all, split over
# LATENCY_ROUNDS windows taken in turn. The model-service row compares two medians about 3 ms apart against a
# 4 ms bound, and on this VM a 100-frame median moved by 1-2 ms between runs: more frames, in more windows
# interleaved with the in-process node's, keep the machine's drift out of that difference.
LATENCY_SPAN = 2
LATENCY_ROUNDS = 4


@dataclass
class RawFigures:
    single: Paced  # num_threads=1
    default: Paced  # the default thread policy
    pipeline: Paced | None  # VisionModel.detect, default policy
    default_slow: Paced  # the default thread policy paced at LATENCY_HZ (the latency stream's rate)
    runtime: str = ""  # the runtime `backend: auto` picked (what the node uses by default)


class RawBaseline:
    """Raw runs (1 thread, default policy) and the pipeline of both detectors, as paced blocks taken in
    rounds, in turn, so that a change in the machine's load falls on every figure alike. Rounds are also
    taken between the node windows (`round`), so the node figures and the raw runs they are divided by come
    from the same minutes. The default policy's raw run is also paced at the latency stream's rate: the
    longer a model idles between runs, the slower its next run (caches, sleeping pool threads), so latency
    is compared with a raw run at that rate."""

    def __init__(self, frame: np.ndarray, runs: int, pipeline: bool, rounds: int = 3) -> None:
        self.loops: dict[tuple[str, str], PacedLoop] = {}
        self.keep = []  # the models stay loaded until the figures are taken
        self.runtimes: dict[str, str] = {}
        self.pipeline = pipeline
        for label, (name, policy) in DETECTORS.items():
            for threads in (1, 0):
                model = Model(name, providers=["cpu"], num_threads=threads or policy)
                vision = VisionModel(model, model.labels)
                inputs, _ = vision._tensor(frame)
                kind = "single" if threads == 1 else "default"
                self.loops[(label, kind)] = PacedLoop(raw_call(model, inputs), own_thread=threads == 1)
                if threads == 0:
                    self.loops[(label, "slow")] = PacedLoop(self.loops[(label, kind)].fn, LATENCY_HZ)
                if threads == 0 and pipeline:

                    def detect(v: VisionModel = vision) -> list[Detection]:
                        return v.detect(frame)

                    self.loops[(label, "pipeline")] = PacedLoop(detect)
                self.keep.append((model, vision))
                self.runtimes[label] = f"{model.backend.kind}: {model.backend.info.get('execution_providers', '')}"
        self.per_block = max(1, math.ceil(runs / rounds))
        log(
            f"raw runs (1 thread, default policy){' and pipeline' if pipeline else ''} of {', '.join(DETECTORS)}: "
            f"{rounds} rounds of {self.per_block} runs each at {CAMERA_HZ:.0f} Hz ({self.per_block // 2} at "
            f"{LATENCY_HZ:.0f} Hz), and a round after each node window"
        )
        for _ in range(rounds):
            self.round()

    def round(self) -> None:
        """One block of every loop."""
        for (_, kind), loop in self.loops.items():
            loop.block(self.per_block // 2 if kind == "slow" else self.per_block)

    def figures(self) -> dict[str, RawFigures]:
        """The figures of all rounds; the models are released."""
        loops = self.loops
        figures = {
            label: RawFigures(
                loops[(label, "single")].result(),
                loops[(label, "default")].result(),
                loops[(label, "pipeline")].result() if self.pipeline else None,
                loops[(label, "slow")].result(),
                self.runtimes[label],
            )
            for label in DETECTORS
        }
        self.keep, self.loops = [], {}
        gc.collect()
        return figures


def other_core_rows(frame: np.ndarray, repeat: int) -> list[tuple[str, str, str]]:
    """The README's other core figures: classifier backends, image conversion, clouds, obstacles."""
    rows = []
    log("classifier, image conversion, object clouds, obstacles")
    calls: list[Callable[[], object]] = []
    labels: list[str] = []
    seen: set[tuple[str, str]] = set()
    for name, backend in (
        ("efficientnet_lite0", "auto"),
        ("efficientnet_lite0", "onnx"),
        ("efficientnet_lite0_tflite", "auto"),
    ):
        model = Model(name, providers=["cpu"], backend=backend)
        kind = model.backend.kind
        if (name, kind) in seen:
            continue  # auto already picked this runtime
        seen.add((name, kind))
        vision = VisionModel(model, model.labels)

        def classify(v: VisionModel = vision) -> object:
            return v.classify(frame, 5)

        calls += [raw_call(model, vision._tensor(frame)[0]), classify]
        labels.append(f"{name} ({kind}{', the default' if backend == 'auto' else ''})")
    times = timed_in_turn(calls, repeat)
    for label, infer, total in zip(labels, times[0::2], times[1::2]):
        rows.append(
            (
                f"{label}: raw run / whole classify pipeline (default threads, back to back, in turn)",
                f"{infer:.2f} / {total:.2f}",
                f"pipeline {total / infer:.2f}x raw",
            )
        )
    del calls
    gc.collect()
    # tracking must not slow the 30 Hz pipeline measurably (pipeline runs with and without, in turn)
    model = Model("ssd_mobilenet_v2_coco", providers=["cpu"])
    vision = VisionModel(model, model.labels)
    tracker = Tracker()

    def untracked(v: VisionModel = vision) -> object:
        return pipeline.run(v, frame)

    def with_ids(v: VisionModel = vision, t: Tracker = tracker) -> object:
        return pipeline.run(v, frame, tracker=t)

    plain, tracked = timed_in_turn([untracked, with_ids], repeat)
    rows.append(
        (
            "detector pipeline without / with tracking ids (in turn)",
            f"{plain:.2f} / {tracked:.2f}",
            f"tracking adds {tracked - plain:+.2f} ms",
        )
    )
    del model, vision
    gc.collect()
    raw = np.ascontiguousarray(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)).tobytes()
    ms = timed(lambda: imaging.to_rgb8(imaging.image_array(raw, "bgr8", 640, 480, 640 * 3), "bgr8"), repeat * 5)
    rows.append(("bgr8 message bytes -> RGB array", f"{ms:.2f}", ""))
    objects = [
        Box3D((-1.6 + (i % 5) * 0.7, -0.6 + (i // 5) * 0.7, 2.0), (-1.2 + (i % 5) * 0.7, -0.15 + (i // 5) * 0.7, 2.3))
        for i in range(10)
    ]
    scene = render(objects)
    dets = [Detection(i, "o", 0.9, b[0] - 8, b[1] - 8, b[2] + 8, b[3] + 8) for i, b in enumerate(scene.boxes_2d)]
    config = pointcloud.CloudConfig()
    ms = timed(
        lambda: pointcloud.objects_from_detections(scene.depth, scene.rgb, scene.intrinsics, dets, config), repeat
    )
    rows.append(("3D objects from 10 detections (depth 640x480, no inference)", f"{ms:.2f}", "target <= 10 ms"))
    depth_u16 = np.nan_to_num(scene.depth * 1000).astype(np.uint16)
    ms = timed(lambda: imaging.depth_to_metres(depth_u16, "16UC1"), repeat * 5)
    rows.append(("16UC1 depth -> metres", f"{ms:.2f}", ""))
    floor = render(objects[:3], wall_z=None)
    ms = timed(
        lambda: pointcloud.obstacles_from_depth(floor.depth, floor.rgb, floor.intrinsics, config), max(5, repeat // 4)
    )
    rows.append(("obstacles from depth (voxel, RANSAC ground, DBSCAN)", f"{ms:.2f}", ""))
    return rows


#: The segmentation rows: export name -> its options (torchvision's weights take ImageNet normalisation; the
#: SegFormer folder carries its own).
SEGMENTERS: dict[str, tuple[tuple[float, float, float], tuple[float, float, float]] | None] = {
    "lraspp": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    "segformer": None,
}


def segmentation_rows(frame: np.ndarray, repeat: int) -> list[tuple[str, str, str]]:
    """Class maps of the 640x480 photograph: the runtime call alone against the whole pipeline (preprocess, run,
    bilinear class map at the image's size, the message's bytes), in turn."""
    from ml_model_service.core.reading.preprocess import PreprocessConfig
    from ml_model_service.core.reading.vision import VisionConfig

    from ..harness.segmentation_exports import segmentation_export

    log("segmentation: LRASPP and SegFormer, runtime call against the pipeline")
    rows = []
    for name, norm in SEGMENTERS.items():
        e = segmentation_export(name)
        model = Model(str(e.path), providers=["cpu"])
        pre = PreprocessConfig(mean=norm[0], std=norm[1]) if norm else PreprocessConfig()
        vision = VisionModel(model, model.labels, VisionConfig(preprocess=pre))

        def whole(v: VisionModel = vision) -> bytes:
            seg = pipeline.run(v, frame).segmentation
            assert seg is not None
            return np.ascontiguousarray(seg.classes).tobytes()  # what the segmentation message carries

        call, ms = timed_in_turn([raw_call(model, vision._tensor(frame)[0]), whole], repeat)
        h, w = vision.input_hw or frame.shape[:2]
        rows.append(
            (
                f"{name} at {h}x{w} ({model.backend.kind}): runtime call / pipeline to a 640x480 class map",
                f"{call:.1f} / {ms:.1f}",
                f"pipeline {ms / call:.2f}x the call (target <= 1.15x)",
            )
        )
        del model, vision
        gc.collect()
    return rows


@dataclass
class NodeFigures:
    """What one vision node (in-process model) or the remote pair measured; None where not measured."""

    camera: StreamResult | None = None  # the 30 Hz stream
    latency: StreamResult | None = None  # the 10 Hz stream
    idle_unsubscribed: float | None = None  # % of a core, no frames
    idle_camera_unsubscribed: float | None = None  # % of a core, camera publishing, nobody listening
    subscribed_to_camera_unheard: bool | None = None  # the node subscribed the camera while nobody listened
    idle_subscribed: float | None = None  # % of a core, listened to, no frames
    idle_reference: float | None = None  # % of a core of a bare rclpy node with a 1 Hz timer, same window
    error: str = ""

    def failed(self, exc: Exception) -> None:
        self.error = str(exc)
        log(f"FAILED: {exc}")


def node_alone(
    client: Client,
    vision: NodeProcess,
    frame: np.ndarray,
    seconds: float,
    idle: bool,
    figures: NodeFigures,
    reference: NodeProcess | None = None,
) -> Camera:
    """A started vision node, alone on the machine (but for the idle `reference`): idle figures (when
    `idle`), then the 30 Hz stream. Returns the camera, left listening."""
    from .stream import Camera, idle_percent

    client.wait_ready(vision)
    time.sleep(2.0)  # start-up work (trial run, discovery) settles
    if idle:
        log(f"idle, nobody listening, no frames: {seconds:.0f} s")
        others = [reference] if reference is not None and reference.proc.poll() is None else []
        figures.idle_unsubscribed = idle_percent(vision, seconds, *others)
        if reference is not None:
            reference.stop()
    camera = Camera(client, vision.ns, frame)
    try:
        if idle:
            log(f"nobody listening, camera at {CAMERA_HZ:.0f} Hz: {seconds:.0f} s")
            _, cpu = camera.run(CAMERA_HZ, seconds, vision)
            figures.idle_camera_unsubscribed = 100 * cpu / seconds
            figures.subscribed_to_camera_unheard = camera.pub.get_subscription_count() > 0
        camera.listen(vision=vision)
        if idle:
            time.sleep(1.0)
            log(f"listened to, no frames: {seconds:.0f} s")
            figures.idle_subscribed = idle_percent(vision, seconds)
        log(f"{vision.ns}: {CAMERA_HZ:.0f} Hz stream, {seconds:.0f} s")
        figures.camera = camera.stream(vision, CAMERA_HZ, seconds)
    except BaseException:
        camera.close()
        raise
    return camera


def latency_in_turn(
    streams: list[tuple[NodeFigures, Camera, NodeProcess]], seconds: float, rounds: int, between: Callable[[], None]
) -> None:
    """10 Hz latency windows of each node, taken in turn `rounds` times (one window when alone), so that
    the machine's load falls on every node alike; each node gets `seconds` in all."""
    from .stream import BenchError

    rounds = rounds if len(streams) > 1 else 1
    for _ in range(rounds):
        for figures, camera, vision in streams:
            if figures.error:
                continue
            log(f"{vision.ns}: {LATENCY_HZ:.0f} Hz stream (latency), {seconds / rounds:.3g} s")
            try:
                window = camera.stream(vision, LATENCY_HZ, seconds / rounds)
            except BenchError as exc:
                figures.failed(exc)
                continue
            figures.latency = window if figures.latency is None else figures.latency + window
            if window.latencies_ms:
                log(
                    f"{vision.ns}: window median {statistics.median(window.latencies_ms):.1f} ms, "
                    f"{window.answered}/{window.sent} answered"
                )
            between()


def infer_round_trip(client: Client, service: NodeProcess, repeat: int) -> tuple[str, str, str]:
    """Infer through the model service against the same model in this process (median ms)."""
    from ml_model_service.ros.remote_model import RemoteError, RemoteModel

    name = f"{service.ns}/ml_model_service"
    deadline = time.monotonic() + 30
    while True:
        try:
            remote = RemoteModel(client.node, name, timeout=5.0)
            break
        except RemoteError:
            service.check()
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    local = Model(DETECTORS["ONNX"][0], providers=["cpu"])
    tensor = {local.metadata.inputs[0].name: np.zeros((1, 300, 300, 3), np.uint8)}
    t_local, t_remote = timed_in_turn([lambda: local.infer(tensor), lambda: remote.infer(tensor)], repeat)
    return (
        "Infer (SSD, 300x300 uint8) through the model service / in this process",
        f"{t_remote:.2f} / {t_local:.2f}",
        f"{t_remote / t_local:.2f}x",
    )


def measure_nodes(
    frame: np.ndarray, seconds: float, repeat: int, between: Callable[[], None], rounds: int = LATENCY_ROUNDS
) -> tuple[dict, list]:
    """The vision node in its own process for each detector, and the node with a model service.

    ONNX node alone: idle figures and the 30 Hz stream; then a model service, a remote-model vision node and
    a reference echo node (DDS and rclpy alone) start beside it; the echo node's 30 Hz stream; the three
    take 10 Hz latency windows in turn; then Infer through the model service. TFLite node alone: the 30 Hz
    and 10 Hz streams. `between` runs after each stream window (a round of raw runs)."""
    from ml_model_service.ros.remote_model import RemoteError

    from .stream import ECHO_NODE, REFERENCE_NODE, BenchError, Camera, Client, NodeProcess, start_script

    tmp = Path(tempfile.mkdtemp(prefix="bench-"))
    base = f"/bench_{os.getpid()}"
    client = Client()
    results = {label: NodeFigures() for label in (*DETECTORS, "remote", "echo")}
    rows: list[tuple[str, str, str]] = []
    nodes: list[NodeProcess] = []
    cameras: list[Camera] = []

    def start(kind: str, params: dict, ns: str) -> NodeProcess:
        log(f"starting {kind} in {ns} {params or '(default parameters)'}")
        nodes.append(NodeProcess.start(kind, tmp, params, ns))
        return nodes[-1]

    try:
        for label, (name, threads) in DETECTORS.items():
            figures = results[label]
            reference = start_script("reference", REFERENCE_NODE, tmp, f"{base}/reference") if label == "ONNX" else None
            params: dict = {} if name == "ssd_mobilenet_v2_coco" else {"model_path": name}
            vision = start(
                "vision_service",
                {**params, "num_threads": threads} if threads else params,
                f"{base}/{label.lower().replace(', ', '_').replace(' ', '_')}",
            )
            try:
                cameras.append(node_alone(client, vision, frame, seconds, label == "ONNX", figures, reference))
            except BenchError as exc:
                figures.failed(exc)
            finally:
                if reference is not None:
                    reference.stop()
                    figures.idle_reference = reference.idle
            between()
            streams = [(figures, cameras[-1], vision)] if not figures.error else []
            service = None
            if label == "ONNX":
                remote = results["remote"]
                service = start("model_service", {}, base)
                remote_vision = start("vision_service", {"model_service": f"{base}/ml_model_service"}, f"{base}/remote")
                try:
                    client.wait_ready(remote_vision)
                    time.sleep(2.0)
                    cameras.append(Camera(client, remote_vision.ns, frame))
                    cameras[-1].listen(vision=remote_vision)
                    streams.append((remote, cameras[-1], remote_vision))
                except BenchError as exc:
                    remote.failed(exc)
                echo = start_script("echo", ECHO_NODE, tmp, f"{base}/echo")
                nodes.append(echo)
                try:
                    cameras.append(Camera(client, echo.ns, frame))
                    log(f"{echo.ns}: reference echo node, {CAMERA_HZ:.0f} Hz stream, {seconds:.0f} s")
                    results["echo"].camera = cameras[-1].stream(echo, CAMERA_HZ, seconds)
                    streams.append((results["echo"], cameras[-1], echo))
                except BenchError as exc:
                    results["echo"].failed(exc)
            latency_in_turn(streams, LATENCY_SPAN * seconds, rounds, between)
            while cameras:
                cameras.pop().close()
            for node in nodes:
                if node.kind != "model_service":
                    node.stop()
            if service is not None and not results["remote"].error:
                log("Infer round trip through the model service against in this process")
                try:
                    rows.append(infer_round_trip(client, service, repeat))
                except (BenchError, RemoteError) as exc:
                    log(f"Infer through the model service FAILED: {exc}")
            while nodes:
                nodes.pop().stop()
    finally:
        for camera in cameras:
            camera.close()
        for node in nodes:
            node.stop()
        client.close()
    return results, rows


def fmt(value: float, digits: int = 1) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("yes" if ok else "**no**")


def print_raw(raw: dict[str, RawFigures], runs: int, note: str) -> None:
    threads = default_threads()
    print(
        f"\n### Raw model and core pipeline (SSD MobileNet V2 int8, 640x480 photograph; {runs} runs paced at "
        f"{CAMERA_HZ:.0f} Hz in blocks taken in turn; CPU = this process, idle between runs included; "
        "1 thread: the calling thread alone)\n"
    )
    print(f"{note}\n")
    print(
        f"| model | raw run, 1 thread: wall / CPU ms | raw run, default ({threads} threads): wall (p95) / CPU ms "
        f"| the same paced at {LATENCY_HZ:.0f} Hz: wall ms | core pipeline (VisionModel.detect): wall ms (p95) "
        "| pipeline ÷ raw |"
    )
    print("|---|---|---|---|---|---|")
    for label, f in raw.items():
        pipe = f.pipeline
        print(
            f"| {label} ({DETECTORS[label][0]}; {f.runtime}) | {fmt(f.single.wall_ms)} / {fmt(f.single.cpu_ms)} | "
            f"{fmt(f.default.wall_ms)} ({fmt(f.default.p95_ms)}) / {fmt(f.default.cpu_ms)} | "
            f"{fmt(f.default_slow.wall_ms)} | "
            f"{fmt(pipe.wall_ms) + ' (' + fmt(pipe.p95_ms) + ')' if pipe else 'not measured'} | "
            f"{fmt(pipe.wall_ms / f.default.wall_ms, 2) + 'x' if pipe else ''} |"
        )
    if "ONNX" in raw and "TFLite" in raw:
        o, t = raw["ONNX"], raw["TFLite"]
        print(
            f"\nTFLite ÷ ONNX, same thread policy: raw wall {t.default.wall_ms / o.default.wall_ms:.2f}x "
            f"(default threads), {t.single.wall_ms / o.single.wall_ms:.2f}x (1 thread)."
        )


def print_nodes(raw: dict[str, RawFigures], nodes: dict[str, NodeFigures], seconds: float, note: str) -> None:
    n_camera = round(CAMERA_HZ * seconds)
    print(
        f"\n### Vision node in its own process (default parameters; 640x480 rgb8 photograph published best "
        f"effort, depth 1; {seconds:.0f} s windows after 2 s warm-up; {LATENCY_SPAN * seconds:.0f} s of "
        f"{LATENCY_HZ:.0f} Hz frames per node, in {LATENCY_ROUNDS} windows of the in-process node, the "
        "model-service node and the echo reference taken in turn; node CPU from /proc, all its threads)\n"
    )
    print(f"{note}\n")
    print(
        f"| measure (ratios against the raw model of this run) | {' | '.join(DETECTORS)} | must reach (ONNX = "
        "the default model and policy) | met |"
    )
    print("|---" * (len(DETECTORS) + 3) + "|")

    def measured(stream: StreamResult | None) -> StreamResult:
        """The stream's result; AttributeError (shown as failed or n/a by `cell`) where it was not measured."""
        if stream is None:
            raise AttributeError("stream not measured")
        return stream

    def cell(label: str, text: Callable[[NodeFigures, RawFigures], str]) -> str:
        f = nodes.get(label)
        if f is None:
            return "not measured"
        try:
            return text(f, raw[label])
        except (AttributeError, TypeError, ZeroDivisionError):
            return "failed" if f.error else "n/a"

    def cells(text: Callable[[NodeFigures, RawFigures], str]) -> str:
        return " | ".join(cell(label, text) for label in DETECTORS)

    others = " | ".join("—" for _ in list(DETECTORS)[1:])  # the rows of the default model alone
    onnx = nodes.get("ONNX") or NodeFigures()
    onnx_raw = raw["ONNX"]

    def answered(f: NodeFigures, _: RawFigures) -> str:
        c = measured(f.camera)
        return f"{c.answered} / {c.sent} ({c.fraction:.2f})"

    ok = onnx.camera.fraction >= 0.95 if onnx.camera else None
    print(
        f"| {CAMERA_HZ:.0f} Hz stream ({n_camera} frames): frames answered on `detections` / sent | "
        f"{cells(answered)} | ≥ 0.95 | {verdict(ok)} |"
    )

    def cpu_ratio(f: NodeFigures, r: RawFigures) -> str:
        c = measured(f.camera)
        ratio = c.cpu_per_answer_ms / r.single.cpu_ms
        return f"{fmt(c.cpu_per_answer_ms)} ms / {fmt(r.single.cpu_ms)} ms = {ratio:.2f}x"

    ok = (
        (onnx.camera.cpu_per_answer_ms / onnx_raw.single.cpu_ms <= 1.3)
        if onnx.camera and onnx.camera.answered
        else None
    )
    print(
        f"| node CPU per answered frame ÷ CPU of one single-threaded raw run | {cells(cpu_ratio)} | "
        f"≤ 1.3x | {verdict(ok)} |"
    )

    def camera_latency(f: NodeFigures, _: RawFigures) -> str:
        c = measured(f.camera)
        return f"{fmt(c.median_ms)} ms (p95 {fmt(c.p95_ms)})"

    print(
        f"| latency at {CAMERA_HZ:.0f} Hz, stamp → `detections` received: median (p95) | {cells(camera_latency)} | | |"
    )

    def latency(f: NodeFigures, r: RawFigures) -> str:
        lat = measured(f.latency)
        return (
            f"{fmt(lat.median_ms)} ms (p95 {fmt(lat.p95_ms)}; {lat.answered}/{lat.sent}); limit "
            f"{1.2 * r.default_slow.wall_ms + 3:.1f} ms from raw {fmt(r.default_slow.wall_ms)} ms at "
            f"{LATENCY_HZ:.0f} Hz ({1.2 * r.default.wall_ms + 3:.1f} from raw {fmt(r.default.wall_ms)} at "
            f"{CAMERA_HZ:.0f} Hz)"
        )

    limit = 1.2 * onnx_raw.default_slow.wall_ms + 3
    ok = onnx.latency.median_ms <= limit if onnx.latency and onnx.latency.answered else None
    print(
        f"| latency at {LATENCY_HZ:.0f} Hz, model in process: median (p95) | {cells(latency)} | "
        f"≤ 1.2 × raw + 3 ms (raw = default-policy median wall, paced at "
        f"{LATENCY_HZ:.0f} Hz) | {verdict(ok)} |"
    )

    remote = nodes.get("remote")
    if remote is not None:
        lat = remote.latency
        text = (
            f"{fmt(lat.median_ms)} ms (p95 {fmt(lat.p95_ms)}; {lat.answered}/{lat.sent})"
            if lat
            else ("failed" if remote.error else "n/a")
        )
        ok = None
        if lat and lat.answered and onnx.latency and onnx.latency.answered:
            ok = lat.median_ms <= onnx.latency.median_ms + 4
            text += f"; limit {onnx.latency.median_ms + 4:.1f} ms"
        print(
            f"| the same with `model_service:=…` (model in a model service process): median (p95) | {text} | "
            f"{others} | ≤ in-process + 4 ms | {verdict(ok)} |"
        )

    echo = nodes.get("echo")
    if echo is not None:
        parts = []
        if echo.camera is not None:
            c = echo.camera
            parts.append(
                f"{CAMERA_HZ:.0f} Hz: {c.answered}/{c.sent} answered, {fmt(c.cpu_per_answer_ms)} ms CPU per "
                f"frame, latency {fmt(c.median_ms)} ms"
            )
        if echo.latency is not None:
            lat = echo.latency
            parts.append(f"{LATENCY_HZ:.0f} Hz: latency {fmt(lat.median_ms)} ms (p95 {fmt(lat.p95_ms)})")
        text = "; ".join(parts) or ("failed" if echo.error else "not measured")
        print(
            f"| reference, not a target: a bare rclpy node answering each image at once with an empty "
            f"`detections` (DDS and rclpy alone, no model) | {text} | {others} | | |"
        )

    idle_limit = 0.5

    def idle_row(what: str, value: float | None, target: bool, note: str = "") -> None:
        ok = (value <= idle_limit) if target and value is not None else None
        print(
            f"| {what} | {fmt(value, 2) + ' %' if value is not None else 'not measured'}{note} | {others} | "
            f"{f'≈ 0 (≤ {idle_limit} % of a core)' if target else ''} | {verdict(ok) if target else ''} |"
        )

    reference = onnx.idle_reference
    idle_row(
        f"node CPU, nobody listening to any output, no frames ({seconds:.0f} s), % of a core",
        onnx.idle_unsubscribed,
        True,
        "" if reference is None else f" (a bare rclpy node with a 1 Hz timer, same window: {reference:.2f} %)",
    )
    unheard = onnx.subscribed_to_camera_unheard
    idle_row(
        f"node CPU, nobody listening, camera publishing at {CAMERA_HZ:.0f} Hz, % of a core",
        onnx.idle_camera_unsubscribed,
        True,
        "" if unheard is None else ("; the node **subscribed** the camera" if unheard else "; camera not subscribed"),
    )
    idle_row("node CPU, `detections` listened to, no frames, % of a core", onnx.idle_subscribed, True)
    for label, f in nodes.items():
        if f.error:
            print(f"\n{label}: measurement failed: {f.error.splitlines()[0]}")


def print_rows(title: str, rows: list[tuple[str, str, str]]) -> None:
    if rows:
        print(f"\n### {title}\n\n| what | median ms | note |\n|---|---|---|")
        for what, ms, note in rows:
            print(f"| {what} | {ms} | {note} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=60, help="runs per core figure (paced at 30 Hz)")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each stream and idle window")
    parser.add_argument("--core-only", action="store_true", help="no ROS: raw model, pipeline, other core figures")
    parser.add_argument(
        "--only",
        choices=("core", "node", "peer"),
        help="core = --core-only; node = the raw model (for the ratios) and the nodes only; peer = the side by side",
    )
    args = parser.parse_args()
    isolate_dds(profile=True)  # as env.sh: the benchmark and the nodes it starts use the shipped profile
    core_only = args.core_only or args.only == "core"
    started = time.monotonic()
    frame = photograph()
    print(f"machine: {machine()}")
    if args.only == "peer":
        load = OtherLoad()
        bench_peer.report(*bench_peer.measure())
        print(f"\n{load_note(load.cores())}")
        return 0
    print(
        f"DDS: ROS_DOMAIN_ID={os.environ['ROS_DOMAIN_ID']}, profile "
        f"{os.environ.get(dds.PROFILE_VARIABLES[0], '(builtin transports)')}"
    )
    load = OtherLoad()
    baseline = RawBaseline(frame, args.repeat, pipeline=args.only != "node")
    raw_note = load_note(load.cores())
    rows = [] if args.only == "node" else other_core_rows(frame, max(10, args.repeat // 2))
    rows += [] if args.only == "node" else segmentation_rows(frame, max(10, args.repeat // 3))
    peer: tuple | None = None
    if args.only != "node":
        log("side by side with Ultralytics (bench_peer)")
        load = OtherLoad()
        peer = (*bench_peer.measure(), load_note(load.cores()))
    nodes: dict[str, NodeFigures] = {}
    multicam: list[str] = []
    if not core_only:
        load = OtherLoad()
        nodes, dds_rows = measure_nodes(frame, args.seconds, args.repeat // 2 or 1, baseline.round)
        node_note = load_note(load.cores())
        rows += dds_rows
        from .multicam import batching_rows, multicam_rows

        log("several cameras: one node with 4 cameras against 4 single-camera nodes (bench/multicam.py)")
        multicam = multicam_rows(frame, max(args.seconds, 20.0))
        log("batching: a dynamic-batch YOLOv8n, 4 frames in one call against in turn (bench/multicam.py)")
        multicam += ["", *batching_rows()]
    raw = baseline.figures()
    print_raw(raw, args.repeat, raw_note)
    if nodes:
        print_nodes(raw, nodes, args.seconds, node_note)
    print_rows("Other figures", rows)
    if not core_only and multicam:
        print("\n### Several cameras, one node\n")
        print("\n".join(multicam))
    if peer is not None:
        bench_peer.report(peer[0], peer[1])
        print(f"\n{peer[2]}")
    print(
        f"\n(one run, {time.monotonic() - started:.0f} s, load average at the end {os.getloadavg()[0]:.2f}; "
        "compare rows of the same run: absolute figures move between runs on a shared machine)"
    )
    return 1 if any(f.error for f in nodes.values()) else 0


if __name__ == "__main__":
    raise SystemExit(main())
