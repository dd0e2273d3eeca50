"""A model served by a model service node elsewhere on the graph, used like a local `Model`.

Its calls are made and answered in the calling thread (`direct.DirectClient`): the owning node needs no
executor, and an Infer answer wakes the thread that waits for it directly. `call` is the executor-based
helper for other services (the owning node spun elsewhere).
"""

from __future__ import annotations

import threading

import numpy as np
from rclpy.node import Node

from ml_model_service_interfaces.srv import GetMetadata, Infer, LoadModel

from ..core.loading.labels import Labels
from ..core.metadata import ModelMetadata
from . import conversions
from .direct import DirectClient


class RemoteError(RuntimeError):
    """The remote model service is unreachable or answered with a failure."""


class ModelChanged(RemoteError):
    """The model service now serves another model (a swap or a restart) than the metadata fetched:
    fetch the metadata again and rebuild whatever depends on it (decoder, labels)."""

    def __init__(self, service: str, old: int, new: int) -> None:
        super().__init__(f"model changed on {service}: generation {old} -> {new}; fetch its metadata again")
        self.old, self.new = old, new


def call(client, request, timeout: float):
    """Call a service and wait (the node is spun elsewhere); raises RemoteError on timeout."""
    if not client.service_is_ready() and not client.wait_for_service(timeout_sec=timeout):
        raise RemoteError(f"service {client.service_name} is not available")
    done = threading.Event()
    future = client.call_async(request)
    future.add_done_callback(lambda _f: done.set())
    if not done.wait(timeout):
        client.remove_pending_request(future)
        raise RemoteError(f"service {client.service_name} did not answer within {timeout:.1f} s")
    if future.exception() is not None:
        raise RemoteError(f"service {client.service_name} failed: {future.exception()}")
    return future.result()


class RemoteModel:
    """`metadata`, `labels` and `infer` through a model service's ~/get_metadata and ~/infer.

    Labels come as data in the metadata (never as a path to open: a RemoteModel opens no file). Every
    Infer answer carries the generation of the model that produced it; one that differs from the
    fetched metadata's raises ModelChanged, so outputs are never decoded with another model's layout."""

    def __init__(self, node: Node, service: str, timeout: float = 5.0, fetch: bool = True) -> None:
        self.service = service.rstrip("/")
        self.timeout = timeout
        self._infer = DirectClient(node, Infer, f"{self.service}/infer")
        self._meta = DirectClient(node, GetMetadata, f"{self.service}/get_metadata")
        self._load = DirectClient(node, LoadModel, f"{self.service}/load_model")
        self.metadata = ModelMetadata(name="", type="")
        if fetch:
            self.fetch_metadata()

    def fetch_metadata(self) -> ModelMetadata:
        response = self._call(self._meta, GetMetadata.Request())
        if not response.success:
            raise RemoteError(f"{self.service}/get_metadata: {response.message}")
        try:
            self.metadata = conversions.metadata_from_msg(response.metadata)
        except ValueError as exc:
            raise RemoteError(f"{self.service}/get_metadata: {exc}") from exc
        return self.metadata

    @property
    def generation(self) -> int:
        """The generation of the model the fetched metadata describes (0: none fetched)."""
        return self.metadata.generation

    @property
    def labels(self) -> Labels | None:
        """The class names the model service sent in its metadata, or None when it has none."""
        names = self.metadata.label_names
        return Labels(names, f"{self.service} metadata") if names else None

    def infer(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run the remote model; raises ModelChanged when another model answered, RemoteError on failure."""
        request = Infer.Request(inputs=[conversions.tensor_to_msg(n, a) for n, a in inputs.items()])
        response = self._call(self._infer, request)
        if response.generation and response.generation != self.metadata.generation:
            raise ModelChanged(self.service, self.metadata.generation, int(response.generation))
        if not response.success:
            raise RemoteError(f"{self.service}/infer: {response.message}")
        try:
            return {t.name: conversions.tensor_from_msg(t) for t in response.outputs}
        except ValueError as exc:  # TensorError: a malformed answer
            raise RemoteError(f"{self.service}/infer answered a malformed tensor: {exc}") from exc

    def load(self, model_path: str, label_path: str = "") -> LoadModel.Response:
        """Ask the service to swap models. The metadata here stays that of the model fetched last, so
        the next `infer` raises ModelChanged until `fetch_metadata` is called."""
        return self._call(self._load, LoadModel.Request(model_path=model_path, label_path=label_path))

    def ready(self) -> bool:
        """Whether the model service's metadata service is there now (no waiting)."""
        return self._meta.service_is_ready()

    def _call(self, client: DirectClient, request):
        if not client.service_is_ready() and not client.wait_for_service(self.timeout):
            raise RemoteError(f"service {client.service_name} is not available")
        response = client.call(request, self.timeout)
        if response is None:
            raise RemoteError(f"service {client.service_name} did not answer within {self.timeout:.1f} s")
        return response
