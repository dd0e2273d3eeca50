"""Launch arguments as users type them → typed overrides; only given arguments override (no ROS needed)."""

from __future__ import annotations

import pytest

from ml_model_service import launch_args as la


@pytest.mark.parametrize(
    "text, value",
    [
        ("true", True),
        ("True", True),
        ("1", True),
        ("yes", True),
        ("on", True),
        ("false", False),
        ("False", False),
        ("0", False),
        ("off", False),
    ],
)
def test_booleans(text, value):
    assert la.to_bool("use_depth", text) is value


@pytest.mark.parametrize(
    "text, value",
    [
        ("cpu", ["cpu"]),
        ("cuda,cpu", ["cuda", "cpu"]),
        (" cuda , cpu ", ["cuda", "cpu"]),
        ("['cuda', 'cpu']", ["cuda", "cpu"]),
        ("[tensorrt, cuda, cpu]", ["tensorrt", "cuda", "cpu"]),
    ],
)
def test_lists(text, value):
    assert la.to_str_list("execution_providers", text) == value


@pytest.mark.parametrize(
    "convert, text, message",
    [
        (la.to_bool, "maybe", "use_depth:='maybe' is not a boolean"),
        (la.to_bool, "2", "is not a boolean"),
        (la.to_str_list, "cuda,,cpu", "has an empty entry"),
        (la.to_str_list, "[]", "has an empty entry"),
        (la.to_str_list, "[cuda", "is not a list of names"),
        (la.to_str_list, "[[cuda]]", "is not a list of names"),
        (lambda n, t: la.to_float(n, t, 0.0, 1.0), "1.5", "outside 0.0..1.0"),
        (lambda n, t: la.to_float(n, t, 0.0, 1.0), "nan", "is not a number"),
        (la.to_float, "abc", "is not a number"),
    ],
)
def test_refusals_name_the_argument(convert, text, message):
    with pytest.raises(la.LaunchArgumentError, match="use_depth" if "use_depth" in message else None) as err:
        convert("use_depth" if convert is la.to_bool else "arg", text)
    assert message in str(err.value)


def test_only_given_arguments_override():
    converters = {
        "use_depth": la.to_bool,
        "confidence_threshold": la.to_float,
        "model_path": la.to_str,
        "execution_providers": la.to_str_list,
    }
    given = {"use_depth": "1", "confidence_threshold": "", "model_path": "  ", "execution_providers": "cpu"}
    assert la.overrides(given, converters) == {"use_depth": True, "execution_providers": ["cpu"]}
    assert la.overrides({}, converters) == {}
