"""Node executables in their own processes, their output in a log file (the tests, the demo, the benchmark and
the robustness runs start them so)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

NODES = {
    "model_service": "ml_model_service.ros.model_service_node",
    "vision_service": "ml_model_service.ros.vision_node",
}


def spawn_node(
    kind: str,
    log_dir: Path,
    params: dict | None = None,
    *,
    namespace: str = "",
    name: str | None = None,
    remaps: dict | None = None,
    params_file: Path | None = None,
) -> tuple[subprocess.Popen, Path]:
    """Run node `kind` (model_service or vision_service) with `params` (written to a YAML file in
    `log_dir`, applied after `params_file` if given); its output goes to a log file. Returns the process
    and the log's path."""
    stem = f"{(name or kind)}-{namespace.strip('/').replace('/', '_') or 'root'}-{time.monotonic_ns()}"
    cmd = [sys.executable, "-m", NODES[kind], "--ros-args"]
    if params_file is not None:
        cmd += ["--params-file", str(params_file)]
    if params:
        own = log_dir / f"{stem}.yaml"
        own.write_text(yaml.safe_dump({"/**": {"ros__parameters": params}}))
        cmd += ["--params-file", str(own)]
    if name:
        cmd += ["-r", f"__node:={name}"]
    if namespace:
        cmd += ["-r", f"__ns:={namespace}"]
    for a, b in (remaps or {}).items():
        cmd += ["-r", f"{a}:={b}"]
    log_path = log_dir / f"{stem}.log"
    with open(log_path, "w") as log:  # the child keeps its own handle
        return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT), log_path


class NodeProcess:
    """A node executable running in its own process, with its log kept for failures."""

    def __init__(self, kind: str, tmp: Path, params: dict, **options: Any) -> None:
        """Started by `spawn_node(kind, tmp, params, **options)` (options: its keyword arguments)."""
        self.proc, self.log_path = spawn_node(kind, tmp, params, **options)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        if self.alive():
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
