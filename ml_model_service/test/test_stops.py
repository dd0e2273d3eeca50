"""How the nodes end when launch or systemd stops them: SIGTERM or SIGINT at any moment of their life (while
the start-up model loads, while serving) ends the process with status 0 and no traceback."""

from __future__ import annotations

import signal
import time

import pytest

#: Seconds after the start when the signal is sent: during the imports and rclpy set-up, during the start-up
#: model load (the bundled detector, a first load measures the runtimes), and once the node serves.
MOMENTS = (0.8, 1.6, 2.4, 8.0)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
@pytest.mark.parametrize("kind", ["model_service", "vision_service"])
def test_a_stop_at_any_moment_ends_the_node_cleanly(start_node, tmp_path, kind, sig, monkeypatch):
    # a fresh runtime-choice cache, so that the start-up load is long (it measures) and the signal falls in it
    monkeypatch.setenv("ML_MODEL_SERVICE_RUNTIME_CACHE", str(tmp_path / "choice.json"))
    for moment in MOMENTS:
        proc = start_node(kind, {"execution_providers": ["cpu"]}, namespace=f"/stop{int(moment * 10)}")
        time.sleep(moment)
        proc.proc.send_signal(sig)
        code = proc.proc.wait(20)
        log = proc.log()
        assert code == 0, f"{kind}, {sig.name} at {moment} s: status {code}\n{log[-3000:]}"
        assert "Traceback" not in log, f"{kind}, {sig.name} at {moment} s:\n{log[-3000:]}"
        (tmp_path / "choice.json").unlink(missing_ok=True)
