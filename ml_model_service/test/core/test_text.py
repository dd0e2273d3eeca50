"""core/text.py: text users type, read as values one way for parameters, launch arguments, CLI flags and model
metadata; and the places that read it (the parameter table, launch arguments, the CLI, model metadata flags)."""

from __future__ import annotations

import pytest

from ml_model_service import launch_args
from ml_model_service.core.reading.hints import _flag
from ml_model_service.core.settings.tables import PARAMETERS
from ml_model_service.core.text import parse_bool, parse_list, parse_number


@pytest.mark.parametrize("text", ["true", "True", " TRUE ", "1", "yes", "on", "On"])
def test_true_words(text):
    assert parse_bool(text) is True


@pytest.mark.parametrize("text", ["false", "False", "0", "no", "off", " OFF"])
def test_false_words(text):
    assert parse_bool(text) is False


@pytest.mark.parametrize("text", ["", "2", "truthy", "none", "y"])
def test_anything_else_is_not_a_boolean(text):
    assert parse_bool(text) is None


def test_numbers():
    assert parse_number("0.25") == 0.25
    assert parse_number(" 3 ") == 3.0
    assert parse_number("1e-3") == 0.001
    assert parse_number("inf") == float("inf")
    assert parse_number("nan") is None
    assert parse_number("0.2.1") is None


def test_lists_in_each_form_users_write():
    assert parse_list("cpu") == ["cpu"]
    assert parse_list("cuda, cpu") == ["cuda", "cpu"]
    assert parse_list("[cuda, cpu]") == ["cuda", "cpu"]
    assert parse_list("['cuda', 'cpu']") == ["cuda", "cpu"]  # no quotes kept
    assert parse_list("[0.5, 1]") == ["0.5", "1"]
    assert parse_list("[]") == [] and parse_list("") == []
    assert parse_list("a,,b") is None  # an empty entry
    assert parse_list("[a, [b]]") is None  # not a list of plain values
    assert parse_list("[a") is None  # not YAML


def test_every_reader_agrees_on_booleans():
    """A parameter, a launch argument and a metadata flag read the same words the same way."""
    param = PARAMETERS["use_depth"]
    for word in ("on", "off", "yes", "no", "1", "0", "True"):
        expected = parse_bool(word)
        assert param.coerce(word) is expected
        assert launch_args.to_bool("use_depth", word) is expected
        assert _flag(word) is expected
    assert param.coerce("maybe") == "maybe" and param.validate("maybe")  # refused by the table
    with pytest.raises(launch_args.LaunchArgumentError, match="is not a boolean"):
        launch_args.to_bool("use_depth", "maybe")


def test_every_reader_agrees_on_lists():
    param = PARAMETERS["execution_providers"]
    for text in ("cuda,cpu", "[cuda, cpu]", "['cuda', 'cpu']"):
        assert param.coerce(text) == ["cuda", "cpu"]
        assert launch_args.to_str_list("execution_providers", text) == ["cuda", "cpu"]
    with pytest.raises(launch_args.LaunchArgumentError, match="not a list of names"):
        launch_args.to_str_list("execution_providers", "[a, [b]]")


def test_cli_numbers_are_read_without_truncation():
    from ml_model_service.cli import CliError, _convert

    assert _convert(PARAMETERS["top_n"], "3") == 3
    assert _convert(PARAMETERS["confidence_threshold"], "0.4") == 0.4
    with pytest.raises(CliError):
        _convert(PARAMETERS["top_n"], "2.5")  # before, silently 2
    with pytest.raises(CliError, match="not a number"):
        _convert(PARAMETERS["top_n"], "three")
