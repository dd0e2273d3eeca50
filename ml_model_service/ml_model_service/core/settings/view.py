"""The base of the typed views of the table (`typed.py`, generated): a frozen set of parameter values read as
attributes, lists as tuples and choices as enums, so that nodes and the CLI never look a parameter up by its
name."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import fields
from enum import Enum
from typing import Any, TypeVar, get_type_hints

from .tables import value_of

S = TypeVar("S", bound="SettingsView")


_CONVERTERS: dict[type, dict[str, Callable[[Any], Any]]] = {}


def _converters(cls: type) -> dict[str, Callable[[Any], Any]]:
    """Each field's converter from a parameter value: its enum, `tuple` for a list, else as it is."""
    if cls in _CONVERTERS:
        return _CONVERTERS[cls]
    hints = get_type_hints(cls)
    out: dict[str, Callable[[Any], Any]] = {}
    for f in fields(cls):
        kind = hints[f.name]
        if isinstance(kind, type) and issubclass(kind, Enum):
            out[f.name] = kind
        elif getattr(kind, "__origin__", None) is tuple:
            out[f.name] = tuple
        else:
            out[f.name] = _same
    _CONVERTERS[cls] = out
    return out


def _same(value: Any) -> Any:
    return value


class SettingsView:
    """A typed, frozen view of one node's parameter values (subclasses are dataclasses generated from the
    table)."""

    @classmethod
    def of(cls: type[S], values: Mapping[str, Any]) -> S:
        """The view of `values` (the table's default for any parameter it lacks)."""
        return cls(**{name: convert(value_of(values, name)) for name, convert in _converters(cls).items()})

    def updated(self: S, changed: Mapping[str, Any]) -> S:
        """This view with the parameters in `changed` (by name) set."""
        return type(self).of({**vars(self), **changed})
