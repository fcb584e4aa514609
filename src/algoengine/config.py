"""Configuration machinery: files and environment -> plain data -> typed, frozen dataclasses.

The application's sections are frozen, keyword-only dataclasses defined next to the code they
configure (:class:`~algoengine.brokers.paper.PaperExchangeConfig`, ...). This module turns
plain data into such a tree and back, for ANY dataclass tree:

- :func:`load` reads a TOML or YAML file (or nothing) and applies environment overrides,
  giving plain data (``dict``);
- :func:`build` constructs a dataclass from plain data, recursively, checking every key and
  type and naming the dotted path of anything wrong (``strategies[1].stop_loss_pct``);
- :func:`to_dict` turns a dataclass back into plain data (``build(C, to_dict(x)) == x``);
- :func:`mask_secrets` blanks secrets before anything is printed or logged, and
  :func:`dumps_toml` writes plain data as TOML (``algoengine config show``).

Typical use::

    settings = build(AppConfig, load(args.config))          # None: ALGOENGINE_CONFIG or {}
    print(dumps_toml(mask_secrets(to_dict(settings))))

Field types :func:`build` understands
-------------------------------------
==============================  ==============================================================
``int``                         an integer, or a string of decimal digits (``"1_000"`` too);
                                never a bool or a float
``float``                       an int or float, or a numeric string (YAML 1.1 reads ``1e-3``
                                without a dot as a string); never a bool
``str``                         a string. Numbers, dates and times are refused (the text
                                they were written as is gone), except values that came from an
                                environment override: those keep their exact text, so
                                ``ALGOENGINE__BROKER__API_KEY=12e45`` gives ``"12e45"``
``bool``                        ``true``/``false``; a string ``true/false/yes/no/on/off/1/0``
                                (any case); an environment value ``1``/``0``. A file's bare
                                ``1`` is refused
``datetime.date``               a date (TOML/YAML native) or an ISO string ``"2025-11-03"``;
                                a datetime is refused
``datetime.time``               a time (TOML native ``09:15:00``) or an ISO string
                                ``"09:15"``. YAML 1.1 reads an unquoted ``15:30`` as the number
                                930 (base 60): quote times in YAML; the error says so
``datetime.datetime``           a datetime or an ISO string
``pathlib.Path``                a string
``enum.Enum`` subclasses        a member's value, else its name (exact, then any case)
``typing.Literal[...]``         one of the literal values
``X | None``                    ``None`` (YAML ``null``; TOML has no null: leave the key out
                                when the default is ``None``), or a string ``"none"``/
                                ``"null"`` when no other arm accepts it (environment)
``X | Y``                       the first arm that takes the value as it is, else the first
                                that converts it
``tuple[X, ...]``, ``list[X]``  an array (list or tuple); ``tuple[X, Y]`` checks the length;
``frozenset[X]``, ``set[X]``,   ``Sequence[X]`` gives a tuple; a set also accepts a set
``Sequence[X]``
``dict[K, X]``, ``Mapping[K,    a table; keys are converted to ``K`` (string keys ``"5"`` for
X]``                            an ``int`` key); ``Mapping`` gives a read-only
                                ``MappingProxyType``, ``dict`` a ``dict``
a dataclass                     a table of its init fields, built recursively (an instance of
                                it passes as it is; ``None``, a YAML section left empty, gives
                                the defaults)
a union of dataclasses          a tagged union, below
``typing.Any``, ``object``      anything, unchanged
==============================  ==============================================================

Tagged unions (lists of strategy-like configs)
----------------------------------------------
A field annotated with a union of two or more dataclasses (``StraddleConfig |
IronCondorConfig``, or ``tuple[StraddleConfig | IronCondorConfig, ...]``) takes a table with a
``"type"`` key that chooses the arm. Each arm declares its tag, either as a class variable::

    @dataclass(frozen=True, kw_only=True)
    class StraddleConfig:
        type: ClassVar[str] = "straddle"
        lots: int = 1

or as a field typed with a ``Literal`` (which then stays a field of the instance)::

    @dataclass(frozen=True, kw_only=True)
    class StrangleConfig:
        type: Literal["strangle"] = "strangle"
        delta: float = 0.16

A table's ``"type"`` value must equal a tag of exactly one arm (tags are case-sensitive and
unique within a union); a missing or unknown tag is an error listing the valid tags. A class
with a ``ClassVar`` tag accepts (and :func:`to_dict` writes) a ``"type"`` key equal to its tag,
so ``build(C, to_dict(x)) == x`` holds for tagged unions too.

Errors
------
Everything wrong with the data raises :class:`~algoengine.errors.ConfigurationError`, whose
message names the dotted path (``strategies[1].stop_loss_pct``) and the bad value: unknown keys
(with the valid keys and the closest match, against typos), missing required fields (all of
them at once), wrong types, and the :class:`~algoengine.errors.ValidationError` of a
dataclass's own ``__post_init__`` (re-raised with the path prefixed to its field). Values under
secret-looking keys are shown as ``'***'`` in messages. Annotations are resolved with
:func:`typing.get_type_hints`, so config dataclasses must live at module level.

Environment overrides
---------------------
``ALGOENGINE__A__B=value`` sets ``data["a"]["b"]``: the part after the prefix is split at each
double underscore and lowercased; a part that is a number indexes an existing array
(``ALGOENGINE__STRATEGIES__0__LOTS=2``). Missing tables are created. Values are read as a TOML
value when possible (``5``, ``1.5``, ``true``, ``2025-11-03``, ``[1, 2]``, ``{ a = 1 }``,
``"quoted text"``), otherwise kept as the string given. Shorter paths are applied first, so a
deeper override wins over a whole-table one. ``ALGOENGINE_CONFIG`` names the file when
:func:`load` is given no path.
"""

from __future__ import annotations

import collections.abc as cabc
import dataclasses
import datetime as dt
import difflib
import enum
import functools
import math
import os
import re
import tomllib
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar, Union, cast, get_args, get_origin

from algoengine.errors import ConfigurationError, ValidationError

__all__ = [
    "CONFIG_FILE_ENV",
    "ENV_PREFIX",
    "SECRET_KEY_PARTS",
    "build",
    "dumps_toml",
    "load",
    "mask_secrets",
    "to_dict",
]

T = TypeVar("T")

#: Prefix of the environment variables that override configuration values.
ENV_PREFIX = "ALGOENGINE__"
#: Environment variable naming the configuration file when :func:`load` gets no path.
CONFIG_FILE_ENV = "ALGOENGINE_CONFIG"
#: A key containing any of these (any case, ``-`` read as ``_``) holds a secret.
#: Keys that contain a secret-looking word but name public data (exchange instrument tokens).
NOT_SECRET_KEYS: frozenset[str] = frozenset(
    {"token", "spot_token", "instrument_token", "symboltoken", "token_base", "tokens"}
)
SECRET_KEY_PARTS: tuple[str, ...] = (
    "password",
    "passwd",
    "secret",
    "token",
    "api_key",
    "apikey",
    "totp",
    "private_key",
)
_MASK = "***"

_NoneType = type(None)
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_INT_TEXT = re.compile(r"[+-]?\d+(?:_\d+)*")
_TRUE = frozenset({"true", "yes", "on", "1"})
_FALSE = frozenset({"false", "no", "off", "0"})
# scheme://user:password@host -> group "pw" is the password (up to the last "@" of the
# authority, so an unescaped "@" inside the password is masked too).
_URL_PASSWORD = re.compile(r"(?P<pre>[A-Za-z][A-Za-z0-9+.\-]*://[^:/?#@\s]*:)(?P<pw>[^/?#\s]*)@")

_SEQUENCE_ORIGINS: frozenset[Any] = frozenset(
    {tuple, list, set, frozenset, cabc.Sequence, cabc.MutableSequence, cabc.Set, cabc.MutableSet}
)
_MAPPING_ORIGINS: frozenset[Any] = frozenset({dict, cabc.Mapping, cabc.MutableMapping})


# ---------------------------------------------------------------------------------------------
# Values that came from the environment keep the text they were written as.


class _FromEnv:
    """Mixin marking a value parsed from an environment variable; ``raw`` is its text."""

    raw: str


class _EnvInt(_FromEnv, int):
    pass


class _EnvFloat(_FromEnv, float):
    pass


class _EnvDate(_FromEnv, dt.date):
    pass


class _EnvDateTime(_FromEnv, dt.datetime):
    pass


class _EnvTime(_FromEnv, dt.time):
    pass


def _mark_env(value: Any, raw: str) -> Any:
    marked: _FromEnv
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        marked = _EnvInt(value)
    elif isinstance(value, float):
        marked = _EnvFloat(value)
    elif isinstance(value, dt.datetime):
        marked = _EnvDateTime(
            value.year,
            value.month,
            value.day,
            value.hour,
            value.minute,
            value.second,
            value.microsecond,
            value.tzinfo,
        )
    elif isinstance(value, dt.date):
        marked = _EnvDate(value.year, value.month, value.day)
    elif isinstance(value, dt.time):
        marked = _EnvTime(value.hour, value.minute, value.second, value.microsecond, value.tzinfo)
    else:
        return value
    marked.raw = raw
    return marked


def _env_text(value: object) -> str | None:
    return value.raw if isinstance(value, _FromEnv) else None


# ---------------------------------------------------------------------------------------------
# Paths and messages


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _key_path(path: str, key: object) -> str:
    if isinstance(key, str) and _IDENT.fullmatch(key):
        return _join(path, key)
    return f"{path}[{key!r}]"


def _is_secret_key(key: object) -> bool:
    if not isinstance(key, str):
        return False
    k = key.lower().replace("-", "_")
    if k in NOT_SECRET_KEYS or k.endswith("_by_token"):
        return False  # instrument tokens are public exchange identifiers
    return any(part in k for part in SECRET_KEY_PARTS)


def _last_key(path: str) -> str:
    return re.split(r"[.\[]", path)[-1] if path else ""


def _show(path: str, value: object) -> str:
    """``value`` for an error message: masked under a secret key, shortened if long."""
    if _is_secret_key(_last_key(path)):
        return repr(_MASK)
    text = repr(_env_text(value) if isinstance(value, _FromEnv) else value)
    return text if len(text) <= 80 else text[:77] + "..."


def _kind(value: object) -> str:
    if isinstance(value, _FromEnv):
        return "environment value"
    return type(value).__name__


def _fail(path: str, value: object, expected: str, hint: str = "") -> typing.NoReturn:
    where = path or "<root>"
    tail = f"; {hint}" if hint else ""
    raise ConfigurationError(
        f"{where}: expected {expected}, got {_show(path, value)} ({_kind(value)}){tail}"
    )


def _type_name(tp: Any) -> str:
    if isinstance(tp, type):
        return tp.__name__
    return str(tp).replace("typing.", "").replace("collections.abc.", "")


# ---------------------------------------------------------------------------------------------
# build


def build(cls: type[T], data: Mapping[str, Any], path: str = "") -> T:
    """Construct the dataclass ``cls`` from plain data, recursively.

    Parameters
    ----------
    cls
        A dataclass type (frozen and keyword-only, by the house style; any dataclass works).
    data
        A mapping of field name to value: the output of :func:`load`, a section of it, or
        :func:`to_dict`. Missing fields take the dataclass's defaults.
    path
        The dotted path of ``data`` inside a larger document, prefixed to every error message
        (``"strategies[1]"``); empty for the root.

    Returns
    -------
    T
        The instance. Field values are converted as the module docstring describes.

    Raises
    ------
    ConfigurationError
        Unknown keys, missing required fields, values of the wrong type, or a
        ``ValidationError`` from the dataclass's ``__post_init__``; the message names the full
        dotted path and the bad value.
    ValidationError
        ``cls`` is not a dataclass type (a programming error, not a configuration one).
    """
    if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
        raise ValidationError("cls", cls, "must be a dataclass type")
    return cast(T, _build_dataclass(cls, data, path))


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    try:
        return typing.get_type_hints(cls)
    except Exception as exc:  # NameError, TypeError: an annotation that does not resolve
        raise ConfigurationError(
            f"cannot resolve the annotations of {cls.__qualname__} ({exc}); config dataclasses "
            "must be defined at module level with importable annotation names"
        ) from exc


@functools.cache
def _tags(cls: type) -> tuple[str, ...]:
    """The discriminator tags of a dataclass (``type`` ClassVar or Literal field), or ()."""
    hint = _hints(cls).get("type")
    if hint is None:
        return ()
    if hint is ClassVar or get_origin(hint) is ClassVar:
        tag = getattr(cls, "type", None)
        return (tag,) if isinstance(tag, str) else ()
    if get_origin(hint) is Literal:
        return tuple(a for a in get_args(hint) if isinstance(a, str))
    return ()


def _has_classvar_tag(cls: type) -> bool:
    names = {f.name for f in dataclasses.fields(cls)}
    return "type" not in names and bool(_tags(cls))


def _build_dataclass(cls: type, data: object, path: str) -> Any:
    if isinstance(data, cls):
        return data
    where = path or "<root>"
    if not isinstance(data, Mapping):
        _fail(path, data, f"a table of {cls.__name__} fields")
    hints = _hints(cls)
    fields = [f for f in dataclasses.fields(cls) if f.init]
    names = [f.name for f in fields]
    classvar_tag = _has_classvar_tag(cls)

    bad_keys = [k for k in data if not isinstance(k, str)]
    if bad_keys:
        raise ConfigurationError(f"{where}: keys must be strings, got {bad_keys!r}")
    unknown = [k for k in data if k not in names and not (classvar_tag and k == "type")]
    if unknown:
        hints_text = []
        for k in unknown:
            close = difflib.get_close_matches(k, names, n=1, cutoff=0.6)
            hints_text.append(f"{k!r} (did you mean {close[0]!r}?)" if close else repr(k))
        valid = ", ".join(names) or "(none)"
        raise ConfigurationError(
            f"{where}: unknown key(s) {', '.join(hints_text)} for {cls.__name__}; "
            f"valid keys: {valid}"
        )
    if classvar_tag and "type" in data and data["type"] not in _tags(cls):
        raise ConfigurationError(
            f"{_join(path, 'type')}: {cls.__name__} has type {_tags(cls)[0]!r}, "
            f"got {_show('', data['type'])}"
        )
    missing = [
        f.name
        for f in fields
        if f.name not in data
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise ConfigurationError(
            f"{where}: missing required field(s) {', '.join(missing)} of {cls.__name__}"
        )
    kwargs = {
        name: _convert(hints[name], data[name], _join(path, name)) for name in names if name in data
    }
    try:
        return cls(**kwargs)
    except ValidationError as exc:
        field_path = _join(path, exc.field)
        raise ConfigurationError(
            f"{field_path}={_show(field_path, exc.value)}: {exc.message}"
        ) from exc
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(f"{where}: invalid {cls.__name__}: {exc}") from exc


def _convert(tp: Any, value: Any, path: str) -> Any:
    if tp is Any or tp is object:
        return value
    origin = get_origin(tp)
    if tp is _NoneType:
        if value is None:
            return None
        _fail(path, value, "null")
    if origin is Union or origin is types.UnionType:
        return _convert_union(tp, value, path)
    if origin is Literal:
        for allowed in get_args(tp):
            if allowed == value and isinstance(allowed, bool) == isinstance(value, bool):
                return allowed
        _fail(path, value, "one of " + ", ".join(repr(a) for a in get_args(tp)))
    if value is None:
        if isinstance(tp, type) and dataclasses.is_dataclass(tp):
            value = {}  # a YAML section with every key commented out: all defaults
        else:
            _fail(path, value, _type_name(tp), "null is allowed only for an optional field")
    if isinstance(tp, type):
        if dataclasses.is_dataclass(tp):
            return _build_dataclass(tp, value, path)
        if issubclass(tp, enum.Enum):
            return _to_enum(tp, value, path)
        if tp is bool:
            return _to_bool(value, path)
        if tp is int:
            return _to_int(value, path)
        if tp is float:
            return _to_float(value, path)
        if tp is str:
            return _to_str(value, path)
        if tp is dt.datetime:
            return _to_datetime(value, path)
        if tp is dt.date:
            return _to_date(value, path)
        if tp is dt.time:
            return _to_time(value, path)
        if issubclass(tp, Path):
            if isinstance(value, str | Path):
                return tp(value)
            _fail(path, value, "a path string")
    if origin in _SEQUENCE_ORIGINS or tp in _SEQUENCE_ORIGINS:
        return _to_collection(tp, origin or tp, value, path)
    if origin in _MAPPING_ORIGINS or tp in _MAPPING_ORIGINS:
        return _to_mapping(tp, origin or tp, value, path)
    raise ConfigurationError(f"{path or '<root>'}: unsupported field type {_type_name(tp)}")


def _exact(tp: Any, value: object) -> bool:
    """Whether ``value`` already is a ``tp`` (no conversion needed)."""
    if not isinstance(tp, type) or isinstance(value, _FromEnv):
        return False
    if tp is int or tp is float:
        return isinstance(value, tp) and not isinstance(value, bool)
    if tp is dt.date:
        return isinstance(value, dt.date) and not isinstance(value, dt.datetime)
    return isinstance(value, tp)


def _is_none_text(value: object) -> bool:
    return isinstance(value, str) and value.strip().lower() in ("none", "null")


def _convert_union(tp: Any, value: Any, path: str) -> Any:
    args = get_args(tp)
    optional = _NoneType in args
    arms = [a for a in args if a is not _NoneType]
    if value is None:
        if optional:
            return None
        _fail(path, value, _type_name(tp))
    classes = [a for a in arms if isinstance(a, type) and dataclasses.is_dataclass(a)]
    if len(classes) >= 2 and isinstance(value, (Mapping, *classes)):
        return _convert_tagged(classes, value, path)
    if len(arms) == 1 or (len(classes) == 1 and isinstance(value, Mapping)):
        arm = classes[0] if len(arms) > 1 else arms[0]
        try:
            return _convert(arm, value, path)
        except ConfigurationError:
            if optional and _is_none_text(value):
                return None
            raise
    for arm in arms:
        if _exact(arm, value):
            return value
    for arm in arms:
        try:
            return _convert(arm, value, path)
        except ConfigurationError:
            continue
    if optional and _is_none_text(value):
        return None
    _fail(path, value, " or ".join(_type_name(a) for a in args))


def _convert_tagged(classes: list[type], value: Any, path: str) -> Any:
    for cls in classes:
        if isinstance(value, cls):
            return value
    by_tag: dict[str, type] = {}
    for cls in classes:
        tags = _tags(cls)
        if not tags:
            raise ConfigurationError(
                f"{path or '<root>'}: {cls.__name__} is an arm of a union of dataclasses and "
                "needs a 'type' discriminator (a ClassVar[str] or a Literal field)"
            )
        for tag in tags:
            if tag in by_tag:
                raise ConfigurationError(
                    f"{path or '<root>'}: tag {tag!r} is used by both "
                    f"{by_tag[tag].__name__} and {cls.__name__}"
                )
            by_tag[tag] = cls
    valid = ", ".join(repr(t) for t in sorted(by_tag))
    if "type" not in value:
        raise ConfigurationError(f"{_join(path, 'type')}: missing; one of {valid}")
    tag = value["type"]
    if not isinstance(tag, str) or tag not in by_tag:
        close = difflib.get_close_matches(tag, list(by_tag), n=1) if isinstance(tag, str) else []
        guess = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigurationError(
            f"{_join(path, 'type')}: unknown type {_show('', tag)}{guess}; one of {valid}"
        )
    return _build_dataclass(by_tag[tag], value, path)


def _to_bool(value: object, path: str) -> bool:
    if isinstance(value, bool):
        return value
    text = value if isinstance(value, str) else _env_text(value)
    if text is not None:
        t = text.strip().lower()
        if t in _TRUE:
            return True
        if t in _FALSE:
            return False
    _fail(path, value, "a boolean (true/false, yes/no, on/off, 1/0)")


def _to_int(value: object, path: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, str) and _INT_TEXT.fullmatch(value.strip()):
        return int(value.strip())
    _fail(path, value, "an integer")


def _to_float(value: object, path: str) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            pass
    _fail(path, value, "a number")


def _to_str(value: object, path: str) -> str:
    if isinstance(value, str):
        return value
    text = _env_text(value)
    if text is not None:
        return text
    hint = (
        "quote it (YAML reads yes/no/on/off as booleans)"
        if isinstance(value, bool)
        else "quote it to keep the text as written"
    )
    _fail(path, value, "a string", hint if isinstance(value, bool | int | float | dt.date) else "")


def _to_date(value: object, path: str) -> dt.date:
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return dt.date(value.year, value.month, value.day)
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            pass
    _fail(path, value, "a date (YYYY-MM-DD)")


def _to_datetime(value: object, path: str) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return dt.datetime.fromisoformat(value.isoformat())
    if isinstance(value, str):
        try:
            return dt.datetime.fromisoformat(value.strip())
        except ValueError:
            pass
    _fail(path, value, "a date and time (ISO 8601)")


def _to_time(value: object, path: str) -> dt.time:
    if isinstance(value, dt.time):
        return dt.time(
            value.hour, value.minute, value.second, value.microsecond, value.tzinfo, fold=value.fold
        )
    if isinstance(value, str):
        try:
            return dt.time.fromisoformat(value.strip())
        except ValueError:
            pass
    hint = ""
    if isinstance(value, int) and not isinstance(value, bool):
        hint = "YAML reads an unquoted 15:30 as the base-60 number 930: quote times in YAML"
    _fail(path, value, "a time (HH:MM or HH:MM:SS)", hint)


def _to_enum(tp: type[enum.Enum], value: object, path: str) -> enum.Enum:
    if isinstance(value, tp):
        return value
    if not isinstance(value, bool):
        for member in tp:
            if member.value == value and not isinstance(member.value, bool):
                return member
    if isinstance(value, str):
        text = value.strip()
        if text in tp.__members__:
            return tp[text]
        folded = text.casefold()
        for member in tp:
            if member.name.casefold() == folded or (
                isinstance(member.value, str) and member.value.casefold() == folded
            ):
                return member
    choices = ", ".join(repr(m.value) for m in tp)
    _fail(path, value, f"a {tp.__name__}: one of {choices}")


def _to_collection(tp: Any, origin: Any, value: object, path: str) -> Any:
    set_like = origin in (set, frozenset, cabc.Set, cabc.MutableSet)
    ok = isinstance(value, list | tuple) or (set_like and isinstance(value, set | frozenset))
    if not ok:
        hint = "write an array, e.g. [1, 2]" if isinstance(value, str) else ""
        _fail(path, value, f"an array for {_type_name(tp)}", hint)
    items = list(cast("list[Any] | tuple[Any, ...] | set[Any] | frozenset[Any]", value))
    args = get_args(tp)
    if origin is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
        if args == ((),):
            args = ()
        if len(items) != len(args):
            _fail(path, value, f"an array of {len(args)} items for {_type_name(tp)}")
        return tuple(
            _convert(a, v, f"{path}[{i}]") for i, (a, v) in enumerate(zip(args, items, strict=True))
        )
    item_tp = args[0] if args else Any
    converted = [_convert(item_tp, v, f"{path}[{i}]") for i, v in enumerate(items)]
    if origin in (list, cabc.MutableSequence):
        return converted
    if origin in (set, cabc.MutableSet):
        return set(converted)
    if origin in (frozenset, cabc.Set):
        return frozenset(converted)
    return tuple(converted)


def _to_mapping(tp: Any, origin: Any, value: object, path: str) -> Any:
    if not isinstance(value, Mapping):
        _fail(path, value, f"a table for {_type_name(tp)}")
    args = get_args(tp)
    key_tp, val_tp = (args[0], args[1]) if len(args) == 2 else (Any, Any)
    out: dict[Any, Any] = {}
    for key, item in value.items():
        kp = _key_path(path, key)
        if key_tp is int and isinstance(key, str) and _INT_TEXT.fullmatch(key.strip()):
            new_key: Any = int(key.strip())
        else:
            new_key = _convert(key_tp, key, kp + " (key)")
        out[new_key] = _convert(val_tp, item, kp)
    if origin is cabc.Mapping:
        return types.MappingProxyType(out)
    return out


# ---------------------------------------------------------------------------------------------
# load


def load(path: str | Path | None, env: Mapping[str, str] = os.environ) -> dict[str, Any]:
    """Read a configuration file (or none) and apply environment overrides.

    Parameters
    ----------
    path
        A ``.toml`` file (read with :mod:`tomllib`) or a ``.yaml``/``.yml`` file (PyYAML
        ``safe_load``), chosen by suffix. ``None``: the file named by ``ALGOENGINE_CONFIG`` in
        ``env``, or no file at all (``{}``).
    env
        The environment: ``ALGOENGINE__A__B=value`` sets ``data["a"]["b"]`` (module docstring).

    Returns
    -------
    dict
        Plain data for :func:`build`. Values from the environment compare equal to plain
        ``int``/``float``/date values but remember their text (for ``str`` fields).

    Raises
    ------
    ConfigurationError
        The file is missing or unreadable, has an unsupported suffix, a syntax error (the
        message names the file, line and column), or a top level that is not a table; or an
        environment override cannot be applied (it names the variable).
    """
    if path is None:
        named = env.get(CONFIG_FILE_ENV, "").strip()
        path = named or None
    data: dict[str, Any] = {} if path is None else _read_file(Path(path))
    _apply_env(data, env)
    return data


def _read_file(file: Path) -> dict[str, Any]:
    suffix = file.suffix.lower()
    if suffix not in (".toml", ".yaml", ".yml"):
        raise ConfigurationError(
            f"{file}: unsupported configuration format {file.suffix!r}; use .toml, .yaml or .yml"
        )
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigurationError(f"{file}: configuration file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"{file}: cannot read configuration file: {exc}") from exc
    data: object
    if suffix == ".toml":
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigurationError(f"{file}: invalid TOML: {exc}") from exc
    else:
        data = _parse_yaml(file, text)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigurationError(
            f"{file}: the top level must be a table (mapping), got {type(data).__name__}"
        )
    return cast("dict[str, Any]", data)


def _parse_yaml(file: Path, text: str) -> object:
    import yaml  # type: ignore[import-untyped, unused-ignore]

    try:
        data: object = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None)
        if mark is not None:
            where = f"line {mark.line + 1}, column {mark.column + 1}"
            raise ConfigurationError(f"{file}: invalid YAML at {where}: {problem or exc}") from exc
        raise ConfigurationError(f"{file}: invalid YAML: {exc}") from exc
    return data


def _parse_env_value(raw: str) -> Any:
    try:
        doc = tomllib.loads(f"v = {raw}")
    except tomllib.TOMLDecodeError:
        return raw
    if set(doc) != {"v"}:
        return raw
    return _mark_env(doc["v"], raw)


def _apply_env(data: dict[str, Any], env: Mapping[str, str]) -> None:
    overrides: list[tuple[int, str, list[str], str]] = []
    for name, raw in env.items():
        if not name.startswith(ENV_PREFIX):
            continue
        parts = name[len(ENV_PREFIX) :].lower().split("__")
        if not all(parts):
            raise ConfigurationError(
                f"environment variable {name}: empty path part (use __ between non-empty keys)"
            )
        overrides.append((len(parts), name, parts, raw))
    for _, name, parts, raw in sorted(overrides):
        _set_path(data, parts, _parse_env_value(raw), name)


def _set_path(data: dict[str, Any], parts: list[str], value: Any, name: str) -> None:
    node: Any = data
    walked = ""
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise ConfigurationError(
                    f"environment variable {name}: {walked or '<root>'} is an array of "
                    f"{len(node)} items; {part!r} is not an index into it"
                )
            key: Any = int(part)
        elif isinstance(node, dict):
            key = part
            if not last and node.get(key) is None:
                node[key] = {}  # missing, or a YAML section left empty
        else:
            raise ConfigurationError(
                f"environment variable {name}: cannot set {'.'.join(parts)}: "
                f"{walked} is a value ({_show(walked, node)}), not a table"
            )
        if last:
            node[key] = value
        else:
            node = node[key]
            walked = f"{walked}[{key}]" if isinstance(key, int) else _join(walked, key)


# ---------------------------------------------------------------------------------------------
# to_dict, mask_secrets, dumps_toml


def to_dict(obj: object) -> dict[str, Any]:
    """Turn a dataclass instance into plain data that :func:`build` reads back.

    Parameters
    ----------
    obj
        A dataclass instance.

    Returns
    -------
    dict
        Init fields only, in declaration order (a ``ClassVar`` ``type`` tag first, as
        ``"type"``); nested dataclasses as dicts; tuples, lists and sets as lists (sets
        sorted); mappings as dicts; dates, times and datetimes as ISO strings; enums as their
        value when it is a string, else their name; paths as strings; ``None`` kept.

    Raises
    ------
    ValidationError
        ``obj`` is not a dataclass instance.
    """
    if not dataclasses.is_dataclass(obj) or isinstance(obj, type):
        raise ValidationError("obj", obj, "must be a dataclass instance")
    return cast("dict[str, Any]", _plain(obj))


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out: dict[str, Any] = {}
        cls = type(value)
        if _has_classvar_tag(cls):
            out["type"] = _tags(cls)[0]
        for f in dataclasses.fields(value):
            if f.init:
                out[f.name] = _plain(getattr(value, f.name))
        return out
    if isinstance(value, enum.Enum):
        return value.value if isinstance(value, str) or isinstance(value.value, str) else value.name
    if isinstance(value, bool | int | float | str) or value is None:
        return value
    if isinstance(value, dt.date | dt.time):  # datetime is a date
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, Mapping):
        return {_plain(k): _plain(v) for k, v in value.items()}
    if isinstance(value, set | frozenset):
        items = [_plain(v) for v in value]
        try:
            return sorted(items)
        except TypeError:
            return sorted(items, key=repr)
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def mask_secrets(data: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of plain data with secrets replaced by ``"***"``, for printing and logging.

    Parameters
    ----------
    data
        Plain data (:func:`load` or :func:`to_dict` output). Not modified.

    Returns
    -------
    dict
        The same structure, where the whole value of every key containing one of
        :data:`SECRET_KEY_PARTS` (``password``, ``secret``, ``token``, ``api_key``, ``apikey``,
        ``totp``, ...; any case) is ``"***"`` (``None`` and ``""`` are kept, to show that the
        secret is unset), and the password of every URL in a string is masked
        (``postgresql+psycopg://user:pw@host/db`` -> ``postgresql+psycopg://user:***@host/db``).
        Over-masking is deliberate: instrument tokens (``spot_token``) are masked too.
    """
    return cast("dict[str, Any]", _mask(data))


def _mask(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {
            k: (_MASK if _is_secret_key(k) and v is not None and v != "" else _mask(v))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_mask(v) for v in value]
    if isinstance(value, str):
        return _URL_PASSWORD.sub(lambda m: f"{m['pre']}{_MASK}@", value)
    return value


def dumps_toml(data: Mapping[str, Any]) -> str:
    """Write plain data as a TOML document (read back by :mod:`tomllib` to equal data).

    Parameters
    ----------
    data
        A mapping of string keys to strings, bools, ints, floats (``inf``/``nan`` too), dates,
        times, datetimes, lists and mappings (the output of :func:`to_dict` or :func:`load`).

    Returns
    -------
    str
        The document: a table's plain keys, then its sub-tables (``[a.b]``), then arrays of
        tables (``[[a.c]]``; a non-empty list of mappings). Other mappings inside arrays are
        inline tables. ``None`` has no TOML form: a ``None`` value of a table is written as a
        comment (``# key = null``) and so reads back as absent, which :func:`build` turns into
        the field's default.

    Raises
    ------
    ValidationError
        A value has no TOML form (``None`` inside an array, an unsupported type); the field
        is its dotted path.
    """
    lines: list[str] = []
    _emit_table(lines, data, [], header=None)
    while lines and not lines[0]:
        lines.pop(0)
    return "\n".join(lines) + "\n" if lines else ""


def _is_table_array(value: object) -> bool:
    return (
        isinstance(value, list | tuple)
        and len(value) > 0
        and all(isinstance(v, Mapping) for v in value)
    )


def _emit_table(
    lines: list[str], table: Mapping[str, Any], keys: list[str], header: str | None
) -> None:
    plain = [(k, v) for k, v in table.items() if not isinstance(v, Mapping)]
    plain = [(k, v) for k, v in plain if not _is_table_array(v)]
    subtables = [(k, v) for k, v in table.items() if isinstance(v, Mapping)]
    arrays = [(k, v) for k, v in table.items() if _is_table_array(v)]
    path = ".".join(keys)
    if header is not None and (plain or not (subtables or arrays) or header.startswith("[[")):
        lines.append("")
        lines.append(header)
    for k, v in plain:
        if not isinstance(k, str):
            raise ValidationError(_join(path, str(k)), k, "TOML keys must be strings")
        if v is None:
            lines.append(f"# {_toml_key(k)} = null")
        else:
            lines.append(f"{_toml_key(k)} = {_toml_value(v, _join(path, k))}")
    for k, v in subtables:
        sub = [*keys, k]
        _emit_table(lines, v, sub, header="[" + ".".join(_toml_key(p) for p in sub) + "]")
    for k, v in arrays:
        sub = [*keys, k]
        for item in v:
            _emit_table(lines, item, sub, header="[[" + ".".join(_toml_key(p) for p in sub) + "]]")


def _toml_key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else _toml_str(key)


_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\b": "\\b",
    "\t": "\\t",
    "\n": "\\n",
    "\f": "\\f",
    "\r": "\\r",
}


def _toml_str(text: str) -> str:
    out = []
    for ch in text:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _toml_value(value: Any, path: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(float(value))
    if isinstance(value, str):
        return _toml_str(value)
    if isinstance(value, enum.Enum):
        return _toml_value(_plain(value), path)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, list | tuple):
        items = [_toml_value(v, f"{path}[{i}]") for i, v in enumerate(value)]
        return "[" + ", ".join(items) + "]"
    if isinstance(value, Mapping):
        if not value:
            return "{}"
        parts = []
        for k, v in value.items():
            if not isinstance(k, str):
                raise ValidationError(_join(path, str(k)), k, "TOML keys must be strings")
            parts.append(f"{_toml_key(k)} = {_toml_value(v, _join(path, k))}")
        return "{ " + ", ".join(parts) + " }"
    if value is None:
        raise ValidationError(path, value, "TOML has no null inside an array or inline table")
    raise ValidationError(path, value, f"no TOML form for {type(value).__name__}")
