"""How the nodes end and cycle (ros/managed.py: spin_node and the transitions): SIGTERM (launch, systemd) or SIGINT
at any moment of their life once they have started (while the start-up model loads, while serving) ends the
process with status 0 and no traceback; configure/cleanup cycles return their memory and threads."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from ml_model_service.ros.remote_model import call
from ml_model_service_dev.harness.waits import wait_for

#: When the signal is sent: as the node logs its first line (its start-up model load is beginning), a second
#: into that load (a fresh runtime-choice cache: the first load measures the runtimes, ~3 s), and once it serves.
MOMENTS = ("first line", "loading", "serving")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
@pytest.mark.parametrize("kind", ["model_service", "vision_service"])
def test_a_stop_at_any_moment_ends_the_node_cleanly(start_node, tmp_path, kind, sig, monkeypatch):
    for i, moment in enumerate(MOMENTS):
        monkeypatch.setenv("ML_MODEL_SERVICE_RUNTIME_CACHE", str(tmp_path / f"choice-{i}.json"))
        proc = start_node(kind, {"execution_providers": ["cpu"]}, namespace=f"/stop{i}")
        wait_for(lambda p=proc: p.log().strip(), 30, interval=0.02, what="the node's first log line")
        if moment == "loading":
            time.sleep(1.0)
        elif moment == "serving":
            wait_for(lambda p=proc: "serving " in p.log() or "ready" in p.log(), 60, what="the node to serve")
        proc.proc.send_signal(sig)
        code = proc.proc.wait(20)
        log = proc.log()
        assert code == 0, f"{kind}, {sig.name} at {moment}: status {code}\n{log[-3000:]}"
        assert "Traceback" not in log, f"{kind}, {sig.name} at {moment}:\n{log[-3000:]}"


def _memory(pid: int) -> tuple[float, int]:
    """(resident MB, threads) of a process."""
    text = Path(f"/proc/{pid}/status").read_text()
    status = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    return int(status["VmRSS"].split()[0]) / 1024, int(status["Threads"])


@pytest.mark.parametrize(
    ("kind", "node"), [("vision_service", "vision_service"), ("model_service", "ml_model_service")]
)
def test_configure_cleanup_cycles_return_memory_and_threads(start_node, spinner, kind, node):
    from lifecycle_msgs.msg import Transition
    from lifecycle_msgs.srv import ChangeState

    proc = start_node(kind, {"execution_providers": ["cpu"], "autostart": False}, namespace="/cycles")
    client = spinner.node.create_client(ChangeState, f"/cycles/{node}/change_state")
    assert client.wait_for_service(30), proc.log()

    def cycle() -> None:
        for transition in (Transition.TRANSITION_CONFIGURE, Transition.TRANSITION_CLEANUP):
            answer = call(client, ChangeState.Request(transition=Transition(id=transition)), 60.0)
            assert answer is not None and answer.success, proc.log()[-3000:]

    for _ in range(3):  # first loads: the runtime, its libraries, the caches
        cycle()
    first_mb, first_threads = _memory(proc.proc.pid)
    for _ in range(37):
        cycle()
    mb, threads = _memory(proc.proc.pid)
    print(f"{kind}: {first_mb:.0f} MB, {first_threads} threads after 3 cycles; {mb:.0f} MB, {threads} after 40")
    assert mb - first_mb < 30, (first_mb, mb)
    assert threads == first_threads, (first_threads, threads)
