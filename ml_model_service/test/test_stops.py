"""How the nodes end when launch or systemd stops them: SIGTERM or SIGINT at any moment of their life once they
have started (while the start-up model loads, while serving) ends the process with status 0 and no traceback."""

from __future__ import annotations

import signal
import time

import pytest

from harness.waits import wait_for

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
