"""Premium selling: short straddle, short strangle (by delta or premium) and iron condor.

One configurable strategy (:class:`PremiumSellingConfig`). Its day:

1. At ``entry_time`` (IST) it picks the expiry (the nearest, or the next one on expiry day if
   ``enter_on_expiry_day`` is off) and the strikes: ATM call and put for a straddle; for a
   strangle the call and put nearest ``short_delta`` (absolute) or ``short_premium_paise``;
   an iron condor adds long wings nearest ``wing_delta`` or ``wing_distance_paise`` beyond the
   shorts. Hedges are bought first; the shorts are sold once every hedge has filled.
2. Each short leg that fills gets a stop-loss at the exchange: a stop-loss limit buy with its
   trigger ``leg_stop_loss_pct`` percent (or ``leg_stop_loss_paise``) above the fill price and its
   limit ``stop_limit_buffer_pct`` above the trigger; with ``leg_target_pct`` also a limit buy
   that far below, linked one-cancels-other with the stop (kept by the engine's OMS).
3. Every market update it watches the combined P&L of the open legs: a loss of
   ``combined_stop_loss_pct`` percent of the premium collected (or ``combined_stop_loss_paise``)
   exits everything; a profit of ``target_pct`` percent exits everything; with
   ``trailing_stop_pct`` the exit also fires when the profit falls that many percent of the
   premium from its best, once the profit has first reached that much.
4. If a short leg's absolute delta passes ``adjust_delta``, the untested short is rolled: bought
   back and sold again at the strike whose absolute delta is nearest the tested leg's
   (``max_adjustments`` a day).
5. After a stop-out (every short closed by stops or a combined exit) it enters again, up to
   ``max_reentries`` times a day, not after ``last_entry_time``.
6. At ``exit_time`` (or ``expiry_day_exit_time`` on the position's expiry day) it exits
   everything, unless ``hold_to_expiry`` keeps an expiring position to settlement.

Exits buy back the shorts first and sell the hedges only when no short is left, so the book
is never left with naked shorts. All prices paise, quantities units (``lots`` times the lot).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from enum import StrEnum

from algoengine.domain.events import OrderEvent, OrderFillEvent
from algoengine.domain.instruments import OptionType
from algoengine.domain.market_data import MarketSlice
from algoengine.domain.orders import OrderType, Side
from algoengine.errors import ValidationError
from algoengine.market.calendar import ist_date
from algoengine.strategies.base import Strategy, StrategyContext

__all__ = ["PremiumKind", "PremiumSelling", "PremiumSellingConfig"]

log = logging.getLogger(__name__)

IST = timezone(timedelta(hours=5, minutes=30))


class PremiumKind(StrEnum):
    STRADDLE = "straddle"
    STRANGLE = "strangle"
    IRON_CONDOR = "iron_condor"


@dataclass(frozen=True, kw_only=True, slots=True)
class PremiumSellingConfig:
    """Settings of :class:`PremiumSelling` (see the module docstring for what each does)."""

    strategy_id: str = "straddle"
    kind: PremiumKind = PremiumKind.STRADDLE
    underlying: str = "NIFTY"
    lots: int = 1
    entry_time: time = time(9, 20)
    last_entry_time: time = time(14, 30)
    exit_time: time | None = time(15, 15)
    expiry_day_exit_time: time | None = time(15, 0)
    hold_to_expiry: bool = False
    enter_on_expiry_day: bool = True
    short_delta: float | None = 0.25
    short_premium_paise: int | None = None
    wing_delta: float | None = 0.10
    wing_distance_paise: int | None = None
    leg_stop_loss_pct: float | None = 30.0
    leg_stop_loss_paise: int | None = None
    stop_limit_buffer_pct: float = 5.0
    leg_target_pct: float | None = None
    combined_stop_loss_pct: float | None = None
    combined_stop_loss_paise: int | None = None
    target_pct: float | None = None
    trailing_stop_pct: float | None = None
    max_reentries: int = 0
    adjust_delta: float | None = None
    max_adjustments: int = 2

    def __post_init__(self) -> None:
        if not isinstance(self.kind, PremiumKind):
            raise ValidationError("kind", self.kind, "must be straddle, strangle or iron_condor")
        if not isinstance(self.lots, int) or isinstance(self.lots, bool) or self.lots < 1:
            raise ValidationError("lots", self.lots, "must be an integer >= 1")
        for name in (
            "leg_stop_loss_pct",
            "leg_target_pct",
            "combined_stop_loss_pct",
            "target_pct",
            "trailing_stop_pct",
        ):
            v = getattr(self, name)
            if v is not None and not (isinstance(v, int | float) and 0 < v < 1000):
                raise ValidationError(name, v, "must be a percentage in (0, 1000) or None")
        if self.leg_target_pct is not None and self.leg_target_pct >= 100:
            raise ValidationError("leg_target_pct", self.leg_target_pct, "must be below 100")
        for name in ("short_delta", "wing_delta", "adjust_delta"):
            v = getattr(self, name)
            if v is not None and not (isinstance(v, int | float) and 0 < v < 1):
                raise ValidationError(name, v, "must be an absolute delta in (0, 1) or None")
        for name in (
            "short_premium_paise",
            "wing_distance_paise",
            "leg_stop_loss_paise",
            "combined_stop_loss_paise",
        ):
            v = getattr(self, name)
            if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v <= 0):
                raise ValidationError(name, v, "must be a positive integer (paise) or None")
        if self.kind is not PremiumKind.STRADDLE and (
            self.short_delta is None and self.short_premium_paise is None
        ):
            raise ValidationError("short_delta", None, "a strangle needs short_delta or premium")
        if self.kind is PremiumKind.IRON_CONDOR and (
            self.wing_delta is None and self.wing_distance_paise is None
        ):
            raise ValidationError("wing_delta", None, "an iron condor needs its wings' distance")
        if not 0 <= self.stop_limit_buffer_pct < 100:
            raise ValidationError("stop_limit_buffer_pct", self.stop_limit_buffer_pct, "0..100")
        for name in ("max_reentries", "max_adjustments"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                raise ValidationError(name, v, "must be an integer >= 0")
        if self.last_entry_time < self.entry_time:
            raise ValidationError("last_entry_time", self.last_entry_time, "before entry_time")


class _Phase(StrEnum):
    FLAT = "flat"  # nothing open; may enter
    HEDGING = "hedging"  # wings bought, waiting for their fills
    SELLING = "selling"  # shorts sent
    IN = "in"  # position on
    EXITING = "exiting"  # buying back shorts, then selling hedges
    DONE = "done"  # no more entries today


@dataclass(slots=True)
class _Leg:
    role: str  # "CE"/"PE" short, "CE_WING"/"PE_WING" long
    idx: int
    side: Side  # the entry side
    qty: int
    entry_ids: list[str] = field(default_factory=list)
    filled: int = 0
    entry_value: int = 0  # paise: sum price * qty of entry fills
    exit_ids: list[str] = field(default_factory=list)  # stops/targets/exits
    stop_ids: list[str] = field(default_factory=list)
    closed: int = 0  # units bought back / sold out
    exit_ns: int = -1  # when an exit order was last sent

    @property
    def is_short(self) -> bool:
        return self.side is Side.SELL

    @property
    def open_qty(self) -> int:
        return self.filled - self.closed

    @property
    def entry_price(self) -> int:
        return self.entry_value // self.filled if self.filled else 0


class PremiumSelling(Strategy):
    """Short straddle / strangle / iron condor (see the module docstring)."""

    def __init__(self, config: PremiumSellingConfig | None = None) -> None:
        self.config = config or PremiumSellingConfig()
        super().__init__(self.config.strategy_id)
        self.legs: dict[str, _Leg] = {}
        self.phase = _Phase.FLAT
        self.entries_today = 0
        self.adjustments_today = 0
        self.expiry: date | None = None
        self.premium_paise = 0  # premium collected on the open shorts
        self.best_profit = 0
        self._entry_net = 0  # strategy net P&L when the position went on
        self.log: list[tuple[int, str]] = []  # (ts_ns, what): the strategy's decisions

    # ---- helpers ---------------------------------------------------------------------------

    @staticmethod
    def _time(ctx: StrategyContext) -> time:
        return datetime.fromtimestamp(ctx.now_ns() / 1e9, IST).time()

    def _note(self, ctx: StrategyContext, what: str) -> None:
        self.log.append((ctx.now_ns(), what))
        log.info(what, extra={"strategy_id": self.strategy_id})

    def _lot(self, ctx: StrategyContext, idx: int) -> int:
        return ctx.universe[idx].lot_size

    # ---- callbacks -------------------------------------------------------------------------

    def on_recover(self, ctx: StrategyContext) -> None:
        """Rebuild the legs after a crash from the reconciled positions and orders: a short
        option is the CE or PE leg, a long one its wing; working stops, targets and exits are
        found by their tags; today's entries are counted from the entry orders, so that the
        restarted strategy neither enters again nor forgets a stop."""
        today = ctx.today()
        mine = ctx.orders()
        entry_ids: dict[str, list[str]] = {}
        exit_ids: dict[str, list[str]] = {}
        stop_ids: dict[str, list[str]] = {}
        entries: set[int] = set()
        for o in mine:
            role = o.tag.split()[1] if len(o.tag.split()) > 1 else ""
            if o.tag.startswith("entry") and ist_date(o.created_ns) == today:
                entries.add(o.created_ns)
                entry_ids.setdefault(role, []).append(o.client_order_id)
            elif o.tag.startswith(("stop", "target", "exit")):
                exit_ids.setdefault(role, []).append(o.client_order_id)
                if o.tag.startswith("stop"):
                    stop_ids.setdefault(role, []).append(o.client_order_id)
        self.legs = {}
        self.premium_paise = 0
        for pos in ctx.positions():
            inst = ctx.universe[pos.idx]
            if inst.option_type is None:
                continue
            short = pos.qty < 0
            role = inst.option_type.value + ("" if short else "_WING")
            qty = abs(pos.qty)
            leg = _Leg(role, pos.idx, Side.SELL if short else Side.BUY, qty)
            leg.filled = qty
            leg.entry_value = round(abs(pos.avg_price_paise) * qty)
            leg.entry_ids = entry_ids.get(role, [])
            leg.exit_ids = exit_ids.get(role, [])
            leg.stop_ids = stop_ids.get(role, [])
            self.legs[role] = leg
            if short:
                self.premium_paise += leg.entry_value
            self.expiry = inst.expiry
        # the day's entry rounds: entries of one round share their creation time
        self.entries_today = len(entries)
        if any(leg.is_short for leg in self.legs.values()):
            self.phase = _Phase.IN
        elif self.legs:
            self.phase = _Phase.EXITING  # only hedges left: sell them
        elif self.entries_today > self.config.max_reentries:
            self.phase = _Phase.DONE
        else:
            self.phase = _Phase.FLAT
        self._entry_net = ctx.pnl().net - sum(p.unrealised_paise for p in ctx.positions())
        self._note(
            ctx,
            f"recovered: {self.phase.value}, {self.entries_today} entries today, legs "
            + (
                ", ".join(f"{r} {ctx.universe[leg.idx].symbol}" for r, leg in self.legs.items())
                or "none"
            ),
        )

    def on_session_start(self, ctx: StrategyContext, day: date) -> None:
        self.entries_today = 0
        self.adjustments_today = 0
        if self.phase in (_Phase.DONE,) or (self.phase is _Phase.FLAT and not self.legs):
            self.phase = _Phase.FLAT

    def on_slice(self, ctx: StrategyContext, market: MarketSlice) -> None:
        now = self._time(ctx)
        c = self.config
        if self.phase is _Phase.FLAT:
            reentry = self.entries_today > 0
            if (
                c.entry_time <= now <= c.last_entry_time
                and (not reentry or self.entries_today <= c.max_reentries)
                and (c.exit_time is None or now < c.exit_time)
            ):
                self._enter(ctx)
            return
        if self.phase is _Phase.EXITING:
            self._continue_exit(ctx)  # retry exits the venue refused
            return
        if self.phase is not _Phase.IN:
            return
        if self._exit_time_reached(ctx, now):
            self._exit_all(ctx, "time exit", reenter=False)
            return
        profit = ctx.pnl().net - self._entry_net
        self.best_profit = max(self.best_profit, profit)
        prem = self.premium_paise
        if (c.combined_stop_loss_paise is not None and profit <= -c.combined_stop_loss_paise) or (
            c.combined_stop_loss_pct is not None
            and profit <= -prem * c.combined_stop_loss_pct / 100
        ):
            self._exit_all(ctx, f"combined stop-loss: {profit} paise", reenter=True)
        elif c.target_pct is not None and profit >= prem * c.target_pct / 100:
            self._exit_all(ctx, f"target: {profit} paise", reenter=False)
        elif (
            c.trailing_stop_pct is not None
            and self.best_profit >= prem * c.trailing_stop_pct / 100
            and profit <= self.best_profit - prem * c.trailing_stop_pct / 100
        ):
            self._exit_all(ctx, f"trailing stop: {profit} from {self.best_profit}", reenter=False)
        elif c.adjust_delta is not None and self.adjustments_today < c.max_adjustments:
            self._maybe_adjust(ctx)

    def on_order_update(self, ctx: StrategyContext, event: OrderEvent, order: object) -> None:
        if isinstance(event, OrderFillEvent):
            return  # on_fill follows and does the bookkeeping first
        if self.phase in (_Phase.HEDGING, _Phase.SELLING):
            self._check_entry_done(ctx)
        elif self.phase is _Phase.EXITING:
            self._continue_exit(ctx)

    def on_fill(self, ctx: StrategyContext, fill: OrderFillEvent, order: object) -> None:
        cid = fill.client_order_id
        for leg in self.legs.values():
            if cid in leg.entry_ids:
                leg.filled += fill.qty
                leg.entry_value += fill.qty * fill.price_paise
                if leg.is_short:
                    self.premium_paise += fill.qty * fill.price_paise
                    self._protect(ctx, leg, fill)
                self._check_entry_done(ctx)
                return
            if cid in leg.exit_ids:
                leg.closed += fill.qty
                if leg.is_short:
                    self.premium_paise -= fill.qty * leg.entry_price
                if cid in leg.stop_ids and leg.open_qty == 0:
                    self._note(ctx, f"{leg.role} stopped out at {fill.price_paise}")
                    self._after_stop(ctx)
                if self.phase is _Phase.EXITING:
                    self._continue_exit(ctx)
                return

    def on_session_end(self, ctx: StrategyContext, day: date) -> None:
        if self.phase is _Phase.DONE or (self.phase is _Phase.FLAT and not self._open_legs()):
            self.phase = _Phase.FLAT
            self.legs = {}

    def on_stop(self, ctx: StrategyContext) -> None:
        self.phase = _Phase.DONE

    # ---- entry -------------------------------------------------------------------------------

    def _choose_expiry(self, ctx: StrategyContext) -> date | None:
        today = ctx.today()
        for d in ctx.expiries(self.config.underlying):
            if d == today and not self.config.enter_on_expiry_day:
                continue
            return d
        return None

    def _enter(self, ctx: StrategyContext) -> None:
        c = self.config
        expiry = self._choose_expiry(ctx)
        spot = ctx.spot_paise(c.underlying)
        if expiry is None or spot <= 0:
            return
        opts = ctx.universe.options(c.underlying, expiry)
        if len(opts) == 0:
            return
        calls = [int(i) for i in opts if ctx.universe[int(i)].option_type is OptionType.CE]
        puts = [int(i) for i in opts if ctx.universe[int(i)].option_type is OptionType.PE]
        quoted_c = [i for i in calls if ctx.bid_ask_paise(i)[0] > 0 and ctx.bid_ask_paise(i)[1] > 0]
        quoted_p = [i for i in puts if ctx.bid_ask_paise(i)[0] > 0 and ctx.bid_ask_paise(i)[1] > 0]
        if not quoted_c or not quoted_p:
            return
        ce: int | None
        pe: int | None
        if c.kind is PremiumKind.STRADDLE:
            ce = min(quoted_c, key=lambda i: abs(_strike(ctx, i) - spot))
            k = _strike(ctx, ce)
            pe = next((i for i in quoted_p if _strike(ctx, i) == k), None)
            if pe is None:
                pe = min(quoted_p, key=lambda i: abs(_strike(ctx, i) - spot))
        else:
            ce = self._pick_short(ctx, quoted_c, spot)
            pe = self._pick_short(ctx, quoted_p, spot)
        if ce is None or pe is None:
            return
        legs = {"CE": _Leg("CE", ce, Side.SELL, 0), "PE": _Leg("PE", pe, Side.SELL, 0)}
        if c.kind is PremiumKind.IRON_CONDOR:
            wce = self._pick_wing(ctx, quoted_c, ce, spot, +1)
            wpe = self._pick_wing(ctx, quoted_p, pe, spot, -1)
            if wce is None or wpe is None:
                return
            legs["CE_WING"] = _Leg("CE_WING", wce, Side.BUY, 0)
            legs["PE_WING"] = _Leg("PE_WING", wpe, Side.BUY, 0)
        for leg in legs.values():
            leg.qty = c.lots * self._lot(ctx, leg.idx)
        self.legs = legs
        self.expiry = expiry
        self.entries_today += 1
        self.premium_paise = 0
        self.best_profit = 0
        self._entry_net = ctx.pnl().net
        self._note(
            ctx,
            f"enter {c.kind.value} {expiry}: "
            + ", ".join(f"{r} {ctx.universe[leg.idx].symbol}" for r, leg in legs.items()),
        )
        wings = [leg for leg in legs.values() if not leg.is_short]
        if wings:
            self.phase = _Phase.HEDGING
            for leg in wings:
                leg.entry_ids = ctx.place(leg.idx, Side.BUY, leg.qty, tag=f"entry {leg.role}")
        else:
            self._sell_shorts(ctx)
        self._check_entry_done(ctx)

    def _sell_shorts(self, ctx: StrategyContext) -> None:
        self.phase = _Phase.SELLING
        for leg in self.legs.values():
            if leg.is_short and not leg.entry_ids:
                leg.entry_ids = ctx.place(leg.idx, Side.SELL, leg.qty, tag=f"entry {leg.role}")

    def _pick_short(self, ctx: StrategyContext, idxs: list[int], spot: int) -> int | None:
        c = self.config
        if c.short_premium_paise is not None:
            return min(idxs, key=lambda i: abs(ctx.mid_paise(i) - c.short_premium_paise))  # type: ignore[operator]
        assert c.short_delta is not None
        return _by_delta(ctx, idxs, c.short_delta)

    def _pick_wing(
        self, ctx: StrategyContext, idxs: list[int], short: int, spot: int, direction: int
    ) -> int | None:
        c = self.config
        k = _strike(ctx, short)
        beyond = [i for i in idxs if (_strike(ctx, i) - k) * direction > 0]
        if not beyond:
            return None
        if c.wing_distance_paise is not None:
            target = k + direction * c.wing_distance_paise
            return min(beyond, key=lambda i: abs(_strike(ctx, i) - target))
        assert c.wing_delta is not None
        return _by_delta(ctx, beyond, c.wing_delta)

    def _check_entry_done(self, ctx: StrategyContext) -> None:
        if self.phase is _Phase.HEDGING:
            wings = [leg for leg in self.legs.values() if not leg.is_short]
            if all(_ids_done(ctx, leg.entry_ids) for leg in wings):
                if any(leg.filled < leg.qty for leg in wings):
                    self._note(ctx, "hedges did not fill completely: not selling")
                    self._exit_all(ctx, "entry failed", reenter=False)
                    return
                self._sell_shorts(ctx)
        if self.phase is _Phase.SELLING and all(
            _ids_done(ctx, leg.entry_ids) for leg in self.legs.values()
        ):
            if any(leg.filled == 0 for leg in self.legs.values()):
                self._exit_all(ctx, "entry incomplete", reenter=False)
                return
            self.phase = _Phase.IN

    def _protect(self, ctx: StrategyContext, leg: _Leg, fill: OrderFillEvent) -> None:
        """A stop-loss (and optional target) for what this short fill opened."""
        c = self.config
        tick = ctx.universe[leg.idx].tick_paise
        price = fill.price_paise
        trigger: float | None
        if c.leg_stop_loss_paise is not None:
            trigger = price + c.leg_stop_loss_paise
        elif c.leg_stop_loss_pct is not None:
            trigger = price * (100 + c.leg_stop_loss_pct) / 100
        else:
            trigger = None
        stop_ids: list[str] = []
        if trigger is not None:
            trig = _ceil_tick(trigger, tick)
            limit = _ceil_tick(trig * (100 + c.stop_limit_buffer_pct) / 100, tick)
            stop_ids = ctx.place(
                leg.idx,
                Side.BUY,
                fill.qty,
                OrderType.STOPLOSS_LIMIT,
                price_paise=limit,
                trigger_price_paise=trig,
                tag=f"stop {leg.role}",
            )
            leg.stop_ids += stop_ids
            leg.exit_ids += stop_ids
        if c.leg_target_pct is not None:
            target = max(tick, _floor_tick(price * (100 - c.leg_target_pct) / 100, tick))
            target_ids = ctx.place(
                leg.idx,
                Side.BUY,
                fill.qty,
                OrderType.LIMIT,
                price_paise=target,
                tag=f"target {leg.role}",
            )
            leg.exit_ids += target_ids
            for s, t in zip(stop_ids, target_ids, strict=False):
                ctx.link_oco(s, t)

    # ---- exits -------------------------------------------------------------------------------

    def _open_legs(self) -> list[_Leg]:
        return [leg for leg in self.legs.values() if leg.open_qty > 0]

    def _exit_time_reached(self, ctx: StrategyContext, now: time) -> bool:
        c = self.config
        expiring = self.expiry == ctx.today()
        if expiring:
            if c.hold_to_expiry:
                return False
            t = c.expiry_day_exit_time or c.exit_time
        else:
            t = c.exit_time
        return t is not None and now >= t

    def _after_stop(self, ctx: StrategyContext) -> None:
        if any(leg.is_short and leg.open_qty > 0 for leg in self.legs.values()):
            return  # the other short still works
        self._exit_all(ctx, "all shorts stopped", reenter=True)

    def _exit_all(self, ctx: StrategyContext, why: str, *, reenter: bool) -> None:
        self._note(ctx, f"exit: {why}")
        self._reenter = reenter
        self.phase = _Phase.EXITING
        for leg in self.legs.values():
            for cid in leg.entry_ids + leg.exit_ids:
                ctx.cancel(cid)
        self._continue_exit(ctx)

    def _continue_exit(self, ctx: StrategyContext) -> None:
        """Buy back the shorts; once none is left, sell the hedges; then go flat."""
        pending = ctx.open_orders()
        if any(not o.tag.startswith(("exit", "stop", "target")) for o in pending):
            return  # entries still being cancelled
        working = {o.client_order_id for o in pending}
        now = ctx.now_ns()
        shorts = [leg for leg in self.legs.values() if leg.is_short and leg.open_qty > 0]
        wings = [leg for leg in self.legs.values() if not leg.is_short and leg.open_qty > 0]
        todo = shorts or wings
        side = Side.BUY if shorts else Side.SELL
        for leg in todo:
            # one attempt per instant: an exit the venue refused is tried on the next update
            if any(cid in working for cid in leg.exit_ids) or leg.exit_ns == now:
                continue
            leg.exit_ns = now
            leg.exit_ids += ctx.place(
                leg.idx, side, leg.open_qty, tag=f"exit {leg.role}", square_off=True
            )
        if todo or pending:
            return
        self.legs = {}
        self.premium_paise = 0
        now_t = self._time(ctx)
        c = self.config
        again = getattr(self, "_reenter", False) and self.entries_today <= c.max_reentries
        self.phase = _Phase.FLAT if again and now_t <= c.last_entry_time else _Phase.DONE
        self._note(ctx, f"flat ({self.phase.value})")

    # ---- adjustment --------------------------------------------------------------------------

    def _maybe_adjust(self, ctx: StrategyContext) -> None:
        c = self.config
        assert c.adjust_delta is not None
        shorts = {r: leg for r, leg in self.legs.items() if leg.is_short and leg.open_qty > 0}
        if len(shorts) != 2:
            return
        roles = list(shorts)
        deltas, _, _ = ctx.greeks_of([shorts[r].idx for r in roles])
        absd = {r: abs(d) for r, d in zip(roles, deltas, strict=True)}
        tested = max(roles, key=lambda r: absd[r])
        if absd[tested] < c.adjust_delta:
            return
        untested = shorts["PE" if tested == "CE" else "CE"]
        opts = ctx.universe.options(c.underlying, self.expiry)
        want = OptionType.CE if untested.role == "CE" else OptionType.PE
        cands = [
            int(i)
            for i in opts
            if ctx.universe[int(i)].option_type is want
            and ctx.bid_ask_paise(int(i))[0] > 0
            and int(i) != untested.idx
        ]
        new_idx = _by_delta(ctx, cands, absd[tested]) if cands else None
        if new_idx is None or new_idx == untested.idx:
            return
        self.adjustments_today += 1
        self._note(
            ctx,
            f"adjust: {tested} delta {absd[tested]:.2f}; roll {untested.role} "
            f"{ctx.universe[untested.idx].symbol} -> {ctx.universe[new_idx].symbol}",
        )
        for cid in untested.exit_ids:
            ctx.cancel(cid)
        qty = untested.open_qty
        untested.exit_ids += ctx.place(
            untested.idx, Side.BUY, qty, tag=f"exit {untested.role} roll", square_off=True
        )
        new = _Leg(untested.role, new_idx, Side.SELL, qty)
        # keep the old leg's record under another key until it is bought back
        self.legs[f"{untested.role}_rolled{self.adjustments_today}"] = untested
        self.legs[untested.role] = new
        new.entry_ids = ctx.place(new_idx, Side.SELL, qty, tag=f"entry {new.role} roll")


def _strike(ctx: StrategyContext, idx: int) -> int:
    return ctx.universe[idx].strike_paise or 0


def _by_delta(ctx: StrategyContext, idxs: list[int], target: float) -> int | None:
    deltas, _, ivs = ctx.greeks_of(idxs)
    best: tuple[float, int] | None = None
    for i, d, iv in zip(idxs, deltas, ivs, strict=True):
        if not iv or not math.isfinite(d):
            continue
        err = abs(abs(d) - target)
        if best is None or err < best[0]:
            best = (err, i)
    return None if best is None else best[1]


def _ids_done(ctx: StrategyContext, ids: list[str]) -> bool:
    for cid in ids:
        o = ctx.order(cid)
        if o is not None and o.is_open:
            return False
    return True


def _ceil_tick(value: float, tick: int) -> int:
    return max(tick, math.ceil(value / tick - 1e-9) * tick)


def _floor_tick(value: float, tick: int) -> int:
    return math.floor(value / tick + 1e-9) * tick
