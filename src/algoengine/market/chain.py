"""An option chain view: one expiry of one underlying, with implied vols and Greeks per strike.

:class:`ChainView` is built once per (underlying, expiry) and refreshed with :meth:`ChainView.
update` from a :class:`~algoengine.market.quotes.QuoteBoard` every time the strategy needs it
(every minute): it reuses its arrays and makes one compiled implied-vol call and one Greeks call
for all strikes, calls and puts together.

Conventions
-----------
- Prices (strikes, mids, spot, forward) are paise; mids are floats (a mid can be half a paise).
- ``years_to_expiry`` is trading time (:meth:`TradingCalendar.years_to_expiry`), so theta is
  -dV/dT per year of trading time (divide by the calendar's ``trading_days_per_year`` for per
  trading day); vega is per 1.0 of sigma; see :mod:`algoengine.greeks`.
- Implied vols come from the mid of a two-sided quote (BSM on the index with rate ``rate`` and
  yield ``q``); NaN where there is no two-sided quote or the mid breaks the no-arbitrage bounds.
- Greeks use each option's own implied vol where it has one; otherwise the smile's: the
  out-of-the-money side's IV at that strike (puts below the forward, calls at or above), else
  the other side's, interpolated linearly in strike across strikes without one (flat beyond
  the ends). On the expiry close (``T == 0``) Greeks are their intrinsic limits.
- The at-the-money strike is the listed strike nearest the FORWARD ``S * exp((r - q) T)``
  (ties go to the lower strike); ``atm_strike("spot")`` uses the index instead.
"""

from __future__ import annotations

import math
from datetime import date
from typing import Literal

import numpy as np
import numpy.typing as npt

from algoengine import greeks
from algoengine.domain.instruments import OptionType
from algoengine.domain.market_data import Universe
from algoengine.errors import ValidationError
from algoengine.market.calendar import TradingCalendar
from algoengine.market.quotes import QuoteBoard

__all__ = ["ChainView"]

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
I32 = npt.NDArray[np.int32]


def _option_type(value: object) -> OptionType:
    if isinstance(value, OptionType):
        return value
    if isinstance(value, str) and value.upper() in ("CE", "PE"):
        return OptionType(value.upper())
    raise ValidationError("option_type", value, "must be 'CE' or 'PE'")


class ChainView:
    """The option chain of ``underlying`` for ``expiry``, refreshed in place by :meth:`update`.

    Parameters
    ----------
    universe
        The feed's universe (it must list the underlying's index and options of ``expiry``).
    underlying, expiry
        Which chain.
    calendar
        For the time to expiry.
    rate, q
        Risk-free rate and dividend yield, continuously compounded per year.
    max_quote_age_ns
        If set, a quote last updated more than this before the update's ``ts_ns`` counts as
        missing (an option that left a feed's quoted window keeps its last, stale quote on the
        board); ``None`` uses every quote.

    Attributes (after :meth:`update`; arrays are per strike, ascending)
    ----------
    strikes_paise
        The listed strikes (int64).
    ce_index, pe_index
        Universe index of the call/put at each strike (int32; -1 if not listed).
    ce_mid_paise, pe_mid_paise
        Mid of the quote (float64 paise; NaN without a two-sided quote).
    ce_iv, pe_iv
        Implied volatility per sqrt(year) (NaN where not computable).
    ce_sigma, pe_sigma
        The volatility the Greeks were computed with (see the module docstring).
    ce_delta, pe_delta, ce_gamma, pe_gamma, ce_vega, pe_vega, ce_theta, pe_theta
        BSM Greeks in paise units (gamma per paise of the index; vega per 1.0 of sigma;
        theta per trading year).
    spot_paise, forward_paise
        The index's last price and the forward to expiry (NaN before the index has a price).
    years_to_expiry
        Trading time to the expiry session's close.
    ts_ns
        The time of the last update.

    Raises
    ------
    ValidationError
        if the universe has no index for the underlying or no option of that expiry.
    """

    def __init__(
        self,
        universe: Universe,
        underlying: str,
        expiry: date,
        calendar: TradingCalendar,
        *,
        rate: float,
        q: float = 0.0,
        max_quote_age_ns: int | None = None,
    ) -> None:
        if not isinstance(universe, Universe):
            raise ValidationError("universe", universe, "must be a Universe")
        if not isinstance(calendar, TradingCalendar):
            raise ValidationError("calendar", calendar, "must be a TradingCalendar")
        if not isinstance(expiry, date):
            raise ValidationError("expiry", expiry, "must be a datetime.date")
        for name, value in (("rate", rate), ("q", q)):
            if (
                not isinstance(value, int | float)
                or isinstance(value, bool)
                or not math.isfinite(value)
            ):
                raise ValidationError(name, value, "must be a finite number")
        if max_quote_age_ns is not None and (
            not isinstance(max_quote_age_ns, int)
            or isinstance(max_quote_age_ns, bool)
            or max_quote_age_ns < 0
        ):
            raise ValidationError("max_quote_age_ns", max_quote_age_ns, "must be an int >= 0")
        self.max_quote_age_ns = max_quote_age_ns
        spot = universe.spot(underlying)
        if spot is None:
            raise ValidationError("underlying", underlying, "the universe lists no index of it")
        idx = universe.options(underlying, expiry)
        if len(idx) == 0:
            raise ValidationError("expiry", expiry, f"no {underlying} option of this expiry")
        self.universe = universe
        self.underlying = underlying
        self.expiry = expiry
        self.calendar = calendar
        self.rate = float(rate)
        self.q = float(q)
        self.spot_index = universe.index_of(spot.token)
        strikes = np.unique(universe.strike_paise[idx])
        n = len(strikes)
        self.strikes_paise: I64 = strikes.astype(np.int64)
        self.ce_index: I32 = np.full(n, -1, dtype=np.int32)
        self.pe_index: I32 = np.full(n, -1, dtype=np.int32)
        pos = np.searchsorted(strikes, universe.strike_paise[idx])
        sign = universe.option_sign[idx]
        self.ce_index[pos[sign > 0]] = idx[sign > 0]
        self.pe_index[pos[sign < 0]] = idx[sign < 0]
        self._pos = {int(k): i for i, k in enumerate(strikes)}
        self._n = n
        # calls then puts, over all strikes; missing instruments read index 0 and are masked
        both = np.concatenate([self.ce_index, self.pe_index])
        self._listed = both >= 0
        self._both = np.where(self._listed, both, 0).astype(np.intp)
        self._flag = np.concatenate([np.ones(n), -np.ones(n)])
        self._K = np.concatenate([strikes, strikes]).astype(np.float64)
        self._mid = np.full(2 * n, np.nan)
        self._iv = np.full(2 * n, np.nan)
        self._sigma = np.full(2 * n, np.nan)
        self._delta = np.full(2 * n, np.nan)
        self._gamma = np.full(2 * n, np.nan)
        self._vega = np.full(2 * n, np.nan)
        self._theta = np.full(2 * n, np.nan)
        self.ce_mid_paise, self.pe_mid_paise = self._mid[:n], self._mid[n:]
        self.ce_iv, self.pe_iv = self._iv[:n], self._iv[n:]
        self.ce_sigma, self.pe_sigma = self._sigma[:n], self._sigma[n:]
        self.ce_delta, self.pe_delta = self._delta[:n], self._delta[n:]
        self.ce_gamma, self.pe_gamma = self._gamma[:n], self._gamma[n:]
        self.ce_vega, self.pe_vega = self._vega[:n], self._vega[n:]
        self.ce_theta, self.pe_theta = self._theta[:n], self._theta[n:]
        self.spot_paise = math.nan
        self.forward_paise = math.nan
        self.years_to_expiry = math.nan
        self.ts_ns = 0

    @classmethod
    def build(
        cls,
        universe: Universe,
        board: QuoteBoard,
        underlying: str,
        expiry: date,
        ts_ns: int,
        calendar: TradingCalendar,
        rate: float,
        q: float = 0.0,
        max_quote_age_ns: int | None = None,
    ) -> ChainView:
        """A view of the chain, updated once from ``board`` at ``ts_ns``."""
        view = cls(
            universe,
            underlying,
            expiry,
            calendar,
            rate=rate,
            q=q,
            max_quote_age_ns=max_quote_age_ns,
        )
        view.update(board, ts_ns)
        return view

    def __len__(self) -> int:
        return self._n

    @property
    def ready(self) -> bool:
        """True once the index has a price (else every value is NaN)."""
        return not math.isnan(self.spot_paise)

    def update(self, board: QuoteBoard, ts_ns: int) -> None:
        """Recompute mids, implied vols and Greeks from ``board`` as of ``ts_ns``."""
        if board.universe is not self.universe:
            raise ValidationError("board", board, "must be a board of the view's universe")
        self.ts_ns = ts_ns
        spot = int(board.ltp[self.spot_index])
        T = self.calendar.years_to_expiry(ts_ns, self.expiry)
        self.years_to_expiry = T
        bid = board.bid[self._both]
        ask = board.ask[self._both]
        two_sided = self._listed & (bid > 0) & (ask > 0)
        if self.max_quote_age_ns is not None:
            two_sided &= board.last_ts_ns[self._both] >= ts_ns - self.max_quote_age_ns
        mid = self._mid
        np.multiply(bid + ask, 0.5, out=mid)
        mid[~two_sided] = np.nan
        if spot <= 0:
            self.spot_paise = self.forward_paise = math.nan
            for arr in (self._iv, self._sigma, self._delta, self._gamma, self._vega, self._theta):
                arr.fill(np.nan)
            return
        S = float(spot)
        self.spot_paise = S
        F = S * math.exp((self.rate - self.q) * T)
        self.forward_paise = F
        K = self._K
        if T > 0.0:
            iv = np.asarray(
                greeks.implied_vol(mid, self._flag, S, K, T, self.rate, self.q), dtype=np.float64
            )
        else:
            iv = np.full(2 * self._n, np.nan)
        self._iv[:] = iv
        sigma = self._sigma
        if T > 0.0:
            sigma[:] = iv
            n = self._n
            ce_iv, pe_iv = iv[:n], iv[n:]
            otm = np.where(self.strikes_paise >= F, ce_iv, pe_iv)
            itm = np.where(self.strikes_paise >= F, pe_iv, ce_iv)
            smile = np.where(np.isfinite(otm), otm, itm)
            ok = np.isfinite(smile)
            if ok.any() and not ok.all():
                strikes = self.strikes_paise.astype(np.float64)
                smile = np.interp(strikes, strikes[ok], smile[ok])
            fill = np.concatenate([smile, smile])
            missing = ~np.isfinite(sigma)
            sigma[missing] = fill[missing]
        else:
            sigma.fill(0.0)
        g = greeks.greeks(self._flag, S, K, T, self.rate, sigma, self.q)
        self._delta[:] = g.delta
        self._gamma[:] = g.gamma
        self._vega[:] = g.vega
        self._theta[:] = g.theta
        unlisted = ~self._listed
        if unlisted.any():
            for arr in (self._iv, self._sigma, self._delta, self._gamma, self._vega, self._theta):
                arr[unlisted] = np.nan

    # ---- selection ---------------------------------------------------------------------------

    def atm_strike(self, reference: Literal["forward", "spot"] = "forward") -> int | None:
        """The listed strike nearest the forward (or the index); ties go to the lower strike.
        ``None`` before the index has a price."""
        if reference not in ("forward", "spot"):
            raise ValidationError("reference", reference, "must be 'forward' or 'spot'")
        ref = self.forward_paise if reference == "forward" else self.spot_paise
        if math.isnan(ref):
            return None
        dist = np.abs(self.strikes_paise.astype(np.float64) - ref)
        return int(self.strikes_paise[int(np.argmin(dist))])

    def _side(self, option_type: object) -> tuple[OptionType, slice]:
        ot = _option_type(option_type)
        return ot, (slice(0, self._n) if ot is OptionType.CE else slice(self._n, None))

    def strike_by_delta(self, target_abs_delta: float, option_type: OptionType | str) -> int | None:
        """The strike whose option's |delta| is nearest ``target_abs_delta`` (e.g. 0.25 for a
        25-delta option); ``None`` if no option of that type has a delta."""
        if (
            not isinstance(target_abs_delta, int | float)
            or isinstance(target_abs_delta, bool)
            or not 0.0 < target_abs_delta < 1.0
        ):
            raise ValidationError("target_abs_delta", target_abs_delta, "must be in (0, 1)")
        _, side = self._side(option_type)
        dist = np.abs(np.abs(self._delta[side]) - target_abs_delta)
        if not np.isfinite(dist).any():
            return None
        return int(self.strikes_paise[int(np.nanargmin(dist))])

    def strike_by_premium(self, target_paise: float, option_type: OptionType | str) -> int | None:
        """The strike whose option's mid is nearest ``target_paise``; ``None`` if no option of
        that type has a two-sided quote."""
        if (
            not isinstance(target_paise, int | float)
            or isinstance(target_paise, bool)
            or not math.isfinite(target_paise)
            or target_paise <= 0
        ):
            raise ValidationError("target_paise", target_paise, "must be a positive number")
        _, side = self._side(option_type)
        dist = np.abs(self._mid[side] - target_paise)
        if not np.isfinite(dist).any():
            return None
        return int(self.strikes_paise[int(np.nanargmin(dist))])

    def index_of(self, strike_paise: int, option_type: OptionType | str) -> int:
        """The universe index of the ``option_type`` option at ``strike_paise``.

        Raises ValidationError if it is not listed.
        """
        ot = _option_type(option_type)
        pos = None
        if isinstance(strike_paise, int | np.integer):
            pos = self._pos.get(int(strike_paise))
        if pos is None:
            raise ValidationError("strike_paise", strike_paise, "not a strike of this chain")
        i = int((self.ce_index if ot is OptionType.CE else self.pe_index)[pos])
        if i < 0:
            raise ValidationError("strike_paise", strike_paise, f"no {ot.value} listed there")
        return i
