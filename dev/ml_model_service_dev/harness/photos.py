"""Real photographs, from scikit-image's bundled data (a development dependency: tests, demos, benchmarks)."""

from __future__ import annotations

import numpy as np


def photo(name: str = "motorcycle") -> np.ndarray:
    """A photograph by its scikit-image name (astronaut, chelsea, coffee...; motorcycle: the left image of
    the Middlebury stereo pair), RGB uint8."""
    from skimage import data

    if name == "motorcycle":
        return data.stereo_motorcycle()[0]
    return getattr(data, name)()
