"""Performance metrics of a backtest (or a paper or live run) from its equity curve and trades.

Inputs
------
- The equity curve: ``ts_ns`` (UTC epoch ns, non-decreasing) and ``equity_paise`` (int64:
  cash plus the marked value of open positions), at any resolution (every minute, every day).
- ``starting_capital_paise``: the equity before the first sample (> 0). The first sample may be
  the starting equity itself (the runner's record at the open) or the first mark after it.
- The closed trades' P&L (paise, one value per round trip, after charges if the caller wants
  them counted).
- Optionally ``in_market``, a bool per equity sample: a position was open at that sample.

Definitions (units in brackets)
-------------------------------
net_pnl_paise [paise]
    ``final equity - starting_capital_paise``.
return_on_capital [fraction]
    ``net_pnl_paise / starting_capital_paise`` (0.05 is 5 %).
trading days, daily returns [fraction]
    Samples are grouped by calendar day in IST (``utc_offset_minutes``, default +330). A day's
    close ``C_k`` is its last sample's equity; with ``C_0 = starting_capital_paise``,
    ``r_k = C_k / C_{k-1} - 1`` for k = 1..n, n the number of days with a sample. Minute and
    daily curves give the same returns for the same day closes. A day after a close at or below
    zero (a blown account) gets return 0, so that the ratios stay finite.
sharpe [dimensionless, annualised]
    ``mean(r - rf_d) / std(r - rf_d, ddof=1) * sqrt(periods_per_year)``, with
    ``rf_d = risk_free_rate / periods_per_year`` (a simple daily rate; ``risk_free_rate`` is
    annual, as a fraction, default 0) and ``periods_per_year`` = 252 trading days.
sortino [dimensionless, annualised]
    ``mean(r - rf_d) / DD * sqrt(periods_per_year)``, with the target downside deviation
    ``DD = sqrt(mean(min(r - rf_d, 0) ** 2))`` over ALL n days (Sortino and Price's
    definition; days above target count as zero shortfall).
    Degenerate cases, never NaN: fewer than 2 daily returns -> 0.0 for both. A zero
    denominator (Sharpe: all excess returns equal; Sortino: no day below target) gives
    ``+inf`` when the mean excess return is positive, ``-inf`` when negative (Sharpe only), and
    0.0 when it is zero.
max_drawdown_paise [paise], max_drawdown_fraction [fraction]
    The running peak starts at ``starting_capital_paise`` and is the highest equity seen so
    far; drawdown at a sample is ``peak - equity`` (paise) and ``(peak - equity) / peak``
    (fraction). The max drawdown is the sample with the largest fractional drawdown (the first
    one on ties); ``max_drawdown_paise`` is the paise drawdown of that same sample (the usual
    "max drawdown Rs X (Y %)" pair). ``peak_ts_ns`` is when that peak was reached (the first
    sample's time when the peak is the starting capital; the last sample at the peak when it
    was touched again), ``trough_ts_ns`` the sample's time,
    ``recovery_ts_ns`` the first later sample at or above the peak (``None``: not recovered).
    No drawdown: 0, 0.0 and ``None`` times.
n_trades, n_wins, n_losses
    Closed trades; a win has P&L > 0, a loss < 0; a trade of exactly 0 is neither.
win_rate [fraction]
    ``n_wins / n_trades`` (breakeven trades count in the denominator); 0.0 without trades.
avg_win_paise, avg_loss_paise [paise, float]
    Mean P&L of the wins (positive) and of the losses (negative); 0.0 when there are none.
avg_trade_paise [paise, float]
    Mean P&L per trade (expectancy); 0.0 without trades.
largest_win_paise, largest_loss_paise [paise]
    The best and worst trade (0 when there is no win / no loss).
gross_profit_paise, gross_loss_paise [paise]
    Sum of wins (>= 0) and sum of losses (<= 0).
profit_factor [ratio]
    ``gross_profit / |gross_loss|``; ``+inf`` with profit and no loss, 0.0 with neither.
exposure [fraction or None]
    The fraction of equity samples at which a position was open (``in_market``); for a curve
    sampled every session minute, the fraction of market time spent in the market. ``None``
    when ``in_market`` is not given.

Metrics are plain Python numbers; :meth:`Metrics.to_dict` gives JSON-safe data (infinite
values as the strings ``"inf"`` / ``"-inf"``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import numpy.typing as npt

from algoengine.errors import ValidationError

__all__ = [
    "IST_UTC_OFFSET_MINUTES",
    "TRADING_DAYS_PER_YEAR",
    "Metrics",
    "compute_metrics",
    "daily_returns",
    "drawdown_series",
    "format_paise",
]

#: Trading days per year used to annualise daily ratios.
TRADING_DAYS_PER_YEAR = 252
#: IST is UTC+05:30: the day boundary of daily returns.
IST_UTC_OFFSET_MINUTES = 330

_NS_PER_MINUTE = 60_000_000_000
_NS_PER_DAY = 86_400_000_000_000


@dataclass(frozen=True, kw_only=True, slots=True)
class Metrics:
    """Performance metrics of a run; the module docstring defines every field and its unit."""

    starting_capital_paise: int
    final_equity_paise: int
    net_pnl_paise: int
    return_on_capital: float
    start_ts_ns: int
    end_ts_ns: int
    trading_days: int
    sharpe: float
    sortino: float
    risk_free_rate: float
    periods_per_year: int
    max_drawdown_paise: int
    max_drawdown_fraction: float
    max_drawdown_peak_ts_ns: int | None
    max_drawdown_trough_ts_ns: int | None
    max_drawdown_recovery_ts_ns: int | None
    n_trades: int
    n_wins: int
    n_losses: int
    win_rate: float
    avg_win_paise: float
    avg_loss_paise: float
    avg_trade_paise: float
    largest_win_paise: int
    largest_loss_paise: int
    gross_profit_paise: int
    gross_loss_paise: int
    profit_factor: float
    exposure: float | None

    def to_dict(self) -> dict[str, Any]:
        """The metrics as JSON-safe plain data, in field order.

        Returns
        -------
        dict
            Field name -> value; ints stay ints (paise, ns), finite floats stay floats,
            infinite floats become ``"inf"`` / ``"-inf"`` (JSON has no infinity).
        """
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, float) and math.isinf(value):
                value = "inf" if value > 0 else "-inf"
            out[f.name] = value
        return out

    def format_summary(self) -> str:
        """A fixed-width text table of the metrics (rupees with Indian digit grouping).

        Returns
        -------
        str
            One ``label  value`` line per metric, no trailing newline.
        """
        rows: list[tuple[str, str]] = [
            ("Starting capital", format_paise(self.starting_capital_paise)),
            ("Final equity", format_paise(self.final_equity_paise)),
            ("Net P&L", format_paise(self.net_pnl_paise)),
            ("Return on capital", _pct(self.return_on_capital)),
            ("Trading days", str(self.trading_days)),
            ("Sharpe (annualised)", _ratio(self.sharpe)),
            ("Sortino (annualised)", _ratio(self.sortino)),
            (
                "Max drawdown",
                f"{format_paise(self.max_drawdown_paise)} ({_pct(self.max_drawdown_fraction)})",
            ),
            ("Trades", f"{self.n_trades} ({self.n_wins} won, {self.n_losses} lost)"),
            ("Win rate", _pct(self.win_rate)),
            ("Average win", format_paise(round(self.avg_win_paise))),
            ("Average loss", format_paise(round(self.avg_loss_paise))),
            ("Average trade", format_paise(round(self.avg_trade_paise))),
            ("Largest win", format_paise(self.largest_win_paise)),
            ("Largest loss", format_paise(self.largest_loss_paise)),
            ("Profit factor", _ratio(self.profit_factor)),
            ("Exposure", "n/a" if self.exposure is None else _pct(self.exposure)),
        ]
        width = max(len(label) for label, _ in rows)
        vwidth = max(len(value) for _, value in rows)
        return "\n".join(f"{label:<{width}}  {value:>{vwidth}}" for label, value in rows)


def format_paise(paise: int) -> str:
    """Paise as rupees with Indian digit grouping: ``-12345678901`` -> ``"-Rs 12,34,56,789.01"``.

    Parameters
    ----------
    paise
        An amount in paise.

    Returns
    -------
    str
        ``Rs`` and the amount in rupees with two decimals, grouped in thousands, then lakhs
        and crores (pairs of digits); a leading ``-`` for negative amounts.
    """
    sign = "-" if paise < 0 else ""
    rupees, rem = divmod(abs(int(paise)), 100)
    digits = str(rupees)
    if len(digits) > 3:
        head, tail = digits[:-3], digits[-3:]
        pairs: list[str] = []
        while len(head) > 2:
            pairs.insert(0, head[-2:])
            head = head[:-2]
        digits = ",".join([head, *pairs, tail])
    return f"{sign}Rs {digits}.{rem:02d}"


def _pct(x: float) -> str:
    return f"{x * 100:.2f} %"


def _ratio(x: float) -> str:
    return f"{x:.3f}" if math.isfinite(x) else ("inf" if x > 0 else "-inf")


def _int_array(name: str, values: object) -> npt.NDArray[np.int64]:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValidationError(name, arr.shape, "must be one-dimensional")
    if arr.size == 0:
        return np.zeros(0, dtype=np.int64)
    if arr.dtype.kind not in "iu":
        raise ValidationError(name, arr.dtype, "must hold integers (paise or ns)")
    if arr.dtype.kind == "u" and arr.size and int(arr.max()) > np.iinfo(np.int64).max:
        raise ValidationError(name, int(arr.max()), "does not fit in int64")
    return arr.astype(np.int64, copy=False)


def _check_curve(
    ts_ns: object, equity_paise: object
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    ts = _int_array("ts_ns", ts_ns)
    eq = _int_array("equity_paise", equity_paise)
    if ts.size == 0:
        raise ValidationError("ts_ns", ts_ns, "the equity curve needs at least one sample")
    if ts.size != eq.size:
        raise ValidationError(
            "equity_paise", eq.size, f"must have one value per timestamp ({ts.size})"
        )
    if ts.size > 1 and bool(np.any(np.diff(ts) < 0)):
        bad = int(np.flatnonzero(np.diff(ts) < 0)[0]) + 1
        raise ValidationError(f"ts_ns[{bad}]", int(ts[bad]), "timestamps must not go backwards")
    return ts, eq


def _check_capital(starting_capital_paise: object) -> int:
    if (
        not isinstance(starting_capital_paise, int | np.integer)
        or isinstance(starting_capital_paise, bool)
        or starting_capital_paise <= 0
    ):
        raise ValidationError(
            "starting_capital_paise", starting_capital_paise, "must be a positive integer"
        )
    return int(starting_capital_paise)


def daily_returns(
    ts_ns: npt.ArrayLike,
    equity_paise: npt.ArrayLike,
    *,
    starting_capital_paise: int,
    utc_offset_minutes: int = IST_UTC_OFFSET_MINUTES,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Day closes' epoch days and the daily returns of an equity curve (module docstring).

    Parameters
    ----------
    ts_ns
        Sample times, UTC epoch ns, non-decreasing.
    equity_paise
        Equity at each sample, paise.
    starting_capital_paise
        Equity before the first sample (> 0): the base of the first day's return.
    utc_offset_minutes
        Offset of the local day from UTC, minutes (IST: 330).

    Returns
    -------
    (days, returns)
        ``days``: the local calendar day of each close as days since 1970-01-01 (int64);
        ``returns``: float64 fractions, one per day.
    """
    ts, eq = _check_curve(ts_ns, equity_paise)
    capital = _check_capital(starting_capital_paise)
    day = (ts + int(utc_offset_minutes) * _NS_PER_MINUTE) // _NS_PER_DAY
    last_of_day = np.flatnonzero(np.append(day[1:] != day[:-1], True))
    closes = eq[last_of_day].astype(np.float64)
    prev = np.concatenate(([float(capital)], closes[:-1]))
    with np.errstate(divide="ignore", invalid="ignore"):
        returns = np.where(prev > 0, closes / prev - 1.0, 0.0)
    return day[last_of_day], returns


def drawdown_series(
    equity_paise: npt.ArrayLike, *, starting_capital_paise: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Running peak and drawdown of an equity curve (the peak starts at the starting capital).

    Parameters
    ----------
    equity_paise
        Equity at each sample, paise.
    starting_capital_paise
        The initial peak (> 0).

    Returns
    -------
    (peak_paise, drawdown_paise, drawdown_fraction)
        Per sample: the running peak, ``peak - equity`` (>= 0) and
        ``(peak - equity) / peak`` (>= 0; the peak is always > 0).
    """
    eq = _int_array("equity_paise", equity_paise)
    capital = _check_capital(starting_capital_paise)
    peak = np.maximum.accumulate(np.maximum(eq, capital)) if eq.size else eq.copy()
    dd = peak - eq
    frac = dd / peak.astype(np.float64) if eq.size else np.zeros(0)
    return peak, dd, frac


def _sharpe_like(mean: float, denominator: float, scale: float) -> float:
    if denominator > 0.0 and math.isfinite(denominator):
        return mean / denominator * scale
    if mean > 0.0:
        return math.inf
    if mean < 0.0:
        return -math.inf
    return 0.0


def compute_metrics(
    *,
    ts_ns: npt.ArrayLike,
    equity_paise: npt.ArrayLike,
    starting_capital_paise: int,
    trade_pnl_paise: npt.ArrayLike = (),
    in_market: npt.ArrayLike | None = None,
    risk_free_rate: float = 0.0,
    periods_per_year: int = TRADING_DAYS_PER_YEAR,
    utc_offset_minutes: int = IST_UTC_OFFSET_MINUTES,
) -> Metrics:
    """Compute the performance metrics of a run (definitions in the module docstring).

    Parameters
    ----------
    ts_ns
        Equity sample times, UTC epoch ns, non-decreasing; at least one.
    equity_paise
        Equity at each sample, paise (integers).
    starting_capital_paise
        Equity before the first sample, paise (> 0).
    trade_pnl_paise
        P&L of each closed trade, paise (integers); empty: no trades.
    in_market
        Optional bool per equity sample: a position was open. Gives ``exposure``.
    risk_free_rate
        Annual risk-free rate as a fraction (0.065 is 6.5 %), for Sharpe and Sortino.
    periods_per_year
        Trading days per year used to annualise (default 252).
    utc_offset_minutes
        Offset of the trading day from UTC in minutes (IST: 330).

    Returns
    -------
    Metrics

    Raises
    ------
    ValidationError
        Empty or mismatched arrays, non-integer paise or timestamps, timestamps going
        backwards, a non-positive starting capital, a non-finite rate, ``periods_per_year`` < 1.
    """
    ts, eq = _check_curve(ts_ns, equity_paise)
    capital = _check_capital(starting_capital_paise)
    pnl = _int_array("trade_pnl_paise", trade_pnl_paise)
    rate = float(risk_free_rate)
    if not math.isfinite(rate):
        raise ValidationError("risk_free_rate", risk_free_rate, "must be a finite number")
    if (
        not isinstance(periods_per_year, int)
        or isinstance(periods_per_year, bool)
        or periods_per_year < 1
    ):
        raise ValidationError("periods_per_year", periods_per_year, "must be an integer >= 1")
    exposure: float | None = None
    if in_market is not None:
        mask = np.asarray(in_market)
        if mask.dtype != np.bool_ or mask.shape != ts.shape:
            raise ValidationError(
                "in_market", mask.dtype, f"must be a bool array of one value per sample ({ts.size})"
            )
        exposure = float(np.count_nonzero(mask)) / ts.size

    if not isinstance(utc_offset_minutes, int) or abs(utc_offset_minutes) > 24 * 60:
        raise ValidationError(
            "utc_offset_minutes", utc_offset_minutes, "must be an int, |x| <= 1440"
        )
    final = int(eq[-1])
    _, r = daily_returns(
        ts, eq, starting_capital_paise=capital, utc_offset_minutes=utc_offset_minutes
    )
    excess = r - rate / periods_per_year
    scale = math.sqrt(periods_per_year)
    if excess.size >= 2:
        mean = float(np.mean(excess))
        std = float(np.std(excess, ddof=1))
        downside = float(np.sqrt(np.mean(np.minimum(excess, 0.0) ** 2)))
        if float(np.ptp(excess)) == 0.0:
            std = 0.0  # a constant series: np.std may leave rounding noise
        sharpe = _sharpe_like(mean, std, scale)
        sortino = _sharpe_like(mean, downside, scale)
    else:
        sharpe = sortino = 0.0

    peak, dd, frac = drawdown_series(eq, starting_capital_paise=capital)
    worst = int(np.argmax(frac))
    if frac[worst] > 0.0:
        dd_paise = int(dd[worst])
        dd_frac = float(frac[worst])
        peak_value = int(peak[worst])
        at_peak = np.flatnonzero(eq[: worst + 1] == peak_value)
        peak_ts: int | None = int(ts[at_peak[-1]]) if at_peak.size else int(ts[0])
        trough_ts: int | None = int(ts[worst])
        recovered = np.flatnonzero(eq[worst + 1 :] >= peak_value)
        recovery_ts = int(ts[worst + 1 + recovered[0]]) if recovered.size else None
    else:
        dd_paise, dd_frac, peak_ts, trough_ts, recovery_ts = 0, 0.0, None, None, None

    wins = pnl[pnl > 0]
    losses = pnl[pnl < 0]
    n = int(pnl.size)
    gross_profit = int(wins.sum())
    gross_loss = int(losses.sum())
    if gross_loss < 0:
        profit_factor = gross_profit / -gross_loss
    else:
        profit_factor = math.inf if gross_profit > 0 else 0.0

    return Metrics(
        starting_capital_paise=capital,
        final_equity_paise=final,
        net_pnl_paise=final - capital,
        return_on_capital=(final - capital) / capital,
        start_ts_ns=int(ts[0]),
        end_ts_ns=int(ts[-1]),
        trading_days=int(r.size),
        sharpe=float(sharpe),
        sortino=float(sortino),
        risk_free_rate=rate,
        periods_per_year=periods_per_year,
        max_drawdown_paise=dd_paise,
        max_drawdown_fraction=dd_frac,
        max_drawdown_peak_ts_ns=peak_ts,
        max_drawdown_trough_ts_ns=trough_ts,
        max_drawdown_recovery_ts_ns=recovery_ts,
        n_trades=n,
        n_wins=int(wins.size),
        n_losses=int(losses.size),
        win_rate=wins.size / n if n else 0.0,
        avg_win_paise=float(wins.mean()) if wins.size else 0.0,
        avg_loss_paise=float(losses.mean()) if losses.size else 0.0,
        avg_trade_paise=float(pnl.mean()) if n else 0.0,
        largest_win_paise=int(wins.max()) if wins.size else 0,
        largest_loss_paise=int(losses.min()) if losses.size else 0,
        gross_profit_paise=gross_profit,
        gross_loss_paise=gross_loss,
        profit_factor=float(profit_factor),
        exposure=exposure,
    )
