"""Market slices to and from files: CSV or Parquet (chosen by the file's suffix).

Slice format (what :func:`write_slices` writes)
-----------------------------------------------
One row per instrument per slice, with the columns

=============  ========  =============================================================
column         type      meaning
=============  ========  =============================================================
ts_ns          int64     the slice's time, UTC epoch ns
token          string    the instrument's token (the universe maps it to an index)
ltp_paise      int64     last traded price (the bar's close for a bar slice)
bid_paise      int64     best bid, 0 if none
bid_qty        int64     units at the best bid
ask_paise      int64     best ask, 0 if none
ask_qty        int64     units at the best ask
volume         int64     the day's cumulative volume, units
oi             int64     open interest, units
bar_close      bool      the slice closes a minute bar (CSV: true/false or 1/0)
open_paise     int64     the bar's open; empty (null) for a slice without OHLC
high_paise     int64     the bar's high; likewise
low_paise      int64     the bar's low; likewise
=============  ========  =============================================================

Rows of one ``ts_ns`` form one slice, in file order; slices come out in ``ts_ns`` order (the
file need not be sorted; two slices written with the same ``ts_ns`` come back as one). All rows
of a slice must agree on ``bar_close`` and on having OHLC or not.

Simple bars format (read only)
------------------------------
Columns ``ts, token, open, high, low, close, volume`` (an ``oi`` column is optional): one
minute bar per row as vendors and Angel One's candle API give them. ``ts`` is the bar's OPEN
time, as integer UTC epoch ns or an ISO-8601 date-time (with an offset; without one it is
IST). Prices are rupees as decimals (``"24512.35"``) converted exactly to paise (more than two
non-zero decimals is an error); ``volume`` is the bar's own volume in units. A bar becomes a
row of the slice at its CLOSE time (``ts`` + ``bar_interval_s``, default 60 s), with
``bar_close=True``, ``ltp_paise`` = close, no bid/ask (0), ``volume`` = the cumulative volume
of the token's bars of that IST day so far.

Errors
------
A malformed value raises :class:`ValidationError` naming the column, with the data row
(0-based, header excluded) in the message. A token not in the universe raises naming the row,
unless ``unknown_tokens="skip"``: such rows are then dropped and counted in
:attr:`ReplayFeed.skipped_rows`.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.compute as pc  # type: ignore[import-untyped]
import pyarrow.csv as pacsv  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]

from algoengine.domain.market_data import MarketSlice, Universe
from algoengine.errors import ValidationError
from algoengine.market.calendar import IST_OFFSET_NS, NS_PER_DAY, NS_PER_S

__all__ = ["SLICE_COLUMNS", "ReplayFeed", "read_slices", "write_slices"]

I64 = npt.NDArray[np.int64]
I32 = npt.NDArray[np.int32]

#: The columns of the slice format, in order.
SLICE_COLUMNS = (
    "ts_ns",
    "token",
    "ltp_paise",
    "bid_paise",
    "bid_qty",
    "ask_paise",
    "ask_qty",
    "volume",
    "oi",
    "bar_close",
    "open_paise",
    "high_paise",
    "low_paise",
)
_INT_COLUMNS = (
    "ts_ns",
    "ltp_paise",
    "bid_paise",
    "bid_qty",
    "ask_paise",
    "ask_qty",
    "volume",
    "oi",
)
_OHLC_COLUMNS = ("open_paise", "high_paise", "low_paise")
_SIMPLE_COLUMNS = ("ts", "token", "open", "high", "low", "close", "volume")
_EPOCH_ORD = date(1970, 1, 1).toordinal()
_IST = timezone(timedelta(hours=5, minutes=30))
_RUPEES_RE = re.compile(r"^\s*(\d+)(?:\.(\d*))?\s*$")
_INT_RE = re.compile(r"^\s*-?\d+\s*$")


def _suffix(path: Path) -> Literal["csv", "parquet"]:
    s = path.suffix.lower()
    if s == ".csv":
        return "csv"
    if s in (".parquet", ".pq"):
        return "parquet"
    raise ValidationError("path", str(path), "the suffix must be .csv or .parquet")


# ---- writing ---------------------------------------------------------------------------------


def write_slices(path: str | Path, slices: Iterable[MarketSlice], universe: Universe) -> int:
    """Write ``slices`` (indexing ``universe``) to ``path`` (.csv or .parquet).

    Returns the number of rows written.
    """
    p = Path(path)
    kind = _suffix(p)
    if not isinstance(universe, Universe):
        raise ValidationError("universe", universe, "must be a Universe")
    tokens = pa.array([inst.token for inst in universe], type=pa.string())
    parts: dict[str, list[npt.NDArray[Any]]] = {c: [] for c in SLICE_COLUMNS}
    ohlc_valid: list[npt.NDArray[np.bool_]] = []
    for s in slices:
        if not isinstance(s, MarketSlice):
            raise ValidationError("slices", s, "must hold MarketSlice objects")
        n = len(s)
        if n and (int(s.idx.min()) < 0 or int(s.idx.max()) >= len(universe)):
            raise ValidationError("idx", s.ts_ns, "slice indexes outside the universe")
        parts["ts_ns"].append(np.full(n, s.ts_ns, dtype=np.int64))
        parts["token"].append(np.asarray(s.idx, dtype=np.int32))
        for c in _INT_COLUMNS[1:]:
            parts[c].append(np.asarray(getattr(s, c), dtype=np.int64))
        parts["bar_close"].append(np.full(n, s.bar_close, dtype=np.bool_))
        has = s.open_paise is not None and s.high_paise is not None and s.low_paise is not None
        ohlc_valid.append(np.full(n, has, dtype=np.bool_))
        for c in _OHLC_COLUMNS:
            arr = getattr(s, c)
            parts[c].append(
                np.zeros(n, dtype=np.int64) if arr is None else np.asarray(arr, dtype=np.int64)
            )
    cols: dict[str, Any] = {}
    valid = np.concatenate(ohlc_valid) if ohlc_valid else np.zeros(0, dtype=np.bool_)
    for c in SLICE_COLUMNS:
        data = np.concatenate(parts[c]) if parts[c] else np.zeros(0)
        if c == "token":
            codes = pa.array(data.astype(np.int32), type=pa.int32())
            cols[c] = pa.DictionaryArray.from_arrays(codes, tokens).cast(pa.string())
        elif c == "bar_close":
            cols[c] = pa.array(data.astype(np.bool_), type=pa.bool_())
        elif c in _OHLC_COLUMNS:
            cols[c] = pa.array(data.astype(np.int64), type=pa.int64(), mask=~valid)
        else:
            cols[c] = pa.array(data.astype(np.int64), type=pa.int64())
    table = pa.table(cols)
    if kind == "csv":
        pacsv.write_csv(table, str(p))
    else:
        pq.write_table(table, str(p))
    return int(table.num_rows)


# ---- reading ---------------------------------------------------------------------------------


def _read_header(p: Path) -> list[str]:
    with p.open(newline="", encoding="utf-8") as fh:
        row = next(csv.reader(fh), None)
    if row is None:
        raise ValidationError("path", str(p), "the file is empty")
    return [c.strip() for c in row]


def _locate_csv_error(p: Path, types: dict[str, str]) -> ValidationError:
    """Scan a CSV the fast reader rejected for the first bad (row, column)."""
    with p.open(newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        header = [c.strip() for c in next(reader)]
        for r, row in enumerate(reader):
            if len(row) != len(header):
                return ValidationError(
                    "row", r, f"row {r} (line {r + 2}) has {len(row)} fields, not {len(header)}"
                )
            for name, value in zip(header, row, strict=True):
                kind = types.get(name)
                v = value.strip()
                if kind == "int" and v and not _INT_RE.match(v):
                    return ValidationError(name, value, f"row {r} (line {r + 2}): not an integer")
                if kind == "bool" and v.lower() not in ("true", "false", "1", "0"):
                    return ValidationError(name, value, f"row {r} (line {r + 2}): not a boolean")
    return ValidationError("path", str(p), "the file could not be read as CSV")


def _read_table(p: Path, kind: str, types: dict[str, str]) -> Any:
    if kind == "parquet":
        try:
            return pq.read_table(str(p))
        except (pa.ArrowInvalid, OSError) as exc:
            raise ValidationError("path", str(p), f"not a readable Parquet file: {exc}") from None
    header = _read_header(p)
    arrow_types = {"int": pa.int64(), "bool": pa.bool_(), "str": pa.string()}
    column_types = {c: arrow_types[t] for c, t in types.items() if c in header}
    try:
        return pacsv.read_csv(
            str(p),
            convert_options=pacsv.ConvertOptions(
                column_types=column_types, strings_can_be_null=False
            ),
        )
    except pa.ArrowInvalid:
        raise _locate_csv_error(p, types) from None


def _first_bad(mask: npt.NDArray[np.bool_]) -> int:
    return int(np.flatnonzero(mask)[0])


def _int_column(table: Any, name: str, *, nullable: bool = False) -> tuple[I64, Any]:
    """An int64 column as numpy (nulls as 0) and its validity mask (None if no nulls)."""
    if name not in table.column_names:
        raise ValidationError(name, None, "missing column")
    col = table.column(name)
    try:
        col = col.cast(pa.int64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        raise ValidationError(name, str(col.type), "must hold integers") from None
    valid = None
    if col.null_count:
        valid = np.asarray(col.is_valid().to_numpy(zero_copy_only=False), dtype=np.bool_)
        if not nullable:
            r = _first_bad(~valid)
            raise ValidationError(name, None, f"row {r}: missing value")
        col = col.fill_null(0)
    return np.asarray(col.to_numpy(zero_copy_only=False), dtype=np.int64), valid


class ReplayFeed:
    """Slices replayed from a file written by :func:`write_slices` or a simple bars file.

    Parameters
    ----------
    path
        A ``.csv`` or ``.parquet`` file (see the module docstring for both formats).
    universe
        Maps the file's tokens to indices.
    unknown_tokens
        ``"raise"`` (default): a token not in the universe is an error naming the row;
        ``"skip"``: such rows are dropped and counted in :attr:`skipped_rows`.
    bar_interval_s
        Simple bars format: the bar length (the slice's ``ts_ns`` is the bar's open + this).

    Raises
    ------
    ValidationError
        for a missing column or a malformed value, naming the column and the row.
    """

    def __init__(
        self,
        path: str | Path,
        universe: Universe,
        *,
        unknown_tokens: Literal["raise", "skip"] = "raise",
        bar_interval_s: int = 60,
    ) -> None:
        if not isinstance(universe, Universe):
            raise ValidationError("universe", universe, "must be a Universe")
        if unknown_tokens not in ("raise", "skip"):
            raise ValidationError("unknown_tokens", unknown_tokens, "must be 'raise' or 'skip'")
        if not isinstance(bar_interval_s, int) or isinstance(bar_interval_s, bool):
            raise ValidationError("bar_interval_s", bar_interval_s, "must be an integer")
        if bar_interval_s < 1:
            raise ValidationError("bar_interval_s", bar_interval_s, "must be >= 1")
        p = Path(path)
        if not p.is_file():
            raise ValidationError("path", str(p), "no such file")
        self.path = p
        self._universe = universe
        self._unknown = unknown_tokens
        self.skipped_rows = 0
        kind = _suffix(p)
        if kind == "csv":
            names = _read_header(p)
        else:
            try:
                names = list(pq.read_schema(str(p)).names)
            except (pa.ArrowInvalid, OSError) as exc:
                raise ValidationError("path", str(p), f"not a Parquet file: {exc}") from None
        if "ts_ns" in names and "ltp_paise" in names:
            self.format: Literal["slices", "bars"] = "slices"
            self._load_slices(p, kind)
        elif all(c in names for c in _SIMPLE_COLUMNS):
            self.format = "bars"
            self._load_bars(p, kind, bar_interval_s)
        else:
            raise ValidationError(
                "path",
                str(p),
                f"columns {names} are neither the slice format nor ts,token,open,high,low,"
                "close,volume",
            )

    # ---- MarketFeed ---------------------------------------------------------------------------

    @property
    def universe(self) -> Universe:
        """The universe the slices index."""
        return self._universe

    @property
    def trading_days(self) -> list[date]:
        """The IST dates that have slices."""
        return list(self._days)

    def __len__(self) -> int:
        """The number of slices."""
        return len(self._starts) - 1

    def __iter__(self) -> Iterator[MarketSlice]:
        """The slices in ``ts_ns`` order."""
        a = self._arrays
        for k in range(len(self._starts) - 1):
            lo, hi = int(self._starts[k]), int(self._starts[k + 1])
            has_ohlc = bool(self._has_ohlc[k])
            yield MarketSlice(
                ts_ns=int(a["ts_ns"][lo]),
                idx=self._idx[lo:hi],
                ltp_paise=a["ltp_paise"][lo:hi],
                bid_paise=a["bid_paise"][lo:hi],
                bid_qty=a["bid_qty"][lo:hi],
                ask_paise=a["ask_paise"][lo:hi],
                ask_qty=a["ask_qty"][lo:hi],
                volume=a["volume"][lo:hi],
                oi=a["oi"][lo:hi],
                bar_close=bool(self._bar_close[k]),
                open_paise=a["open_paise"][lo:hi] if has_ohlc else None,
                high_paise=a["high_paise"][lo:hi] if has_ohlc else None,
                low_paise=a["low_paise"][lo:hi] if has_ohlc else None,
            )

    # ---- loading ------------------------------------------------------------------------------

    def _token_indices(self, table: Any) -> tuple[I32, npt.NDArray[np.bool_]]:
        """Universe indices of the ``token`` column and the mask of rows to keep."""
        col = table.column("token")
        if col.null_count:
            valid = np.asarray(col.is_valid().to_numpy(zero_copy_only=False))
            raise ValidationError("token", None, f"row {_first_bad(~valid)}: missing value")
        if not pa.types.is_string(col.type):
            col = col.cast(pa.string())
        enc = pc.utf8_trim_whitespace(col).combine_chunks().dictionary_encode()
        codes = np.asarray(enc.indices.to_numpy(zero_copy_only=False), dtype=np.int64)
        uniq: list[str] = enc.dictionary.to_pylist()
        by_token = self._universe
        lookup = np.array(
            [by_token.index_of(t) if t in by_token else -1 for t in uniq] or [-1],
            dtype=np.int64,
        )
        idx = lookup[codes]
        keep = idx >= 0
        if not keep.all():
            if self._unknown == "raise":
                r = _first_bad(~keep)
                raise ValidationError("token", uniq[codes[r]], f"row {r}: not in the universe")
            self.skipped_rows = int((~keep).sum())
        return idx.astype(np.int32), keep

    def _load_slices(self, p: Path, kind: str) -> None:
        types = {c: "int" for c in (*_INT_COLUMNS, *_OHLC_COLUMNS)}
        types["token"] = "str"
        types["bar_close"] = "bool"
        table = _read_table(p, kind, types)
        for c in SLICE_COLUMNS:
            if c not in table.column_names:
                raise ValidationError(c, None, "missing column")
        arrays: dict[str, I64] = {}
        for c in _INT_COLUMNS:
            arrays[c], _ = _int_column(table, c)
            if c != "ts_ns" and len(arrays[c]) and int(arrays[c].min()) < 0:
                r = _first_bad(arrays[c] < 0)
                raise ValidationError(c, int(arrays[c][r]), f"row {r}: must be >= 0")
        valid_all: npt.NDArray[np.bool_] | None = None
        for c in _OHLC_COLUMNS:
            arrays[c], valid = _int_column(table, c, nullable=True)
            v = np.ones(table.num_rows, dtype=np.bool_) if valid is None else valid
            if valid_all is not None and not np.array_equal(v, valid_all):
                r = _first_bad(v != valid_all)
                raise ValidationError(c, None, f"row {r}: open/high/low must be all or none")
            valid_all = v
        bc_col = table.column("bar_close")
        if bc_col.null_count:
            bad = ~np.asarray(bc_col.is_valid().to_numpy(zero_copy_only=False))
            raise ValidationError("bar_close", None, f"row {_first_bad(bad)}: missing value")
        try:
            bc_col = bc_col.cast(pa.bool_())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            raise ValidationError("bar_close", str(bc_col.type), "must hold booleans") from None
        bar_close = np.asarray(bc_col.to_numpy(zero_copy_only=False), dtype=np.bool_)
        idx, keep = self._token_indices(table)
        assert valid_all is not None
        self._finish(arrays, idx, keep, bar_close, valid_all)

    def _finish(
        self,
        arrays: dict[str, I64],
        idx: I32,
        keep: npt.NDArray[np.bool_],
        bar_close: npt.NDArray[np.bool_],
        has_ohlc: npt.NDArray[np.bool_],
    ) -> None:
        """Drop skipped rows, sort stably by time, split into slices and check each one."""
        ts = arrays["ts_ns"]
        order = np.flatnonzero(keep)
        order = order[np.argsort(ts[order], kind="stable")]
        self._arrays = {c: np.ascontiguousarray(a[order]) for c, a in arrays.items()}
        self._idx = np.ascontiguousarray(idx[order])
        bc = bar_close[order]
        ho = has_ohlc[order]
        ts_sorted = self._arrays["ts_ns"]
        if len(ts_sorted):
            breaks = np.flatnonzero(np.diff(ts_sorted)) + 1
            starts = np.concatenate([[0], breaks, [len(ts_sorted)]]).astype(np.int64)
        else:
            starts = np.zeros(1, dtype=np.int64)
        first = starts[:-1]
        # every row of a slice must agree with its first row
        group = np.repeat(np.arange(len(first)), np.diff(starts))
        for name, flags in (("bar_close", bc), ("open_paise", ho)):
            bad = flags != flags[first][group]
            if bad.any():
                r = int(order[_first_bad(bad)])
                raise ValidationError(
                    name, bool(flags[_first_bad(bad)]), f"row {r}: differs within its ts_ns"
                )
        self._starts = starts
        self._bar_close = bc[first]
        self._has_ohlc = ho[first]
        day_ords = (ts_sorted[first] + IST_OFFSET_NS) // NS_PER_DAY + _EPOCH_ORD
        self._days = [date.fromordinal(int(o)) for o in np.unique(day_ords)]

    # ---- the simple bars format ---------------------------------------------------------------

    def _load_bars(self, p: Path, kind: str, interval_s: int) -> None:
        types = {c: "str" for c in _SIMPLE_COLUMNS}
        table = _read_table(p, kind, types if kind == "csv" else {})
        n = table.num_rows

        def texts(name: str) -> list[str]:
            col = table.column(name)
            if col.null_count:
                valid = np.asarray(col.is_valid().to_numpy(zero_copy_only=False))
                raise ValidationError(name, None, f"row {_first_bad(~valid)}: missing value")
            return [str(v) for v in col.to_pylist()]

        ts = np.fromiter(
            (_parse_ts(v, r) for r, v in enumerate(texts("ts"))), dtype=np.int64, count=n
        )
        ts += interval_s * NS_PER_S
        price: dict[str, I64] = {}
        for c in ("open", "high", "low", "close"):
            price[c] = np.fromiter(
                (_rupees_to_paise(c, v, r) for r, v in enumerate(texts(c))),
                dtype=np.int64,
                count=n,
            )
        vol = np.fromiter(
            (_count(("volume"), v, r) for r, v in enumerate(texts("volume"))),
            dtype=np.int64,
            count=n,
        )
        if "oi" in table.column_names:
            oi = np.fromiter(
                (_count("oi", v, r) for r, v in enumerate(texts("oi"))), dtype=np.int64, count=n
            )
        else:
            oi = np.zeros(n, dtype=np.int64)
        hi, lo = price["high"], price["low"]
        for name, bad in (
            ("high", hi < np.maximum(price["open"], price["close"])),
            ("low", lo > np.minimum(price["open"], price["close"])),
        ):
            if bad.any():
                r = _first_bad(bad)
                raise ValidationError(
                    name, int(price[name][r]), f"row {r}: outside the bar's open/close"
                )
        idx, keep = self._token_indices(table)
        # cumulative volume per token per IST day, in time order
        day = (ts + IST_OFFSET_NS) // NS_PER_DAY
        order = np.lexsort((ts, day, idx))
        cum = np.zeros(n, dtype=np.int64)
        if n:
            v = vol[order] * keep[order]
            key_change = np.ones(n, dtype=np.bool_)
            key_change[1:] = (idx[order][1:] != idx[order][:-1]) | (
                day[order][1:] != day[order][:-1]
            )
            run = np.cumsum(v)
            base = np.maximum.accumulate(np.where(key_change, run - v, 0))
            cum[order] = run - base
        zeros = np.zeros(n, dtype=np.int64)
        arrays = {
            "ts_ns": ts,
            "ltp_paise": price["close"],
            "bid_paise": zeros,
            "bid_qty": zeros,
            "ask_paise": zeros,
            "ask_qty": zeros,
            "volume": cum,
            "oi": oi,
            "open_paise": price["open"],
            "high_paise": hi,
            "low_paise": lo,
        }
        ones = np.ones(n, dtype=np.bool_)
        self._finish(arrays, idx, keep, ones, ones)


def read_slices(path: str | Path, universe: Universe) -> list[MarketSlice]:
    """All slices of a file (see :class:`ReplayFeed`)."""
    return list(ReplayFeed(path, universe))


def _parse_ts(text: str, row: int) -> int:
    t = text.strip()
    if _INT_RE.match(t):
        return int(t)
    try:
        dt = datetime.fromisoformat(t)
    except ValueError:
        raise ValidationError(
            "ts", text, f"row {row}: not epoch ns or an ISO-8601 date-time"
        ) from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=_IST)
    delta = dt - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * NS_PER_S + delta.microseconds * 1000


def _rupees_to_paise(column: str, text: str, row: int) -> int:
    m = _RUPEES_RE.match(text)
    if m is None:
        try:
            Decimal(text)
        except InvalidOperation:
            raise ValidationError(column, text, f"row {row}: not a decimal number") from None
        raise ValidationError(column, text, f"row {row}: must be a non-negative decimal")
    frac = (m.group(2) or "").rstrip("0")
    if len(frac) > 2:
        raise ValidationError(column, text, f"row {row}: finer than a paisa")
    paise = int(m.group(1)) * 100 + int(frac.ljust(2, "0"))
    if paise <= 0:
        raise ValidationError(column, text, f"row {row}: must be > 0")
    return paise


def _count(column: str, text: str, row: int) -> int:
    t = text.strip()
    if t.endswith(".0"):
        t = t[:-2]
    if not t.isdigit():
        raise ValidationError(column, text, f"row {row}: must be a non-negative integer")
    return int(t)
