"""ros/vision_node.py in this process over real DDS: the vision node on the bundled detector, its parameters
changed through the parameter services and applied by tier — a threshold never reloads the model (label_info
republished), a decoding option rebuilds the decoder on the loaded model, a model_path loads the new model —
and changes refused with the reason while the current model keeps serving. (Its frames, calls and lifecycle in
its own process are tested end to end in test_vision_service.py, test_vision_parameters.py and test_stops.py.)"""

from __future__ import annotations

import pytest
from rcl_interfaces.msg import Parameter as ParameterMsg
from rcl_interfaces.srv import SetParameters
from rclpy.parameter import Parameter
from vision_msgs.msg import LabelInfo

from ml_model_service.ros import tf
from ml_model_service.ros.remote_model import call
from ml_model_service.ros.vision.outputs import LATCHED
from ml_model_service.ros.vision_node import VisionNode
from ml_model_service_dev.harness.waits import wait_for

from conftest import Collector

NS = "/vision_node_test"


@pytest.fixture
def vision(spinner):
    node = VisionNode(
        namespace=NS,
        context=spinner.node.context,
        parameter_overrides=[
            Parameter("model_path", value="ssd_mobilenet_v2_coco"),
            Parameter("backend", value="onnx"),
        ],
    )
    with spinner.spun(node):
        yield node


def _set(spinner, **values):
    client = spinner.node.create_client(SetParameters, f"{NS}/vision_service/set_parameters")
    try:
        request = SetParameters.Request(
            parameters=[
                ParameterMsg(name=k, value=Parameter(k, value=v).get_parameter_value()) for k, v in values.items()
            ]
        )
        return call(client, request, 30.0).results[0]
    finally:
        spinner.node.destroy_client(client)


def test_parameter_changes_applied_by_tier_and_refused_with_the_reason(spinner, vision):
    assert vision.stage == "active" and vision.source.ok, vision.source.state
    first = vision.source.vision
    labels = Collector(spinner.node, LabelInfo, f"{NS}/label_info", LATCHED)
    wait_for(lambda: labels.messages, 5, what="the latched label_info")
    # a threshold: the filters of the loaded model, label_info again with it
    assert _set(spinner, confidence_threshold=0.7).successful
    assert vision.source.vision is first and first.config.filters.confidence_threshold == 0.7
    wait_for(lambda: labels.messages[-1].threshold == pytest.approx(0.7), 5, what="label_info with 0.7")
    assert vision.settings.confidence_threshold == 0.7 and vision.values["confidence_threshold"] == 0.7
    # a decoding option: a new decoder on the same loaded model
    assert _set(spinner, resize_mode="letterbox").successful
    rebuilt = vision.source.vision
    assert rebuilt is not first and rebuilt.runner is first.runner and rebuilt.config.resize_mode == "letterbox"
    # refused, the current model serving on
    unknown = _set(spinner, classes=["kitten"])
    assert not unknown.successful and unknown.reason.startswith("classes: 'kitten' is not a label of this model")
    missing = _set(spinner, model_path="/no/such/model.onnx")
    assert not missing.successful
    assert missing.reason.startswith("model not changed, the current one keeps serving: ")
    if not tf.available():
        assert _set(spinner, target_frame="base_link").reason == tf.INSTALL_TF2
    assert vision.source.vision is rebuilt and vision.settings.model_path == "ssd_mobilenet_v2_coco"
    # a model: loaded before it is accepted, then serving
    assert _set(spinner, model_path="efficientnet_lite0").successful
    assert vision.source.vision.role == "classifier" and vision.source.vision.runner is not first.runner
    assert vision.get_parameter("model_path").value == "efficientnet_lite0"
