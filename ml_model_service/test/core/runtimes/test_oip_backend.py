"""The pure parts of the Open Inference Protocol backend (core/runtimes/oip_backend.py): server references,
data types, tensor specs and model parameters from metadata. No server is started or reached."""

from __future__ import annotations

import re

import numpy as np
import pytest

from ml_model_service.core.runtimes.backend import ModelLoadError
from ml_model_service.core.runtimes.oip_backend import (
    NUMPY_TO_V2,
    V2_TYPES,
    OipBackend,
    ServerRef,
    is_server_ref,
    parse_server_ref,
    server_parameters,
)


def test_is_server_ref_by_scheme_only():
    for ref in ("grpc://h:1/m", " HTTP://h:1/m", "https://h/m", "grpcs://x", "grpc://not valid"):
        assert is_server_ref(ref), ref
    for ref in ("", None, "model.onnx", "/models/grpc://x", "file://m.onnx", "ssd_mobilenet_v2_coco"):
        assert not is_server_ref(ref), ref


def test_parse_server_ref_reads_host_port_model_and_version():
    ref = parse_server_ref(" grpc://Robot-Hub.local:8001/ssd/3/ ")
    assert ref == ServerRef("grpc", "robot-hub.local", 8001, "ssd", "3")
    assert ref.address == "robot-hub.local:8001"
    assert ref.url == "grpc://robot-hub.local:8001/ssd/3"
    plain = parse_server_ref("http://10.0.0.5:8000/efficientnet_lite0")
    assert (plain.scheme, plain.version, plain.url) == ("http", "", "http://10.0.0.5:8000/efficientnet_lite0")
    v6 = parse_server_ref("grpc://[::1]:8001/m")
    assert v6.host == "[::1]" and v6.address == "[::1]:8001"
    assert parse_server_ref(v6.url) == v6  # written back out, read again: the same reference


@pytest.mark.parametrize(
    "ref, words",
    [
        ("grpc://127.0.0.1/ssd", "grpc://HOST:PORT/MODEL"),  # no port
        ("https://hub:443/ssd", "TLS is not supported"),
        ("grpc://hub:8001/", "expected"),  # no model
        ("grpc://hub:8001/ssd/v2", "expected"),  # a version is a number
        ("grpc://hub:0/ssd", "port 0 is out of range"),
        ("grpc://hub:70000/ssd", "port 70000 is out of range"),
        ("", "cannot read model server reference ''"),
    ],
)
def test_a_malformed_reference_names_the_expected_form(ref, words):
    with pytest.raises(ModelLoadError, match=re.escape(words)):
        parse_server_ref(ref)


def test_v2_types_map_both_ways_to_numpy():
    assert {np.dtype(v).name: k for k, v in V2_TYPES.items()} == NUMPY_TO_V2
    assert V2_TYPES["FP32"] == "float32" and NUMPY_TO_V2["uint8"] == "UINT8"
    assert "BYTES" not in V2_TYPES  # strings cannot be carried


def test_tensor_specs_from_metadata():
    spec = OipBackend._spec({"name": "images", "datatype": "FP32", "shape": [-1, 3, "640", 640]}, "m")  # noqa: SLF001
    assert (spec.name, spec.data_type, spec.shape) == ("images", "float32", [-1, 3, 640, 640])
    with pytest.raises(ModelLoadError, match="tensor 'text' has data type BYTES"):
        OipBackend._spec({"name": "text", "datatype": "BYTES", "shape": [1]}, "m")  # noqa: SLF001


def test_server_parameters_from_metadata_and_either_configuration_form():
    meta = {"parameters": {"labels": {"string_value": "a,b"}, "empty": {"string_value": ""}, "n": 3}}
    assert server_parameters(meta) == {"labels": "a,b"}  # empty and non-string values left out
    grpc_config = {"config": {"parameters": {"labels": {"string_value": "x,y"}, "task": {"string_value": "det"}}}}
    http_config = {"parameters": {"labels": {"stringValue": "x,y"}}}
    assert server_parameters({}, grpc_config) == {"labels": "x,y", "task": "det"}
    assert server_parameters({}, http_config) == {"labels": "x,y"}
    # the metadata's own parameters win over the configuration's
    assert server_parameters(meta, grpc_config) == {"labels": "a,b", "task": "det"}
    assert server_parameters({}) == {}
