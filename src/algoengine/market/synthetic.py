"""A synthetic, deterministic market of index options for backtests and tests.

:class:`SyntheticMarket` simulates the index of every configured underlying over a range of
trading days and quotes their option chains around Black-Scholes-Merton prices with a volatility
smile. It is a :class:`~algoengine.market.feed.MarketFeed`: ``universe``, ``trading_days`` and
iteration over :class:`MarketSlice` objects in time order. Two markets built from the same
configuration and dates give identical slices (all randomness comes from ``seed``; there is no
wall clock).

The index path
--------------
Geometric Brownian motion in trading time, sampled every ``tick_interval_s`` seconds of the
session: volatility ``ContractSpec.annual_vol`` per sqrt(trading year) scaled by a U-shaped
intraday profile (busier open and close; the profile's mean variance is 1, so a day's variance
is ``annual_vol**2 / trading_days_per_year``), compound-Poisson jumps in log price, and an
overnight gap between sessions (normal in log price, ``overnight_vol_ratio`` times a session's
standard deviation, times the square root of the calendar days between sessions). Underlyings
share a common factor (``correlation``). The index is rounded to its ``spot_tick_paise``.

Options
-------
Listed: on each day the ``expiries_listed`` nearest expiries (:meth:`TradingCalendar.
listed_expiries`). The universe holds the index of each underlying and every option of every
expiry listed on any day of the range, with strikes covering the path's at-the-money range
+/- ``strikes_each_side`` steps. Tokens are sequential from ``token_base`` (underlyings in
configuration order, then expiry, strike, CE before PE). Futures are not listed.

Quoted: at each step, the options of the day's listed expiries whose strike is within
``strikes_each_side`` steps of the at-the-money strike (the strike nearest the index). An
option's fair value is the BSM price at the index with trading-time ``T``
(:meth:`TradingCalendar.years_to_expiry`, used for discounting too), rate ``rate``, yield
``dividend_yield`` and the smile volatility of :class:`SmileConfig`. The quote is
``spread`` ticks wide (:class:`SpreadModel`) on the tick grid with the fair value inside it:
``bid = floor(fair - (spread - 1) / 2)`` ticks, ``ask = bid + spread``. A bid below one tick
is shown as no bid (price 0, qty 0); the ask is always >= 1 tick, so a quote is never crossed
or negative. The last price is the fair value rounded to the tick grid (>= 1 tick), which lies
inside the quote. Quantities are whole lots (:class:`DepthModel`); ``volume`` is the day's
cumulative traded units and ``oi`` the open interest, both from :class:`ActivityModel`.
Expired options are not quoted after their expiry session.

Modes
-----
``"bars"``: one slice per session minute, ``bar_close=True``, ``ts_ns`` = the minute's CLOSE
time (open time + 60 s; the 09:15 bar arrives at 09:16:00, the last at 15:30:00), so a strategy
acting on a bar acts after its minute. It holds every underlying's index (``ltp_paise`` = the
close, no bid/ask) and every quoted option, with ``open/high/low_paise`` of the minute (for an
option: its fair value at the index's minute open, high, low, rounded to ticks) and the quote
as of the bar's close.

``"ticks"``: a slice every ``tick_interval_s`` seconds (``ts_ns`` = the end of the interval,
``bar_close=False``, no OHLC), holding the instruments whose ltp, quote, quantities or volume
changed, plus options that entered the quoted window; the first slice of a session holds every
quoted instrument.

Settlement: :meth:`SyntheticMarket.expiry_settlement_paise` is an option's intrinsic value
against the index at its expiry session's close (the last bar's close).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, time
from typing import Literal, NamedTuple

import numpy as np
import numpy.typing as npt

from algoengine import greeks
from algoengine.domain.instruments import Instrument, OptionType
from algoengine.domain.market_data import MarketSlice, Universe
from algoengine.errors import ValidationError
from algoengine.market.calendar import NS_PER_MINUTE, NS_PER_S, TradingCalendar
from algoengine.market.contracts import DEFAULT_CONTRACTS, ContractSpec

__all__ = [
    "ActivityModel",
    "DepthModel",
    "SmileConfig",
    "SpotPath",
    "SpreadModel",
    "SyntheticMarket",
    "SyntheticMarketConfig",
    "depth_levels",
]

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
I32 = npt.NDArray[np.int32]
Depth = tuple[list[tuple[int, int]], list[tuple[int, int]]]


def _check_float(name: str, value: object, lo: float, hi: float) -> float:
    if (
        not isinstance(value, int | float)
        or isinstance(value, bool)
        or not math.isfinite(value)
        or not lo <= value <= hi
    ):
        raise ValidationError(name, value, f"must be a number in [{lo}, {hi}]")
    return float(value)


def _check_int(name: str, value: object, lo: int, hi: int | None = None) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < lo:
        raise ValidationError(name, value, f"must be an integer >= {lo}")
    if hi is not None and value > hi:
        raise ValidationError(name, value, f"must be <= {hi}")
    return value


# ---- configuration -------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class SmileConfig:
    """The implied-volatility surface of one underlying (or the default for all).

    With ``x = ln(K / F) / sqrt(max(T, min_t_years))`` (moneyness per unit of standard
    deviation time, ``F`` the forward, ``T`` in trading years)::

        atm(T) = atm_vol + term_slope * (sqrt(T) - sqrt(term_ref_years))
        h(x)   = x**2 if |x| <= wing_x else 2 * wing_x * |x| - wing_x**2
        sigma  = clip(atm(T) + skew * x + curvature * h(x), min_vol, max_vol)

    The wings are linear beyond ``wing_x`` (a quadratic smile rises too fast far from the
    money and makes far puts dearer than nearer ones); the generator also enforces that call
    values fall and put values rise with the strike, whatever the parameters.

    Parameters
    ----------
    underlying
        The underlying this smile is for; ``None`` for the default of every underlying
        without its own.
    atm_vol
        At-the-money volatility level per sqrt(year); ``None``: the spec's ``annual_vol``.
    skew
        d sigma / d x (negative: puts dearer than calls, as on NSE).
    curvature
        Smile convexity: sigma rises by ``curvature * h(x)``.
    wing_x
        Where the smile turns linear (> 0).
    term_slope
        Term structure per sqrt(year) around ``term_ref_years`` (negative: short expiries
        dearer).
    term_ref_years
        Where ``atm(T) == atm_vol``.
    min_t_years
        Floor on ``T`` in ``x`` so that the smile stays bounded on expiry day.
    min_vol, max_vol
        Bounds on sigma.
    """

    underlying: str | None = None
    atm_vol: float | None = None
    skew: float = -0.10
    curvature: float = 0.25
    wing_x: float = 0.3
    term_slope: float = 0.0
    term_ref_years: float = 21.0 / 252.0
    min_t_years: float = 1.0 / 252.0
    min_vol: float = 0.03
    max_vol: float = 2.0

    def __post_init__(self) -> None:
        if self.underlying is not None and (
            not isinstance(self.underlying, str) or not self.underlying.strip()
        ):
            raise ValidationError("underlying", self.underlying, "must be a name or None")
        if self.atm_vol is not None:
            _check_float("atm_vol", self.atm_vol, 1e-3, 5.0)
        _check_float("skew", self.skew, -5.0, 5.0)
        _check_float("curvature", self.curvature, 0.0, 10.0)
        _check_float("wing_x", self.wing_x, 1e-3, 100.0)
        _check_float("term_slope", self.term_slope, -5.0, 5.0)
        _check_float("term_ref_years", self.term_ref_years, 0.0, 10.0)
        _check_float("min_t_years", self.min_t_years, 1e-6, 1.0)
        _check_float("min_vol", self.min_vol, 1e-3, 5.0)
        _check_float("max_vol", self.max_vol, self.min_vol, 10.0)


@dataclass(frozen=True, kw_only=True, slots=True)
class SpreadModel:
    """Quote width in ticks: ``max(min_ticks, round(base_ticks + relative * fair_ticks +
    moneyness_ticks * |x|))`` (``x`` as in :class:`SmileConfig`): a tick or two at the money,
    wider for dear options and far from the money (and so relatively wider for cheap ones)."""

    min_ticks: int = 1
    base_ticks: float = 1.0
    relative: float = 0.0005
    moneyness_ticks: float = 2.0

    def __post_init__(self) -> None:
        _check_int("min_ticks", self.min_ticks, 1, 1000)
        _check_float("base_ticks", self.base_ticks, 0.0, 1000.0)
        _check_float("relative", self.relative, 0.0, 1.0)
        _check_float("moneyness_ticks", self.moneyness_ticks, 0.0, 1000.0)


@dataclass(frozen=True, kw_only=True, slots=True)
class DepthModel:
    """Displayed quantities in whole lots.

    The best level shows ``min_lots + floor(u * (max_lots - min_lots + 1) * w)`` lots per
    side (``u`` uniform, ``w = 1 / (1 + 4 x**2)``: most at the money). In the 5-level depth
    (:func:`depth_levels`) each deeper level, one tick further, shows ``level_growth_lots``
    more lots than the one before.
    """

    min_lots: int = 1
    max_lots: int = 40
    level_growth_lots: int = 5
    levels: int = 5

    def __post_init__(self) -> None:
        _check_int("min_lots", self.min_lots, 1)
        _check_int("max_lots", self.max_lots, self.min_lots)
        _check_int("level_growth_lots", self.level_growth_lots, 0)
        _check_int("levels", self.levels, 1, 20)


@dataclass(frozen=True, kw_only=True, slots=True)
class ActivityModel:
    """Traded volume and open interest.

    Lots traded per minute are Poisson with mean ``lots_per_minute * w * season**2``
    (``w`` as in :class:`DepthModel`, ``season`` the intraday volatility profile); open
    interest starts near ``oi_lots * w`` lots and changes by a share of each trade.
    ``quote_refresh`` (ticks mode) is the chance per step that a displayed quantity changes.
    """

    lots_per_minute: float = 20.0
    oi_lots: float = 20_000.0
    quote_refresh: float = 0.2

    def __post_init__(self) -> None:
        _check_float("lots_per_minute", self.lots_per_minute, 0.0, 1e6)
        _check_float("oi_lots", self.oi_lots, 0.0, 1e9)
        _check_float("quote_refresh", self.quote_refresh, 0.0, 1.0)


def _default_contracts() -> tuple[ContractSpec, ...]:
    return tuple(DEFAULT_CONTRACTS.values())


@dataclass(frozen=True, kw_only=True, slots=True)
class SyntheticMarketConfig:
    """Settings of :class:`SyntheticMarket` (see the module docstring for the model).

    Parameters
    ----------
    seed
        The random seed (>= 0); the same seed gives the same market.
    contracts
        The underlyings to simulate.
    holidays
        Exchange holidays (IST dates).
    open_time, close_time
        The session (IST), whole minutes.
    trading_days_per_year
        For trading time (:class:`TradingCalendar`).
    mode
        ``"bars"`` (a slice per minute) or ``"ticks"`` (a slice per ``tick_interval_s``).
    tick_interval_s
        Seconds between path steps (a divisor of 60); the bars' OHLC come from these steps.
    rate, dividend_yield
        Continuously compounded, per year.
    drift
        The index's drift per trading year (log drift is ``drift - sigma**2 / 2``).
    correlation
        Correlation of the underlyings' returns (a common factor), in [0, 1].
    intraday_open_boost, intraday_close_boost, intraday_decay
        The U-shaped profile ``1 + open_boost * exp(-u / decay) + close_boost *
        exp(-(1 - u) / decay)`` over the session fraction ``u``, normalised to mean
        variance 1.
    jumps_per_day, jump_mean, jump_std
        Jump intensity (per session) and the normal law of a jump in log price.
    overnight_vol_ratio
        Overnight gap standard deviation as a multiple of a session's.
    smiles
        Smile per underlying; an entry with ``underlying=None`` is the default.
    spread, depth, activity
        Quote width, displayed quantities, volume and open interest.
    token_base
        The first synthetic token.
    """

    seed: int = 0
    contracts: tuple[ContractSpec, ...] = field(default_factory=_default_contracts)
    holidays: tuple[date, ...] = ()
    open_time: time = time(9, 15)
    close_time: time = time(15, 30)
    trading_days_per_year: float = 252.0
    mode: Literal["bars", "ticks"] = "bars"
    tick_interval_s: int = 5
    rate: float = 0.065
    dividend_yield: float = 0.0
    drift: float = 0.0
    correlation: float = 0.7
    intraday_open_boost: float = 1.2
    intraday_close_boost: float = 0.6
    intraday_decay: float = 0.06
    jumps_per_day: float = 0.2
    jump_mean: float = -0.001
    jump_std: float = 0.004
    overnight_vol_ratio: float = 0.5
    smiles: tuple[SmileConfig, ...] = ()
    spread: SpreadModel = field(default_factory=SpreadModel)
    depth: DepthModel = field(default_factory=DepthModel)
    activity: ActivityModel = field(default_factory=ActivityModel)
    token_base: int = 100_000

    def __post_init__(self) -> None:
        _check_int("seed", self.seed, 0)
        if not isinstance(self.contracts, tuple) or not self.contracts:
            raise ValidationError("contracts", self.contracts, "must be a non-empty tuple")
        seen: set[str] = set()
        tokens: set[str] = set()
        for spec in self.contracts:
            if not isinstance(spec, ContractSpec):
                raise ValidationError("contracts", spec, "must hold ContractSpec objects")
            if spec.underlying in seen:
                raise ValidationError("contracts", spec.underlying, "duplicate underlying")
            if spec.spot_token in tokens:
                raise ValidationError("contracts", spec.spot_token, "duplicate spot token")
            seen.add(spec.underlying)
            tokens.add(spec.spot_token)
        if not isinstance(self.holidays, tuple) or not all(
            isinstance(d, date) for d in self.holidays
        ):
            raise ValidationError("holidays", self.holidays, "must be a tuple of dates")
        for name in ("open_time", "close_time"):
            t = getattr(self, name)
            if not isinstance(t, time) or t.second or t.microsecond:
                raise ValidationError(name, t, "must be a datetime.time in whole minutes")
        if self.close_time <= self.open_time:
            raise ValidationError("close_time", self.close_time, "must be after open_time")
        _check_float("trading_days_per_year", self.trading_days_per_year, 1.0, 366.0)
        if self.mode not in ("bars", "ticks"):
            raise ValidationError("mode", self.mode, "must be 'bars' or 'ticks'")
        _check_int("tick_interval_s", self.tick_interval_s, 1, 60)
        if 60 % self.tick_interval_s:
            raise ValidationError("tick_interval_s", self.tick_interval_s, "must divide 60")
        _check_float("rate", self.rate, -0.5, 1.0)
        _check_float("dividend_yield", self.dividend_yield, -0.5, 1.0)
        _check_float("drift", self.drift, -5.0, 5.0)
        _check_float("correlation", self.correlation, 0.0, 1.0)
        _check_float("intraday_open_boost", self.intraday_open_boost, 0.0, 20.0)
        _check_float("intraday_close_boost", self.intraday_close_boost, 0.0, 20.0)
        _check_float("intraday_decay", self.intraday_decay, 1e-3, 10.0)
        _check_float("jumps_per_day", self.jumps_per_day, 0.0, 100.0)
        _check_float("jump_mean", self.jump_mean, -0.5, 0.5)
        _check_float("jump_std", self.jump_std, 0.0, 0.5)
        _check_float("overnight_vol_ratio", self.overnight_vol_ratio, 0.0, 20.0)
        if not isinstance(self.smiles, tuple):
            raise ValidationError("smiles", self.smiles, "must be a tuple of SmileConfig")
        names: set[str | None] = set()
        for smile in self.smiles:
            if not isinstance(smile, SmileConfig):
                raise ValidationError("smiles", smile, "must hold SmileConfig objects")
            if smile.underlying in names:
                raise ValidationError("smiles", smile.underlying, "two smiles for one underlying")
            if smile.underlying is not None and smile.underlying not in seen:
                raise ValidationError("smiles", smile.underlying, "no such underlying")
            names.add(smile.underlying)
        if not isinstance(self.spread, SpreadModel):
            raise ValidationError("spread", self.spread, "must be a SpreadModel")
        if not isinstance(self.depth, DepthModel):
            raise ValidationError("depth", self.depth, "must be a DepthModel")
        if not isinstance(self.activity, ActivityModel):
            raise ValidationError("activity", self.activity, "must be an ActivityModel")
        _check_int("token_base", self.token_base, 1)

    def smile_for(self, underlying: str) -> SmileConfig:
        """The smile of ``underlying``: its own entry, else the default entry, else
        ``SmileConfig()``."""
        default = SmileConfig()
        for smile in self.smiles:
            if smile.underlying == underlying:
                return smile
            if smile.underlying is None:
                default = smile
        return default


# ---- helpers ---------------------------------------------------------------------------------


class SpotPath(NamedTuple):
    """An index path: ``ts_ns`` of each step's end (UTC epoch ns) and the level in paise."""

    ts_ns: I64
    spot_paise: I64


def depth_levels(
    bid_paise: int,
    bid_qty: int,
    ask_paise: int,
    ask_qty: int,
    *,
    tick_paise: int,
    lot_size: int,
    levels: int = 5,
    growth_lots: int = 5,
) -> Depth:
    """Depth consistent with a quote: ``(bids, asks)`` of ``(price_paise, qty)``, best first.

    The best level is the quote; each deeper level is one tick further out with
    ``growth_lots`` lots more than the one before. Bid levels stop above 0; an empty side
    (price or qty 0) has no levels.
    """
    bids: list[tuple[int, int]] = []
    asks: list[tuple[int, int]] = []
    step = growth_lots * lot_size
    if bid_paise > 0 and bid_qty > 0:
        for j in range(levels):
            price = bid_paise - j * tick_paise
            if price <= 0:
                break
            bids.append((price, bid_qty + j * step))
    if ask_paise > 0 and ask_qty > 0:
        asks = [(ask_paise + j * tick_paise, ask_qty + j * step) for j in range(levels)]
    return bids, asks


def _season(n: int, cfg: SyntheticMarketConfig) -> F64:
    """The intraday volatility profile at the middle of each of ``n`` steps, mean square 1."""
    u = (np.arange(n, dtype=np.float64) + 0.5) / n
    s = (
        1.0
        + cfg.intraday_open_boost * np.exp(-u / cfg.intraday_decay)
        + cfg.intraday_close_boost * np.exp(-(1.0 - u) / cfg.intraday_decay)
    )
    out: F64 = s / np.sqrt(np.mean(s * s))
    return out


@dataclass(slots=True)
class _Cols:
    """The columns (instruments) of one day's matrices: the indices first, then options."""

    uidx: I32  # universe index
    strike: F64  # paise (0 for indices)
    flag: F64  # +1 CE, -1 PE (0 for indices)
    under: npt.NDArray[np.intp]  # underlying position (config order)
    pair: npt.NDArray[np.intp]  # (underlying, expiry) pair of the day (-1 for indices)
    tick: F64
    lot: I64
    n_spot: int


@dataclass(slots=True)
class _Day:
    """What is fixed over one day: its columns, expiries and the window of quoted strikes."""

    d: int
    day: date
    cols: _Cols
    pair_full_days: F64  # per pair: full sessions after today up to its expiry
    pair_blocks: list[tuple[int, int]]  # per pair: (first option column, strikes); CE, PE
    pair_under: npt.NDArray[np.intp]


# ---- the market ------------------------------------------------------------------------------


class SyntheticMarket:
    """A deterministic synthetic market over the trading days in ``[start, end]``.

    Parameters
    ----------
    config
        The model.
    start, end
        IST dates, inclusive; at least one must be a trading day between them.

    Raises
    ------
    ValidationError
        for a bad range (no trading day) or a configuration the calendar rejects.
    """

    def __init__(self, config: SyntheticMarketConfig, start: date, end: date) -> None:
        if not isinstance(config, SyntheticMarketConfig):
            raise ValidationError("config", config, "must be a SyntheticMarketConfig")
        for name, value in (("start", start), ("end", end)):
            if not isinstance(value, date):
                raise ValidationError(name, value, "must be a datetime.date")
        if end < start:
            raise ValidationError("end", end, f"must not be before start ({start})")
        self.config = config
        self._cal = TradingCalendar(
            config.holidays,
            open_time=config.open_time,
            close_time=config.close_time,
            trading_days_per_year=config.trading_days_per_year,
        )
        self._days = self._cal.trading_days(start, end)
        if not self._days:
            raise ValidationError("end", end, f"no trading day in [{start}, {end}]")
        self._specs = config.contracts
        self._smiles = [config.smile_for(s.underlying) for s in self._specs]
        self._minutes = round(self._cal.session_minutes)
        self._spm = 60 // config.tick_interval_s  # path steps per minute
        self._steps = self._minutes * self._spm
        self._step_ns = config.tick_interval_s * NS_PER_S
        self._year_ns = self._cal.session_ns * self._cal.trading_days_per_year
        self._season = _season(self._steps, config)
        self._levels = self._generate_paths()  # (n_under, n_days, steps + 1) paise as float
        self._day_index = {d: i for i, d in enumerate(self._days)}
        self._listed = [
            [self._cal.listed_expiries(spec, day) for day in self._days] for spec in self._specs
        ]
        self._build_universe()

    # ---- public -------------------------------------------------------------------------------

    @property
    def universe(self) -> Universe:
        """The instruments this market quotes."""
        return self._universe

    @property
    def trading_days(self) -> list[date]:
        """The trading days of the range, in order."""
        return list(self._days)

    @property
    def calendar(self) -> TradingCalendar:
        """The calendar of this market (for time to expiry in chain views)."""
        return self._cal

    def instrument_master(self) -> list[Instrument]:
        """The instruments of the universe (for :func:`~algoengine.market.scrip_master.
        to_scrip_master`)."""
        return list(self._universe.instruments)

    def spot_path(self, underlying: str) -> SpotPath:
        """The index path of ``underlying`` at every step's end (``tick_interval_s`` apart)."""
        k = self._under_pos(underlying)
        lv = self._levels[k][:, 1:]
        ts = np.empty(lv.shape, dtype=np.int64)
        offsets = np.arange(1, self._steps + 1, dtype=np.int64) * self._step_ns
        for d, day in enumerate(self._days):
            ts[d] = self._cal.session_open_ns(day) + offsets
        return SpotPath(ts.ravel(), lv.ravel().astype(np.int64))

    def spot_close_paise(self, underlying: str, day: date) -> int:
        """The index's close on ``day`` (a trading day of the range)."""
        k = self._under_pos(underlying)
        d = self._day_index.get(day)
        if d is None:
            raise ValidationError("day", day, "not a trading day of the market's range")
        return int(self._levels[k][d, -1])

    def expiry_settlement_paise(self, token: str) -> int:
        """The settlement price of an option at expiry: its intrinsic value against the index
        at the close of the expiry session, in paise.

        Raises
        ------
        ValidationError
            if ``token`` is not an option of the universe or expires after the range.
        """
        inst = self._universe.by_token(token)
        if not inst.is_option or inst.expiry is None or inst.strike_paise is None:
            raise ValidationError("token", token, "not an option")
        if inst.expiry not in self._day_index:
            raise ValidationError("token", token, f"expires {inst.expiry}, outside the range")
        spot = self.spot_close_paise(inst.underlying, inst.expiry)
        if inst.option_type is OptionType.CE:
            return max(spot - inst.strike_paise, 0)
        return max(inst.strike_paise - spot, 0)

    def depth(self, slice_: MarketSlice, row: int) -> Depth:
        """5-level depth ``(bids, asks)`` of ``(price_paise, qty)`` consistent with row
        ``row`` of ``slice_`` (see :func:`depth_levels`); empty for an index."""
        if not 0 <= row < len(slice_):
            raise ValidationError("row", row, f"must be in [0, {len(slice_)})")
        i = int(slice_.idx[row])
        inst = self._universe[i]
        dm = self.config.depth
        return depth_levels(
            int(slice_.bid_paise[row]),
            int(slice_.bid_qty[row]),
            int(slice_.ask_paise[row]),
            int(slice_.ask_qty[row]),
            tick_paise=inst.tick_paise,
            lot_size=inst.lot_size,
            levels=dm.levels,
            growth_lots=dm.level_growth_lots,
        )

    def __iter__(self) -> Iterator[MarketSlice]:
        """The slices of every trading day in time order (fresh state on every call)."""
        oi_state = np.full(len(self._universe), -1, dtype=np.int64)
        for d in range(len(self._days)):
            ctx = self._day_context(d)
            if self.config.mode == "bars":
                yield from self._bars(ctx, oi_state)
            else:
                yield from self._ticks(ctx, oi_state)

    # ---- the path -----------------------------------------------------------------------------

    def _under_pos(self, underlying: str) -> int:
        for k, spec in enumerate(self._specs):
            if spec.underlying == underlying:
                return k
        raise ValidationError("underlying", underlying, "not simulated by this market")

    def _generate_paths(self) -> list[F64]:
        cfg = self.config
        n_d, n_s = len(self._days), self._steps
        rng = np.random.default_rng((cfg.seed, 0))
        dt = 1.0 / (n_s * cfg.trading_days_per_year)
        common = rng.standard_normal((n_d, n_s))
        rho = cfg.correlation
        p_jump = cfg.jumps_per_day / n_s
        gap_days = np.ones(n_d)
        for d in range(1, n_d):
            gap_days[d] = (self._days[d] - self._days[d - 1]).days
        out: list[F64] = []
        for spec in self._specs:
            sig = spec.annual_vol
            z = math.sqrt(rho) * common + math.sqrt(1.0 - rho) * rng.standard_normal((n_d, n_s))
            vol = sig * self._season  # per step
            inc = np.empty((n_d, n_s + 1))
            inc[:, 1:] = (cfg.drift - 0.5 * vol * vol) * dt + vol * math.sqrt(dt) * z
            jumps = rng.random((n_d, n_s)) < p_jump
            sizes = rng.normal(cfg.jump_mean, cfg.jump_std, (n_d, n_s))
            inc[:, 1:] += np.where(jumps, sizes, 0.0)
            day_sd = sig / math.sqrt(cfg.trading_days_per_year)
            inc[:, 0] = rng.standard_normal(n_d) * cfg.overnight_vol_ratio * day_sd
            inc[:, 0] *= np.sqrt(gap_days)
            inc[0, 0] = 0.0
            log_level = math.log(spec.initial_spot_paise) + np.cumsum(inc.ravel())
            tick = spec.spot_tick_paise
            level = np.maximum(np.rint(np.exp(log_level) / tick), 1.0) * tick
            out.append(level.reshape(n_d, n_s + 1))
        return out

    # ---- the universe -------------------------------------------------------------------------

    def _atm(self, k: int, d: int) -> F64:
        """At-the-money strike (nearest the index) at every step's end of day ``d``."""
        step = self._specs[k].strike_step_paise
        atm: F64 = np.rint(self._levels[k][d, 1:] / step) * step
        return atm

    def _strike_range(self, k: int, d: int) -> tuple[int, int]:
        spec = self._specs[k]
        atm = self._atm(k, d)
        width = spec.strikes_each_side * spec.strike_step_paise
        lo = max(int(atm.min()) - width, spec.strike_step_paise)
        return lo, int(atm.max()) + width

    def _build_universe(self) -> None:
        instruments: list[Instrument] = [spec.spot_instrument() for spec in self._specs]
        token = self.config.token_base
        spot_tokens = {spec.spot_token for spec in self._specs}
        # per underlying: expiry -> [lo, hi] strikes; then (k, expiry) -> (first index, lo)
        self._grid: dict[tuple[int, date], tuple[int, int]] = {}
        for k, spec in enumerate(self._specs):
            ranges: dict[date, tuple[int, int]] = {}
            for d in range(len(self._days)):
                lo, hi = self._strike_range(k, d)
                for e in self._listed[k][d]:
                    old = ranges.get(e)
                    ranges[e] = (lo, hi) if old is None else (min(old[0], lo), max(old[1], hi))
            step = spec.strike_step_paise
            for e in sorted(ranges):
                lo, hi = ranges[e]
                self._grid[(k, e)] = (len(instruments), lo)
                for strike in range(lo, hi + 1, step):
                    for ot in (OptionType.CE, OptionType.PE):
                        while str(token) in spot_tokens:
                            token += 1
                        instruments.append(spec.option_instrument(str(token), e, strike, ot))
                        token += 1
        self._universe = Universe(instruments)

    def _day_context(self, d: int) -> _Day:
        day = self._days[d]
        n_u = len(self._specs)
        uidx: list[I32] = [np.arange(n_u, dtype=np.int32)]
        strike: list[F64] = [np.zeros(n_u)]
        flag: list[F64] = [np.zeros(n_u)]
        under: list[npt.NDArray[np.intp]] = [np.arange(n_u, dtype=np.intp)]
        pair: list[npt.NDArray[np.intp]] = [np.full(n_u, -1, dtype=np.intp)]
        tick: list[F64] = [np.array([s.spot_tick_paise for s in self._specs], dtype=np.float64)]
        lot: list[I64] = [np.ones(n_u, dtype=np.int64)]
        full_days: list[float] = []
        pair_under: list[int] = []
        blocks: list[tuple[int, int]] = []
        n_opt = 0
        for k, spec in enumerate(self._specs):
            lo, hi = self._strike_range(k, d)
            step = spec.strike_step_paise
            n_k = (hi - lo) // step + 1
            for e in self._listed[k][d]:
                p = len(full_days)
                full_days.append(float(self._cal.count_trading_days(day, e) - 1))
                pair_under.append(k)
                blocks.append((n_opt, n_k))
                n_opt += 2 * n_k
                first, glo = self._grid[(k, e)]
                base = first + 2 * ((lo - glo) // step)
                uidx.append(np.arange(base, base + 2 * n_k, dtype=np.int32))
                ks = lo + step * np.arange(n_k, dtype=np.float64)
                strike.append(np.repeat(ks, 2))
                flag.append(np.tile(np.array([1.0, -1.0]), n_k))
                under.append(np.full(2 * n_k, k, dtype=np.intp))
                pair.append(np.full(2 * n_k, p, dtype=np.intp))
                tick.append(np.full(2 * n_k, float(spec.tick_paise)))
                lot.append(np.full(2 * n_k, spec.lot_size, dtype=np.int64))
        cols = _Cols(
            uidx=np.concatenate(uidx),
            strike=np.concatenate(strike),
            flag=np.concatenate(flag),
            under=np.concatenate(under),
            pair=np.concatenate(pair),
            tick=np.concatenate(tick),
            lot=np.concatenate(lot),
            n_spot=n_u,
        )
        return _Day(
            d=d,
            day=day,
            cols=cols,
            pair_full_days=np.asarray(full_days, dtype=np.float64),
            pair_blocks=blocks,
            pair_under=np.asarray(pair_under, dtype=np.intp),
        )

    # ---- pricing ------------------------------------------------------------------------------

    def _years(self, ctx: _Day, left_today_ns: F64) -> F64:
        """(steps, pairs) trading years to expiry from steps with ``left_today_ns`` left."""
        ns = left_today_ns[:, None] + ctx.pair_full_days[None, :] * self._cal.session_ns
        out: F64 = ns / self._year_ns
        return out

    def _model(
        self, ctx: _Day, spot: F64, years: F64, more_spots: tuple[F64, ...] = ()
    ) -> tuple[F64, F64]:
        """Fair values (paise) and moneyness ``x`` of the option columns.

        ``spot`` is (rows, n_under) and ``years`` (rows, pairs); returns fair values
        (rows * (1 + len(more_spots)), n_options): at ``spot``, then at each of
        ``more_spots`` (same shape as ``spot``) with the same ``T`` and smile volatility; and
        ``x`` (rows, n_options) at ``spot``.
        """
        c = ctx.cols
        o = slice(c.n_spot, None)
        under = c.under[o]
        S = spot[:, under]
        T = years[:, c.pair[o]]
        K = c.strike[o][None, :]
        cfg = self.config
        carry = cfg.rate - cfg.dividend_yield
        x = np.empty_like(T)
        sigma = np.empty_like(T)
        for k, sm in enumerate(self._smiles):
            m = under == k
            if not m.any():
                continue
            Tk = T[:, m]
            xk = (np.log(K[:, m] / S[:, m]) - carry * Tk) / np.sqrt(np.maximum(Tk, sm.min_t_years))
            atm = self._specs[k].annual_vol if sm.atm_vol is None else sm.atm_vol
            ax = np.abs(xk)
            wx = sm.wing_x
            h = np.where(ax <= wx, xk * xk, 2.0 * wx * ax - wx * wx)
            sig = atm + sm.skew * xk + sm.curvature * h
            if sm.term_slope:
                sig += sm.term_slope * (np.sqrt(Tk) - math.sqrt(sm.term_ref_years))
            x[:, m] = xk
            sigma[:, m] = np.clip(sig, sm.min_vol, sm.max_vol)
        if more_spots:
            n = 1 + len(more_spots)
            S = np.concatenate([S] + [sp[:, under] for sp in more_spots], axis=0)
            T = np.concatenate([T] * n, axis=0)
            sigma = np.concatenate([sigma] * n, axis=0)
        fair = np.asarray(
            greeks.price(c.flag[o][None, :], S, K, T, cfg.rate, sigma, cfg.dividend_yield),
            dtype=np.float64,
        )
        # no vertical-spread arbitrage: calls fall and puts rise with the strike
        rows = fair.shape[0]
        for start, n_k in ctx.pair_blocks:
            block = fair[:, start : start + 2 * n_k].reshape(rows, n_k, 2)
            np.minimum.accumulate(block[:, :, 0], axis=1, out=block[:, :, 0])
            np.maximum.accumulate(block[:, :, 1], axis=1, out=block[:, :, 1])
        return fair, x

    def _quote(self, ctx: _Day, fair: F64, x: F64) -> tuple[I64, I64, I64]:
        """(bid, ask, ltp) in paise of the option columns from fair values (see module doc)."""
        c = ctx.cols
        tick = c.tick[c.n_spot :]
        sm = self.config.spread
        f = fair / tick
        spread = np.maximum(
            sm.min_ticks,
            np.rint(sm.base_ticks + sm.relative * f + sm.moneyness_ticks * np.abs(x)),
        )
        bid_t = np.floor(f - (spread - 1.0) * 0.5)
        ask_t = np.maximum(bid_t + spread, 1.0)
        ltp_t = np.clip(np.rint(f), np.maximum(bid_t, 1.0), ask_t)
        bid_t = np.maximum(bid_t, 0.0)
        return (
            (bid_t * tick).astype(np.int64),
            (ask_t * tick).astype(np.int64),
            (ltp_t * tick).astype(np.int64),
        )

    def _weights(self, x: F64) -> F64:
        w: F64 = 1.0 / (1.0 + 4.0 * x * x)
        return w

    def _lots(self, rng: np.random.Generator, w: F64) -> F64:
        dm = self.config.depth
        u = rng.random(w.shape)
        lots: F64 = dm.min_lots + np.floor(u * (dm.max_lots - dm.min_lots + 1) * w)
        return lots

    def _oi(
        self,
        rng: np.random.Generator,
        ctx: _Day,
        w0: F64,
        traded: F64,
        oi_state: I64,
    ) -> I64:
        """Open interest (rows, n_options) in units; updates ``oi_state``."""
        c = ctx.cols
        o = slice(c.n_spot, None)
        uidx = c.uidx[o]
        lot = c.lot[o]
        start = oi_state[uidx].astype(np.float64)
        fresh = start < 0
        base = np.floor(self.config.activity.oi_lots * w0 * (0.5 + rng.random(w0.shape)))
        start = np.where(fresh, base, start / lot)
        change = np.rint(traded * (rng.random(traded.shape) - 0.45))
        oi_lots = np.maximum(start[None, :] + np.cumsum(change, axis=0), 0.0)
        oi: I64 = (oi_lots * lot).astype(np.int64)
        oi_state[uidx] = oi[-1]
        return oi

    def _window(self, ctx: _Day, atm: F64) -> npt.NDArray[np.bool_]:
        """(rows, n_cols) mask of the quoted columns given the ATM strike per underlying."""
        c = ctx.cols
        n = len(c.uidx)
        width = np.array(
            [s.strikes_each_side * s.strike_step_paise for s in self._specs], dtype=np.float64
        )
        mask = np.ones((atm.shape[0], n), dtype=np.bool_)
        o = slice(c.n_spot, None)
        mask[:, o] = np.abs(c.strike[o][None, :] - atm[:, c.under[o]]) <= width[c.under[o]]
        return mask

    # ---- bars ---------------------------------------------------------------------------------

    def _bars(self, ctx: _Day, oi_state: I64) -> Iterator[MarketSlice]:
        cfg = self.config
        d, M, spm = ctx.d, self._minutes, self._spm
        c = ctx.cols
        n_u = c.n_spot
        rng = np.random.default_rng((cfg.seed, 1, ctx.day.toordinal()))
        # index OHLC per minute: (M, n_u)
        lv = np.stack([self._levels[k][d] for k in range(n_u)], axis=1)  # (steps + 1, n_u)
        close = lv[spm::spm]
        opens = lv[0:-1:spm]
        inner = lv[1:].reshape(M, spm, n_u)
        high = np.maximum(inner.max(axis=1), opens)
        low = np.minimum(inner.min(axis=1), opens)
        atm = np.stack([self._atm(k, d)[spm - 1 :: spm] for k in range(n_u)], axis=1)
        left = self._cal.session_ns - NS_PER_MINUTE * np.arange(1, M + 1, dtype=np.float64)
        years = self._years(ctx, left)
        fair4, x = self._model(ctx, close, years, (opens, high, low))
        fair = fair4[:M]
        bid, ask, ltp = self._quote(ctx, fair, x)
        tick = c.tick[n_u:]
        ohl = np.maximum(np.rint(fair4[M:] / tick), 1.0) * tick
        o_opt = ohl[:M]
        h_opt = np.maximum(np.maximum(ohl[M : 2 * M], ohl[2 * M :]), np.maximum(o_opt, ltp))
        l_opt = np.minimum(np.minimum(ohl[M : 2 * M], ohl[2 * M :]), np.minimum(o_opt, ltp))
        w = self._weights(x)
        lot = c.lot[n_u:]
        bid_qty = (self._lots(rng, w) * lot).astype(np.int64)
        ask_qty = (self._lots(rng, w) * lot).astype(np.int64)
        bid_qty[bid == 0] = 0
        season2 = (self._season.reshape(M, spm) ** 2).mean(axis=1)
        lam = cfg.activity.lots_per_minute * w * season2[:, None]
        traded = rng.poisson(lam).astype(np.float64)
        volume = (np.cumsum(traded, axis=0) * lot).astype(np.int64)
        oi = self._oi(rng, ctx, w[0], traded, oi_state)
        # one (minute, field, column) block with the index columns in front
        fields = (
            (close, ltp),
            (None, bid),
            (None, bid_qty),
            (None, ask),
            (None, ask_qty),
            (None, volume),
            (None, oi),
            (opens, o_opt),
            (high, h_opt),
            (low, l_opt),
        )
        block = np.zeros((M, len(fields), len(c.uidx)), dtype=np.int64)
        for f, (spot_part, opt_part) in enumerate(fields):
            if spot_part is not None:
                block[:, f, :n_u] = spot_part
            block[:, f, n_u:] = opt_part
        mask = self._window(ctx, atm)
        ts0 = self._cal.session_open_ns(ctx.day)
        for m in range(M):
            sel = np.flatnonzero(mask[m])
            v = block[m].take(sel, axis=1)
            yield MarketSlice(
                ts_ns=ts0 + (m + 1) * NS_PER_MINUTE,
                idx=c.uidx[sel],
                ltp_paise=v[0],
                bid_paise=v[1],
                bid_qty=v[2],
                ask_paise=v[3],
                ask_qty=v[4],
                volume=v[5],
                oi=v[6],
                bar_close=True,
                open_paise=v[7],
                high_paise=v[8],
                low_paise=v[9],
            )

    # ---- ticks --------------------------------------------------------------------------------

    def _ticks(self, ctx: _Day, oi_state: I64) -> Iterator[MarketSlice]:
        cfg = self.config
        d = ctx.d
        c = ctx.cols
        n_u = c.n_spot
        n_cols = len(c.uidx)
        lot = c.lot[n_u:]
        rng = np.random.default_rng((cfg.seed, 2, ctx.day.toordinal()))
        ts0 = self._cal.session_open_ns(ctx.day)
        block = 300
        prev = np.full((6, n_cols), -1, dtype=np.int64)  # ltp, bid, bq, ask, aq, volume
        was_in = np.zeros(n_cols, dtype=np.bool_)
        bq_last = np.zeros(n_cols - n_u)
        aq_last = np.zeros(n_cols - n_u)
        vol_last = np.zeros(n_cols - n_u)
        w0: F64 | None = None
        for j0 in range(0, self._steps, block):
            j1 = min(j0 + block, self._steps)
            B = j1 - j0
            steps = np.arange(j0 + 1, j1 + 1)
            spot = np.stack([self._levels[k][d, steps] for k in range(n_u)], axis=1)
            atm = np.stack([self._atm(k, d)[steps - 1] for k in range(n_u)], axis=1)
            left = self._cal.session_ns - self._step_ns * steps.astype(np.float64)
            fair, x = self._model(ctx, spot, self._years(ctx, left))
            bid, ask, ltp = self._quote(ctx, fair, x)
            w = self._weights(x)
            if w0 is None:
                w0 = w[0]
            # displayed lots change with probability quote_refresh per step
            refresh = rng.random(w.shape) < cfg.activity.quote_refresh
            if j0 == 0:
                refresh[0] = True
            rows = np.where(refresh, np.arange(B)[:, None], -1)
            last = np.maximum.accumulate(rows, axis=0)
            new_bq = self._lots(rng, w)
            new_aq = self._lots(rng, w)
            cols_ix = np.arange(w.shape[1])[None, :]
            bq = np.where(last >= 0, new_bq[np.maximum(last, 0), cols_ix], bq_last[None, :])
            aq = np.where(last >= 0, new_aq[np.maximum(last, 0), cols_ix], aq_last[None, :])
            bq_last, aq_last = bq[-1], aq[-1]
            season2 = self._season[j0:j1] ** 2
            lam = cfg.activity.lots_per_minute / self._spm * w * season2[:, None]
            traded = rng.poisson(lam).astype(np.float64)
            vol_lots = vol_last[None, :] + np.cumsum(traded, axis=0)
            vol_last = vol_lots[-1]
            oi = self._oi(rng, ctx, w0, traded, oi_state)
            bid_qty = (bq * lot).astype(np.int64)
            bid_qty[bid == 0] = 0
            vals = np.zeros((B, 7, n_cols), dtype=np.int64)  # the 6 of prev, then oi
            vals[:, 0, :n_u] = spot.astype(np.int64)
            vals[:, 0, n_u:] = ltp
            vals[:, 1, n_u:] = bid
            vals[:, 2, n_u:] = bid_qty
            vals[:, 3, n_u:] = ask
            vals[:, 4, n_u:] = (aq * lot).astype(np.int64)
            vals[:, 5, n_u:] = (vol_lots * lot).astype(np.int64)
            vals[:, 6, n_u:] = oi
            mask = self._window(ctx, atm)
            for b in range(B):
                v = vals[b]
                changed = (v[:6] != prev).any(axis=0)
                emit = mask[b] & (changed | ~was_in)
                was_in = mask[b]
                sel = np.flatnonzero(emit)
                if len(sel) == 0:
                    continue
                blk = v.take(sel, axis=1)
                prev[:, sel] = blk[:6]
                yield MarketSlice(
                    ts_ns=ts0 + int(steps[b]) * self._step_ns,
                    idx=c.uidx[sel],
                    ltp_paise=blk[0],
                    bid_paise=blk[1],
                    bid_qty=blk[2],
                    ask_paise=blk[3],
                    ask_qty=blk[4],
                    volume=blk[5],
                    oi=blk[6],
                    bar_close=False,
                )
