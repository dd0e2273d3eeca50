"""Dynamic batching (core/runtimes/batcher.py) on a real ONNX model: concurrent callers share inference calls
and get their own outputs."""

from __future__ import annotations

import numpy as np
import pytest

from ml_model_service.core.loading.model import Model
from ml_model_service_dev.harness.batch_models import Counting, scaled_model
from ml_model_service_dev.harness.together import at_once


@pytest.mark.parametrize("wait", [0.0, 0.2])
def test_concurrent_calls_share_inference_calls_and_get_their_own_outputs(tmp_path, wait):
    """Dynamic batching (core/runtimes/batcher.py) on a real ONNX model: 8 callers at once, each its own rows
    back; fewer calls than callers; with batch_wait a batch fills to max_batch."""
    from ml_model_service.core.runtimes.batcher import DynamicBatcher

    counting = Counting(Model(str(scaled_model(tmp_path / "scaled.onnx")), providers=["cpu"], num_threads=1))
    batcher = DynamicBatcher(max_batch=4, wait_s=wait)
    xs = [np.full((1 + i % 2, 512), float(i), np.float32) for i in range(8)]  # requests of one and two rows
    answers = at_once(lambda i: batcher.infer(counting, {"x": xs[i]})["y"], 8, timeout=60)
    for i, y in enumerate(answers):
        assert not isinstance(y, BaseException), y
        assert y.shape == (1 + i % 2, 512) and np.all(y == 2.0 * i), i
    assert batcher.stats.requests == 8 and batcher.stats.calls == len(counting.batches) < 8
    assert max(counting.batches) > 2 and batcher.stats.largest <= 4
    if wait:
        assert batcher.stats.calls == 2  # the batch waited to fill: 4 requests a call


def test_batching_keeps_apart_what_cannot_be_stacked(tmp_path):
    """Requests of other shapes run on their own, and a caller's bad inputs fail that caller alone."""
    from ml_model_service.core.runtimes.batcher import DynamicBatcher

    model = Model(str(scaled_model(tmp_path / "scaled.onnx")), providers=["cpu"], num_threads=1)
    batcher = DynamicBatcher(max_batch=8, wait_s=0.3)
    good = np.ones((1, 512), np.float32)
    inputs = {"a": good, "b": good * 3, "wide": np.ones((1, 7), np.float32), "int": np.ones((1, 512), np.int64)}
    names = list(inputs)
    results = dict(zip(names, at_once(lambda i: batcher.infer(model, {"x": inputs[names[i]]})["y"], 4, timeout=60)))
    assert np.all(results["a"] == 2.0) and np.all(results["b"] == 6.0)
    assert isinstance(results["wide"], Exception) and isinstance(results["int"], Exception)
    assert batcher.stats.requests >= 2


def test_pending_requests_are_told_apart_by_identity_not_by_their_tensors():
    """Taking a gathered request off the queue compared it with the others waiting: a dataclass `==` on their
    tensors raised for arrays of other shapes (seen: a request of shape (1, 7) waiting before (1, 512) ones),
    and the batch's leader left every later caller waiting for good."""
    from ml_model_service.core.runtimes.batcher import _Request

    wide = _Request(None, {"x": np.ones((1, 7), np.float32)}, ("k", 7))
    same = _Request(None, {"x": np.ones((1, 512), np.float32)}, ("k", 512))
    queue = [wide, same]
    queue.remove(same)  # raised ValueError before
    assert queue == [wide] and wide != _Request(None, wide.inputs, wide.key)
