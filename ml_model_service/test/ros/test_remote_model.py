"""ros/remote_model.py in this process over real DDS: a model service node (in this process too, on the bundled
detector) used like a local Model through RemoteModel — its metadata and labels, answers equal to the local
model's, a swap seen as ModelChanged until the metadata is fetched again — and `call`, the executor-based helper."""

from __future__ import annotations

import numpy as np
import pytest
from rclpy.parameter import Parameter

from ml_model_service.core.loading.model import Model
from ml_model_service.ros.model_service_node import ModelServiceNode
from ml_model_service.ros.remote_model import ModelChanged, RemoteError, RemoteModel, call
from ml_model_service_dev.harness.photos import photo
from ml_model_service_interfaces.srv import GetMetadata

NS = "/remote_model_test"
SERVICE = f"{NS}/ml_model_service"


@pytest.fixture(scope="module")
def service(spinner):
    """The model service node on the bundled detector (ONNX Runtime), spun by the client's executor."""
    node = ModelServiceNode(
        namespace=NS,
        context=spinner.node.context,
        parameter_overrides=[
            Parameter("model_path", value="ssd_mobilenet_v2_coco"),
            Parameter("backend", value="onnx"),
            Parameter("num_threads", value=1),
        ],
    )
    with spinner.spun(node):
        yield node


def _input(spec) -> dict[str, np.ndarray]:
    """The chelsea photograph cut to the model's input shape, in its data type."""
    _, h, w, c = spec.shape
    return {spec.name: photo("chelsea")[None, :h, :w, :c].astype(np.dtype(spec.data_type))}


@pytest.mark.usefixtures("service")
def test_metadata_labels_and_answers_equal_the_local_models(spinner):
    remote = RemoteModel(spinner.node, SERVICE, timeout=5.0)
    assert remote.ready() and remote.generation > 0
    local = Model("ssd_mobilenet_v2_coco", backend="onnx")
    # the class names as data (no label file opened here): the local model's, index for index
    assert remote.labels is not None and dict(remote.labels.names) == dict(local.labels.names)
    assert "cat" in remote.labels.names.values() and remote.metadata.name == local.metadata.name
    (spec,) = remote.metadata.inputs
    inputs = _input(spec)
    expected = local.infer(inputs)
    got = remote.infer(inputs)
    assert set(got) == set(expected)
    for name, value in expected.items():
        np.testing.assert_allclose(got[name], value, rtol=1e-5, atol=1e-5, err_msg=name)
    with pytest.raises(RemoteError, match=f"^{SERVICE}/infer: "):  # a refused request: the service's reason
        remote.infer({"not_an_input": inputs[spec.name]})
    # the executor-based helper, for the services other than Infer
    client = spinner.node.create_client(GetMetadata, f"{SERVICE}/get_metadata")
    answer = call(client, GetMetadata.Request(), 5.0)
    assert answer.success and answer.metadata.generation == remote.generation
    spinner.node.destroy_client(client)


@pytest.mark.usefixtures("service")
def test_a_swap_is_model_changed_until_the_metadata_is_fetched_again(spinner):
    remote = RemoteModel(spinner.node, SERVICE, timeout=10.0)
    (spec,) = remote.metadata.inputs
    inputs = _input(spec)
    before = remote.generation
    assert remote.load("efficientnet_lite0").success
    with pytest.raises(ModelChanged) as changed:
        remote.infer(inputs)
    assert changed.value.old == before and changed.value.new > before
    assert f"model changed on {SERVICE}: generation {before} -> {changed.value.new}" in str(changed.value)
    remote.fetch_metadata()
    assert remote.generation == changed.value.new and "tabby" in " ".join(remote.labels.names.values())
    (spec,) = remote.metadata.inputs
    (scores,) = remote.infer(_input(spec)).values()
    assert scores.shape[-1] >= 1000  # the classifier answers now
    assert remote.load("ssd_mobilenet_v2_coco").success  # (back, for the other tests)


def test_a_service_that_is_not_there_is_a_remote_error_at_once(spinner):
    with pytest.raises(RemoteError, match="service /nobody/here/get_metadata is not available"):
        RemoteModel(spinner.node, "/nobody/here/", timeout=0.2)
    lazy = RemoteModel(spinner.node, "/nobody/here", timeout=0.2, fetch=False)
    assert not lazy.ready() and lazy.generation == 0 and lazy.labels is None
    client = spinner.node.create_client(GetMetadata, "/nobody/here/get_metadata")
    with pytest.raises(RemoteError, match="is not available"):
        call(client, GetMetadata.Request(), 0.2)
    spinner.node.destroy_client(client)
