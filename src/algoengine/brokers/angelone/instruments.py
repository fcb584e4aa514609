"""Angel One's instrument master: download, a one-day disk cache, and the engine's universe.

:func:`fetch_scrip_master` downloads ``OpenAPIScripMaster.json`` (``ANGEL_ONE_SCRIP_MASTER_URL``,
Angel One's by default) with a timeout and keeps it on disk. The cache is used without a
download while it is *fresh*: written on the same IST day and less than ``max_age_s`` old (the
master changes daily, before the open). A stale or missing cache is fetched again; if that
fetch fails, a cache no older than ``max_stale_s`` is used instead and the result says so
(``source == "stale-cache"``, a ``warning`` text, a WARNING log line); with no usable cache the
failure is raised. The file is replaced atomically and only by a download that is a JSON array.

:func:`load_instrument_master` parses it with
:func:`~algoengine.market.scrip_master.parse_scrip_master` into a
:class:`~algoengine.domain.market_data.Universe` of the configured underlyings' indices and
options (futures are left out), optionally only the ``expiries_listed`` nearest expiries.

Loopback URLs (the fake server in tests) are fetched without the environment's proxies.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Literal

from algoengine.brokers.angelone.credentials import AngelOneEndpoints
from algoengine.domain.instruments import Instrument, InstrumentKind
from algoengine.domain.market_data import Universe
from algoengine.errors import ConfigurationError, TemporaryBrokerError, ValidationError
from algoengine.market.contracts import ContractSpec, contracts_by_underlying
from algoengine.market.scrip_master import parse_scrip_master

__all__ = [
    "DEFAULT_CACHE_NAME",
    "InstrumentMaster",
    "ScripMasterFile",
    "default_cache_path",
    "fetch_scrip_master",
    "load_instrument_master",
]

log = logging.getLogger(__name__)

IST = timezone(timedelta(hours=5, minutes=30))
DEFAULT_CACHE_NAME = "angelone-OpenAPIScripMaster.json"
_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
_MAX_BYTES = 512 * 1024 * 1024

Source = Literal["download", "cache", "stale-cache"]


@dataclass(frozen=True, kw_only=True, slots=True)
class ScripMasterFile:
    """The master's rows and where they came from.

    Parameters
    ----------
    rows
        The master's JSON objects (all values strings).
    source
        ``"download"`` (fetched now), ``"cache"`` (fresh cache, no fetch) or ``"stale-cache"``
        (the fetch failed; an older cache was used).
    path
        The cache file.
    fetched_at_s
        When the rows were downloaded [UTC epoch s].
    warning
        Why a stale cache was used (``None`` otherwise).
    """

    rows: list[dict[str, Any]]
    source: Source
    path: Path
    fetched_at_s: float
    warning: str | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class InstrumentMaster:
    """The engine's universe from the master, with the file's provenance.

    Parameters
    ----------
    universe
        The indices and options of the configured underlyings, in the master's row order.
    source, path, fetched_at_s, warning
        As in :class:`ScripMasterFile`.
    """

    universe: Universe
    source: Source
    path: Path
    fetched_at_s: float
    warning: str | None = None


def default_cache_path(env: Mapping[str, str] | None = None) -> Path:
    """``$ALGOENGINE_CACHE_DIR`` or ``$XDG_CACHE_HOME/algoengine`` or ``~/.cache/algoengine``,
    joined with :data:`DEFAULT_CACHE_NAME`."""
    env = os.environ if env is None else env
    base = env.get("ALGOENGINE_CACHE_DIR")
    if not base:
        xdg = env.get("XDG_CACHE_HOME")
        base = str(Path(xdg) / "algoengine") if xdg else str(Path.home() / ".cache" / "algoengine")
    return Path(base) / DEFAULT_CACHE_NAME


def _is_fresh(mtime_s: float, now_s: float, max_age_s: float) -> bool:
    if not 0 <= now_s - mtime_s < max_age_s:
        return False
    return datetime.fromtimestamp(mtime_s, IST).date() == datetime.fromtimestamp(now_s, IST).date()


def _download(url: str, timeout_s: float) -> list[dict[str, Any]]:
    host = urllib.parse.urlsplit(url).hostname or ""
    handlers: list[urllib.request.BaseHandler] = []
    if host in _LOOPBACK:
        handlers.append(urllib.request.ProxyHandler({}))  # never through the env's proxy
    opener = urllib.request.build_opener(*handlers)
    req = urllib.request.Request(url, headers={"Accept": "application/json"})
    try:
        with opener.open(req, timeout=timeout_s) as resp:
            raw = resp.read(_MAX_BYTES + 1)
    except urllib.error.HTTPError as exc:
        raise TemporaryBrokerError(
            f"scrip master: HTTP {exc.code} from {url}", code=f"HTTP{exc.code}"
        ) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise TemporaryBrokerError(
            f"scrip master: {url} unreachable ({reason})", code="TIMEOUT"
        ) from None
    if len(raw) > _MAX_BYTES:
        raise TemporaryBrokerError(f"scrip master: {url} is larger than {_MAX_BYTES} bytes")
    try:
        data = json.loads(raw)
    except ValueError:
        raise TemporaryBrokerError(f"scrip master: {url} did not answer JSON") from None
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise TemporaryBrokerError(f"scrip master: {url} did not answer a JSON array of objects")
    return data


def _read_cache(path: Path) -> list[dict[str, Any]] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        return None
    return data


def _write_cache(path: Path, rows: list[dict[str, Any]]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(rows, f)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:  # a read-only disk must not stop trading: the rows are in memory
        log.warning(
            "scrip master: cannot write the cache", extra={"path": str(path), "error": str(exc)}
        )


def fetch_scrip_master(
    *,
    url: str | None = None,
    cache_path: str | Path | None = None,
    max_age_s: float = 86_400.0,
    max_stale_s: float = 3 * 86_400.0,
    timeout_s: float = 30.0,
    now_s: float | None = None,
) -> ScripMasterFile:
    """The instrument master's rows: the fresh cache, else a download (cached), else a stale
    cache no older than ``max_stale_s`` (see the module docstring).

    Parameters
    ----------
    url
        The master's URL (default: ``ANGEL_ONE_SCRIP_MASTER_URL``, else Angel One's).
    cache_path
        The cache file (default: :func:`default_cache_path`).
    max_age_s
        A cache younger than this [s] and of today's IST date is used without a download.
    max_stale_s
        The oldest cache [s] used when the download fails.
    timeout_s
        The download's socket timeout [s].
    now_s
        The current time [UTC epoch s] (default: the wall clock; tests).

    Raises
    ------
    ValidationError
        A malformed argument (names it).
    TemporaryBrokerError
        The download failed and no cache is young enough.
    """
    for name, value, top in (
        ("max_age_s", max_age_s, 366 * 86_400.0),
        ("max_stale_s", max_stale_s, 366 * 86_400.0),
        ("timeout_s", timeout_s, 600.0),
    ):
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= top:
            raise ValidationError(name, value, f"must be a number of seconds in (0, {top:g}]")
    if url is None:
        url = AngelOneEndpoints.from_env().scrip_master_url
    parts = urllib.parse.urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValidationError("url", url, "must be an http(s) URL")
    path = Path(cache_path) if cache_path is not None else default_cache_path()
    now = time.time() if now_s is None else float(now_s)
    try:
        mtime: float | None = path.stat().st_mtime
    except OSError:
        mtime = None
    if mtime is not None and _is_fresh(mtime, now, max_age_s):
        rows = _read_cache(path)
        if rows is not None:
            log.info("scrip master: fresh cache", extra={"path": str(path), "rows": len(rows)})
            return ScripMasterFile(rows=rows, source="cache", path=path, fetched_at_s=mtime)
    try:
        rows = _download(url, timeout_s)
    except TemporaryBrokerError as exc:
        if mtime is not None and now - mtime <= max_stale_s:
            old = _read_cache(path)
            if old is not None:
                age_h = (now - mtime) / 3600.0
                warning = f"{exc}; using the cache of {age_h:.1f} h ago ({path})"
                log.warning(
                    "scrip master: download failed, using a stale cache",
                    extra={"path": str(path), "age_h": round(age_h, 1), "error": str(exc)},
                )
                return ScripMasterFile(
                    rows=old, source="stale-cache", path=path, fetched_at_s=mtime, warning=warning
                )
        raise
    _write_cache(path, rows)
    log.info("scrip master: downloaded", extra={"url": url, "rows": len(rows)})
    return ScripMasterFile(rows=rows, source="download", path=path, fetched_at_s=now)


def _nearest_expiries(
    instruments: list[Instrument], specs: Mapping[str, ContractSpec], today: date
) -> list[Instrument]:
    keep: dict[str, set[date]] = {}
    for name, spec in specs.items():
        listed = sorted(
            {
                i.expiry
                for i in instruments
                if i.underlying == name and i.expiry is not None and i.expiry >= today
            }
        )
        keep[name] = set(listed[: spec.expiries_listed])
    return [
        i
        for i in instruments
        if i.kind is InstrumentKind.INDEX
        or (i.expiry is not None and i.expiry in keep.get(i.underlying, set()))
    ]


def load_instrument_master(
    contracts: Mapping[str, ContractSpec] | Iterable[ContractSpec],
    *,
    url: str | None = None,
    cache_path: str | Path | None = None,
    max_age_s: float = 86_400.0,
    max_stale_s: float = 3 * 86_400.0,
    timeout_s: float = 30.0,
    today: date | None = None,
    now_s: float | None = None,
) -> InstrumentMaster:
    """The universe of the configured underlyings (their indices and index options) from the
    master (fetched or cached by :func:`fetch_scrip_master`, whose parameters these are).

    Parameters
    ----------
    contracts
        The underlyings to keep (``settings.market.synthetic.contracts`` or any specs).
    today
        If given (IST date), options expired before it are dropped and only each underlying's
        ``expiries_listed`` nearest expiries are kept.

    Raises
    ------
    ValidationError
        A malformed argument, or a malformed row of a wanted type (names the field).
    TemporaryBrokerError
        No master could be had (see :func:`fetch_scrip_master`).
    ConfigurationError
        The master lists no instrument of the configured underlyings.
    """
    specs = contracts_by_underlying(contracts)
    got = fetch_scrip_master(
        url=url,
        cache_path=cache_path,
        max_age_s=max_age_s,
        max_stale_s=max_stale_s,
        timeout_s=timeout_s,
        now_s=now_s,
    )
    instruments = [
        i
        for i in parse_scrip_master(got.rows, specs)
        if i.kind in (InstrumentKind.INDEX, InstrumentKind.OPTION)
    ]
    if today is not None:
        instruments = _nearest_expiries(instruments, specs, today)
    if not any(i.kind is InstrumentKind.OPTION for i in instruments):
        raise ConfigurationError(
            f"scrip master ({got.source}, {got.path}): no options of {sorted(specs)}"
        )
    return InstrumentMaster(
        universe=Universe(instruments),
        source=got.source,
        path=got.path,
        fetched_at_s=got.fetched_at_s,
        warning=got.warning,
    )
