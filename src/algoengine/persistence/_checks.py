"""Field checks shared by the row types and the repositories (private to the package)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from enum import Enum
from typing import Any, TypeVar

from algoengine.errors import ValidationError

E = TypeVar("E", bound=Enum)


def check_int(name: str, value: object, *, minimum: int | None = None) -> int:
    """``value`` if it is an ``int`` (not a ``bool``) and ``>= minimum``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(name, value, "must be an integer")
    if minimum is not None and value < minimum:
        raise ValidationError(name, value, f"must be >= {minimum}")
    return value


def check_opt_int(name: str, value: object, *, minimum: int | None = None) -> int | None:
    """Like :func:`check_int`; ``None`` passes."""
    return None if value is None else check_int(name, value, minimum=minimum)


def check_str(name: str, value: object, *, empty: bool = False) -> str:
    """``value`` if it is a ``str``, not blank unless ``empty``."""
    if not isinstance(value, str):
        raise ValidationError(name, value, "must be a string")
    if not empty and not value.strip():
        raise ValidationError(name, value, "must not be empty")
    return value


def check_opt_str(name: str, value: object) -> str | None:
    """Like :func:`check_str`; ``None`` passes."""
    return None if value is None else check_str(name, value)


def check_bool(name: str, value: object) -> bool:
    """``value`` if it is a ``bool``."""
    if not isinstance(value, bool):
        raise ValidationError(name, value, "must be True or False")
    return value


def check_enum(name: str, value: object, enum: type[E]) -> E:
    """``value`` as a member of ``enum`` (a member, or a member's value)."""
    if isinstance(value, enum):
        return value
    try:
        return enum(value)
    except ValueError:
        allowed = ", ".join(str(m.value) for m in enum)
        raise ValidationError(name, value, f"must be one of {allowed}") from None


def check_json(name: str, value: object) -> dict[str, Any]:
    """``value`` as a JSON object: str keys, JSON values, finite numbers. Returns what the
    database will give back (a plain dict of plain data)."""
    if not isinstance(value, Mapping):
        raise ValidationError(name, value, "must be a mapping (a JSON object)")
    if not all(isinstance(k, str) for k in value):
        raise ValidationError(name, value, "keys must be strings")
    try:
        text = json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValidationError(
            name, value, f"must be JSON data with finite numbers ({exc})"
        ) from None
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def check_opt_json(name: str, value: object) -> dict[str, Any] | None:
    """Like :func:`check_json`; ``None`` passes."""
    return None if value is None else check_json(name, value)
