"""Backtest reports: tables (CSV or Parquet), the metrics as JSON, an equity and drawdown chart,
and a progress bar for the command line.

:func:`write_report` writes into one directory:

==================================  ========================================================
``trades.csv`` / ``trades.parquet``  one row per closed trade
``orders.csv`` / ``orders.parquet``  one row per order (or order event)
``equity.csv`` / ``equity.parquet``  the equity curve, plus ``drawdown_paise`` and
                                     ``drawdown_fraction`` against the running peak (which
                                     starts at the starting capital), unless given
``summary.json``                     :meth:`Metrics.to_dict` (JSON-safe: ``"inf"`` strings)
``equity.png``                       equity (rupees) above drawdown (%), against the sample
                                     number (no overnight or weekend gaps), dates in IST
==================================  ========================================================

Table shapes
------------
``trades``, ``orders`` and ``equity`` each accept one of:

- a sequence of dataclass instances of one class: the columns are its fields, in order;
- a sequence of mappings: the columns are the keys, in order of first appearance (a key a row
  lacks is an empty cell / null);
- a mapping of column name to a one-dimensional sequence or numpy array, all of one length.

``equity`` must have the integer columns ``ts_ns`` (UTC epoch ns) and ``equity_paise``. Cells
are written as: ``None`` -> empty (CSV) / null (Parquet); enums -> their value; dates, times
and datetimes -> ISO strings; numpy scalars -> Python numbers; lists, tuples and mappings ->
JSON text; anything else -> ``str``. A table with no rows and no known columns gives an empty
CSV file (or an empty Parquet table). Parquet columns are typed by pyarrow's inference (int64
for paise and ns); a column mixing types is an error naming it.

Determinism: the same input gives byte-identical files. The chart is drawn by matplotlib's Agg
canvas on a private ``Figure`` (no pyplot, no global backend switch) under matplotlib's default
style, at a fixed size and dpi, with the PNG ``Software`` tag removed (it carries no timestamp).
Files are written to a temporary name and renamed, so a reader never sees half a file.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import enum
import io
import json
import math
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, TextIO

import numpy as np
import numpy.typing as npt

from algoengine.backtest.metrics import (
    IST_UTC_OFFSET_MINUTES,
    Metrics,
    drawdown_series,
    format_paise,
)
from algoengine.errors import ValidationError

__all__ = [
    "CHART_DPI",
    "CHART_SIZE_IN",
    "BacktestReport",
    "Progress",
    "Table",
    "write_report",
]

#: A table: rows of dataclasses or mappings, or a mapping of column name -> values.
Table = Sequence[Any] | Mapping[str, Sequence[Any] | npt.NDArray[Any]]

#: Size of ``equity.png`` in inches (width, height) and its resolution.
CHART_SIZE_IN = (11.0, 6.5)
CHART_DPI = 100

_IST = dt.timezone(dt.timedelta(minutes=IST_UTC_OFFSET_MINUTES), "IST")


@dataclass(frozen=True, kw_only=True, slots=True)
class BacktestReport:
    """The files :func:`write_report` wrote."""

    directory: Path
    trades: Path
    orders: Path
    equity: Path
    summary: Path
    chart: Path


def write_report(
    out_dir: str | Path,
    *,
    trades: Table,
    orders: Table,
    equity: Table,
    metrics: Metrics,
    fmt: Literal["csv", "parquet"] = "csv",
) -> BacktestReport:
    """Write a backtest's tables, metrics and chart into ``out_dir`` (created if missing).

    Parameters
    ----------
    out_dir
        The directory; existing report files in it are replaced.
    trades, orders
        Tables (module docstring) of closed trades and of orders.
    equity
        The equity curve: a table with integer columns ``ts_ns`` (UTC epoch ns) and
        ``equity_paise``; other columns are kept.
    metrics
        The run's :class:`~algoengine.backtest.metrics.Metrics` (its starting capital is the
        drawdown's first peak).
    fmt
        ``"csv"`` or ``"parquet"``: the format of the three tables.

    Returns
    -------
    BacktestReport
        The paths written.

    Raises
    ------
    ValidationError
        An unknown ``fmt``, a malformed table (the field names the table and column), or an
        equity table without integer ``ts_ns`` / ``equity_paise`` columns of equal length.
    """
    if fmt not in ("csv", "parquet"):
        raise ValidationError("fmt", fmt, "must be 'csv' or 'parquet'")
    if not isinstance(metrics, Metrics):
        raise ValidationError("metrics", metrics, "must be a Metrics")
    directory = Path(out_dir)
    trade_cols = _columns("trades", trades)
    order_cols = _columns("orders", orders)
    equity_cols = _columns("equity", equity)
    ts, eq = _equity_arrays(equity_cols)
    _, dd, frac = drawdown_series(eq, starting_capital_paise=metrics.starting_capital_paise)
    equity_cols.setdefault("drawdown_paise", [int(x) for x in dd])
    equity_cols.setdefault("drawdown_fraction", [float(x) for x in frac])

    ext = "csv" if fmt == "csv" else "parquet"
    paths = BacktestReport(
        directory=directory,
        trades=directory / f"trades.{ext}",
        orders=directory / f"orders.{ext}",
        equity=directory / f"equity.{ext}",
        summary=directory / "summary.json",
        chart=directory / "equity.png",
    )
    # everything is encoded before anything is written: bad input leaves no partial report
    files: dict[Path, bytes] = {}
    for name, cols, path in (
        ("trades", trade_cols, paths.trades),
        ("orders", order_cols, paths.orders),
        ("equity", equity_cols, paths.equity),
    ):
        files[path] = _csv_bytes(cols) if fmt == "csv" else _parquet_bytes(name, cols)
    summary = json.dumps(metrics.to_dict(), indent=2, allow_nan=False) + "\n"
    files[paths.summary] = summary.encode("utf-8")
    files[paths.chart] = _chart_png(ts, eq, frac, metrics)
    directory.mkdir(parents=True, exist_ok=True)
    for path, data in files.items():
        _write_atomic(path, data)
    return paths


# ---------------------------------------------------------------------------------------------
# tables


def _cell(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, enum.Enum):
        return _cell(value.value)
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, Mapping | list | tuple | set | frozenset):
        return json.dumps(_jsonable(value), sort_keys=True, separators=(",", ":"))
    return str(value)


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, set | frozenset):
        return sorted((_jsonable(v) for v in value), key=repr)
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    cell = _cell(value)
    if isinstance(cell, float) and not math.isfinite(cell):
        return str(cell)
    return cell


def _columns(table_name: str, table: object) -> dict[str, list[Any]]:
    """Normalise a table to ``{column: [cell, ...]}`` (module docstring)."""
    if isinstance(table, Mapping):
        cols: dict[str, list[Any]] = {}
        length: int | None = None
        for key, values in table.items():
            if not isinstance(key, str):
                raise ValidationError(table_name, key, "column names must be strings")
            arr = values.tolist() if isinstance(values, np.ndarray) else values
            if isinstance(arr, str | bytes) or not isinstance(arr, Sequence):
                raise ValidationError(f"{table_name}.{key}", values, "must be a sequence")
            if length is not None and len(arr) != length:
                raise ValidationError(
                    f"{table_name}.{key}", len(arr), f"length differs from the others ({length})"
                )
            length = len(arr)
            cols[key] = [_cell(v) for v in arr]
        return cols
    if isinstance(table, str | bytes) or not isinstance(table, Sequence):
        raise ValidationError(table_name, table, "must be a sequence of rows or a column mapping")
    rows = list(table)
    if not rows:
        return {}
    first = rows[0]
    if dataclasses.is_dataclass(first) and not isinstance(first, type):
        cls = type(first)
        names = [f.name for f in dataclasses.fields(first)]
        for i, row in enumerate(rows):
            if type(row) is not cls:
                raise ValidationError(
                    f"{table_name}[{i}]", row, f"must be a {cls.__name__} like the first row"
                )
        return {n: [_cell(getattr(row, n)) for row in rows] for n in names}
    names_seen: dict[str, None] = {}
    for i, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise ValidationError(f"{table_name}[{i}]", row, "must be a mapping like the first row")
        for key in row:
            if not isinstance(key, str):
                raise ValidationError(f"{table_name}[{i}]", key, "column names must be strings")
            names_seen.setdefault(key, None)
    return {n: [_cell(row.get(n)) for row in rows] for n in names_seen}


def _equity_arrays(
    cols: dict[str, list[Any]],
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    out = []
    for name in ("ts_ns", "equity_paise"):
        if name not in cols:
            raise ValidationError(f"equity.{name}", None, "the equity table needs this column")
        values = cols[name]
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            raise ValidationError(f"equity.{name}", values[:3], "must hold integers")
        out.append(np.asarray(values, dtype=np.int64))
    if out[0].size == 0:
        raise ValidationError("equity", 0, "the equity curve needs at least one row")
    return out[0], out[1]


def _csv_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _csv_bytes(cols: dict[str, list[Any]]) -> bytes:
    buf = io.StringIO()
    if cols:
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(list(cols))
        for row in zip(*cols.values(), strict=True):
            writer.writerow([_csv_text(v) for v in row])
    return buf.getvalue().encode("utf-8")


def _parquet_bytes(table_name: str, cols: dict[str, list[Any]]) -> bytes:
    import pyarrow as pa  # type: ignore[import-untyped, unused-ignore]
    import pyarrow.parquet as pq  # type: ignore[import-untyped, unused-ignore]

    arrays = []
    for name, values in cols.items():
        try:
            arrays.append(pa.array(values))
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as exc:
            raise ValidationError(
                f"{table_name}.{name}", values[:3], f"cannot be a Parquet column: {exc}"
            ) from exc
    table = pa.Table.from_arrays(arrays, names=list(cols))
    sink = io.BytesIO()
    pq.write_table(table, sink)
    data: bytes = sink.getvalue()
    return data


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


# ---------------------------------------------------------------------------------------------
# chart


def _ist(ts_ns: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts_ns / 1e9, tz=_IST)


def _ticks(ts: npt.NDArray[np.int64], max_ticks: int = 8) -> tuple[list[int], list[str]]:
    """Tick positions (sample numbers) and labels: day starts, or times within one day."""
    day = (ts + IST_UTC_OFFSET_MINUTES * 60_000_000_000) // 86_400_000_000_000
    starts = np.flatnonzero(np.concatenate(([True], day[1:] != day[:-1])))
    if starts.size > 1:
        step = math.ceil(starts.size / max_ticks)
        picks = [int(i) for i in starts[::step]]
        return picks, [_ist(int(ts[i])).strftime("%d %b %y") for i in picks]
    n = ts.size
    picks = (
        sorted({round(k * (n - 1) / (max_ticks - 1)) for k in range(max_ticks)}) if n > 1 else [0]
    )
    return picks, [_ist(int(ts[i])).strftime("%H:%M") for i in picks]


def _rupee_tick(value: float, _pos: object) -> str:
    """Axis label in whole rupees with Indian grouping (``12,34,567``)."""
    return format_paise(round(value * 100)).replace("Rs ", "").removesuffix(".00")


def _chart_png(
    ts: npt.NDArray[np.int64],
    eq: npt.NDArray[np.int64],
    frac: npt.NDArray[np.float64],
    metrics: Metrics,
) -> bytes:
    import matplotlib.style
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    x = np.arange(ts.size)
    with matplotlib.style.context("default"):
        fig = Figure(figsize=CHART_SIZE_IN, dpi=CHART_DPI)
        FigureCanvasAgg(fig)
        top, bottom = fig.subplots(
            2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1], "hspace": 0.08}
        )
        top.plot(x, eq / 100.0, color="#1f5fa8", linewidth=1.0, label="equity")
        top.axhline(
            metrics.starting_capital_paise / 100.0,
            color="#888888",
            linewidth=0.8,
            linestyle="--",
            label="starting capital",
        )
        top.set_ylabel("equity (Rs)")
        top.yaxis.set_major_formatter(FuncFormatter(_rupee_tick))
        top.grid(True, linewidth=0.3)
        top.legend(loc="upper left", fontsize=8)
        sharpe = f"{metrics.sharpe:.2f}" if math.isfinite(metrics.sharpe) else str(metrics.sharpe)
        top.set_title(
            f"Net P&L {format_paise(metrics.net_pnl_paise)} "
            f"({metrics.return_on_capital * 100:.2f} %), Sharpe {sharpe}, max drawdown "
            f"{format_paise(metrics.max_drawdown_paise)} "
            f"({metrics.max_drawdown_fraction * 100:.2f} %), {metrics.n_trades} trades",
            fontsize=10,
        )
        bottom.fill_between(x, -frac * 100.0, 0.0, color="#c0392b", alpha=0.4, linewidth=0)
        bottom.plot(x, -frac * 100.0, color="#c0392b", linewidth=0.8)
        bottom.set_ylabel("drawdown (%)")
        bottom.grid(True, linewidth=0.3)
        picks, labels = _ticks(ts)
        bottom.set_xticks(picks, labels, fontsize=8)
        bottom.set_xlim(0, max(ts.size - 1, 1))
        bottom.set_xlabel("IST (sample number axis: sessions only)")
        fig.subplots_adjust(left=0.12, right=0.98, top=0.93, bottom=0.1)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=CHART_DPI, metadata={"Software": None})
    png: bytes = buf.getvalue()
    return png


# ---------------------------------------------------------------------------------------------
# progress


class Progress:
    """A single-line progress bar (``\\r``-updated), for the command line; no dependency.

    Parameters
    ----------
    total
        The number of steps, or ``None`` (or 0) when unknown: then only the count and rate show.
    stream
        Where to draw; default ``sys.stderr`` at construction.
    enabled
        ``False``: draw nothing at all (for logs, pipes and ``--quiet``).
    label
        Text before the bar.
    width
        Bar width in characters.
    min_interval_s
        Minimum time between redraws, seconds (the last step always draws).
    clock
        Monotonic clock in seconds (tests inject one).

    Use as a context manager, or call :meth:`close` at the end to finish the line::

        with Progress(len(days), enabled=sys.stderr.isatty(), label="backtest") as bar:
            for day in days:
                ...
                bar.update()
    """

    def __init__(
        self,
        total: int | None,
        stream: TextIO | None = None,
        enabled: bool = True,
        *,
        label: str = "",
        width: int = 30,
        min_interval_s: float = 0.1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if total is not None and (not isinstance(total, int) or total < 0):
            raise ValidationError("total", total, "must be None or an integer >= 0")
        if not isinstance(width, int) or width < 1:
            raise ValidationError("width", width, "must be an integer >= 1")
        self.total = total or None
        self.count = 0
        self.enabled = bool(enabled)
        self._stream = stream if stream is not None else sys.stderr
        self._label = label
        self._width = width
        self._min_interval = float(min_interval_s)
        self._clock = clock
        self._start = clock()
        self._last_draw: float | None = None
        self._last_len = 0
        self._closed = False

    def update(self, n: int = 1) -> None:
        """Advance by ``n`` steps and redraw when due."""
        if self._closed:
            return
        self.count += n
        if not self.enabled:
            return
        now = self._clock()
        done = self.total is not None and self.count >= self.total
        if done or self._last_draw is None or now - self._last_draw >= self._min_interval:
            self._draw(now)

    def close(self) -> None:
        """Draw the final state and end the line (idempotent)."""
        if self._closed:
            return
        if self.enabled:
            self._draw(self._clock())
            self._stream.write("\n")
            self._stream.flush()
        self._closed = True

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def render(self, now: float | None = None) -> str:
        """The line as it would be drawn now (without ``\\r``)."""
        now = self._clock() if now is None else now
        elapsed = max(now - self._start, 0.0)
        rate = self.count / elapsed if elapsed > 0 else 0.0
        head = f"{self._label} " if self._label else ""
        if self.total is None:
            return f"{head}{self.count} {rate:,.1f}/s {_hms(elapsed)}"
        fraction = min(self.count / self.total, 1.0)
        filled = int(fraction * self._width)
        bar = "#" * filled + "." * (self._width - filled)
        if self.count >= self.total:
            tail = _hms(elapsed)
        elif rate > 0:
            tail = "ETA " + _hms((self.total - self.count) / rate)
        else:
            tail = "ETA --:--"
        return (
            f"{head}[{bar}] {fraction * 100:5.1f}% {self.count}/{self.total} {rate:,.1f}/s {tail}"
        )

    def _draw(self, now: float) -> None:
        line = self.render(now)
        pad = " " * max(self._last_len - len(line), 0)
        self._stream.write("\r" + line + pad)
        self._stream.flush()
        self._last_len = len(line)
        self._last_draw = now


def _hms(seconds: float) -> str:
    s = int(seconds)
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"
