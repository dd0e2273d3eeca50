"""core/tensors.py: request tensors are decoded and checked (dtype, byte count, absurd shapes, request size)
before anything is allocated."""

from __future__ import annotations

import pytest

from ml_model_service.core import tensors
from ml_model_service.core.tensors import TensorError, decode_tensor


def test_absurd_tensor_shapes_are_bad_requests_before_allocation():
    for shape in ([1, 0, 2**62, 2**62], [2**40, 2**40], [2**31, 1], [1, 2, 3, 4, 5, 6, 7, 8, 9]):
        with pytest.raises(TensorError):
            tensors.decode_tensor("x", "float32", shape, b"", allow_empty=False)
    with pytest.raises(TensorError, match="zero dimension"):
        tensors.decode_tensor("x", "uint8", [1, 0, 3], b"", allow_empty=False)
    assert tensors.decode_tensor("x", "uint8", [1, 0, 3], b"").shape == (1, 0, 3)  # outputs may be empty
    with pytest.raises(TensorError, match="limit of 268435456 bytes"):  # empty, yet absurd: refused too
        tensors.decode_tensor("x", "float32", [0, 2**30, 2**30], b"")
    claims = [("a", "float32", [1, 3, 1024, 1024], 12 << 20)] * 3
    tensors.check_request_size(claims, 64 << 20)
    with pytest.raises(TensorError, match="above the limit of 16777216 bytes \\(max_request_bytes\\)"):
        tensors.check_request_size(claims, 16 << 20)
    with pytest.raises(TensorError, match="'big' carries"):
        tensors.check_request_size([("big", "uint8", [1], 2000)], 1000)


def test_tensor_checks():
    assert decode_tensor("t", "int16", [2], b"\x01\x00\x02\x00").tolist() == [1, 2]
    assert decode_tensor("t", "float32", [0, 4], b"").shape == (0, 4)  # an empty tensor is legal
    for args, text in (
        (("t", "int16", [3], b"\0\0"), "needs 3 x 2 = 6 bytes"),
        (("t", "str", [1], b"\0"), "unknown data_type"),
        (("t", "uint8", [2**40, 2**40], b""), "limit"),
    ):
        with pytest.raises(TensorError, match=text):
            decode_tensor(*args)
