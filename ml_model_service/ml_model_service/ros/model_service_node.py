"""The ML model service node: serves Infer, GetMetadata and LoadModel for one model.

Inference runs in a reentrant callback group on a multithreaded executor, so concurrent requests run in
parallel and never block metadata or parameter services. A model swap (LoadModel, or setting
`model_path`) loads the new model fully and then replaces a single reference: every Infer call is
answered by the old or the new model, and a model that fails to load leaves the old one serving.
"""
from __future__ import annotations

import threading
import traceback

from rcl_interfaces.msg import SetParametersResult
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.node import Node

from ml_model_service_interfaces.msg import ModelMetadata as ModelMetadataMsg
from ml_model_service_interfaces.srv import GetMetadata, Infer, LoadModel

from ..core.backends import ModelLoadError
from ..core.labels import Labels
from ..core.model import Model
from ..core.tensors import TensorError
from . import conversions
from .common import load_model, spin_node
from .parameters import MODEL_SERVICE_PARAMS, declare

_RELOAD_PARAMS = {"model_path", "label_path", "backend", "execution_providers", "num_threads", "model_repository"}


class ModelServiceNode(Node):
    """Loads a model on the machine and runs it for anyone on the ROS graph."""

    def __init__(self, **kwargs) -> None:
        super().__init__("ml_model_service", **kwargs)
        self.params = declare(self, MODEL_SERVICE_PARAMS)
        self.model: Model | None = None
        self._swap_lock = threading.Lock()
        self.counters = {"infer_ok": 0, "infer_failed": 0, "loads": 0, "load_failures": 0}
        try:
            self._swap(load_model(self.params))
        except (ModelLoadError, OSError, ValueError) as exc:
            self.get_logger().error(f"no model loaded: {exc}. Call ~/load_model or set model_path.")

        infer_group = ReentrantCallbackGroup()
        self.create_service(Infer, "~/infer", self._on_infer, callback_group=infer_group)
        self.create_service(GetMetadata, "~/get_metadata", self._on_metadata, callback_group=ReentrantCallbackGroup())
        self.create_service(LoadModel, "~/load_model", self._on_load, callback_group=MutuallyExclusiveCallbackGroup())
        self.add_on_set_parameters_callback(self._on_set_parameters)

    # --- model swaps ------------------------------------------------------------------------------
    def _swap(self, model: Model) -> None:
        with self._swap_lock:
            self.model = model  # one reference assignment: in-flight calls keep the model they started with
            self.counters["loads"] += 1
        for warning in model.warnings:
            self.get_logger().warning(warning)
        labels: Labels | None = model.labels
        self.get_logger().info(
            f"serving {model.path} ({model.metadata.type}, {model.backend.info.get('execution_providers')}; "
            f"{len(labels) if labels else 0} labels): {model.metadata.describe_tensors()}")

    def _on_set_parameters(self, params) -> SetParametersResult:
        changed = {p.name: p.value for p in params if p.name in _RELOAD_PARAMS}
        if not changed:
            return SetParametersResult(successful=True)
        candidate = {**self.params, **{k: (list(v) if isinstance(v, (list, tuple)) else v)
                                       for k, v in changed.items()}}
        try:
            model = load_model(candidate)
        except Exception as exc:  # any failure keeps the old model serving
            self.counters["load_failures"] += 1
            self.get_logger().error(f"parameter change rejected, old model keeps serving: {exc}")
            return SetParametersResult(successful=False, reason=str(exc))
        self.params = candidate
        self._swap(model)
        return SetParametersResult(successful=True)

    def _on_load(self, request: LoadModel.Request, response: LoadModel.Response) -> LoadModel.Response:
        try:
            model = load_model(self.params, request.model_path, request.label_path)
        except Exception as exc:
            self.counters["load_failures"] += 1
            response.success = False
            response.message = f"could not load {request.model_path!r}; the previous model keeps serving: {exc}"
            self.get_logger().error(response.message)
            if self.model is not None:
                response.metadata = conversions.metadata_to_msg(self.model.metadata)
            return response
        self._swap(model)
        response.success = True
        response.message = f"loaded {model.path}" + "".join(f"; warning: {w}" for w in model.warnings)
        response.metadata = conversions.metadata_to_msg(model.metadata)
        return response

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
        model = self.model
        try:
            if model is None:
                raise RuntimeError("no model loaded")
            inputs = {}
            for msg in request.inputs:
                if msg.name in inputs:
                    raise TensorError(f"tensor {msg.name!r} appears twice in the request")
                inputs[msg.name] = conversions.tensor_from_msg(msg)
            outputs = model.infer(inputs)
            response.outputs = [conversions.tensor_to_msg(name, array) for name, array in outputs.items()]
            response.success, response.message = True, ""
            self.counters["infer_ok"] += 1
        except TensorError as exc:
            response.success, response.message = False, f"bad request: {exc}"
            self.counters["infer_failed"] += 1
            self.get_logger().warning(response.message, throttle_duration_sec=1.0)
        except Exception as exc:
            response.success, response.message = False, f"inference failed: {exc}"
            self.counters["infer_failed"] += 1
            self.get_logger().error(f"{response.message}\n{traceback.format_exc(limit=3)}",
                                    throttle_duration_sec=1.0)
        return response


def main(args=None) -> None:
    spin_node(ModelServiceNode, args)


if __name__ == "__main__":
    main()
