"""Field checks shared by the value objects' ``__post_init__`` (private to the domain)."""

from __future__ import annotations

from enum import Enum
from typing import TypeVar

from algoengine.domain.errors import ValidationError

E = TypeVar("E", bound=Enum)


def check_int(field: str, value: object, *, minimum: int | None = None) -> int:
    """Return ``value`` if it is an ``int`` (not a ``bool``) and ``>= minimum``."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValidationError(field, value, "must be an integer")
    if minimum is not None and value < minimum:
        raise ValidationError(field, value, f"must be >= {minimum}")
    return value


def check_optional_int(field: str, value: object, *, minimum: int | None = None) -> int | None:
    """Like :func:`check_int`, but ``None`` passes."""
    return None if value is None else check_int(field, value, minimum=minimum)


def check_str(field: str, value: object, *, max_len: int | None = None) -> str:
    """Return ``value`` if it is a non-blank ``str`` of at most ``max_len`` characters."""
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(field, value, "must be a non-empty string")
    if max_len is not None and len(value) > max_len:
        raise ValidationError(field, value, f"must be at most {max_len} characters")
    return value


def check_enum(field: str, value: object, enum: type[E]) -> E:
    """Return ``value`` if it is a member of ``enum`` (strings are not coerced)."""
    if not isinstance(value, enum):
        names = ", ".join(m.name for m in enum)
        raise ValidationError(field, value, f"must be a {enum.__name__} ({names})")
    return value
