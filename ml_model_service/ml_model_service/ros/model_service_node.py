"""The ML model service node: serves Infer, GetMetadata and LoadModel for one model.

Infer requests are served by threads of their own (`direct.ServiceThreads`, one wake-up per request, no
executor hand-off), so concurrent requests run in parallel and never block metadata or parameter services,
which a small executor serves. A model swap (LoadModel, or setting
`model_path`) loads the new model fully and then replaces a single reference: every Infer call is
answered by the old or the new model, and a model that fails to load leaves the old one serving.

Trust boundary: files load only from the operator's allowed folders (fixed at start-up), a swap can be
switched off (`allow_model_swap`), an Infer request is capped in bytes (`max_request_bytes`) and in
concurrent calls (`max_concurrent_infer`, more are answered "busy" at once; up to `infer_queue_depth`
requests wait for that answer), and every answer says which model generation produced it.

Start-up, a parameter change and ~/load_model load through one path (`_load`) with one error behaviour:
a model that cannot be loaded is refused with the reason, and the node keeps serving (at start-up: no
model, status ERROR with the reason, GetMetadata and LoadModel answered).
"""

from __future__ import annotations

import threading
import time
from dataclasses import replace

from rcl_interfaces.msg import SetParametersResult
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.lifecycle import LifecycleState, TransitionCallbackReturn
from rclpy.parameter import Parameter

from ml_model_service_interfaces.msg import ModelMetadata as ModelMetadataMsg
from ml_model_service_interfaces.srv import GetMetadata, Infer, LoadModel

from ..core import tensors
from ..core.loading.model import Model
from ..core.loading.trust import SWAP_DISABLED
from ..core.runtimes.backend import ModelLoadError
from ..core.runtimes.batcher import DynamicBatcher
from ..core.runtimes.threads import pin_caller, pool_pinned
from ..core.settings.params import RUNNER
from ..core.settings.tables import MODEL_PARAMS, MODEL_SERVICE_PARAMS, validate
from ..core.settings.typed import ModelServiceSettings
from ..core.tensors import TensorError
from . import conversions
from .direct import ServiceThreads
from .loading import load_model, start_policy
from .managed import ManagedNode, spin_node
from .parameters import declare, read, typed_values
from .status import ERROR, OK, Status

_RELOAD_PARAMS = {p.name for p in MODEL_PARAMS if p.effective_tier == RUNNER}  # a change reloads the model


class ModelServiceNode(ManagedNode):
    """Loads a model on the machine and runs it for anyone on the ROS graph.

    A managed (lifecycle) node: configure loads the model, activate serves Infer, deactivate stops serving
    it, cleanup frees the model; GetMetadata and LoadModel answer in every state (LoadModel loads only once
    configured). With `autostart` (the default) it configures and activates itself, and a start-up model
    that cannot be loaded leaves it up with no model (status ERROR, the reason); without, configure then
    returns FAILURE with the reason logged."""

    def __init__(self, **kwargs) -> None:
        super().__init__("ml_model_service", **kwargs)
        self.settings = ModelServiceSettings.of(declare(self, MODEL_SERVICE_PARAMS))
        # The allowed folders are fixed here, from the start-up values: a caller who changes
        # model_repository later cannot widen them.
        self.policy = start_policy(self.settings)
        self.model: Model | None = None
        self._load_lock = threading.RLock()  # one load + swap + parameter update at a time
        self._syncing = threading.local()  # set while the node writes its own parameters after a load
        # The generation starts at the start time (microseconds) so a restarted service never repeats one.
        self._generation = time.time_ns() // 1000
        self._infer_slots = threading.BoundedSemaphore(self.settings.max_concurrent_infer)
        self.batcher = DynamicBatcher(self.settings.max_batch, self.settings.batch_wait)
        self._infer_thread = threading.local()  # per Infer thread: whether it is pinned (see _place)
        self.infer_threads: ServiceThreads | None = None
        self.counters = {"infer_ok": 0, "infer_failed": 0, "infer_busy": 0, "loads": 0, "load_failures": 0}
        self.load_error = ""  # why the configured model did not load ("" = it did, or none was tried)
        self.get_logger().info(
            f"model and label files load from: {self.policy.describe()}; model swaps "
            f"{'allowed' if self.settings.allow_model_swap else 'disabled'}"
        )
        self.create_service(GetMetadata, "~/get_metadata", self._on_metadata, callback_group=ReentrantCallbackGroup())
        self.create_service(LoadModel, "~/load_model", self._on_load, callback_group=MutuallyExclusiveCallbackGroup())
        self.add_pre_set_parameters_callback(typed_values(MODEL_SERVICE_PARAMS))
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.status = Status(
            self,
            "ml_model_service",
            [],
            self._states,
            lambda: {
                **{k: str(v) for k, v in self.counters.items()},
                **self._batch_counters(),
                "lifecycle": self.stage,
            },
        )
        self.start_up(self.settings.autostart)

    def _batch_counters(self) -> dict[str, str]:
        """Dynamic batching's counters, when it is on."""
        if self.batcher.max_batch <= 1:
            return {}
        stats = self.batcher.stats
        return {
            "batched_calls": str(stats.calls),
            "batched_requests": str(stats.requests),
            "largest_batch": str(stats.largest),
        }

    # --- lifecycle --------------------------------------------------------------------------------
    def on_configure(self, _state: LifecycleState) -> TransitionCallbackReturn:
        """Load the model (the one loading path)."""
        model, reason = self._load(self.settings)
        if model is not None:
            self._swap(model)
        else:
            self.load_error = reason
            self.get_logger().error(f"no model loaded: {reason}. Call ~/load_model or set model_path.")
            if not self.settings.autostart:
                return self.configure_failed(reason)
        self.stage = "inactive"
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, _state: LifecycleState) -> TransitionCallbackReturn:
        """Serve Infer: one thread more than the allowed calls, which answers "busy" while all are running."""
        self.infer_threads = ServiceThreads(
            self,
            [(Infer, "~/infer", self._on_infer)],
            self.settings.max_concurrent_infer + 1,
            queue_depth=self.settings.infer_queue_depth,
        )
        self.stage = "active"
        return TransitionCallbackReturn.SUCCESS

    def _stop_work(self) -> None:
        threads = getattr(self, "infer_threads", None)
        if threads is not None:
            threads.stop()
        self.infer_threads = None

    def _clean_up(self) -> None:
        with self._load_lock:
            self.model = None

    def _states(self) -> list[tuple[bytes, str]]:
        model = self.model
        if self.stage != "active" and not self.load_error:
            return [(OK, self.stage)]  # the lifecycle manager's choice, not a fault
        if model is None:
            return [(ERROR, f"no model loaded: {self.load_error}" if self.load_error else "no model loaded")]
        return [
            (
                OK,
                f"serving {model.metadata.name} (generation {model.metadata.generation}, "
                f"{model.backend.info.get('execution_providers', '')})"
                + (f"; {model.backend.info['runtime_choice']}" if model.backend.info.get("runtime_choice") else ""),
            )
        ]

    # --- model swaps ------------------------------------------------------------------------------
    def _load(
        self, s: ModelServiceSettings, model_path: str | None = None, label_path: str | None = None
    ) -> tuple[Model | None, str]:
        """The one loading path (start-up, parameter change, ~/load_model): (model, "") or (None, why not).
        Any failure is a refusal: a model file is untrusted, whatever its loader raises."""
        try:
            return load_model(s, model_path, label_path, policy=self.policy), ""
        except (ModelLoadError, OSError, ValueError) as exc:
            return None, str(exc)
        except Exception as exc:  # an unexpected failure: still a refusal, the node keeps serving
            return None, f"{type(exc).__name__}: {exc}"

    def _swap(self, model: Model) -> None:
        with self._load_lock:
            self._generation += 1
            model.metadata.generation = self._generation
            self.model = model  # one reference assignment: in-flight calls keep the model they started with
            self.load_error = ""
            self.counters["loads"] += 1
        for warning in model.warnings:
            self.get_logger().warning(warning)
        labels = model.labels
        self.get_logger().info(
            f"serving {model.path} (generation {model.metadata.generation}, {model.metadata.type}, "
            f"{model.backend.info.get('execution_providers')}; {len(labels) if labels else 0} labels"
            f"{', SHA256 verified' if model.digest else ''}): {model.metadata.describe_tensors()}"
        )
        if model.backend.info.get("runtime_choice"):  # backend auto: which runtime and why; the first load's cost
            self.get_logger().info(f"{model.metadata.name}: {model.backend.info['runtime_choice']}")

    def _on_set_parameters(self, params) -> SetParametersResult:
        changed = {k: v for k, v in read(params).items() if k in _RELOAD_PARAMS}
        if not changed:
            return SetParametersResult(successful=True)
        if getattr(self._syncing, "active", False):  # our own write after ~/load_model: already loaded
            return SetParametersResult(successful=True)
        reason = validate({**vars(self.settings), **changed}, MODEL_SERVICE_PARAMS)
        if reason:
            return SetParametersResult(successful=False, reason=reason)
        if self.stage.startswith("unconfigured"):  # loaded at configure
            self.settings = self.settings.updated(changed)
            return SetParametersResult(successful=True)
        if not self.settings.allow_model_swap:
            self.get_logger().warning(f"parameter change {sorted(changed)} refused: {SWAP_DISABLED}")
            return SetParametersResult(successful=False, reason=SWAP_DISABLED)
        candidate = self.settings.updated(changed)
        with self._load_lock:
            model, reason = self._load(candidate)
            if model is None:  # any failure keeps the old model serving
                self.counters["load_failures"] += 1
                self.get_logger().error(f"parameter change rejected, old model keeps serving: {reason}")
                return SetParametersResult(successful=False, reason=reason)
            self.settings = candidate
            self._swap(model)
        return SetParametersResult(successful=True)

    def _on_load(self, request: LoadModel.Request, response: LoadModel.Response) -> LoadModel.Response:
        if not self.settings.allow_model_swap:
            return self._load_failed(response, request.model_path, SWAP_DISABLED)
        if self.stage.startswith("unconfigured") or self.stage == "finalized":
            return self._load_failed(response, request.model_path, f"the node is {self.stage}: configure it first")
        with self._load_lock:
            model, reason = self._load(self.settings, request.model_path, request.label_path)
            if model is None:
                return self._load_failed(response, request.model_path, reason)
            self._swap(model)
            self._sync_parameters(request.model_path, request.label_path)
        response.success = True
        response.message = f"loaded {model.path} (generation {model.metadata.generation})" + "".join(
            f"; warning: {w}" for w in model.warnings
        )
        response.metadata = conversions.metadata_to_msg(model.metadata)
        return response

    def _load_failed(self, response: LoadModel.Response, ref: str, reason: str) -> LoadModel.Response:
        self.counters["load_failures"] += 1
        response.success = False
        response.message = f"could not load {ref!r}; the previous model keeps serving: {reason}"
        self.get_logger().error(response.message, throttle_duration_sec=1.0)
        model = self.model
        response.metadata = conversions.metadata_to_msg(model.metadata) if model else ModelMetadataMsg()
        return response

    def _sync_parameters(self, model_path: str, label_path: str) -> None:
        """Make model_path / label_path say what ~/load_model loaded, without loading it again."""
        self._syncing.active = True
        try:
            results = self.set_parameters(
                [
                    Parameter("model_path", Parameter.Type.STRING, model_path),
                    Parameter("label_path", Parameter.Type.STRING, label_path),
                ]
            )
        finally:
            self._syncing.active = False
        if all(r.successful for r in results):
            self.settings = replace(self.settings, model_path=model_path, label_path=label_path)
        else:
            self.get_logger().warning(f"model_path/label_path could not be updated: {[r.reason for r in results]}")

    # --- serving ----------------------------------------------------------------------------------
    def _on_metadata(self, _request, response: GetMetadata.Response) -> GetMetadata.Response:
        model = self.model
        if model is None:
            response.success, response.message = False, "no model loaded"
            response.metadata = ModelMetadataMsg()
            return response
        response.success, response.message = True, ""
        response.metadata = conversions.metadata_to_msg(model.metadata)
        return response

    def _on_infer(self, request: Infer.Request, response: Infer.Response) -> Infer.Response:
        if not self._infer_slots.acquire(blocking=False):
            limit = self.settings.max_concurrent_infer
            response.success = False
            response.message = f"busy: {limit} Infer calls are already running (max_concurrent_infer = {limit}); retry"
            model = self.model
            response.generation = model.metadata.generation if model else 0
            self.counters["infer_busy"] += 1
            self.get_logger().warning(response.message, throttle_duration_sec=5.0)
            return response
        try:
            return self._infer(request, response)
        finally:
            self._infer_slots.release()

    def _place(self, model: Model) -> None:
        """Keep this Infer thread off the cores of the model's pinned pool threads (`pin_threads`): a caller
        free to run anywhere lands on the pool's core and the two queue there. Set only when the model's
        placement changes."""
        pin = pool_pinned(model.backend)
        if getattr(self._infer_thread, "pinned", False) != pin:
            self._infer_thread.pinned = pin
            try:
                pin_caller(pin)
            except (OSError, ValueError) as exc:
                self.get_logger().warning(f"Infer thread affinity could not be set: {exc}", throttle_duration_sec=60.0)

    def _infer(self, request: Infer.Request, response: Infer.Response) -> Infer.Response:
        model = self.model
        response.generation = model.metadata.generation if model else 0
        if model is not None:
            self._place(model)
        try:
            if model is None:
                raise RuntimeError("no model loaded")
            max_bytes = self.settings.max_request_bytes
            tensors.check_request_size(
                ((m.name, m.data_type, list(m.shape), len(m.data)) for m in request.inputs), max_bytes
            )
            inputs = {}
            for msg in request.inputs:
                if msg.name in inputs:
                    raise TensorError(f"tensor {msg.name!r} appears twice in the request")
                inputs[msg.name] = conversions.tensor_from_msg(msg, max_bytes=max_bytes, allow_empty=False)
            outputs = self.batcher.infer(model, inputs)
            response.outputs = [conversions.tensor_to_msg(name, array) for name, array in outputs.items()]
            response.success, response.message = True, ""
            self.counters["infer_ok"] += 1
        except TensorError as exc:
            response.success, response.message = False, f"bad request: {exc}"
            self.counters["infer_failed"] += 1
            self.get_logger().warning(response.message[:500], throttle_duration_sec=1.0)
        except Exception as exc:  # the runtime refused the inputs (e.g. an open dimension it cannot take)
            response.success, response.message = False, f"inference failed: {type(exc).__name__}: {exc}"[:2000]
            self.counters["infer_failed"] += 1
            self.get_logger().error(response.message[:500], throttle_duration_sec=1.0)
        return response


def main(args=None) -> None:
    """Run the node; Infer has its own threads, and two executor threads keep metadata answered while a
    model loads."""
    spin_node(ModelServiceNode, args, threads=2)


if __name__ == "__main__":
    main()
