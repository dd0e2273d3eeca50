"""A real Open Inference Protocol ("KServe V2") server for the tests: KServe's Python `ModelServer`
serving ONNX files with onnxruntime over REST and gRPC, in its own process, on the loopback only.

As a script (run with the KServe virtual environment's python, `build/kserve-venv`, which bootstrap.sh
creates because kserve's pins clash with the main environment's):

    build/kserve-venv/bin/python kserve_server.py --http-port P --grpc-port Q --model ssd=/path/model.onnx

As a module (main environment; kserve is not imported): `KServeServer` starts, restarts and stops it.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
KSERVE_PYTHON = Path(os.environ.get("KSERVE_PYTHON", ROOT / "build" / "kserve-venv" / "bin" / "python"))

_ORT_TYPES = {
    "tensor(float)": "FP32",
    "tensor(double)": "FP64",
    "tensor(float16)": "FP16",
    "tensor(uint8)": "UINT8",
    "tensor(int8)": "INT8",
    "tensor(int16)": "INT16",
    "tensor(int32)": "INT32",
    "tensor(int64)": "INT64",
    "tensor(bool)": "BOOL",
    "tensor(uint16)": "UINT16",
    "tensor(uint32)": "UINT32",
    "tensor(uint64)": "UINT64",
}

_NUMPY_TYPES = {
    "float32": "FP32",
    "float64": "FP64",
    "float16": "FP16",
    "uint8": "UINT8",
    "int8": "INT8",
    "int16": "INT16",
    "int32": "INT32",
    "int64": "INT64",
    "bool": "BOOL",
    "uint16": "UINT16",
    "uint32": "UINT32",
    "uint64": "UINT64",
}


def free_port() -> int:
    """A TCP port free on the loopback now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def kserve_available() -> bool:
    """True when the KServe environment exists (bootstrap.sh creates it)."""
    return KSERVE_PYTHON.is_file()


class KServeServer:
    """A KServe ModelServer subprocess on 127.0.0.1 serving `models` ({name: onnx path}); `not_ready`
    names are registered but never become ready. Use as a context manager."""

    def __init__(
        self, models: dict[str, str | Path], not_ready: tuple[str, ...] = (), start_timeout_s: float = 60.0
    ) -> None:
        self.models = {k: str(v) for k, v in models.items()}
        self.not_ready = tuple(not_ready)
        self.http_port = free_port()
        self.grpc_port = free_port()
        self.start_timeout_s = start_timeout_s
        self.process: subprocess.Popen | None = None
        self.log_path = ROOT / "build" / f"kserve-{self.http_port}.log"

    def url(self, scheme: str, model: str) -> str:
        """grpc://127.0.0.1:PORT/MODEL or http://127.0.0.1:PORT/MODEL."""
        port = self.grpc_port if scheme == "grpc" else self.http_port
        return f"{scheme}://127.0.0.1:{port}/{model}"

    def start(self) -> KServeServer:
        """Start the server and wait until every served model is ready over both protocols."""
        if not kserve_available():
            raise RuntimeError(f"the KServe environment is missing ({KSERVE_PYTHON}); run scripts/bootstrap.sh")
        cmd = [
            str(KSERVE_PYTHON),
            str(Path(__file__).resolve()),
            "--http-port",
            str(self.http_port),
            "--grpc-port",
            str(self.grpc_port),
        ]
        cmd += [a for name, path in self.models.items() for a in ("--model", f"{name}={path}")]
        cmd += [a for name in self.not_ready for a in ("--not-ready", name)]
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - kept open for the subprocess's life
        self.process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        import tritonclient.grpc as grpcclient
        import tritonclient.http as httpclient

        deadline = time.monotonic() + self.start_timeout_s
        grpc = grpcclient.InferenceServerClient(f"127.0.0.1:{self.grpc_port}")
        http = httpclient.InferenceServerClient(f"127.0.0.1:{self.http_port}", connection_timeout=2, network_timeout=2)
        try:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(
                        f"the KServe server exited ({self.process.returncode}): "
                        f"{self.log_path.read_text(errors='replace')[-2000:]}"
                    )
                try:
                    if all(grpc.is_model_ready(m, client_timeout=2) and http.is_model_ready(m) for m in self.models):
                        return
                except Exception:  # noqa: BLE001 - not up yet: connection refused, 503...
                    pass
                time.sleep(0.2)
            raise RuntimeError(
                f"the KServe server did not get ready in {self.start_timeout_s} s: "
                f"{self.log_path.read_text(errors='replace')[-2000:]}"
            )
        finally:
            grpc.close()
            http.close()

    def stop(self, kill: bool = False) -> None:
        """Stop the server (SIGKILL when `kill`, else SIGTERM then SIGKILL after 5 s)."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self.process = None

    def restart(self) -> None:
        """Start again on the same ports."""
        self.stop()
        self.start()

    def __enter__(self) -> KServeServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


# --- the server process (KServe environment) -------------------------------------------------------------
def _loopback_only() -> None:
    """KServe listens on every interface; these tests keep it on 127.0.0.1."""
    import grpc.aio
    import uvicorn

    original_server = grpc.aio.server

    def server(*args, **kwargs):
        srv = original_server(*args, **kwargs)
        add = srv.add_insecure_port
        srv.add_insecure_port = lambda address: add(address.replace("[::]", "127.0.0.1"))
        return srv

    grpc.aio.server = server
    original_config = uvicorn.Config.__init__

    def config(self, *args, **kwargs):
        kwargs["host"] = "127.0.0.1"
        original_config(self, *args, **kwargs)

    uvicorn.Config.__init__ = config


def _serve(args: argparse.Namespace) -> None:
    import kserve
    import numpy as np
    import onnxruntime as ort
    from kserve.protocol.infer_type import InferOutput, InferResponse

    class OnnxModel(kserve.Model):
        """One ONNX file on onnxruntime (one thread), with V2 input/output metadata."""

        def __init__(self, name: str, path: str | None) -> None:
            super().__init__(name)
            self.path = path
            self.session = None

        def load(self) -> bool:
            if self.path is None:  # registered, never ready
                return False
            options = ort.SessionOptions()
            options.intra_op_num_threads = 1
            self.session = ort.InferenceSession(self.path, sess_options=options, providers=["CPUExecutionProvider"])
            self.ready = True
            return True

        @staticmethod
        def _types(nodes) -> list[dict]:
            return [
                {
                    "name": n.name,
                    "datatype": _ORT_TYPES[n.type],
                    "shape": [d if isinstance(d, int) else -1 for d in n.shape],
                }
                for n in nodes
            ]

        def get_input_types(self) -> list[dict]:
            return self._types(self.session.get_inputs()) if self.session else []

        def get_output_types(self) -> list[dict]:
            return self._types(self.session.get_outputs()) if self.session else []

        def predict(self, payload, headers=None, response_headers=None) -> InferResponse:  # noqa: ARG002
            feeds = {i.name: payload.get_input_by_name(i.name).as_numpy() for i in self.session.get_inputs()}
            names = [o.name for o in self.session.get_outputs()]
            results = self.session.run(names, feeds)
            outputs = []
            for name, array in zip(names, results):
                array = np.ascontiguousarray(array)
                out = InferOutput(name=name, shape=list(array.shape), datatype=_NUMPY_TYPES[array.dtype.name])
                out.set_data_from_numpy(array, binary_data=True)
                outputs.append(out)
            return InferResponse(model_name=self.name, infer_outputs=outputs, response_id=payload.id or "")

    _loopback_only()
    models = []
    for entry in args.model:
        name, path = entry.split("=", 1)
        model = OnnxModel(name, path)
        model.load()
        models.append(model)
    models += [OnnxModel(name, None) for name in args.not_ready]
    kserve.ModelServer(
        http_port=args.http_port, grpc_port=args.grpc_port, workers=1, enable_latency_logging=False
    ).start(models)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--http-port", type=int, required=True)
    parser.add_argument("--grpc-port", type=int, required=True)
    parser.add_argument("--model", action="append", default=[], help="NAME=PATH of an ONNX file")
    parser.add_argument("--not-ready", action="append", default=[], help="NAME registered but never ready")
    _serve(parser.parse_args())
    sys.exit(0)
