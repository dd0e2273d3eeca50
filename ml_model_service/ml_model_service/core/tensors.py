"""Tensors on the wire: numpy type names, raw little-endian bytes, and validation against a model's specs.

Everything a request can get wrong is checked here before anything is allocated, and each error names
the tensor and what is wrong with it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from .metadata import TensorSpec

#: Data type names accepted on the wire (numpy names), mapped to little-endian numpy dtypes.
DTYPES: dict[str, np.dtype] = {
    name: np.dtype(name).newbyteorder("<")
    for name in (
        "int8",
        "uint8",
        "int16",
        "uint16",
        "int32",
        "uint32",
        "int64",
        "uint64",
        "float16",
        "float32",
        "float64",
        "bool",
    )
}

#: Largest tensor a request may carry (bytes). Larger claims are refused before any allocation.
MAX_TENSOR_BYTES = 256 * 1024 * 1024
#: Largest rank accepted.
MAX_RANK = 8
#: Largest single dimension accepted.
MAX_DIM = 2**31 - 1


class TensorError(ValueError):
    """A tensor that cannot be used: the message names the tensor and says what is wrong."""


def dtype_name(dtype: np.dtype | type) -> str:
    """The wire name of a numpy dtype ('float32', 'uint8', ...)."""
    name = np.dtype(dtype).name
    if name not in DTYPES:
        raise TensorError(f"data type {name!r} is not supported on the wire; use one of {sorted(DTYPES)}")
    return name


def check_shape(
    name: str, data_type: str, shape: Sequence[int], *, max_bytes: int = MAX_TENSOR_BYTES, allow_empty: bool = True
) -> tuple[np.dtype, list[int], int]:
    """Check a claimed tensor before anything is allocated: known type, rank, no negative, zero (unless
    `allow_empty`) or absurd dimension, and a size within `max_bytes`. Returns (dtype, shape, bytes)."""
    dtype = DTYPES.get(data_type)
    if dtype is None:
        raise TensorError(f"tensor {name!r}: unknown data_type {data_type!r}; expected one of {sorted(DTYPES)}")
    shape = [int(d) for d in shape]
    if len(shape) > MAX_RANK:
        raise TensorError(f"tensor {name!r}: rank {len(shape)} is above the limit of {MAX_RANK}")
    if any(d < 0 for d in shape):
        raise TensorError(f"tensor {name!r}: shape {shape} has a negative dimension")
    if not allow_empty and any(d == 0 for d in shape):
        raise TensorError(f"tensor {name!r}: shape {shape} has a zero dimension (an empty input)")
    if any(d > MAX_DIM for d in shape):
        raise TensorError(f"tensor {name!r}: shape {shape} has a dimension above the limit of {MAX_DIM}")
    # Python ints cannot overflow; zero dimensions count as 1 so an 'empty' [0, 2^62, 2^62] is refused too.
    nominal = math.prod(max(d, 1) for d in shape) * dtype.itemsize
    if nominal > max_bytes:
        raise TensorError(
            f"tensor {name!r}: shape {shape} of {data_type} would need {nominal} bytes, "
            f"above the limit of {max_bytes} bytes"
        )
    return dtype, shape, math.prod(shape) * dtype.itemsize


def decode_tensor(
    name: str,
    data_type: str,
    shape: Sequence[int],
    data: bytes | memoryview,
    *,
    max_bytes: int = MAX_TENSOR_BYTES,
    allow_empty: bool = True,
) -> np.ndarray:
    """Turn a wire tensor into a read-only numpy array, checking type, shape and byte length."""
    dtype, shape, expected = check_shape(name, data_type, shape, max_bytes=max_bytes, allow_empty=allow_empty)
    if len(data) != expected:
        count = expected // dtype.itemsize
        raise TensorError(
            f"tensor {name!r}: {len(data)} bytes of data, but shape {shape} of {data_type} "
            f"needs {count} x {dtype.itemsize} = {expected} bytes"
        )
    return np.frombuffer(data, dtype=dtype, count=expected // dtype.itemsize).reshape(shape)


def check_request_size(claims: Iterable[tuple[str, str, Sequence[int], int]], max_bytes: int) -> None:
    """Refuse a request whose tensors, one or together, carry or claim more than `max_bytes` (before
    decoding). `claims` holds (name, data_type, shape, bytes of data carried) per tensor."""
    carried = claimed = 0
    for name, data_type, shape, length in claims:
        _, _, nbytes = check_shape(name, data_type, shape, max_bytes=max_bytes)  # names the tensor at fault
        if length > max_bytes:
            raise TensorError(
                f"tensor {name!r} carries {length} bytes, above the limit of {max_bytes} bytes (max_request_bytes)"
            )
        carried += length
        claimed += nbytes
    total = max(carried, claimed)
    if total > max_bytes:
        raise TensorError(
            f"the request's tensors {'carry' if carried >= claimed else 'claim'} {total} bytes "
            f"together, above the limit of {max_bytes} bytes (max_request_bytes)"
        )


def encode_tensor(array: np.ndarray) -> tuple[str, list[int], memoryview]:
    """(data_type, shape, little-endian bytes) of an array; the bytes are a view (no copy where the array
    is already contiguous and little-endian)."""
    array = np.asarray(array)
    name = dtype_name(array.dtype)
    return name, list(array.shape), memoryview(np.ascontiguousarray(array, dtype=DTYPES[name]).reshape(-1)).cast("B")  # type: ignore[arg-type]


def check_inputs(specs: Sequence[TensorSpec], inputs: Mapping[str, np.ndarray]) -> None:
    """Check named inputs against a model's input specs: names, data types, ranks, fixed dimensions."""
    known = {s.name for s in specs}
    unknown = [n for n in inputs if n not in known]
    if unknown:
        raise TensorError(f"unknown input tensor(s) {unknown}; the model's inputs are {[s.name for s in specs]}")
    for spec in specs:
        if spec.name not in inputs:
            raise TensorError(f"missing input tensor {spec.name!r} ({spec.data_type} {list(spec.shape)})")
        array = inputs[spec.name]
        if array.dtype.name != spec.data_type:
            raise TensorError(
                f"tensor {spec.name!r}: data_type {array.dtype.name} does not match the model's {spec.data_type}"
            )
        if not shape_matches(spec.shape, array.shape):
            raise TensorError(
                f"tensor {spec.name!r}: shape {list(array.shape)} does not match the model's "
                f"{list(spec.shape)} (-1 = any size)"
            )


def shape_matches(expected: Iterable[int], actual: Iterable[int]) -> bool:
    """True when `actual` fits `expected`, where -1 in `expected` admits any size."""
    expected, actual = list(expected), list(actual)
    return len(expected) == len(actual) and all(e < 0 or e == a for e, a in zip(expected, actual))
