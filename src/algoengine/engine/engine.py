"""The engine: one event loop that owns all trading state.

Inputs, all handled in the loop's thread and in time order: market slices from a feed, order
events from the broker, timers set by strategies, the OMS throttle's releases, and commands
(kill switch, square off, pause/resume, stop) posted from other threads or signal handlers.

For every market slice, in this order:

1. due timers, throttle releases and venue arrivals up to the slice's time run first (each at
   its own time);
2. the quote board takes the slice; a simulated venue is shown the quotes of the instruments
   we work orders in (see :mod:`algoengine.engine.venue_feed`); the venue's events go through
   the OMS to the portfolio, the risk engine and the owning strategy;
3. positions are marked to market; the risk engine gets the day's P&L and the portfolio
   Greeks; a strategy whose loss for the day reaches the limit is squared off and stopped;
4. strategies see the slice (``on_slice``, then ``on_bar`` for each index bar that closed);
   their orders go out at the slice's time, and whatever the venue does with them at that
   instant is processed before the next slice.

At each session's end the venue cancels working orders (market close), open options expiring
that day are settled at intrinsic value against the index's last value (long in-the-money
options pay the exercise STT), and the day's equity point is written.

Backtests use a :class:`SimulatedClock` and run as fast as the loop goes; paper trading uses a
:class:`RealClock` (optionally accelerated) and waits for each slice's time.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import queue
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Protocol

import numpy as np

from algoengine.domain.events import OrderAccepted, OrderEvent, OrderFillEvent
from algoengine.domain.instruments import InstrumentKind
from algoengine.domain.market_data import Bar, MarketSlice, Universe
from algoengine.domain.orders import OrderType, Side, TimeInForce
from algoengine.engine.clock import Clock, RealClock, SimulatedClock
from algoengine.engine.commands import (
    Command,
    KillSwitch,
    MarketStale,
    Pause,
    Resume,
    SquareOff,
    StopEngine,
    StopStrategy,
)
from algoengine.engine.oms import (
    ManagedOrder,
    OrderManager,
    OrderVenue,
    PreTradeCheck,
    ThrottleConfig,
)
from algoengine.engine.portfolio import PnL, Portfolio, Position
from algoengine.engine.venue_feed import VenueFeeder
from algoengine.errors import TemporaryBrokerError, ValidationError
from algoengine.market.calendar import ist_date
from algoengine.market.quotes import QuoteBoard
from algoengine.strategies.base import Strategy

__all__ = ["Engine", "EngineConfig", "FillRecord", "StrategyState"]

log = logging.getLogger(__name__)

ist_day = ist_date  # the IST trading date of a UTC epoch-ns timestamp


class Venue(OrderVenue, Protocol):
    """The broker as the engine sees it: the OMS's requests plus the events it reports."""

    def drain_events(self) -> list[OrderEvent]: ...


class ChargesLike(Protocol):
    def fill_charges(
        self, side: Side, price_paise: int, qty: int, day: date, first_fill_of_order: bool
    ) -> Any: ...

    def exercise_charges(self, intrinsic_value_paise: int, day: date) -> Any: ...


class CalendarLike(Protocol):
    def session_close_ns(self, day: date) -> int: ...

    def years_to_expiry(self, ts_ns: int, expiry: date) -> float: ...


@dataclass(frozen=True, kw_only=True, slots=True)
class EngineConfig:
    """Settings of the event loop.

    Parameters
    ----------
    run_code
        1-8 letters/digits in every client order id of the run (unique per run).
    rate
        Risk-free rate for Greeks and implied volatility (decimal per year).
    throttle
        The OMS order-rate limits per exchange segment.
    max_strategy_errors
        A strategy whose callbacks raise this many times is stopped (its orders cancelled).
    daily_loss_limit_paise
        A strategy whose net P&L for the day falls to minus this is squared off and stopped
        (``None``: no limit here; the risk engine may still refuse new exposure).
    """

    run_code: str = "AE"
    rate: float = 0.065
    throttle: ThrottleConfig = field(default_factory=ThrottleConfig)
    max_strategy_errors: int = 20
    daily_loss_limit_paise: int | None = None


class StrategyState:
    RUNNING = "running"
    PAUSED = "paused"
    STOPPED = "stopped"


@dataclass(frozen=True, kw_only=True, slots=True)
class _Call(Command):
    """Run a function in the loop's thread (see :meth:`Engine.call_soon`)."""

    fn: Callable[[], object]


@dataclass(slots=True)
class FillRecord:
    """A fill as the reports see it (also expiry settlements, ``settlement=True``)."""

    ts_ns: int
    strategy_id: str
    client_order_id: str
    token: str
    symbol: str
    side: Side
    qty: int
    price_paise: int
    charges_paise: int
    tag: str
    settlement: bool = False
    trade_id: str = ""


@dataclass(slots=True)
class _Slot:
    strategy: Strategy
    ctx: _Context
    state: str = StrategyState.RUNNING
    recover_pending: bool = False
    errors: int = 0
    stop_reason: str | None = None


class Engine:
    """The event loop and everything it owns (see the module docstring).

    Parameters
    ----------
    universe
        The instruments of the feed.
    venue
        The broker (the paper exchange, or the Angel One adapter).
    strategies
        The strategies to run.
    calendar
        Session times and time to expiry.
    config
        Loop settings.
    risk
        The pre-trade check (``None``: none). It is told of fills, orders, P&L and Greeks if it
        has the methods ``on_fill``, ``on_order_open``, ``on_order_done``, ``set_daily_pnl``,
        ``set_portfolio_greeks``, ``set_kill_switch``, ``start_day``.
    charges
        The charges model (``None``: no charges).
    chain_factory
        ``(engine, underlying, expiry) -> chain view`` for ``ctx.chain`` (None: unsupported).
    clock
        A SimulatedClock (backtest, the default) or a RealClock (paper, live).
    journal
        Where every order, order event, fill, position change, P&L minute and run start/stop
        goes (``algoengine.persistence.journal.Journal``: O(1) puts, written in batches by its
        own thread); ``None``: nothing is stored. While it reports an outage with
        ``allow_new_positions() == False`` the pre-trade check refuses orders that open or add
        to a position (``JOURNAL_OUTAGE``); exits still pass.
    """

    def __init__(
        self,
        *,
        universe: Universe,
        venue: Venue,
        strategies: Sequence[Strategy],
        calendar: CalendarLike,
        config: EngineConfig | None = None,
        risk: PreTradeCheck | None = None,
        charges: ChargesLike | None = None,
        chain_factory: Callable[[Engine, str, date], object] | None = None,
        clock: Clock | None = None,
        journal: Any | None = None,
    ) -> None:
        self.config = config or EngineConfig()
        self.journal = journal
        # scale-out: ``strategy_id -> bool``, True while this task holds the strategy's lease
        # (checked before every order: a task that cannot renew stops sending first)
        self.lease_guard: Callable[[str], bool] | None = None
        self.universe = universe
        self.venue = venue
        self.calendar = calendar
        self.risk = risk
        self.charges = charges
        self.clock: Clock = clock or SimulatedClock()
        self._chain_factory = chain_factory
        self.board = QuoteBoard(universe)
        self.ltp = self.board.ltp  # the board's arrays, for the hot paths below
        self.bid = self.board.bid
        self.ask = self.board.ask
        self.bid_qty = self.board.bid_qty
        self.ask_qty = self.board.ask_qty
        self._chains: dict[tuple[str, date], tuple[int, object]] = {}
        self.portfolio = Portfolio()
        self.fills: list[FillRecord] = []
        self.equity: list[tuple[int, int]] = []  # (ts_ns, net P&L paise) per slice
        self.kill_switch = False
        self.market_stale = False  # see MarketStale: opening orders refused while True
        self.oms = OrderManager(
            venue,
            check=self,
            sink=self._on_order_event,
            run_code=self.config.run_code,
            throttle=self.config.throttle,
            on_sent=journal.put_order if journal is not None else None,
        )
        self._tokens = [inst.token for inst in universe]
        self._feeder = (
            VenueFeeder(venue, self._tokens, universe.tick_paise)  # type: ignore[arg-type]
            if hasattr(venue, "on_depth")
            else None
        )
        self._timers: list[tuple[int, int, str, str]] = []
        self._seq = itertools.count()
        self._commands: queue.Queue[tuple[Command, Callable[[str], None] | None]] = queue.Queue()
        self._slots: dict[str, _Slot] = {}
        for s in strategies:
            if s.strategy_id in self._slots:
                raise ValidationError("strategy_id", s.strategy_id, "two strategies share it")
            self._slots[s.strategy_id] = _Slot(s, _Context(self, s.strategy_id))
        self._day: date | None = None
        self._started = False
        self._stopping: str | None = None
        self._spot_idx = {
            inst.underlying: i
            for i, inst in enumerate(universe)
            if inst.kind is InstrumentKind.INDEX
        }
        self._is_index = np.zeros(len(universe), dtype=np.bool_)
        self._is_index[list(self._spot_idx.values())] = True
        self._unit_greeks: dict[int, tuple[int, float, float]] = {}
        self._pnl_minute = -1
        self._restored = False
        self._bar_state: dict[int, list[int]] = {}
        self.events_processed = 0  # market rows seen (quotes): the throughput figure
        self.slices_processed = 0

    # ---- public --------------------------------------------------------------------------

    def call_soon(self, fn: Callable[[], object]) -> None:
        """Run ``fn()`` in the loop's thread at the next chance (thread-safe): how other
        threads (the lease heartbeat) change trading state without a lock."""
        self.post(_Call(fn=fn, issued_by="call_soon"))

    def post(self, command: Command, on_done: Callable[[str], None] | None = None) -> None:
        """Queue a command for the loop (safe from any thread or a signal handler).

        ``on_done`` is called in the loop's thread with the result text once the command has
        been carried out (the command poller uses it to mark the stored command acted)."""
        self._commands.put((command, on_done))

    def run(self, feed: Iterable[MarketSlice], *, until_ns: int | None = None) -> None:
        """Run the loop over a feed to its end (or ``until_ns``, or a StopEngine command)."""
        self._start()
        real = self.clock if isinstance(self.clock, RealClock) else None
        for market in feed:
            if until_ns is not None and market.ts_ns > until_ns:
                break
            if real is not None:
                self._wait_real(real, market.ts_ns)
            self._run_commands()
            if self._stopping:
                break
            day = ist_day(market.ts_ns)
            if day != self._day:
                if self._day is not None:
                    self._end_session(self._day)
                self._start_session(day, market.ts_ns)
            self._run_until(market.ts_ns)
            self._on_slice(market)
            self._run_commands()
            if self._stopping:
                break
        if self._day is not None and not self._stopping:
            self._end_session(self._day)
        self._finish(self._stopping or "feed ended")

    def restore(self, *, orders: Sequence[ManagedOrder], fills: Sequence[FillRecord]) -> None:
        """Before :meth:`run`: take over a crashed run's reconciled state. Fills are replayed
        into the portfolio (with the charges they carried) and the risk engine's positions;
        orders are tracked again by the OMS (working ones counted by the risk engine), so that
        their fills, cancels and linked exits work as if this process had sent them.
        Strategies get ``on_recover`` at the start of the first session the run resumes in."""
        set_position = getattr(getattr(self.risk, "checker", None), "set_position", None)
        for f in fills:
            idx = self.universe.index_of(f.token)
            self.portfolio.add_fill(
                f.strategy_id, idx, f.token, f.side, f.qty, f.price_paise, f.charges_paise
            )
            self.fills.append(f)
        if set_position is not None:
            for i in {self.universe.index_of(f.token) for f in fills}:
                set_position(i, self.portfolio.net_qty(i))
        opened = getattr(self.risk, "on_order_open", None)
        for o in orders:
            self.oms.adopt(o)
            if o.is_open and o.status.value != "NEW" and opened is not None:
                opened(o.idx, o.side, o.remaining_qty, o.client_order_id)
        self._restored = True

    @property
    def stop_requested(self) -> str | None:
        """Why a StopEngine ended (or is ending) the run; None if none was posted."""
        return self._stopping

    def state(self, strategy_id: str) -> str:
        return self._slots[strategy_id].state

    def strategy_ids(self) -> list[str]:
        return list(self._slots)

    # ---- scale-out: strategies moving between engine tasks ---------------------------------

    def adopt_strategy(
        self,
        strategy: Strategy,
        *,
        orders: Sequence[ManagedOrder] = (),
        fills: Sequence[FillRecord] = (),
    ) -> None:
        """Take a strategy over while running (in the loop's thread: post it through a
        callable command or call it before :meth:`run`): its reconciled orders and fills are
        restored as in :meth:`restore`, then ``on_start``, ``on_session_start`` (if a session
        is under way) and ``on_recover`` run."""
        sid = strategy.strategy_id
        if sid in self._slots and self._slots[sid].state != StrategyState.STOPPED:
            raise ValidationError("strategy_id", sid, "already running here")
        slot = _Slot(strategy, _Context(self, sid))
        self._slots[sid] = slot
        restored = self._restored
        self.restore(orders=orders, fills=fills)
        self._restored = restored  # restore() is for a whole run; here only this strategy
        if self.journal is not None:
            from algoengine.config import to_dict

            cfg = getattr(strategy, "config", None)
            config = to_dict(cfg) if hasattr(cfg, "__dataclass_fields__") else {}
            self.journal.put_run_start(sid, started_ns=time.time_ns(), config=config)
        if self._started and self._day is not None:
            self._call(slot, "on_start")
            self._call(slot, "on_session_start", self._day)
            self._call(slot, "on_recover")
        else:  # before the run: on_start with the others, on_recover when the session starts
            slot.recover_pending = True

    def drop_strategy(self, strategy_id: str, reason: str) -> None:
        """Stop running a strategy WITHOUT touching its orders (its lease was lost or
        released: another task owns it, its orders and its positions now). Nothing more is
        sent for it from here; its events are ignored; its positions leave this portfolio."""
        slot = self._slots.pop(strategy_id, None)
        if slot is None:
            return
        slot.state = StrategyState.STOPPED
        slot.stop_reason = reason
        self.oms.forget_strategy(strategy_id)
        for key in [k for k in self.portfolio.positions if k[0] == strategy_id]:
            del self.portfolio.positions[key]
        log.warning("strategy dropped", extra={"strategy_id": strategy_id, "reason": reason})

    # ---- time ----------------------------------------------------------------------------

    def now_ns(self) -> int:
        return self.clock.now_ns()

    def _set_time(self, ts_ns: int) -> None:
        if isinstance(self.clock, SimulatedClock) and ts_ns > self.clock.now_ns():
            self.clock.advance_to(ts_ns)

    def _wait_real(self, clock: RealClock, ts_ns: int) -> None:
        """Wait for the market's next instant on a real clock, running commands meanwhile;
        with a venue of its own process (no simulated book here), also its reports, timers
        and throttle releases every 50 ms, so that a fill is seen when it happens, not at the
        next bar."""
        next_poll = 0.0
        while True:
            delay = clock.real_delay_s(ts_ns)
            if delay <= 0 or self._stopping:
                return
            if not self._commands.empty():
                self._run_commands()  # commands run while the loop waits for the market
                continue
            if self._feeder is None and self._day is not None and time.monotonic() >= next_poll:
                self._run_until(self.now_ns())
                next_poll = time.monotonic() + 0.05
            time.sleep(min(delay, 0.02))

    def _run_until(self, ts_ns: int) -> None:
        """Run timers, throttle releases and venue arrivals due before ``ts_ns``, each at its
        own time."""
        while True:
            due = []
            if self._timers and self._timers[0][0] < ts_ns:
                due.append(self._timers[0][0])
            release = self.oms.next_release_ns(self.now_ns())
            if release is not None and release < ts_ns:
                due.append(max(release, self.now_ns()))
            if not due:
                break
            at = min(due)
            self._set_time(at)
            self.oms.release(at)
            while self._timers and self._timers[0][0] <= at:
                _, _, sid, name = heapq.heappop(self._timers)
                slot = self._slots.get(sid)
                if slot is not None and slot.state != StrategyState.STOPPED:
                    self._call(slot, "on_timer", name)
            self._pump(at)
        self._set_time(ts_ns)
        self.oms.release(ts_ns)
        self._pump(ts_ns)

    def _pump(self, ts_ns: int) -> None:
        """Let the venue catch up to ``ts_ns`` and apply its events (until it is quiet)."""
        for _ in range(1000):
            if self._feeder is not None:
                self._feeder.venue.advance(max(ts_ns, self.now_ns()))
            try:
                events = self.venue.drain_events()
            except TemporaryBrokerError as exc:  # the venue's cursor did not move: next time
                log.warning("venue unreachable", extra={"error": str(exc)})
                return
            if not events:
                return
            self.oms.on_events(events, ts_ns)
            self.oms.release(ts_ns)

    # ---- sessions ------------------------------------------------------------------------

    def _start(self) -> None:
        if self._started:
            return
        self._started = True
        if self.journal is not None:
            from algoengine.config import to_dict

            now = time.time_ns()  # when the run started, by the wall clock
            for sid, slot in self._slots.items():
                cfg = getattr(slot.strategy, "config", None)
                config = (
                    to_dict(cfg) if cfg is not None and hasattr(cfg, "__dataclass_fields__") else {}
                )
                self.journal.put_run_start(sid, started_ns=now, config=config)
        for slot in self._slots.values():
            self._call(slot, "on_start")

    def _start_session(self, day: date, ts_ns: int) -> None:
        self._day = day
        self._set_time(ts_ns)
        self.portfolio.start_day()
        start_day = getattr(self.risk, "start_day", None)
        if start_day is not None:
            start_day(day)
        for slot in self._slots.values():
            if slot.state != StrategyState.STOPPED:
                self._call(slot, "on_session_start", day)
        for slot in self._slots.values():  # once, when the clock shows the session resumed
            if self._restored or slot.recover_pending:
                slot.recover_pending = False
                self._call(slot, "on_recover")
        self._restored = False

    def _end_session(self, day: date) -> None:
        close = self.calendar.session_close_ns(day)
        if isinstance(self.clock, RealClock) and self._feeder is None and not self._stopping:
            # a venue of its own process closes the session on its clock: wait for it
            self._wait_real(self.clock, close + 2_000_000_000)
        self._run_until(max(close, self.now_ns()))
        for slot in self._slots.values():
            if slot.state != StrategyState.STOPPED:
                self._call(slot, "on_session_end", day)
        self._run_until(max(close, self.now_ns()) + 1)
        self._settle_expiries(day)
        self._record_equity(self.now_ns())

    def _settle_expiries(self, day: date) -> None:
        """Close open options expiring today at intrinsic value against the index's last
        value (the exchange settles on the closing index value; the feed's last is ours)."""
        for pos in list(self.portfolio.open_positions()):
            inst = self.universe[pos.idx]
            if inst.kind is not InstrumentKind.OPTION or inst.expiry != day:
                continue
            spot = (
                int(self.ltp[self._spot_idx[inst.underlying]])
                if inst.underlying in self._spot_idx
                else 0
            )
            if spot <= 0:
                log.error(
                    "no index value to settle an expiring option", extra={"token": inst.token}
                )
                continue
            strike = inst.strike_paise or 0
            intrinsic = max(0, spot - strike) if inst.option_type == "CE" else max(0, strike - spot)
            side = Side.SELL if pos.qty > 0 else Side.BUY
            qty = abs(pos.qty)
            charges = 0
            if self.charges is not None and pos.qty > 0 and intrinsic > 0:
                charges = int(self.charges.exercise_charges(intrinsic * qty, day).total)
            self.portfolio.add_fill(
                pos.strategy_id, pos.idx, inst.token, side, qty, intrinsic, charges
            )
            pos.mark_paise = intrinsic
            self.fills.append(
                FillRecord(
                    ts_ns=self.now_ns(),
                    strategy_id=pos.strategy_id,
                    client_order_id="",
                    token=inst.token,
                    symbol=inst.symbol,
                    side=side,
                    qty=qty,
                    price_paise=intrinsic,
                    charges_paise=charges,
                    tag="expiry settlement",
                    settlement=True,
                )
            )
            on_fill = getattr(self.risk, "on_fill", None)
            if on_fill is not None:
                on_fill(pos.idx, qty if side is Side.BUY else -qty)
            if self.journal is not None:
                self.journal.put_fill(self.fills[-1])
                self.journal.put_position(pos, self.now_ns())

    def _finish(self, reason: str) -> None:
        """End of the run. At the feed's end strategies stop as usual (their orders are
        cancelled). On a StopEngine (a signal, an operator) the process is going away but the
        account is not: orders not yet sent are dropped, while working orders (the stop-losses
        protecting open positions) stay at the venue for the next start to reconcile."""
        now = self.now_ns()
        if self._stopping:
            for order in self.oms.open_orders():
                if order.status.value == "NEW":
                    self.oms.cancel(order.client_order_id, now)
            for slot in self._slots.values():
                if slot.state != StrategyState.STOPPED:
                    self._call(slot, "on_stop")
                    slot.state = StrategyState.STOPPED
                    slot.stop_reason = reason
        else:
            for slot in self._slots.values():
                if slot.state != StrategyState.STOPPED:
                    self._stop_strategy(slot, reason)
        self._pump(now)
        if self._day is not None:
            self._record_equity(now)
        if self.journal is not None:
            self._journal_pnl(now)
            self.journal.put_run_stop(stopped_ns=now, reason=reason)

    # ---- market --------------------------------------------------------------------------

    def _on_slice(self, m: MarketSlice) -> None:
        # on a real clock the loop runs a little after the slice's time: act at "now"
        ts = max(m.ts_ns, self.now_ns())
        self.board.apply(m)
        self.events_processed += len(m.idx)
        self.slices_processed += 1
        if self._feeder is not None:
            self._show_venue(m, ts)
            self._pump(ts)
        self._mark_and_check(ts)
        bars = self._index_bars(m) if m.bar_close else self._tick_bars(m)
        for slot in list(self._slots.values()):
            if slot.state != StrategyState.RUNNING:
                continue
            self._call(slot, "on_slice", m)
            for bar in bars:
                if slot.state == StrategyState.RUNNING:
                    self._call(slot, "on_bar", bar)
        self.oms.release(ts)
        self._pump(ts)
        self._record_equity(ts)

    def _show_venue(self, m: MarketSlice, ts: int) -> None:
        assert self._feeder is not None
        working: dict[int, list[ManagedOrder]] = {}
        for o in self.oms.open_orders():
            if o.status.value != "NEW":
                working.setdefault(o.idx, []).append(o)
        if working:
            self._feeder.show_slice(m, ts, working)

    def _index_rows(self, m: MarketSlice) -> list[int]:
        """Rows of the slice that quote an index."""
        rows: list[int] = np.flatnonzero(self._is_index[m.idx]).tolist()
        return rows

    def _index_bars(self, m: MarketSlice) -> list[Bar]:
        bars = []
        for k in self._index_rows(m):
            inst = self.universe[int(m.idx[k])]
            c = int(m.ltp_paise[k])
            o = int(m.open_paise[k]) if m.open_paise is not None else c
            h = int(m.high_paise[k]) if m.high_paise is not None else c
            lo = int(m.low_paise[k]) if m.low_paise is not None else c
            bars.append(
                Bar(inst.token, m.ts_ns - 60_000_000_000, 60, o, h, lo, c, int(m.volume[k]))
            )
        return bars

    def _tick_bars(self, m: MarketSlice) -> list[Bar]:
        """Minute bars of the indices built from ticks: a bar is complete when the first tick
        of a later minute arrives."""
        bars = []
        minute_ns = 60_000_000_000
        for k in self._index_rows(m):
            i = int(m.idx[k])
            px = int(m.ltp_paise[k])
            if px <= 0:
                continue
            start = m.ts_ns - m.ts_ns % minute_ns
            st = self._bar_state.get(i)
            if st is not None and st[0] != start:
                token = self._tokens[i]
                bars.append(Bar(token, st[0], 60, st[1], st[2], st[3], st[4], 0))
                st = None
            if st is None:
                self._bar_state[i] = [start, px, px, px, px]
            else:
                st[2] = max(st[2], px)
                st[3] = min(st[3], px)
                st[4] = px
        return bars

    def mark_price(self, idx: int) -> int:
        """Mid when both sides are quoted, else the last price."""
        b, a = int(self.bid[idx]), int(self.ask[idx])
        if b > 0 and a > 0:
            return (b + a) // 2
        return int(self.ltp[idx])

    def _mark_and_check(self, ts_ns: int) -> None:
        open_pos = self.portfolio.open_positions()
        for pos in open_pos:
            mark = self.mark_price(pos.idx)
            if mark > 0:
                pos.mark_paise = mark
        if open_pos:
            self._update_greeks(open_pos)
        set_pnl = getattr(self.risk, "set_daily_pnl", None)
        if set_pnl is not None:
            set_pnl(self.portfolio.day_pnl())
        set_greeks = getattr(self.risk, "set_portfolio_greeks", None)
        if set_greeks is not None:
            d, _, v, _ = self.portfolio.greeks()
            set_greeks(d, v)
        limit = self.config.daily_loss_limit_paise
        if limit is not None:
            total = self.portfolio.day_pnl()
            if total <= -limit and any(
                s.state != StrategyState.STOPPED for s in self._slots.values()
            ):
                log.warning(
                    "daily loss limit reached by the portfolio: squaring off everything",
                    extra={"day_pnl_paise": total},
                )
                self.square_off(None, ts_ns)
                for slot in self._slots.values():
                    self._stop_strategy(slot, f"portfolio daily loss {total} paise")
            for slot in self._slots.values():
                if slot.state == StrategyState.STOPPED:
                    continue
                day_pnl = self.portfolio.day_pnl(slot.strategy.strategy_id)
                if day_pnl <= -limit:
                    log.warning(
                        "daily loss limit reached: squaring off and stopping",
                        extra={"strategy_id": slot.strategy.strategy_id, "day_pnl_paise": day_pnl},
                    )
                    self.square_off(slot.strategy.strategy_id, ts_ns)
                    self._stop_strategy(slot, f"daily loss {day_pnl} paise reached the limit")

    def _update_greeks(self, positions: Sequence[Position]) -> None:
        opts = [p for p in positions if self.universe[p.idx].kind is InstrumentKind.OPTION]
        if not opts:
            return
        delta, vega, _ = self.greeks_of([p.idx for p in opts])
        for p, d, v in zip(opts, delta, vega, strict=True):
            p.delta, p.vega = d, v

    def chain(self, underlying: str, expiry: date) -> object:
        """The chain view of one expiry as of now (computed at most once per instant)."""
        key = (underlying, expiry)
        now = self.now_ns()
        cached = self._chains.get(key)
        if cached is not None and cached[0] == now:
            return cached[1]
        if self._chain_factory is not None:
            view = self._chain_factory(self, underlying, expiry)
        else:
            from algoengine.market.chain import ChainView

            if cached is not None and isinstance(cached[1], ChainView):
                view = cached[1]
                view.update(self.board, now)
            else:
                view = ChainView.build(
                    self.universe,
                    self.board,
                    underlying,
                    expiry,
                    now,
                    self.calendar,  # type: ignore[arg-type]
                    self.config.rate,
                )
        self._chains[key] = (now, view)
        return view

    def unit_greeks(self, idx: int) -> tuple[float, float]:
        """(delta, vega) per unit of one option at its current mark, from the scalar kernels
        (implied volatility from the mark, then the Greeks; 0 volatility where the mark does
        not give one), cached for the current instant: the pre-trade check's per-order cost."""
        from algoengine import greeks as gk

        now = self.now_ns()
        hit = self._unit_greeks.get(idx)
        if hit is not None and hit[0] == now:
            return hit[1], hit[2]
        inst = self.universe[idx]
        spot_idx = self._spot_idx.get(inst.underlying)
        S = (int(self.ltp[spot_idx]) if spot_idx is not None else 0) / 100.0
        K = (inst.strike_paise or 0) / 100.0
        T = self.calendar.years_to_expiry(now, inst.expiry) if inst.expiry else 0.0
        flag = "c" if inst.option_type == "CE" else "p"
        d = v = 0.0
        if S > 0 and K > 0:
            try:
                iv = gk.implied_vol(self.mark_price(idx) / 100.0, flag, S, K, T, self.config.rate)
            except ValueError:
                iv = 0.0
            g = gk.greeks(flag, S, K, T, self.config.rate, iv)
            d, v = g.delta, g.vega
        self._unit_greeks[idx] = (now, d, v)
        return d, v

    def greeks_of(self, idxs: Sequence[int]) -> tuple[list[float], list[float], list[float]]:
        """(delta, vega, iv) per unit for options at their current marks (NaN-free: 0 where
        the quote does not give a volatility)."""
        from algoengine import greeks as gk

        n = len(idxs)
        if n == 0:
            return [], [], []
        now = self.now_ns()
        S = np.empty(n)
        K = np.empty(n)
        T = np.empty(n)
        P = np.empty(n)
        w = np.empty(n)
        for k, i in enumerate(idxs):
            inst = self.universe[i]
            spot_idx = self._spot_idx.get(inst.underlying)
            S[k] = (self.ltp[spot_idx] if spot_idx is not None else 0) / 100.0
            K[k] = (inst.strike_paise or 0) / 100.0
            T[k] = self.calendar.years_to_expiry(now, inst.expiry) if inst.expiry else 0.0
            P[k] = self.mark_price(i) / 100.0
            w[k] = 1.0 if inst.option_type == "CE" else -1.0
        r = self.config.rate
        with np.errstate(all="ignore"):
            iv = gk.implied_vol(P, w, S, K, T, r)
            iv = np.where(np.isfinite(iv) & (iv > 0), iv, 0.0)
            g = gk.greeks(w, S, K, np.maximum(T, 0.0), r, iv)
        delta = np.nan_to_num(g.delta).tolist()
        vega = np.nan_to_num(g.vega).tolist()
        return delta, vega, iv.tolist()

    def _journal_pnl(self, ts_ns: int) -> None:
        """One P&L row per strategy for the minute of ``ts_ns`` (the latest state wins)."""
        assert self.journal is not None
        minute = ts_ns - ts_ns % 60_000_000_000
        for sid in self._slots:
            self.journal.put_pnl(self.portfolio.pnl(sid), strategy_id=sid, ts_ns=minute)

    def _record_equity(self, ts_ns: int) -> None:
        if self.journal is not None and ts_ns // 60_000_000_000 != self._pnl_minute:
            self._pnl_minute = ts_ns // 60_000_000_000
            self._journal_pnl(ts_ns)
        net = self.portfolio.pnl().net
        if self.equity and self.equity[-1][0] == ts_ns:
            self.equity[-1] = (ts_ns, net)
        else:
            self.equity.append((ts_ns, net))

    # ---- orders --------------------------------------------------------------------------

    def check(self, order: ManagedOrder, ts_ns: int) -> tuple[str, str] | None:
        """The pre-trade check of every order slice: the engine's own guards (kill switch,
        stopped strategy), then the risk engine's."""
        if self.lease_guard is not None and not self.lease_guard(order.strategy_id):
            return "LEASE_LOST", f"this task no longer holds the lease of {order.strategy_id}"
        if self.kill_switch and not order.square_off:
            return "KILL_SWITCH", "kill switch engaged: only square-off orders pass"
        slot = self._slots.get(order.strategy_id)
        if slot is not None and slot.state == StrategyState.STOPPED and not order.square_off:
            return "STRATEGY_STOPPED", f"strategy {order.strategy_id} is stopped"
        if not order.square_off:
            outage = self.journal is not None and not self.journal.allow_new_positions()
            if (outage or self.market_stale) and self._opening(order):  # cheap tests first
                if outage:
                    return "JOURNAL_OUTAGE", "database unreachable: not opening new positions"
                return "STALE_MARKET", "market feed stale: not opening new positions"
        if self.risk is not None:
            return self.risk.check(order, ts_ns)
        return None

    def _opening(self, order: ManagedOrder) -> bool:
        """Whether the order opens or adds to its strategy's position in the instrument."""
        pos = self.portfolio.get(order.strategy_id, order.idx)
        return pos is None or pos.qty == 0 or (pos.qty > 0) == (order.side is Side.BUY)

    def place(
        self,
        strategy_id: str,
        idx: int,
        side: Side,
        qty: int,
        order_type: OrderType,
        *,
        price_paise: int | None = None,
        trigger_price_paise: int | None = None,
        tif: TimeInForce = TimeInForce.DAY,
        tag: str = "",
        square_off: bool = False,
    ) -> list[str]:
        if not 0 <= idx < len(self.universe):
            raise ValidationError("idx", idx, "not an index of the universe")
        ts = self.now_ns()
        if self._feeder is not None:  # the venue's book must show the market we act on
            self._feeder.show_quote(
                idx,
                ts,
                int(self.bid[idx]),
                int(self.bid_qty[idx]),
                int(self.ask[idx]),
                int(self.ask_qty[idx]),
                unless_shown=True,
            )
        return self.oms.submit(
            strategy_id=strategy_id,
            idx=idx,
            instrument=self.universe[idx],
            side=side,
            qty=qty,
            order_type=order_type,
            ts_ns=ts,
            price_paise=price_paise,
            trigger_price_paise=trigger_price_paise,
            tif=tif,
            tag=tag,
            square_off=square_off,
        )

    def square_off(self, strategy_id: str | None, ts_ns: int) -> None:
        """Cancel orders and close positions: shorts are bought back before longs are sold
        (a hedged position is never left naked)."""
        self.oms.cancel_all(ts_ns, strategy_id)
        positions = self.portfolio.open_positions(strategy_id)
        for pos in sorted(positions, key=lambda p: p.qty):  # shorts (qty < 0) first
            side = Side.BUY if pos.qty < 0 else Side.SELL
            self.place(
                pos.strategy_id,
                pos.idx,
                side,
                abs(pos.qty),
                OrderType.MARKET,
                tag="square off",
                square_off=True,
            )

    def _on_order_event(self, event: OrderEvent, order: ManagedOrder) -> None:
        """Route an applied order event: portfolio, risk, then the owning strategy."""
        if isinstance(event, OrderFillEvent):
            first = order.filled_qty == event.qty
            charges = 0
            if self.charges is not None:
                day = ist_day(event.ts_ns)
                charges = int(
                    self.charges.fill_charges(
                        order.side, event.price_paise, event.qty, day, first
                    ).total
                )
            self.portfolio.add_fill(
                order.strategy_id,
                order.idx,
                order.instrument.token,
                order.side,
                event.qty,
                event.price_paise,
                charges,
            )
            self.fills.append(
                FillRecord(
                    ts_ns=event.ts_ns,
                    strategy_id=order.strategy_id,
                    client_order_id=order.client_order_id,
                    token=order.instrument.token,
                    symbol=order.instrument.symbol,
                    side=order.side,
                    qty=event.qty,
                    price_paise=event.price_paise,
                    charges_paise=charges,
                    tag=order.tag,
                    trade_id=event.trade_id,
                )
            )
            on_fill = getattr(self.risk, "on_fill", None)
            if on_fill is not None:
                signed = event.qty if order.side is Side.BUY else -event.qty
                on_fill(order.idx, signed, order.client_order_id)
        self._risk_order_state(event, order)
        if self.journal is not None:
            self.journal.put_event(event, order)
            if isinstance(event, OrderFillEvent):
                self.journal.put_fill(self.fills[-1])
                pos = self.portfolio.get(order.strategy_id, order.idx)
                if pos is not None:
                    self.journal.put_position(pos, event.ts_ns)
        slot = self._slots.get(order.strategy_id)
        if slot is None or slot.state == StrategyState.STOPPED:
            return
        self._call(slot, "on_order_update", event, order)
        if isinstance(event, OrderFillEvent):
            self._call(slot, "on_fill", event, order)

    def _risk_order_state(self, event: OrderEvent, order: ManagedOrder) -> None:
        """Tell the risk engine when an order starts and stops working at the venue."""
        if self.risk is None:
            return
        cid = order.client_order_id
        if isinstance(event, OrderAccepted):
            opened = getattr(self.risk, "on_order_open", None)
            if opened is not None:
                opened(order.idx, order.side, order.remaining_qty, cid)
        elif order.status.is_terminal:
            done = getattr(self.risk, "on_order_done", None)
            if done is not None:
                done(order.idx, order.side, order.remaining_qty, cid)

    # ---- commands ------------------------------------------------------------------------

    def _run_commands(self) -> None:
        while True:
            try:
                cmd, on_done = self._commands.get_nowait()
            except queue.Empty:
                return
            log.info("command", extra={"command": type(cmd).__name__, "issued_by": cmd.issued_by})
            try:
                result = self.handle(cmd)
            except ValidationError as exc:  # e.g. an unknown strategy: refused, not fatal
                result = f"refused: {exc}"
                log.warning(
                    "command refused", extra={"command": type(cmd).__name__, "error": str(exc)}
                )
            if on_done is not None:
                on_done(result)

    def handle(self, cmd: Command) -> str:
        """Carry out one command now (in the loop's thread); returns what was done."""
        ts = self.now_ns()
        result = ""
        if isinstance(cmd, KillSwitch):
            self.kill_switch = cmd.on
            set_kill = getattr(self.risk, "set_kill_switch", None)
            if set_kill is not None:
                set_kill(cmd.on)
            if cmd.on:
                n = self.oms.cancel_all(ts)
                result = f"kill switch on: {n} orders cancelled, new orders blocked"
            else:
                result = "kill switch off"
        elif isinstance(cmd, SquareOff):
            n = len(self.portfolio.open_positions(cmd.strategy_id))
            self.square_off(cmd.strategy_id, ts)
            result = f"square off: {n} positions closing"
        elif isinstance(cmd, Pause | Resume):
            slots = self._selected(cmd.strategy_id)
            for slot in slots:
                if slot.state != StrategyState.STOPPED:
                    slot.state = (
                        StrategyState.PAUSED if isinstance(cmd, Pause) else StrategyState.RUNNING
                    )
            verb = "paused" if isinstance(cmd, Pause) else "resumed"
            result = f"{verb}: " + ", ".join(s.strategy.strategy_id for s in slots)
        elif isinstance(cmd, MarketStale):
            changed = self.market_stale != cmd.stale
            self.market_stale = cmd.stale
            result = (
                ("market stale: opening orders refused" if cmd.stale else "market fresh again")
                if changed
                else "no change"
            )
            if changed:
                log.warning(result, extra={"issued_by": cmd.issued_by})
        elif isinstance(cmd, StopStrategy):
            for slot in self._selected(cmd.strategy_id):
                self._stop_strategy(slot, f"stopped by {cmd.issued_by}")
            result = f"stopped: {cmd.strategy_id}"
        elif isinstance(cmd, StopEngine):
            self._stopping = cmd.reason
            result = f"engine stopping: {cmd.reason}"
        elif isinstance(cmd, _Call):
            result = str(cmd.fn())
        self._pump(ts)
        return result

    def _selected(self, strategy_id: str | None) -> list[_Slot]:
        if strategy_id is None:
            return list(self._slots.values())
        slot = self._slots.get(strategy_id)
        if slot is None:
            raise ValidationError("strategy_id", strategy_id, "no such strategy")
        return [slot]

    def _stop_strategy(self, slot: _Slot, reason: str) -> None:
        if slot.state == StrategyState.STOPPED:
            return
        sid = slot.strategy.strategy_id
        self.oms.cancel_all(self.now_ns(), sid)
        self._call(slot, "on_stop")
        slot.state = StrategyState.STOPPED
        slot.stop_reason = reason
        log.info("strategy stopped", extra={"strategy_id": sid, "reason": reason})

    # ---- strategy callbacks --------------------------------------------------------------

    def _call(self, slot: _Slot, name: str, *args: Any) -> None:
        try:
            getattr(slot.strategy, name)(slot.ctx, *args)
        except Exception as exc:  # user code must not crash the engine
            slot.errors += 1
            log.error(
                "strategy callback failed",
                extra={
                    "strategy_id": slot.strategy.strategy_id,
                    "callback": name,
                    "error": f"{type(exc).__name__}: {exc}",
                    "traceback": traceback.format_exc(limit=5),
                },
            )
            if (
                slot.errors >= self.config.max_strategy_errors
                and slot.state != StrategyState.STOPPED
            ):
                self._stop_strategy(slot, f"{slot.errors} callback errors")

    def add_timer(self, strategy_id: str, at_ns: int, name: str) -> None:
        heapq.heappush(self._timers, (at_ns, next(self._seq), strategy_id, name))


class _Context:
    """The StrategyContext the engine gives one strategy."""

    def __init__(self, engine: Engine, strategy_id: str) -> None:
        self._e = engine
        self.strategy_id = strategy_id
        self.universe = engine.universe

    def now_ns(self) -> int:
        return self._e.now_ns()

    def today(self) -> date:
        return ist_day(self._e.now_ns())

    def ltp_paise(self, idx: int) -> int:
        return int(self._e.ltp[idx])

    def mid_paise(self, idx: int) -> int:
        return self._e.mark_price(idx)

    def bid_ask_paise(self, idx: int) -> tuple[int, int]:
        return int(self._e.bid[idx]), int(self._e.ask[idx])

    def spot_paise(self, underlying: str) -> int:
        i = self._e._spot_idx.get(underlying)
        return 0 if i is None else int(self._e.ltp[i])

    def chain(self, underlying: str, expiry: date) -> object:
        return self._e.chain(underlying, expiry)

    def expiries(self, underlying: str) -> list[date]:
        today = self.today()
        return [d for d in self._e.universe.expiries(underlying) if d >= today]

    def years_to_expiry(self, expiry: date) -> float:
        return self._e.calendar.years_to_expiry(self._e.now_ns(), expiry)

    def greeks_of(self, idx: Sequence[int]) -> tuple[list[float], list[float], list[float]]:
        return self._e.greeks_of(idx)

    def position(self, idx: int) -> Position | None:
        return self._e.portfolio.get(self.strategy_id, idx)

    def positions(self) -> list[Position]:
        return self._e.portfolio.open_positions(self.strategy_id)

    def pnl(self) -> PnL:
        return self._e.portfolio.pnl(self.strategy_id)

    def place(
        self,
        idx: int,
        side: Side,
        qty: int,
        order_type: OrderType = OrderType.MARKET,
        *,
        price_paise: int | None = None,
        trigger_price_paise: int | None = None,
        tif: TimeInForce = TimeInForce.DAY,
        tag: str = "",
        square_off: bool = False,
    ) -> list[str]:
        return self._e.place(
            self.strategy_id,
            idx,
            side,
            qty,
            order_type,
            price_paise=price_paise,
            trigger_price_paise=trigger_price_paise,
            tif=tif,
            tag=tag,
            square_off=square_off,
        )

    def cancel(self, client_order_id: str) -> bool:
        o = self._e.oms.get(client_order_id)
        if o is None or o.strategy_id != self.strategy_id:
            return False
        return self._e.oms.cancel(client_order_id, self._e.now_ns())

    def modify(
        self,
        client_order_id: str,
        *,
        qty: int | None = None,
        price_paise: int | None = None,
        trigger_price_paise: int | None = None,
    ) -> bool:
        o = self._e.oms.get(client_order_id)
        if o is None or o.strategy_id != self.strategy_id:
            return False
        return self._e.oms.modify(
            client_order_id,
            self._e.now_ns(),
            qty=qty,
            price_paise=price_paise,
            trigger_price_paise=trigger_price_paise,
        )

    def cancel_all(self) -> int:
        return self._e.oms.cancel_all(self._e.now_ns(), self.strategy_id)

    def link_oco(self, first_id: str, second_id: str) -> None:
        self._e.oms.link_oco(first_id, second_id)

    def order(self, client_order_id: str) -> ManagedOrder | None:
        o = self._e.oms.get(client_order_id)
        return o if o is not None and o.strategy_id == self.strategy_id else None

    def open_orders(self) -> list[ManagedOrder]:
        return self._e.oms.open_orders(self.strategy_id)

    def orders(self) -> list[ManagedOrder]:
        return [o for o in self._e.oms.orders.values() if o.strategy_id == self.strategy_id]

    def set_timer(self, at_ns: int, name: str) -> None:
        self._e.add_timer(self.strategy_id, at_ns, name)

    def square_off(self, reason: str) -> None:
        log.info("square off", extra={"strategy_id": self.strategy_id, "reason": reason})
        self._e.square_off(self.strategy_id, self._e.now_ns())

    def stop(self, reason: str) -> None:
        self._e.post(StopStrategy(strategy_id=self.strategy_id, issued_by=f"strategy: {reason}"))
