"""core/runtimes/backend.py: requested execution providers mapped to the available ones, with warnings."""

from __future__ import annotations

from ml_model_service.core.runtimes.backend import resolve_providers

CPU, CUDA = "CPUExecutionProvider", "CUDAExecutionProvider"


def test_short_names_map_to_available_providers_in_order():
    assert resolve_providers(["cuda", "cpu"], [CUDA, CPU]) == ([CUDA, CPU], [])
    assert resolve_providers(["GPU", "cuda"], [CUDA, CPU]) == ([CUDA], [])  # aliases, once each


def test_the_default_preference_falls_back_to_the_cpu_quietly_and_a_request_does_not():
    assert resolve_providers([], [CPU]) == ([CPU], [])
    chosen, warnings = resolve_providers(["tensorrt"], [CPU])
    assert chosen == [CPU]
    assert any("TensorrtExecutionProvider is not available" in w for w in warnings)
    assert any("running on the CPU" in w for w in warnings)
    assert resolve_providers(["azure"], ["AzureExecutionProvider", CPU])[0] == [CPU]
