"""What every runtime implements: `Backend` (one loaded model file, or a model on a server), the error a
model that cannot be loaded raises, and the execution providers (`execution_providers`) asked of onnxruntime.

The runtimes themselves: onnxruntime_backend (CPU, CUDA, TensorRT), litert_backend (TFLite), openvino_backend,
oip_backend (inference servers); registry opens a file with the right one; threads places their pool threads on
the CPU cores; limits bounds the tensors a model may make before a runtime allocates them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from ..metadata import TensorSpec

#: Short provider names accepted in `execution_providers`, mapped to onnxruntime's names.
PROVIDER_ALIASES = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "gpu": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
    "trt": "TensorrtExecutionProvider",
    "openvino": "OpenVINOExecutionProvider",
    "coreml": "CoreMLExecutionProvider",
}
DEFAULT_PROVIDERS = ("cuda", "cpu")


class ModelLoadError(RuntimeError):
    """A model file that is missing, unreadable or not a model this backend can run."""


class Backend(ABC):
    """One loaded model file. `infer` takes and returns arrays by tensor name, outputs in model order."""

    kind: str = ""

    def __init__(self) -> None:
        self.inputs: list[TensorSpec] = []
        self.outputs: list[TensorSpec] = []
        self.info: dict[str, str] = {}
        self.warnings: list[str] = []
        self.embedded_metadata: dict[str, str] = {}

    @abstractmethod
    def infer(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run once on validated inputs."""


def resolve_providers(requested: list[str] | tuple[str, ...], available: list[str]) -> tuple[list[str], list[str]]:
    """Map requested provider names (short or full) to the available ones; returns (providers, warnings).
    The default preference (GPU if there is one, else the CPU) is not a request: a machine without a GPU
    runs it on the CPU without a warning (the providers in use are reported in the backend's info)."""
    chosen: list[str] = []
    warnings: list[str] = []
    preference = list(requested or DEFAULT_PROVIDERS)
    asked = preference != list(DEFAULT_PROVIDERS)
    for name in preference:
        full = PROVIDER_ALIASES.get(name.strip().lower(), name.strip())
        if full in available:
            if full not in chosen:
                chosen.append(full)
        elif asked:
            warnings.append(f"execution provider {full} is not available here (available: {available})")
    if not chosen or chosen == ["AzureExecutionProvider"]:
        chosen = ["CPUExecutionProvider"]
    if (
        asked
        and chosen == ["CPUExecutionProvider"]
        and any(PROVIDER_ALIASES.get(n.strip().lower(), n) != "CPUExecutionProvider" for n in preference)
    ):
        warnings.append("no GPU execution provider could be used: running on the CPU")
    return chosen, warnings
