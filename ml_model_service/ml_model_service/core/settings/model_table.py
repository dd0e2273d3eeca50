"""The model parameters both nodes share (`MODEL_PARAMS`), how a node comes up (`LIFECYCLE_PARAMS`) and the
model service's own (`MODEL_SERVICE_PARAMS`); `tables` adds the vision node's and the checks on a set of
values."""

from __future__ import annotations

from ..runtimes.backend import DEFAULT_PROVIDERS
from ..runtimes.oip_backend import DEFAULT_TIMEOUT_S
from ..runtimes.registry import BACKEND_CHOICES
from .params import RUNNER, Param

MODEL_PARAMS = [
    Param(
        "model_path",
        "",
        "Model file (.onnx/.tflite), a model repository name, or a bundled name "
        "(ssd_mobilenet_v2_coco, ssd_mobilenet_v2_coco_tflite, efficientnet_lite0, efficientnet_lite0_tflite). "
        "Empty: the bundled SSD detector. Or a model on an Open Inference Protocol server: "
        "grpc://HOST:PORT/MODEL[/VERSION] or http://HOST:PORT/MODEL[/VERSION]. Settable at run time (hot swap; "
        "refused if it fails to load).",
        tier=RUNNER,
    ),
    Param("label_path", "", "Label file; empty: labels beside the model, or embedded in it.", tier=RUNNER),
    Param(
        "backend",
        "auto",
        "Runtime: auto (the runtimes that load the file are timed at its first load on this machine and the "
        "fastest whose outputs match the file's own runtime's runs it: .onnx onnxruntime, .tflite LiteRT, .xml "
        "OpenVINO; cached in ~/.cache/ml_model_service), onnx, tflite or openvino.",
        choices=BACKEND_CHOICES,
        tier=RUNNER,
    ),
    Param(
        "execution_providers",
        list(DEFAULT_PROVIDERS),
        "onnxruntime providers in order of preference "
        "(cuda, tensorrt, cpu, or full names). Unavailable ones are skipped with a warning.",
        tier=RUNNER,
    ),
    Param(
        "num_threads",
        0,
        "Inference threads (0 = one per CPU core, for every backend; in a vision node with `cameras`, one per "
        "call, with one call per core at once); at most one per CPU core the node may use.",
        0,
        256,
        tier=RUNNER,
    ),
    Param(
        "pin_threads",
        True,
        "onnxruntime and LiteRT: keep each inference pool thread on its own core, apart "
        "from the first allowed core, which is left to the thread that calls the model (the vision node's "
        "worker, see pin_worker; the model service's Infer threads): a free pool thread is woken onto the "
        "caller's busy core, and the two then take turns there. Turn off where other busy processes share "
        "those cores.",
        tier=RUNNER,
    ),
    Param(
        "model_repository",
        "",
        "Folder of models addressable by name: <name>/ (one model file + labels.txt) "
        "or <name>.onnx/.tflite with <name>.txt.",
        tier=RUNNER,
    ),
    Param(
        "allowed_paths",
        [],
        "Folders model and label files may be loaded from (after resolving '..' and "
        "symlinks). Empty: the bundled models and model_repository only.",
        read_only=True,
    ),
    Param(
        "allowed_servers",
        [],
        "Inference servers (host:port) that model_path may name at run time "
        "(grpc://HOST:PORT/MODEL[/VERSION], http://...). The start-up model_path's server is always allowed; "
        "others are refused.",
        read_only=True,
    ),
    Param(
        "server_timeout",
        DEFAULT_TIMEOUT_S,
        "Seconds any request to an inference server may take (connect, metadata, inference).",
        0.1,
        600.0,
        tier=RUNNER,
    ),
    Param("allow_model_swap", True, "Allow changing the model at run time (~/load_model, model_path).", read_only=True),
]

#: both nodes: how they come up (managed by a lifecycle manager, or on their own)
LIFECYCLE_PARAMS = [
    Param(
        "autostart",
        True,
        "Configure (load and check the model) and activate (subscribe and publish) at "
        "start-up. false: start unconfigured, for a lifecycle manager (nav2's lifecycle_manager, `ros2 lifecycle "
        "set NODE configure` then `activate`); a transition that fails returns FAILURE and logs why.",
        read_only=True,
    ),
]

MODEL_SERVICE_PARAMS = (
    MODEL_PARAMS
    + LIFECYCLE_PARAMS
    + [
        Param(
            "max_request_bytes",
            268435456,
            "Largest Infer request (all input tensors together), bytes.",
            1,
            4294967296,
            read_only=True,
        ),
        Param(
            "max_concurrent_infer",
            4,
            "Infer calls run at once; more are answered at once with a 'busy' refusal.",
            1,
            64,
            read_only=True,
        ),
        Param(
            "max_batch",
            0,
            "Dynamic batching: Infer requests (of a model whose inputs have an open batch axis, with the same "
            "shapes otherwise) that wait together go through one inference call, at most this many. 0 or 1: each "
            "call on its own. Helps on accelerators; on a CPU a batch costs about what its calls cost.",
            0,
            64,
            read_only=True,
        ),
        Param(
            "batch_wait",
            0.0,
            "Dynamic batching: seconds the oldest waiting Infer request may wait for others to fill a batch "
            "(0: the requests that queued while the last call ran go together at once).",
            0.0,
            1.0,
            read_only=True,
        ),
        Param(
            "infer_queue_depth",
            100,
            "Infer requests held while they wait for a serving thread (the service's "
            "request and response queues): a burst of up to this many calls is answered in full, each with a result "
            "or 'busy'; a deeper burst loses its oldest requests in DDS. A caller with many calls in flight needs a "
            "client queue as deep (rclpy's default is 10).",
            1,
            10000,
            read_only=True,
        ),
    ]
)
