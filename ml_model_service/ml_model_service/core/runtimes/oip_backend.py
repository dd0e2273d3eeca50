"""A model served by an inference server speaking the Open Inference Protocol ("KServe V2"): NVIDIA
Triton, KServe, Seldon MLServer, OpenVINO Model Server. Reached with the maintained client library
(`tritonclient`, gRPC or HTTP), used like a local model file.

A reference `grpc://HOST:PORT/MODEL[/VERSION]` or `http://HOST:PORT/MODEL[/VERSION]` selects it. Tensor
names, data types and shapes come from the server's model metadata; labels from the model's `labels`
parameter in its configuration where the server has one (Triton `config.pbtxt`). Every call has a
timeout; a server that is down, a model that is not ready or was unloaded raises `InferenceServerError`
(a RuntimeError) from `infer`, and `ready()` says cheaply whether it is back.
"""

from __future__ import annotations

import contextlib
import re
import sys
import threading
from dataclasses import dataclass

import numpy as np

from ..metadata import TensorSpec
from .backend import Backend, ModelLoadError

#: Seconds any one request to the server may take (connect, metadata, inference) unless told otherwise.
DEFAULT_TIMEOUT_S = 5.0
#: Seconds a readiness probe may take.
READY_TIMEOUT_S = 1.0

#: Open Inference Protocol data types this suite can carry, and their numpy names.
V2_TYPES = {
    "BOOL": "bool",
    "UINT8": "uint8",
    "UINT16": "uint16",
    "UINT32": "uint32",
    "UINT64": "uint64",
    "INT8": "int8",
    "INT16": "int16",
    "INT32": "int32",
    "INT64": "int64",
    "FP16": "float16",
    "FP32": "float32",
    "FP64": "float64",
}
NUMPY_TO_V2 = {v: k for k, v in V2_TYPES.items()}

_URL = re.compile(r"^(grpc|http)://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})/([A-Za-z0-9_.-]+)(?:/(\d+))?/?$")


class InferenceServerError(RuntimeError):
    """The inference server could not answer: down, timed out, model not ready or unloaded."""


@dataclass(frozen=True)
class ServerRef:
    """A parsed `grpc://HOST:PORT/MODEL[/VERSION]` or `http://...` reference."""

    scheme: str
    host: str
    port: int
    model: str
    version: str = ""

    @property
    def address(self) -> str:
        """HOST:PORT as the client library takes it."""
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        """The reference written back out."""
        return f"{self.scheme}://{self.address}/{self.model}" + (f"/{self.version}" if self.version else "")


def is_server_ref(ref: str) -> bool:
    """True when `ref` names a model on a server (grpc:// or http://), valid or not."""
    return (ref or "").strip().lower().startswith(("grpc://", "http://", "https://", "grpcs://"))


def parse_server_ref(ref: str) -> ServerRef:
    """Parse a server reference; raises ModelLoadError naming the expected form."""
    text = (ref or "").strip()
    m = _URL.match(text)
    if not m:
        raise ModelLoadError(
            f"cannot read model server reference {text!r}: expected grpc://HOST:PORT/MODEL[/VERSION] "
            "or http://HOST:PORT/MODEL[/VERSION] (TLS is not supported)"
        )
    scheme, host, port, model, version = m.groups()
    if not 0 < int(port) < 65536:
        raise ModelLoadError(f"model server reference {text!r}: port {port} is out of range")
    return ServerRef(scheme, host.lower(), int(port), model, version or "")


def _client_errors() -> tuple[type[BaseException], ...]:
    """Exception types the client libraries raise for transport and server failures (tritonclient wraps
    gRPC errors in InferenceServerException; the HTTP client raises socket errors and, through gevent,
    gevent.Timeout, a BaseException)."""
    from tritonclient.utils import InferenceServerException

    errors: list[type[BaseException]] = [InferenceServerException, OSError, TimeoutError, ConnectionError]
    gevent = sys.modules.get("gevent")  # loaded by tritonclient.http
    if gevent is not None:
        errors.append(gevent.Timeout)
    return tuple(errors)


def _message(exc: BaseException) -> str:
    """A one-line reason from a client exception."""
    text = exc.message() if hasattr(exc, "message") and callable(exc.message) else str(exc)
    text = " ".join(str(text or type(exc).__name__).split())
    return text[:300]


def server_parameters(meta: dict, config: dict | None = None) -> dict[str, str]:
    """String parameters from V2 model metadata and a Triton model configuration (as JSON: gRPC's
    `{"config": {...}}` or HTTP's bare config; values `{"string_value": ...}` or `{"stringValue": ...}`)."""
    params: dict[str, str] = {}
    sources = [(config.get("config") or config).get("parameters")] if config else []
    for source in [*sources, meta.get("parameters")]:
        for key, value in (source or {}).items():
            if isinstance(value, dict):
                value = value.get("string_value", value.get("stringValue", ""))
            if isinstance(value, str) and value:
                params[str(key)] = value
    return params


class OipBackend(Backend):
    """A model on an Open Inference Protocol server. Thread-safe: gRPC calls run concurrently, HTTP
    calls use one client per calling thread (the HTTP client is not shareable across threads)."""

    kind = "oip"

    def __init__(self, ref: ServerRef | str, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        super().__init__()
        try:
            import tritonclient  # noqa: F401
        except ImportError as exc:
            raise ModelLoadError(
                "models on an inference server need the tritonclient package (pip install 'tritonclient[grpc,http]')"
            ) from exc
        self.ref = parse_server_ref(ref) if isinstance(ref, str) else ref
        self.timeout_s = float(timeout_s) if timeout_s and timeout_s > 0 else DEFAULT_TIMEOUT_S
        self._errors = _client_errors()
        self._local = threading.local()
        self._grpc_client = None
        self._lock = threading.Lock()
        where = f"model {self.ref.model!r} on {self.ref.url}"
        try:
            live = self._call(lambda c, t: c.is_server_live(**t))
        except self._errors as exc:
            raise ModelLoadError(
                f"inference server {self.ref.address} cannot be reached ({self.ref.scheme}, "
                f"timeout {self.timeout_s:g} s): {_message(exc)}"
            ) from None
        if not live:
            raise ModelLoadError(f"inference server {self.ref.address} answers but is not live")
        try:
            if not self._call(lambda c, t: c.is_model_ready(self.ref.model, self.ref.version, **t)):
                raise ModelLoadError(
                    f"{where} is not ready (not loaded on the server, or no such model; "
                    "check the server's model repository)"
                )
            meta = self._call(lambda c, t: c.get_model_metadata(self.ref.model, self.ref.version, **self._json(t)))
        except ModelLoadError:
            raise
        except self._errors as exc:
            raise ModelLoadError(f"{where} is not available: {_message(exc)}") from None
        self.inputs = [self._spec(t, where) for t in meta.get("inputs", [])]
        self.outputs = [self._spec(t, where) for t in meta.get("outputs", [])]
        if not self.inputs or not self.outputs:
            raise ModelLoadError(f"{where}: the server's metadata lists no inputs or no outputs")
        self._output_names = [t.name for t in self.outputs]
        self.description = f"{self.ref.model} on {self.ref.url} (platform {meta.get('platform') or 'unknown'})"
        self.info = {
            "backend": "oip",
            "server": self.ref.url,
            "execution_providers": "server",
            "platform": str(meta.get("platform") or ""),
        }
        self.embedded_metadata = self._server_parameters(meta)

    # --- clients ------------------------------------------------------------------------------------
    def _client(self):
        """The client for this thread (gRPC: one shared channel; HTTP: one per thread)."""
        if self.ref.scheme == "grpc":
            with self._lock:
                if self._grpc_client is None:
                    import tritonclient.grpc as grpcclient

                    self._grpc_client = grpcclient.InferenceServerClient(self.ref.address)
                return self._grpc_client
        client = getattr(self._local, "client", None)
        if client is None:
            import tritonclient.http as httpclient

            client = httpclient.InferenceServerClient(
                self.ref.address, connection_timeout=self.timeout_s, network_timeout=self.timeout_s
            )
            self._local.client = client
        return client

    def _timeout(self, seconds: float | None = None) -> dict:
        """Per-call timeout keywords (gRPC takes one per call; HTTP's is set on the client)."""
        return {"client_timeout": seconds or self.timeout_s} if self.ref.scheme == "grpc" else {}

    def _json(self, kwargs: dict) -> dict:
        return {**kwargs, "as_json": True} if self.ref.scheme == "grpc" else kwargs

    def _call(self, fn, seconds: float | None = None):
        """Run `fn(client, timeout_kwargs)`; an HTTP client that failed is dropped so the next call reconnects."""
        try:
            return fn(self._client(), self._timeout(seconds))
        except self._errors:
            if self.ref.scheme == "http":
                self._drop_http_client()
            raise

    def _drop_http_client(self) -> None:
        client = getattr(self._local, "client", None)
        self._local.client = None
        if client is not None:
            with contextlib.suppress(Exception):  # closing a broken connection may fail in any way
                client.close()

    # --- metadata -----------------------------------------------------------------------------------
    @staticmethod
    def _spec(tensor: dict, where: str) -> TensorSpec:
        datatype = str(tensor.get("datatype", ""))
        dtype = V2_TYPES.get(datatype)
        if dtype is None:
            raise ModelLoadError(
                f"{where}: tensor {tensor.get('name')!r} has data type {datatype}, which this "
                f"service cannot carry (supported: {sorted(V2_TYPES)})"
            )
        shape = [int(d) if int(d) >= 0 else -1 for d in tensor.get("shape", [])]
        return TensorSpec(name=str(tensor["name"]), data_type=dtype, shape=shape)

    def _server_parameters(self, meta: dict) -> dict[str, str]:
        """String parameters the server keeps for the model (metadata `parameters`, else the model
        configuration's `parameters` on Triton); `labels` among them is read as the label list."""
        params = server_parameters(meta)
        if "labels" not in params:
            try:
                config = self._call(lambda c, t: c.get_model_config(self.ref.model, self.ref.version, **self._json(t)))
            except self._errors:  # KServe and others have no model configuration endpoint
                config = None
            params = {**server_parameters(meta, config if isinstance(config, dict) else None), **params}
        return params

    # --- running ------------------------------------------------------------------------------------
    def ready(self, timeout_s: float = READY_TIMEOUT_S) -> bool:
        """True when the server answers and the model is ready (one short request)."""
        try:
            return bool(
                self._call(lambda c, t: c.is_model_ready(self.ref.model, self.ref.version, **t), seconds=timeout_s)
            )
        except self._errors:
            return False

    def infer(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        module = self._module()
        requests = []
        for spec in self.inputs:
            array = np.ascontiguousarray(inputs[spec.name])
            item = module.InferInput(spec.name, list(array.shape), NUMPY_TO_V2[array.dtype.name])
            item.set_data_from_numpy(array)
            requests.append(item)
        wanted = [module.InferRequestedOutput(name) for name in self._output_names]
        try:
            result = self._call(lambda c, t: c.infer(self.ref.model, requests, self.ref.version, outputs=wanted, **t))
        except self._errors as exc:
            raise InferenceServerError(
                f"inference server {self.ref.address}, model {self.ref.model!r}: {_message(exc)}"
            ) from None
        outputs = {}
        for name in self._output_names:
            array = result.as_numpy(name)
            if array is None:
                raise InferenceServerError(
                    f"inference server {self.ref.address}, model {self.ref.model!r}: the answer lacks output {name!r}"
                )
            outputs[name] = array
        return outputs

    def _module(self):
        if self.ref.scheme == "grpc":
            import tritonclient.grpc as module
        else:
            import tritonclient.http as module
        return module

    def close(self) -> None:
        """Close the connections (this thread's HTTP client, or the gRPC channel)."""
        if self._grpc_client is not None:
            self._grpc_client.close()
            self._grpc_client = None
        self._drop_http_client()
