"""Declaring the parameter table (`core/settings/tables.py`) on a node, with descriptors `ros2 param describe`
shows, typed empty lists (so `ros2 param dump` writes them and loads them back), and the forms users type
on the command line made the declared type (`execution_providers:=cpu`, `use_depth:=1`).

Map-like parameters (label_confidences, remap_*) are string arrays of "key:value" entries, which a YAML
parameter file writes as `["person:0.6", "car:0.4"]`.

At run time the same forms are accepted (`typed_values`, rclpy's pre-set callback, before rclpy's own type
check): an empty list of any type (`ros2 param set /vision_service classes "[]"` sends a bool array, an empty
YAML list in `ros2 param load` another) becomes the declared list type, so every list can be set back to its
default; an integer becomes the float a float parameter declares.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, SetParametersResult
from rclpy.node import Node
from rclpy.parameter import Parameter

from ..core.settings.params import Param
from ..core.settings.tables import by_name, validate

_TYPES = {
    bool: Parameter.Type.BOOL,
    int: Parameter.Type.INTEGER,
    float: Parameter.Type.DOUBLE,
    str: Parameter.Type.STRING,
}
_ARRAY_TYPES = {
    str: Parameter.Type.STRING_ARRAY,
    float: Parameter.Type.DOUBLE_ARRAY,
    int: Parameter.Type.INTEGER_ARRAY,
    bool: Parameter.Type.BOOL_ARRAY,
}


class ParameterError(ValueError):
    """A start-up parameter value that cannot be used (the message is the one line to show)."""


def param_type(p: Param) -> Parameter.Type:
    return _ARRAY_TYPES[p.item_type] if p.is_list else _TYPES[type(p.default)]


def descriptor(p: Param) -> ParameterDescriptor:
    desc = ParameterDescriptor(
        description=p.description,
        read_only=p.read_only,
        type=param_type(p).value,
        additional_constraints=p.constraints(),
    )
    if p.low is not None and p.high is not None and isinstance(p.default, float):
        desc.floating_point_range = [FloatingPointRange(from_value=float(p.low), to_value=float(p.high))]
    elif p.low is not None and p.high is not None and isinstance(p.default, int) and not isinstance(p.default, bool):
        desc.integer_range = [IntegerRange(from_value=int(p.low), to_value=int(p.high), step=1)]
    return desc


def declare(node: Node, params: Sequence[Param]) -> dict[str, Any]:
    """Declare `params` on `node`; start-up values (parameter files, -p) are coerced to the declared type
    and validated. Raises ParameterError with one clear line when one cannot be used."""
    overrides = node._parameter_overrides  # noqa: SLF001 (rclpy keeps start-up values only here)
    values = {}
    for p in params:
        value = list(p.default) if p.is_list else p.default
        if p.name in overrides:
            given = overrides[p.name].value
            value = p.coerce(list(given) if isinstance(given, (list, tuple)) or hasattr(given, "tolist") else given)
            reason = p.validate(value)
            if reason:
                raise ParameterError(f"parameter {reason} (from the parameter file or command line)")
        values[p.name] = value
    reason = validate(values, params)
    if reason:
        raise ParameterError(f"parameter {reason}")
    for p in params:
        overrides.pop(p.name, None)  # the coerced value is declared instead of the raw override
        if p.is_list and not values[p.name]:  # an empty list has no type of its own: declare by type, set typed
            desc = descriptor(p)
            desc.read_only = False  # a read-only parameter could not be set below
            node.declare_parameter(p.name, param_type(p), desc)
            node.set_parameters([Parameter(p.name, param_type(p), [])])
            if p.read_only:
                node.set_descriptor(p.name, descriptor(p))
        else:
            node.declare_parameter(p.name, values[p.name], descriptor(p))
    return values


def typed_values(params: Sequence[Param]) -> Callable[[list[Parameter]], list[Parameter]]:
    """A pre-set-parameters callback: values in the forms users send, made the declared type (see above)."""
    table = by_name(params)

    def pre_set(parameters: list[Parameter]) -> list[Parameter]:
        out = []
        for param in parameters:
            p = table.get(param.name)
            value = param.value
            if p is not None and param.type_ != param_type(p):
                if p.is_list and (
                    param.type_ == Parameter.Type.NOT_SET
                    or (isinstance(value, (list, tuple)) or hasattr(value, "tolist"))
                    and len(value) == 0
                ):
                    param = Parameter(param.name, param_type(p), [])
                elif p.is_list and p.item_type is float and param.type_ == Parameter.Type.INTEGER_ARRAY:
                    param = Parameter(param.name, param_type(p), [float(v) for v in value])
                elif isinstance(p.default, float) and param.type_ == Parameter.Type.INTEGER:
                    param = Parameter(param.name, Parameter.Type.DOUBLE, float(value))
            out.append(param)
        return out

    return pre_set


def read(parameters: Sequence[Parameter]) -> dict[str, Any]:
    """name → plain Python value (lists as lists)."""
    out = {}
    for param in parameters:
        value = param.value
        out[param.name] = list(value) if isinstance(value, (list, tuple)) or hasattr(value, "tolist") else value
    return out


def validator(
    params: Sequence[Param], current: Callable[[], dict[str, Any]], extra: Callable[[dict[str, Any]], str] | None = None
):
    """An on-set-parameters callback that only validates: coerced types, validators, the combination, then
    `extra(candidate)` ("" or a reason). Storing and applying happen elsewhere (post-set)."""
    table = by_name(params)

    def on_set(parameters: Sequence[Parameter]) -> SetParametersResult:
        candidate = dict(current())
        for name, value in read(parameters).items():
            if name in table:
                candidate[name] = value
        reason = validate(candidate, params) or (extra(candidate) if extra else "")
        return SetParametersResult(successful=not reason, reason=reason)

    return on_set
