"""ros/model_service_node.py in this process over real DDS: the model service on the bundled detector — a
reload parameter or ~/load_model swapping the model (model_path following what ~/load_model loaded), a model
that cannot load refused with the reason while the old one serves, bad Infer requests answered as such, swaps
switched off, and an unconfigured node answering with no model. (Its process, concurrency and limits are tested
end to end in test_model_service.py.)"""

from __future__ import annotations

import numpy as np
import pytest
from rcl_interfaces.msg import Parameter as ParameterMsg
from rcl_interfaces.srv import SetParameters
from rclpy.parameter import Parameter

from ml_model_service.core.loading.trust import SWAP_DISABLED
from ml_model_service.ros import conversions
from ml_model_service.ros.model_service_node import ModelServiceNode
from ml_model_service.ros.remote_model import RemoteModel, call
from ml_model_service_interfaces.srv import GetMetadata, Infer, LoadModel

NS = "/model_service_node_test"


@pytest.fixture
def service(spinner):
    """Factory: a model service node of this process with `values`, spun by the client's executor."""
    made: list[ModelServiceNode] = []

    def _make(name: str, **values) -> ModelServiceNode:
        values = {"model_path": "ssd_mobilenet_v2_coco", "backend": "onnx", **values}
        node = ModelServiceNode(
            namespace=f"{NS}/{name}",
            context=spinner.node.context,
            parameter_overrides=[Parameter(k, value=v) for k, v in values.items()],
        )
        spinner.executor.add_node(node)
        made.append(node)
        return node

    yield _make
    for node in made:
        spinner.executor.remove_node(node)
        node.destroy_node()


def _call(spinner, service: str, srv, request):
    client = spinner.node.create_client(srv, service)
    try:
        return call(client, request, 30.0)
    finally:
        spinner.node.destroy_client(client)


def _set(spinner, name: str, **values):
    request = SetParameters.Request(
        parameters=[ParameterMsg(name=k, value=Parameter(k, value=v).get_parameter_value()) for k, v in values.items()]
    )
    return _call(spinner, f"{NS}/{name}/ml_model_service/set_parameters", SetParameters, request).results[0]


def test_swaps_by_parameter_and_load_model_and_refusals_keep_the_old_model(spinner, service):
    node = service("swaps")
    base = f"{NS}/swaps/ml_model_service"
    first = node.model
    assert node.stage == "active" and first is not None and first.metadata.generation > 0
    refused = _set(spinner, "swaps", model_path="/no/such/model.onnx")
    assert not refused.successful and "/no/such/model.onnx" in refused.reason
    assert node.model is first and node.counters["load_failures"] == 1
    assert _set(spinner, "swaps", model_path="efficientnet_lite0").successful  # a reload parameter: a new model
    second = node.model
    assert second is not first and second.metadata.generation == first.metadata.generation + 1
    assert node.settings.model_path == "efficientnet_lite0"
    loaded = _call(spinner, f"{base}/load_model", LoadModel, LoadModel.Request(model_path="ssd_mobilenet_v2_coco"))
    assert loaded.success and loaded.metadata.generation == second.metadata.generation + 1
    assert node.get_parameter("model_path").value == "ssd_mobilenet_v2_coco"  # says what was loaded
    bad = _call(spinner, f"{base}/load_model", LoadModel, LoadModel.Request(model_path="/etc/passwd"))
    assert not bad.success and bad.message.startswith("could not load '/etc/passwd'; the previous model keeps serving")
    assert bad.metadata.generation == loaded.metadata.generation and node.counters["loads"] == 3


def test_infer_answers_and_bad_requests(spinner, service):
    service("infer")
    base = f"{NS}/infer/ml_model_service"
    remote = RemoteModel(spinner.node, base)
    (spec,) = remote.metadata.inputs
    image = np.zeros([1, *spec.shape[1:]], np.dtype(spec.data_type))
    outputs = remote.infer({spec.name: image})
    assert len(outputs) == len(remote.metadata.outputs)
    tensor = conversions.tensor_to_msg(spec.name, image)
    twice = _call(spinner, f"{base}/infer", Infer, Infer.Request(inputs=[tensor, tensor]))
    assert not twice.success and twice.message == f"bad request: tensor {spec.name!r} appears twice in the request"
    assert twice.generation == remote.generation  # every answer says which model gave it
    wrong = _call(spinner, f"{base}/infer", Infer, Infer.Request(inputs=[conversions.tensor_to_msg("x", image)]))
    assert not wrong.success and wrong.message.startswith("bad request: ")


def test_swaps_switched_off_and_an_unconfigured_node(spinner, service):
    fixed = service("fixed", allow_model_swap=False)
    load = LoadModel.Request(model_path="efficientnet_lite0")
    refused = _call(spinner, f"{NS}/fixed/ml_model_service/load_model", LoadModel, load)
    assert not refused.success and refused.message.endswith(SWAP_DISABLED)
    assert _set(spinner, "fixed", model_path="efficientnet_lite0").reason == SWAP_DISABLED
    assert fixed.settings.model_path == "ssd_mobilenet_v2_coco"
    waiting = service("waiting", autostart=False)  # waits for a lifecycle manager: no model loaded
    assert waiting.stage == "unconfigured" and waiting.model is None
    meta = _call(spinner, f"{NS}/waiting/ml_model_service/get_metadata", GetMetadata, GetMetadata.Request())
    assert not meta.success and meta.message == "no model loaded"
    early = _call(spinner, f"{NS}/waiting/ml_model_service/load_model", LoadModel, load)
    assert not early.success and early.message.endswith("the node is unconfigured: configure it first")
    assert _set(spinner, "waiting", model_path="efficientnet_lite0").successful  # used at configure
    assert waiting.settings.model_path == "efficientnet_lite0" and waiting.model is None
