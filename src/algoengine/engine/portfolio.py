"""Portfolio: positions, average prices, realised and unrealised P&L, charges, Greeks.

All money is integer paise. For each (strategy, instrument) position the portfolio keeps the
signed quantity, the cash the fills moved (a sale adds ``price * qty``, a purchase subtracts
it) and the cost basis of the open quantity (average-cost method; a partial close removes the
closed share of the basis, rounded to the paisa). Then, exactly, for every position:

    realised   = cash + open_cost
    unrealised = qty * mark - open_cost
    gross      = realised + unrealised = cash + qty * mark
    net        = gross - charges

so "cash flows of fills minus charges plus the value of what is still open" is the reported
net P&L in every run, by construction and checked by the tests. Expiry settlement is a fill at
the settlement price (intrinsic value) that closes the position.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from algoengine.domain.orders import Side

__all__ = ["PnL", "Portfolio", "Position"]


@dataclass(slots=True)
class Position:
    """One strategy's position in one instrument."""

    strategy_id: str
    idx: int
    token: str
    qty: int = 0  # signed units: > 0 long, < 0 short
    cash_paise: int = 0  # sum over fills of -sign * price * qty
    open_cost_paise: int = 0  # signed cost basis of the open qty (qty * average price)
    charges_paise: int = 0
    mark_paise: int = 0  # last mark price (mid or last traded)
    bought_qty: int = 0
    sold_qty: int = 0
    # Greeks per unit of the instrument at the last mark (0 for non-options)
    delta: float = 0.0
    gamma: float = 0.0
    vega: float = 0.0
    theta: float = 0.0

    @property
    def avg_price_paise(self) -> float:
        """Average price of the open quantity (0.0 when flat)."""
        return self.open_cost_paise / self.qty if self.qty else 0.0

    @property
    def realised_paise(self) -> int:
        return self.cash_paise + self.open_cost_paise

    @property
    def unrealised_paise(self) -> int:
        return self.qty * self.mark_paise - self.open_cost_paise

    @property
    def gross_paise(self) -> int:
        return self.cash_paise + self.qty * self.mark_paise

    @property
    def net_paise(self) -> int:
        return self.gross_paise - self.charges_paise

    def apply_fill(self, side: Side, qty: int, price_paise: int) -> None:
        """Book a fill of ``qty`` units at ``price_paise``."""
        signed = qty if side is Side.BUY else -qty
        self.cash_paise -= signed * price_paise
        if side is Side.BUY:
            self.bought_qty += qty
        else:
            self.sold_qty += qty
        if self.qty == 0 or (self.qty > 0) == (signed > 0):
            self.qty += signed
            self.open_cost_paise += signed * price_paise
            return
        closing = min(abs(signed), abs(self.qty))
        if closing == abs(self.qty):
            removed = self.open_cost_paise
        else:
            removed = _round_div(self.open_cost_paise * closing, abs(self.qty))
        self.open_cost_paise -= removed
        self.qty += signed
        opening = abs(signed) - closing  # a fill through zero opens the other way
        if opening:
            self.open_cost_paise += (opening if signed > 0 else -opening) * price_paise


def _round_div(a: int, b: int) -> int:
    """a / b rounded half away from zero (b > 0)."""
    q, r = divmod(abs(a), b)
    if 2 * r >= b:
        q += 1
    return q if a >= 0 else -q


@dataclass(frozen=True, slots=True)
class PnL:
    """P&L totals in paise."""

    realised: int
    unrealised: int
    charges: int
    gross: int
    net: int


@dataclass(slots=True)
class Portfolio:
    """Positions of every strategy, keyed by (strategy id, universe index)."""

    positions: dict[tuple[str, int], Position] = field(default_factory=dict)
    day_start_net: dict[str, int] = field(default_factory=dict)

    def position(self, strategy_id: str, idx: int, token: str = "") -> Position:
        key = (strategy_id, idx)
        pos = self.positions.get(key)
        if pos is None:
            pos = self.positions[key] = Position(strategy_id=strategy_id, idx=idx, token=token)
        return pos

    def get(self, strategy_id: str, idx: int) -> Position | None:
        return self.positions.get((strategy_id, idx))

    def of(self, strategy_id: str | None = None) -> Iterator[Position]:
        """Positions (of one strategy), including flat ones that traded."""
        for (sid, _), pos in self.positions.items():
            if strategy_id is None or sid == strategy_id:
                yield pos

    def open_positions(self, strategy_id: str | None = None) -> list[Position]:
        return [p for p in self.of(strategy_id) if p.qty != 0]

    def net_qty(self, idx: int) -> int:
        """Signed quantity over all strategies in one instrument."""
        return sum(p.qty for (_, i), p in self.positions.items() if i == idx)

    def add_fill(
        self,
        strategy_id: str,
        idx: int,
        token: str,
        side: Side,
        qty: int,
        price_paise: int,
        charges_paise: int,
    ) -> Position:
        pos = self.position(strategy_id, idx, token)
        pos.apply_fill(side, qty, price_paise)
        pos.charges_paise += charges_paise
        if pos.mark_paise == 0:
            pos.mark_paise = price_paise
        return pos

    def add_charges(self, strategy_id: str, idx: int, token: str, charges_paise: int) -> None:
        self.position(strategy_id, idx, token).charges_paise += charges_paise

    def mark(self, idx: int, price_paise: int) -> None:
        """Set the mark price of an instrument in every strategy's position."""
        for (_, i), pos in self.positions.items():
            if i == idx:
                pos.mark_paise = price_paise

    def pnl(self, strategy_id: str | None = None) -> PnL:
        realised = unrealised = charges = 0
        for pos in self.of(strategy_id):
            realised += pos.realised_paise
            unrealised += pos.unrealised_paise
            charges += pos.charges_paise
        gross = realised + unrealised
        return PnL(realised, unrealised, charges, gross, gross - charges)

    def start_day(self) -> None:
        """Remember today's opening net P&L per strategy (for the daily loss limit)."""
        sids = {sid for sid, _ in self.positions}
        self.day_start_net = {sid: self.pnl(sid).net for sid in sids}
        self.day_start_net[""] = self.pnl().net

    def day_pnl(self, strategy_id: str | None = None) -> int:
        """Net P&L since :meth:`start_day` (of one strategy, or all)."""
        key = strategy_id or ""
        return self.pnl(strategy_id).net - self.day_start_net.get(key, 0)

    def greeks(self, strategy_id: str | None = None) -> tuple[float, float, float, float]:
        """(delta, gamma, vega, theta) of the open positions, in units of the underlying's
        price per unit position (delta: underlying units equivalent)."""
        d = g = v = t = 0.0
        for pos in self.of(strategy_id):
            if pos.qty:
                d += pos.qty * pos.delta
                g += pos.qty * pos.gamma
                v += pos.qty * pos.vega
                t += pos.qty * pos.theta
        return d, g, v, t
