"""ONNX shape inference in a helper process with a memory and time budget (`limits.OnnxShapes` calls it).

Shape inference with data propagation can be made to cost far more than the model's size: a few dozen bytes of
graph that concatenate a shape with itself again and again stand for billions of values (about 140 bytes each
in ONNX's representation), and the guard that bounds a model's tensors would itself take the node's memory. So it
runs in a process of its own whose data segment is capped (MEMORY_BYTES) and which must answer within TIME_S: a
graph that needs more is refused, and the node is unaffected. The helper is started at the first use, serves
the later ones (no import cost per load) and ends after IDLE_S without work.
"""

from __future__ import annotations

import os
import select
import struct
import subprocess
import sys
import threading
import time

#: The helper's data segment (its interpreter and onnx take about 100 MB of it).
MEMORY_BYTES = 384 * 1024 * 1024
#: Longest one inference may take.
TIME_S = 10.0
#: The helper ends after this long without work (a later use starts it again).
IDLE_S = 60.0

_CODE = r"""
import resource, struct, sys
limit = int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
import onnx
from onnx import shape_inference
stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
while True:
    head = stdin.read(8)
    if len(head) < 8:
        break
    data = stdin.read(struct.unpack("<Q", head)[0])
    try:
        model = onnx.ModelProto.FromString(data)
        out, status = shape_inference.infer_shapes(
            model, check_type=False, strict_mode=False, data_prop=True
        ).SerializeToString(), 0
    except MemoryError:
        out, status = b"memory", 2
    except Exception as exc:
        out, status = str(exc).encode()[:2000], 1
    stdout.write(struct.pack("<BQ", status, len(out)) + out)
    stdout.flush()
"""


class BudgetExceeded(RuntimeError):
    """Shape inference needed more memory or time than its budget."""


class ShapeHelper:
    """One helper process, used by one caller at a time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._proc: subprocess.Popen | None = None
        self._last = 0.0
        self._reaper: threading.Timer | None = None

    def infer(self, model: bytes) -> bytes:
        """The inferred model's bytes; ValueError when ONNX cannot follow the graph, BudgetExceeded when it needs
        more than the budget (the helper is then ended)."""
        with self._lock:
            proc = self._start()
            try:
                assert proc.stdin is not None
                proc.stdin.write(struct.pack("<Q", len(model)) + model)
                proc.stdin.flush()
                head = self._read(proc, 9)
                status, size = struct.unpack("<BQ", head)
                body = self._read(proc, size)
            except (OSError, EOFError, TimeoutError) as exc:
                self._stop()
                reason = "time" if isinstance(exc, TimeoutError) else "memory"
                raise BudgetExceeded(
                    f"ONNX shape inference of the graph needed more {reason} than its budget "
                    f"({MEMORY_BYTES // 2**20} MiB, {TIME_S:.0f} s)"
                ) from None
            self._last = time.monotonic()
            if status == 2:
                self._stop()
                raise BudgetExceeded(
                    "ONNX shape inference of the graph needed more memory than its budget "
                    f"({MEMORY_BYTES // 2**20} MiB)"
                )
            if status:
                raise ValueError(body.decode(errors="replace"))
            return body

    def close(self) -> None:
        """End the helper now (a later use starts it again)."""
        with self._lock:
            self._stop()

    def _start(self) -> subprocess.Popen:
        if self._proc is not None and self._proc.poll() is None:
            return self._proc
        self._proc = subprocess.Popen(
            [sys.executable, "-c", _CODE, str(MEMORY_BYTES)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            close_fds=True,
        )
        self._schedule_reap()
        return self._proc

    def _read(self, proc: subprocess.Popen, n: int) -> bytes:
        """`n` bytes of the helper's answer within TIME_S of now."""
        assert proc.stdout is not None
        fd, out, deadline = proc.stdout.fileno(), bytearray(), time.monotonic() + TIME_S
        while len(out) < n:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise TimeoutError
            chunk = os.read(fd, min(n - len(out), 1 << 20))
            if not chunk:
                raise EOFError
            out += chunk
        return bytes(out)

    def _schedule_reap(self) -> None:
        self._reaper = threading.Timer(IDLE_S, self._reap)
        self._reaper.daemon = True
        self._reaper.start()

    def _reap(self) -> None:
        with self._lock:
            if self._proc is None:
                return
            if time.monotonic() - self._last >= IDLE_S:
                self._stop()
            else:
                self._schedule_reap()

    def _stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            proc.kill()
            proc.wait()
            for stream in (proc.stdin, proc.stdout):
                if stream is not None:
                    stream.close()


HELPER = ShapeHelper()
