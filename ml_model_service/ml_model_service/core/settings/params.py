"""A parameter of the table (`Param`: type, default, range, allowed values, fixed list length, tier) and the
validators its entries use. The tiers say what a change does, cheapest last (a change applies the most
expensive tier among the changed parameters):
- `fixed`: read-only, set at start-up only;
- `runner`: open the model again (file, labels, backend, providers, threads, repository);
- `model`: rebuild the decoder and preprocessing on the loaded model (one trial inference);
- `filters`: swap the result filters (thresholds, classes) — no model work;
- `live`: read at the next frame (top_n, debug image, clouds, timeouts).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..reading.decoders.base import ROLES
from ..text import parse_bool, parse_list

FIXED, RUNNER, MODEL, FILTERS, LIVE = "fixed", "runner", "model", "filters", "live"
TIER_ORDER = (LIVE, FILTERS, MODEL, RUNNER, FIXED)


@dataclass(frozen=True)
class Param:
    """One parameter: name, default, description and its validators (modelled on
    generate_parameter_library: bounds, one_of, fixed_size, custom)."""

    name: str
    default: Any
    description: str
    low: float | None = None
    high: float | None = None
    read_only: bool = False
    item_type: type = str  # element type of a list parameter
    choices: tuple[str, ...] = ()
    length: int | None = None  # fixed list length
    tier: str = LIVE
    check: Callable[[Any], str] | None = None  # custom validator: "" or the reason

    @property
    def is_list(self) -> bool:
        return isinstance(self.default, list)

    @property
    def effective_tier(self) -> str:
        return FIXED if self.read_only else self.tier

    def constraints(self) -> str:
        """The validators in words (for `ros2 param describe`)."""
        parts = []
        if self.choices:
            parts.append("one of: " + ", ".join(self.choices))
        if self.length is not None:
            parts.append(f"exactly {self.length} values")
        if self.low is not None:
            parts.append(f"range {self.low}..{self.high}")
        parts.append(
            {
                FIXED: "read-only (start-up only)",
                RUNNER: "a change reloads the model",
                MODEL: "a change rebuilds decoding/preprocessing",
                FILTERS: "applied live",
                LIVE: "applied live",
            }[self.effective_tier]
        )
        return "; ".join(parts)

    def coerce(self, value: Any) -> Any:
        """The forms users type (`core/text.py`), made the declared type: 'cpu', 'cuda,cpu' or '[cuda, cpu]' for
        a list, 1/0 or 'true' for a bool, an integer for a float. Anything else is returned as is (and refused by
        `validate`)."""
        if self.is_list and value is None:  # an empty YAML list arrives untyped
            return []
        if self.is_list and isinstance(value, str):
            items = parse_list(value)
            try:
                return value if items is None else [self.item_type(v) for v in items]
            except ValueError:
                return value
        if isinstance(self.default, bool):
            if isinstance(value, int) and not isinstance(value, bool) and value in (0, 1):
                return bool(value)
            if isinstance(value, str) and parse_bool(value) is not None:
                return parse_bool(value)
        if isinstance(self.default, float) and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if self.is_list and isinstance(value, (list, tuple)) and self.item_type is float:
            return [float(v) if isinstance(v, int) and not isinstance(v, bool) else v for v in value]
        return value

    def validate(self, value: Any) -> str:
        """ "" when `value` is acceptable, else the reason."""
        expected = type(self.default)
        if self.is_list:
            if not isinstance(value, (list, tuple)) or not all(
                isinstance(v, self.item_type) and not (self.item_type is not bool and isinstance(v, bool))
                for v in value
            ):
                return f"{self.name} must be a list of {self.item_type.__name__}, got {value!r}"
            if self.length is not None and len(value) != self.length:
                return f"{self.name} needs exactly {self.length} values, got {len(value)}"
        elif not isinstance(value, expected) or (expected is not bool and isinstance(value, bool)):
            return f"{self.name} must be a {expected.__name__}, got {value!r}"
        if self.choices and value not in self.choices:
            return f"{self.name}: {value!r} is not one of {', '.join(self.choices)}"
        if self.low is not None and not self.is_list and not (self.low <= value <= self.high):
            return f"{self.name}: {value} is outside {self.low}..{self.high}"
        reason = self.check(value) if self.check else ""
        return f"{self.name} {reason}" if reason.startswith("needs ") else reason


def parse_pairs(entries: Sequence[str], what: str) -> dict[str, str]:
    """["a:b", ...] → {"a": "b"}; the last ':' separates, so keys may hold ':' (e.g. 'Out:1:score')."""
    pairs = {}
    for entry in entries:
        key, sep, value = str(entry).rpartition(":")
        if not sep or not key.strip():
            raise ValueError(f"{what}: entry {entry!r} is not of the form 'key:value'")
        pairs[key.strip()] = value.strip()
    return pairs


def check_pairs(what: str, value_check: Callable[[str], str] | None = None) -> Callable[[Any], str]:
    def check(entries: Any) -> str:
        try:
            pairs = parse_pairs(entries, what)
        except ValueError as exc:
            return str(exc)
        for key, value in pairs.items():
            reason = value_check(value) if value_check else ""
            if reason:
                return f"{what}: {key!r}: {reason}"
        return ""

    return check


def check_score(value: str) -> str:
    try:
        return "" if 0.0 <= float(value) <= 1.0 else f"{value} is not a score in 0..1"
    except ValueError:
        return f"{value!r} is not a number"


def check_role(value: str) -> str:
    return "" if value in ROLES else f"role {value!r} is not one of {', '.join(ROLES)}"


def check_permutation(value: Any) -> str:
    return (
        ""
        if not value or sorted(value) == [0, 1, 2, 3]
        else f"box_order {list(value)} is not empty or a permutation of 0..3"
    )


def check_input_size(value: Any) -> str:
    return "" if len(value) <= 2 and all(x > 0 for x in value) else "needs 0, 1 or 2 positive values"


def check_keypoint_shape(value: Any) -> str:
    """[] or [keypoints >= 1, 2 or 3 values each]."""
    items = list(value)
    if not items or (len(items) == 2 and 1 <= items[0] <= 1000 and items[1] in (2, 3)):
        return ""
    return "must be [] or [keypoints (1-1000), values per keypoint (2 or 3)]"


def check_nonzero(value: Any) -> str:
    return "input_std values must be non-zero" if any(v == 0 for v in value) else ""


def by_name(params: Sequence[Param]) -> dict[str, Param]:
    """Parameters by name."""
    return {p.name: p for p in params}


def defaults(params: Sequence[Param]) -> dict[str, Any]:
    """Every parameter's default value (lists copied)."""
    return {p.name: list(p.default) if p.is_list else p.default for p in params}
