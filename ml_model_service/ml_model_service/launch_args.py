"""Launch arguments as users type them → typed parameter overrides (used by the launch files).

A launch argument overrides the user's parameter file only when it was given on the command line: the
launch files declare every parameter argument with the default "" ("not given"), and only the non-empty
ones become overrides, converted to the parameter's type. Values that cannot be converted are refused
with one line naming the argument and the accepted forms (`ros2 launch` prints it and exits).
A launch argument that sets a parameter is read by `for_param`: the launch forms of the parameter's type, then
the parameter table's own coercion and checks (`Param.coerce`, `Param.validate`, its range), so a value the
node would refuse is refused at launch with the same rule. ROS-free: plain strings in, Python values out.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

from .core.settings.tables import PARAMETERS
from .core.text import parse_bool, parse_list, parse_number
from .ros import dds


class LaunchArgumentError(ValueError):
    """A launch argument's value cannot be converted to its parameter's type."""


def to_bool(name: str, text: str) -> bool:
    """'true'/'True'/'1'/'yes'/'on' → True, 'false'/'0'/'no'/'off' → False; anything else is refused."""
    value = parse_bool(text)
    if value is not None:
        return value
    raise LaunchArgumentError(f"{name}:={text!r} is not a boolean; use true or false (1/0, yes/no, on/off)")


def to_float(name: str, text: str, low: float | None = None, high: float | None = None) -> float:
    """A number, optionally within [low, high]."""
    value = parse_number(text)
    if value is None:
        raise LaunchArgumentError(f"{name}:={text!r} is not a number")
    if (low is not None and value < low) or (high is not None and value > high):
        raise LaunchArgumentError(f"{name}:={text!r} is outside {low}..{high}")
    return value


def to_str_list(name: str, text: str) -> list[str]:
    """'cpu' → ['cpu']; 'cuda,cpu' → ['cuda', 'cpu']; "['cuda', 'cpu']" or '[cuda, cpu]' (YAML) as well.

    An empty list is refused: a launch file cannot pass a typed empty list (set it in a parameter file)."""
    items = parse_list(text)
    if items is None and text.strip().startswith("["):
        raise LaunchArgumentError(f"{name}:={text!r} is not a list of names; use e.g. {name}:=cuda,cpu")
    if not items:
        raise LaunchArgumentError(f"{name}:={text!r} has an empty entry; use e.g. {name}:=cuda,cpu")
    return items


def to_str(name: str, text: str) -> str:  # noqa: ARG001 (same signature as the other converters)
    """Strings pass unchanged."""
    return text


def for_param(parameter: str) -> Callable[[str, str], Any]:
    """The converter of a launch argument that sets `parameter`: its text read in the launch forms of the
    parameter's type (`to_bool`, `to_float` within the table's range, `to_str_list`, `to_str`), then coerced
    and validated by the table."""
    p = PARAMETERS[parameter]
    read: Callable[[str, str], Any]
    if isinstance(p.default, bool):
        read = to_bool
    elif isinstance(p.default, float):

        def read(name: str, text: str) -> float:  # type: ignore[misc]  # one reader per type
            return to_float(name, text, p.low, p.high)
    elif p.is_list and p.item_type is str:
        read = to_str_list
    elif isinstance(p.default, str):
        read = to_str
    else:
        raise TypeError(f"parameter {parameter} ({type(p.default).__name__}) has no launch argument form")

    def convert(name: str, text: str) -> Any:
        value = p.coerce(read(name, text))
        reason = p.validate(value)
        if reason:
            raise LaunchArgumentError(f"{name}:={text!r} is refused: {reason}")
        return value

    return convert


def overrides(given: Mapping[str, str], converters: Mapping[str, Callable[[str, str], Any]]) -> dict[str, Any]:
    """{parameter: typed value} for each argument in `converters` whose value in `given` is non-empty."""
    out = {}
    for name, convert in converters.items():
        text = given.get(name, "")
        if text.strip():
            out[name] = convert(name, text.strip())
    return out


#: The model arguments both launch files take: name -> (converter, description).
MODEL_ARGS = {
    "model_path": (
        for_param("model_path"),
        "model file (.onnx/.tflite), model repository name or bundled name "
        "(default: from params_file; empty there: the bundled SSD detector)",
    ),
    "label_path": (for_param("label_path"), "label file (default: from params_file; empty there: beside the model)"),
    "execution_providers": (
        for_param("execution_providers"),
        "onnxruntime providers in order of preference: cpu, "
        "cuda,cpu or \"['cuda', 'cpu']\" (default: from "
        "params_file)",
    ),
}


#: How the started nodes run, both launch files: name -> description (every one defaults to "not given").
RUN_ARGS = {
    "use_sim_time": "true: every node started takes its time from /clock (simulation, rosbag play --clock)",
    "managed": "true: the nodes start unconfigured, for a lifecycle manager (ros2 lifecycle set NODE "
    "configure, then activate); false (default): they configure and activate themselves",
    "autostart": "with managed:=true, true configures and activates them at start all the same",
}


def run_parameters(given: Mapping[str, str]) -> dict[str, Any]:
    """The node parameters the RUN_ARGS given on the command line set (use_sim_time, autostart)."""
    out: dict[str, Any] = {}
    if given.get("use_sim_time", "").strip():
        out["use_sim_time"] = to_bool("use_sim_time", given["use_sim_time"].strip())
    managed = to_bool("managed", given["managed"].strip()) if given.get("managed", "").strip() else None
    if given.get("autostart", "").strip():
        out["autostart"] = for_param("autostart")("autostart", given["autostart"].strip())
    elif managed is not None:
        out["autostart"] = not managed
    return out


def fastdds_env(share: str) -> dict[str, str]:
    """The Fast DDS profile for the started nodes under the names their distro's Fast DDS reads (`dds`): the
    user's own, else the shipped one; nothing when the user chose the builtin transports."""
    return dds.profile_env(os.path.join(share, "config", "fastdds_large_data.xml"))
