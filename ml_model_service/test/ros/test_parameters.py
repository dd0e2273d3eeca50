"""ros/parameters.py in this process over real DDS: the vision node's table declared with the descriptors `ros2
param describe` shows, start-up values in the forms users type made the declared type (or refused in one line),
and run-time sets through the parameter services typed (`typed_values`) and validated (`validator`)."""

from __future__ import annotations

import pytest
from rcl_interfaces.msg import Parameter as ParameterMsg
from rcl_interfaces.msg import ParameterType, ParameterValue
from rcl_interfaces.srv import DescribeParameters, GetParameters, SetParameters
from rclpy.node import Node
from rclpy.parameter import Parameter

from ml_model_service.core.settings.tables import VISION_PARAMS
from ml_model_service.ros.parameters import ParameterError, declare, read, typed_values, validator
from ml_model_service.ros.remote_model import call

NS = "/parameters_test"


def _node(spinner, name: str, **overrides) -> Node:
    return Node(
        name,
        namespace=NS,
        context=spinner.node.context,
        parameter_overrides=[Parameter(k, value=v) for k, v in overrides.items()],
    )


@pytest.fixture
def declared(spinner):
    """Factory: a node with VISION_PARAMS declared from `overrides`, spun by the client's executor; its values."""
    made: list[Node] = []

    def _make(name: str, **overrides) -> tuple[Node, dict]:
        node = _node(spinner, name, **overrides)
        made.append(node)
        values = declare(node, VISION_PARAMS)
        spinner.executor.add_node(node)
        return node, values

    yield _make
    for node in made:
        spinner.executor.remove_node(node)
        node.destroy_node()


def _client(spinner, srv, node: str, name: str):
    return spinner.node.create_client(srv, f"{NS}/{node}/{name}")


def test_start_up_values_typed_as_declared_and_described(spinner, declared):
    node, values = declared(
        "typed", execution_providers="cpu", use_depth=1, confidence_threshold=1, input_mean=[1, 2, 3], classes="[]"
    )
    assert values["execution_providers"] == ["cpu"] and values["use_depth"] is True
    assert values["confidence_threshold"] == 1.0 and isinstance(values["confidence_threshold"], float)
    assert values["input_mean"] == [1.0, 2.0, 3.0] and values["classes"] == []
    # what `ros2 param get/dump` reads: every value, empty lists with their declared type
    names = ["execution_providers", "use_depth", "confidence_threshold", "input_mean", "classes", "allowed_paths"]
    got = call(_client(spinner, GetParameters, "typed", "get_parameters"), GetParameters.Request(names=names), 5)
    types = [v.type for v in got.values]
    assert types == [
        ParameterType.PARAMETER_STRING_ARRAY,
        ParameterType.PARAMETER_BOOL,
        ParameterType.PARAMETER_DOUBLE,
        ParameterType.PARAMETER_DOUBLE_ARRAY,
        ParameterType.PARAMETER_STRING_ARRAY,
        ParameterType.PARAMETER_STRING_ARRAY,
    ]
    assert list(got.values[0].string_array_value) == ["cpu"] and list(got.values[4].string_array_value) == []
    # what `ros2 param describe` shows: ranges, choices, tiers, read-only (an empty read-only list too)
    names = ["confidence_threshold", "num_threads", "model_type", "allowed_paths", "classes"]
    described = call(
        _client(spinner, DescribeParameters, "typed", "describe_parameters"),
        DescribeParameters.Request(names=names),
        5,
    ).descriptors
    confidence, threads, model_type, allowed, classes = described
    assert (confidence.floating_point_range[0].from_value, confidence.floating_point_range[0].to_value) == (0.0, 1.0)
    assert (threads.integer_range[0].from_value, threads.integer_range[0].to_value) == (0, 256)
    assert model_type.additional_constraints.startswith("one of: auto, detector, yolo")
    assert "a change rebuilds decoding/preprocessing" in model_type.additional_constraints
    assert allowed.read_only and allowed.type == ParameterType.PARAMETER_STRING_ARRAY
    assert not classes.read_only and "applied live" in classes.additional_constraints
    assert confidence.description and "range 0.0..1.0" in confidence.additional_constraints


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        (
            {"confidence_threshold": 2.0},
            "parameter confidence_threshold: 2.0 is outside 0.0..1.0 (from the parameter file or command line)",
        ),
        ({"image_qos": "fast"}, "parameter image_qos: 'fast' is not one of sensor_data, reliable (from the"),
        ({"tracker_min_hits": 5, "tracker_max_age": 2}, "parameter tracker_min_hits 5 must be at most tracker_max_age"),
    ],
)
def test_an_unusable_start_up_value_is_refused_in_one_line(spinner, overrides, reason):
    node = _node(spinner, "refused", **overrides)
    try:
        with pytest.raises(ParameterError) as raised:
            declare(node, VISION_PARAMS)
        assert str(raised.value).startswith(reason) and "\n" not in str(raised.value)
        assert not node.has_parameter("model_path")  # nothing declared
    finally:
        node.destroy_node()


def _value(**kw) -> ParameterValue:
    return ParameterValue(**kw)


def test_run_time_sets_in_users_forms_are_typed_and_validated(spinner, declared):
    node, values = declared("live")
    node.add_pre_set_parameters_callback(typed_values(VISION_PARAMS))
    node.add_on_set_parameters_callback(
        validator(VISION_PARAMS, lambda: values, lambda c: "no cats here" if "cat" in c["classes"] else "")
    )
    client = _client(spinner, SetParameters, "live", "set_parameters")

    def set_one(name: str, value: ParameterValue):
        result = call(client, SetParameters.Request(parameters=[ParameterMsg(name=name, value=value)]), 5)
        return result.results[0]

    # `ros2 param set ... classes "[]"` sends an empty bool array: it becomes the declared string array
    assert set_one("classes", _value(type=ParameterType.PARAMETER_BOOL_ARRAY, bool_array_value=[])).successful
    assert node.get_parameter("classes").type_ == Parameter.Type.STRING_ARRAY
    # an integer for a float, integers for floats
    assert set_one("confidence_threshold", _value(type=ParameterType.PARAMETER_INTEGER, integer_value=1)).successful
    assert node.get_parameter("confidence_threshold").value == 1.0
    ints = _value(type=ParameterType.PARAMETER_INTEGER_ARRAY, integer_array_value=[1, 2, 3])
    assert set_one("input_std", ints).successful
    assert read([node.get_parameter("input_std")]) == {"input_std": [1.0, 2.0, 3.0]}
    # refused with the reason: a range (the declared descriptor's), the combination, the node's own check, a type
    # no form makes right
    out_of_range = set_one("confidence_threshold", _value(type=ParameterType.PARAMETER_DOUBLE, double_value=1.5))
    assert not out_of_range.successful and "confidence_threshold out of range" in out_of_range.reason
    hits = set_one("tracker_min_hits", _value(type=ParameterType.PARAMETER_INTEGER, integer_value=50))
    assert not hits.successful and hits.reason == "tracker_min_hits 50 must be at most tracker_max_age 30"
    cats = set_one("classes", _value(type=ParameterType.PARAMETER_STRING_ARRAY, string_array_value=["cat"]))
    assert not cats.successful and cats.reason == "no cats here"
    wrong = set_one("model_type", _value(type=ParameterType.PARAMETER_INTEGER, integer_value=3))
    assert not wrong.successful
    assert node.get_parameter("confidence_threshold").value == 1.0 and node.get_parameter("classes").value == []
    assert node.get_parameter("model_type").value == "auto"
