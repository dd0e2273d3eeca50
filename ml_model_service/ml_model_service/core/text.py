"""Text to values, one reading for every place a user types one: parameters (`ros2 param set`, YAML), launch
arguments, CLI flags and the strings models carry in their metadata."""

from __future__ import annotations

from typing import Any

import yaml

TRUE = ("true", "1", "yes", "on")
FALSE = ("false", "0", "no", "off")


def parse_bool(text: Any) -> bool | None:
    """True for true/1/yes/on, False for false/0/no/off (any case, spaces around); None for anything else."""
    low = str(text).strip().lower()
    return True if low in TRUE else False if low in FALSE else None


def parse_number(text: Any) -> float | None:
    """The number `text` writes (a finite or infinite float); None when it writes none (NaN included)."""
    try:
        value = float(str(text).strip())
    except ValueError:
        return None
    return None if value != value else value


def parse_list(text: str) -> list[str] | None:
    """'cpu' -> ['cpu']; 'cuda, cpu' -> ['cuda', 'cpu']; "['cuda', 'cpu']" or '[cuda, cpu]' (YAML) as well; '[]'
    -> []. None when a bracketed text is not a YAML list of plain values, or an entry is empty."""
    stripped = text.strip()
    if stripped.startswith("["):
        try:
            value = yaml.safe_load(stripped)
        except yaml.YAMLError:
            return None
        if not isinstance(value, list) or not all(isinstance(v, (str, int, float)) for v in value):
            return None
        items = [str(v).strip() for v in value]
    else:
        items = [v.strip() for v in stripped.split(",")] if stripped else []
    return items if all(items) else None
