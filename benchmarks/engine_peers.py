"""The backtrader side of ``test_bench_engine.py``: the same market and the same straddle.

Everything is built from the list of :class:`~algoengine.domain.market_data.MarketSlice`
objects the engine consumes, so both sides see identical minute bars.

Contents
    BarArrays       -- one instrument's minute bars as ``array('d')`` columns (backtrader's
                       float day numbers, OHLC and ltp in rupees), plus what the instrument is
    bars_from_slices -- every quoted instrument's bars from the slices (vectorised, numpy)
    straddle_reach  -- the instruments the straddle can touch: NIFTY's index and the options of
                       the nearest expiry within +/- N strikes of a day's at-the-money range
    ArrayData       -- a ``backtrader.feed.DataBase`` that hands out pre-built arrays bar by bar
    StraddleBT      -- the default straddle written as a ``backtrader.Strategy``
    build_cerebro   -- a Cerebro with one feed per instrument and the strategy (untimed part)
    run_cerebro     -- ``cerebro.run()`` timed, and what it did (``BTResult``)
    run_backtrader  -- both
    load_backtrader -- import backtrader (or say why not)

Times: backtrader works with naive datetimes; the feeds carry IST wall-clock time (the
bar's close time, as the engine's slices do), so the strategy's ``09:20`` is IST. Prices are
rupees (paise / 100) on this side only.
"""

from __future__ import annotations

import math
import resource
import time as _time
from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

import numpy as np

IST = timezone(timedelta(hours=5, minutes=30))
TICK_RUPEES = 0.05


def load_backtrader() -> tuple[Any, str | None]:
    """-> (the backtrader module, None) or (None, the reason it cannot be used)."""
    try:
        import backtrader as bt

        return bt, None
    except Exception as exc:  # not installed, or broken on this Python
        return None, f"{type(exc).__name__}: {exc}"


bt, BT_ERROR = load_backtrader()


# ---------------------------------------------------------------------------
# the data, once, outside every timer
# ---------------------------------------------------------------------------
@dataclass(slots=True)
class BarArrays:
    """One instrument's bars: parallel ``array('d')`` columns (compact, and indexing one gives a
    Python float, which is what backtrader's line buffers store)."""

    idx: int  # universe index
    symbol: str
    underlying: str
    kind: str  # "INDEX" / "OPTION"
    expiry: date | None
    strike_rupees: float
    option_type: str | None  # "CE" / "PE" / None
    dt: array  # backtrader day numbers (IST wall clock of the bar's close)
    open: array
    high: array
    low: array
    close: array
    volume: array
    oi: array

    def __len__(self) -> int:
        return len(self.dt)


def bt_day_numbers(ts_ns: np.ndarray) -> np.ndarray:
    """UTC epoch ns -> backtrader's ``date2num`` of the IST wall-clock time (float days since
    0001-01-01 plus one), exactly as ``backtrader.date2num`` computes it."""
    from backtrader.utils.dateintern import date2num

    uniq, inv = np.unique(ts_ns, return_inverse=True)
    nums = np.array(
        [
            date2num(datetime.fromtimestamp(int(t) / 1e9, IST).replace(tzinfo=None))
            for t in uniq.tolist()
        ],
        dtype=np.float64,
    )
    return nums[inv]


def _darr(a: np.ndarray) -> array:
    out = array("d")
    out.frombytes(np.ascontiguousarray(a, dtype=np.float64).tobytes())
    return out


def bars_from_slices(
    slices: Sequence[Any], universe: Any, keep: set[int] | None = None
) -> list[BarArrays]:
    """Every instrument that has quotes in ``slices`` (or only the indices in ``keep``), as
    bars: OHLC from the slices' open/high/low/close (ltp), volume and open interest.

    The slices must be bar slices (``bar_close`` with OHLC arrays). Instruments come out in
    universe order; each one's bars in time order.
    """
    counts = np.fromiter((len(m.idx) for m in slices), dtype=np.int64, count=len(slices))
    ts = np.repeat(np.fromiter((m.ts_ns for m in slices), np.int64, len(slices)), counts)
    idx = np.concatenate([m.idx for m in slices]).astype(np.int64)
    cols = {
        "close": np.concatenate([m.ltp_paise for m in slices]),
        "open": np.concatenate([m.open_paise for m in slices]),
        "high": np.concatenate([m.high_paise for m in slices]),
        "low": np.concatenate([m.low_paise for m in slices]),
        "volume": np.concatenate([m.volume for m in slices]),
        "oi": np.concatenate([m.oi for m in slices]),
    }
    if keep is not None:
        mask = np.isin(idx, np.fromiter(keep, np.int64, len(keep)))
        ts, idx = ts[mask], idx[mask]
        cols = {k: v[mask] for k, v in cols.items()}
    order = np.argsort(idx, kind="stable")  # stable: each instrument's rows stay in time order
    idx = idx[order]
    dt = bt_day_numbers(ts[order])
    cols = {k: v[order] for k, v in cols.items()}
    starts = np.flatnonzero(np.r_[True, idx[1:] != idx[:-1]]) if len(idx) else np.array([], int)
    ends = np.r_[starts[1:], len(idx)]
    out: list[BarArrays] = []
    for s, e in zip(starts.tolist(), ends.tolist(), strict=True):
        i = int(idx[s])
        inst = universe[i]
        price = {k: cols[k][s:e] / 100.0 for k in ("open", "high", "low", "close")}
        out.append(
            BarArrays(
                idx=i,
                symbol=inst.symbol,
                underlying=inst.underlying,
                kind=inst.kind.name,
                expiry=inst.expiry,
                strike_rupees=(inst.strike_paise or 0) / 100.0,
                option_type=None if inst.option_type is None else inst.option_type.value,
                dt=_darr(dt[s:e]),
                open=_darr(price["open"]),
                high=_darr(price["high"]),
                low=_darr(price["low"]),
                close=_darr(price["close"]),
                volume=_darr(cols["volume"][s:e]),
                oi=_darr(cols["oi"][s:e]),
            )
        )
    return out


def straddle_reach(
    slices: Sequence[Any], universe: Any, underlying: str = "NIFTY", strikes: int = 10
) -> set[int]:
    """Universe indices a straddle on ``underlying`` can touch: its index, and per trading
    day the options of the nearest expiry (>= the day) whose strike is within ``strikes``
    strike steps of any at-the-money strike of that day (the strike nearest the index)."""
    spot = universe.spot(underlying)
    if spot is None:
        raise ValueError(f"no index for {underlying} in the universe")
    spot_idx = universe.index_of(spot.token)
    expiries = universe.expiries(underlying)
    keep = {spot_idx}
    by_day: dict[date, list[int]] = {}
    for m in slices:
        k = np.flatnonzero(m.idx == spot_idx)
        if len(k):
            day = datetime.fromtimestamp(m.ts_ns / 1e9, IST).date()
            by_day.setdefault(day, []).append(int(m.ltp_paise[k[0]]))
    for day, spots in by_day.items():
        expiry = next((d for d in expiries if d >= day), None)
        if expiry is None:
            continue
        opts = universe.options(underlying, expiry)
        if len(opts) == 0:
            continue
        ks = np.unique(universe.strike_paise[opts])
        lo_atm = ks[np.argmin(np.abs(ks - min(spots)))]
        hi_atm = ks[np.argmin(np.abs(ks - max(spots)))]
        step = int(np.min(np.diff(ks))) if len(ks) > 1 else 1
        lo, hi = lo_atm - strikes * step, hi_atm + strikes * step
        keep.update(int(i) for i in opts if lo <= universe.strike_paise[i] <= hi)
    return keep


# ---------------------------------------------------------------------------
# backtrader: a feed over arrays, and the straddle
# ---------------------------------------------------------------------------
if bt is not None:

    class ArrayData(bt.feed.DataBase):  # type: ignore[misc]  # bt is untyped
        """Pre-built bars, one per ``_load`` (the feed path backtrader's own CSV and pandas
        feeds take: each bar is copied into the line buffers when the data is loaded)."""

        params = (("bars", None),)

        def start(self) -> None:
            super().start()
            b = self.p.bars
            self._cols = (b.dt, b.open, b.high, b.low, b.close, b.volume, b.oi)
            self._n = len(b.dt)
            self._i = 0

        def preload(self) -> None:
            t = _time.perf_counter()
            super().preload()
            self.preload_seconds = _time.perf_counter() - t

        def _load(self) -> bool:
            i = self._i
            if i >= self._n:
                return False
            dt, o, h, lo, c, v, oi = self._cols
            lines = self.lines
            lines.datetime[0] = dt[i]
            lines.open[0] = o[i]
            lines.high[0] = h[i]
            lines.low[0] = lo[i]
            lines.close[0] = c[i]
            lines.volume[0] = v[i]
            lines.openinterest[0] = oi[i]
            self._i = i + 1
            return True

    class StraddleBT(bt.Strategy):  # type: ignore[misc]  # bt is untyped
        """The default straddle (``PremiumSellingConfig()``) on backtrader's broker.

        At ``entry`` IST: the nearest expiry of ``underlying`` (>= today); among its options
        with a bar now, the call whose strike is nearest the index's close and the put of the
        same strike (else the nearest quoted put); sell ``lot`` units of each at market. Each
        short fill gets a StopLimit buy: trigger 30 % above the fill price, limit 5 % above
        the trigger, both rounded up to the tick. At ``exit`` (``expiry_exit`` when the
        position's expiry is today) the stops are cancelled and the positions closed. One
        entry a day (the default ``max_reentries`` is 0).
        """

        params = (
            ("underlying", "NIFTY"),
            ("lot", 65),
            ("entry", time(9, 20)),
            ("last_entry", time(14, 30)),
            ("exit", time(15, 15)),
            ("expiry_exit", time(15, 0)),
            ("stop_pct", 30.0),
            ("buffer_pct", 5.0),
            ("tick", TICK_RUPEES),
        )

        def __init__(self) -> None:
            self.spot: Any = None
            self.chains: dict[date, list[tuple[float, Any, Any]]] = {}
            calls: dict[tuple[date, float], Any] = {}
            puts: dict[tuple[date, float], Any] = {}
            for d in self.datas:
                b = d.p.bars
                if b.underlying != self.p.underlying:
                    continue
                if b.kind == "INDEX":
                    self.spot = d
                elif b.option_type == "CE":
                    calls[(b.expiry, b.strike_rupees)] = d
                elif b.option_type == "PE":
                    puts[(b.expiry, b.strike_rupees)] = d
            for exp, k in sorted(calls.keys() | puts.keys()):  # by expiry, then strike
                self.chains.setdefault(exp, []).append((k, calls.get((exp, k)), puts.get((exp, k))))
            self.expiries = sorted(self.chains)
            self.day: date | None = None
            self.entered = False
            self.exited = False
            self.expiry: date | None = None
            self.legs: dict[int, dict[str, Any]] = {}  # id(data) -> leg state (lines overload ==)
            self.entries: dict[date, tuple[float, str, str]] = {}  # day -> (strike, CE, PE)
            self.fills: list[tuple[datetime, str, str, int, float]] = []
            self.rejected = 0

        def prenext(self) -> None:  # datas listed later have no bar yet: trade anyway
            self.next()

        def next(self) -> None:
            now = self.datetime.datetime(0)
            day, t = now.date(), now.time()
            if day != self.day:
                self.day, self.entered, self.exited = day, False, False
            p = self.p
            if not self.entered:
                if p.entry <= t <= p.last_entry and t < p.exit:
                    self._enter(day)
                return
            if self.exited or not self.legs:
                return
            cutoff = p.expiry_exit if self.expiry == day else p.exit
            if t >= cutoff:
                self._exit()

        def _quoted(self, d: Any, num: float) -> bool:
            return d is not None and len(d) > 0 and d.datetime[0] == num and d.close[0] > 0

        def _enter(self, day: date) -> None:
            num = self.datetime[0]
            if self.spot is None or not self._quoted(self.spot, num):
                return
            expiry = next((e for e in self.expiries if e >= day), None)
            if expiry is None:
                return
            spot = self.spot.close[0]
            rows = self.chains[expiry]
            qc = [(k, c) for k, c, _ in rows if self._quoted(c, num)]
            qp = [(k, q) for k, _, q in rows if self._quoted(q, num)]
            if not qc or not qp:
                return
            k, ce = min(qc, key=lambda r: abs(r[0] - spot))
            pe = next((q for kk, q in qp if kk == k), None)
            if pe is None:
                pe = min(qp, key=lambda r: abs(r[0] - spot))[1]
            self.entered, self.expiry = True, expiry
            self.entries[day] = (k, ce.p.bars.symbol, pe.p.bars.symbol)
            self.legs = {}
            for role, d in (("CE", ce), ("PE", pe)):
                order = self.sell(data=d, size=self.p.lot)
                self.legs[id(d)] = {"role": role, "data": d, "entry": order.ref, "stop": None}

        def _ceil_tick(self, x: float) -> float:
            tick = self.p.tick
            return max(tick, math.ceil(x / tick - 1e-9) * tick)

        def notify_order(self, order: Any) -> None:
            leg = self.legs.get(id(order.data))
            if order.status in (order.Rejected, order.Margin):
                self.rejected += 1
                return
            if order.status != order.Completed or leg is None:
                return
            b = order.data.p.bars
            size = int(order.executed.size)
            price = float(order.executed.price)
            self.fills.append((self.datetime.datetime(0), b.symbol, leg["role"], size, price))
            if order.ref == leg["entry"]:  # notifications carry clones: match by ref
                trigger = self._ceil_tick(price * (100 + self.p.stop_pct) / 100)
                limit = self._ceil_tick(trigger * (100 + self.p.buffer_pct) / 100)
                leg["stop"] = self.buy(
                    data=order.data,
                    size=-size,
                    exectype=bt.Order.StopLimit,
                    price=trigger,
                    plimit=limit,
                )

        def _exit(self) -> None:
            self.exited = True
            for leg in self.legs.values():
                d, stop = leg["data"], leg["stop"]
                if stop is not None and stop.alive():
                    self.cancel(stop)
                if self.getposition(d).size:
                    self.close(data=d)


@dataclass(slots=True)
class BTResult:
    """What one backtrader run did."""

    seconds: float
    preload_seconds: float
    bars: int  # bars consumed (every data's length at the end)
    datas: int
    entries: dict[date, tuple[float, str, str]]
    fills: list[tuple[datetime, str, str, int, float]]
    pnl_rupees: float
    line_buffers_mb: float  # backtrader's line buffers holding the bars (8 bytes a value)
    maxrss_before_mb: float  # the process's peak RSS before the run
    maxrss_mb: float  # ... and after it
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def events_per_second(self) -> float:
        return self.bars / self.seconds if self.seconds > 0 else 0.0


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def build_cerebro(bars: Sequence[BarArrays], cash_rupees: float = 500_000.0) -> Any:
    """A Cerebro with one :class:`ArrayData` per instrument of ``bars`` and :class:`StraddleBT`,
    set up for backtrader's fastest path for this job: ``preload`` + ``runonce`` (the strategy
    is still called bar by bar), no standard observers, orders not margin-checked, no
    commission, market orders filled at the close of the bar they are sent on (``coc``; the
    engine fills at the quote of the instant the order is sent)."""
    if bt is None:
        raise RuntimeError(f"backtrader is not importable: {BT_ERROR}")
    cerebro = bt.Cerebro(stdstats=False, preload=True, runonce=True, quicknotify=False)
    cerebro.broker.setcash(cash_rupees)
    cerebro.broker.set_checksubmit(False)
    cerebro.broker.set_coc(True)
    for b in bars:
        cerebro.adddata(
            ArrayData(bars=b, name=b.symbol, timeframe=bt.TimeFrame.Minutes, compression=1)
        )
    cerebro.addstrategy(StraddleBT)
    return cerebro


def run_cerebro(cerebro: Any) -> BTResult:
    """``cerebro.run()``, timed: backtrader loading the pre-built arrays into its line buffers
    (``preload_seconds`` of it) and running the strategy over them; then what it did."""
    cash = cerebro.broker.getcash()
    hwm0 = _maxrss_mb()
    t0 = _time.perf_counter()
    (strat,) = cerebro.run()
    seconds = _time.perf_counter() - t0
    feeds = cerebro.datas
    buffers = sum(len(line.array) for d in feeds for line in d.lines) * 8 / 2**20
    return BTResult(
        seconds=seconds,
        preload_seconds=sum(getattr(d, "preload_seconds", 0.0) for d in feeds),
        bars=sum(len(d) for d in feeds),
        datas=len(feeds),
        entries=dict(strat.entries),
        fills=list(strat.fills),
        pnl_rupees=cerebro.broker.getvalue() - cash,
        line_buffers_mb=buffers,
        maxrss_before_mb=hwm0,
        maxrss_mb=_maxrss_mb(),
        extra={"rejected": strat.rejected, "loaded": sum(len(d.p.bars) for d in feeds)},
    )


def run_backtrader(bars: Sequence[BarArrays], cash_rupees: float = 500_000.0) -> BTResult:
    """:func:`build_cerebro` then :func:`run_cerebro`."""
    return run_cerebro(build_cerebro(bars, cash_rupees))
