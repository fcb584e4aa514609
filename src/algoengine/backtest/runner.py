"""Assemble and run the engine: backtests (simulated clock) and paper runs (real clock).

Both go through :func:`assemble`, so a backtest and a paper run use the same engine, OMS,
risk, portfolio, charges and strategies; only the clock differs (and, live, the broker).

Outputs (``write_outputs``): ``trades`` (closed round trips per strategy and instrument, net of
charges), ``orders`` (every order with its final status and reason), ``fills``, ``equity``
(capital plus net P&L after every market update), ``summary.json`` and ``equity.png``. A run
is deterministic for its settings and seed: the same inputs give byte-identical files (no
wall-clock time is written anywhere).
"""

from __future__ import annotations

import hashlib
import logging
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, fields
from datetime import date
from pathlib import Path
from typing import Any, TextIO

from algoengine.backtest.charges import ChargesModel
from algoengine.backtest.metrics import Metrics, compute_metrics
from algoengine.backtest.report import BacktestReport, Progress, write_report
from algoengine.brokers.paper import PaperExchange
from algoengine.domain.market_data import MarketSlice, Universe
from algoengine.domain.orders import Side
from algoengine.engine.clock import Clock
from algoengine.engine.engine import Engine, FillRecord, Venue, ist_day
from algoengine.engine.risk import RiskEngine
from algoengine.errors import ConfigurationError, ValidationError
from algoengine.market.calendar import TradingCalendar
from algoengine.settings import MarketSource, Settings
from algoengine.strategies.base import Strategy
from algoengine.strategies.premium import PremiumSelling

__all__ = [
    "BacktestResult",
    "PaperResult",
    "Trade",
    "assemble",
    "open_feed",
    "run_backtest",
    "run_paper",
    "write_outputs",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Trade:
    """A closed round trip of one strategy in one instrument (from flat back to flat)."""

    strategy_id: str
    symbol: str
    direction: str  # "short" or "long"
    entry_ts_ns: int
    exit_ts_ns: int
    qty: int  # the largest open quantity
    entry_avg_paise: float
    exit_avg_paise: float
    gross_pnl_paise: int
    charges_paise: int
    net_pnl_paise: int
    exit_reason: str


@dataclass(slots=True)
class _Open:
    qty: int = 0
    max_qty: int = 0
    cash: int = 0
    charges: int = 0
    entry_ts: int = 0
    entry_value: int = 0
    entry_qty: int = 0
    exit_value: int = 0
    exit_qty: int = 0
    direction: str = ""


def round_trips(fills: Sequence[FillRecord]) -> list[Trade]:
    """Closed round trips from the fills, in the order they closed."""
    book: dict[tuple[str, str], _Open] = {}
    trades: list[Trade] = []
    for f in fills:
        key = (f.strategy_id, f.symbol)
        o = book.setdefault(key, _Open())
        signed = f.qty if f.side is Side.BUY else -f.qty
        if o.qty == 0:
            o.entry_ts = f.ts_ns
            o.direction = "long" if signed > 0 else "short"
        opening = (o.qty == 0) or ((o.qty > 0) == (signed > 0))
        if opening:
            o.entry_value += f.price_paise * f.qty
            o.entry_qty += f.qty
        else:
            o.exit_value += f.price_paise * f.qty
            o.exit_qty += f.qty
        o.qty += signed
        o.max_qty = max(o.max_qty, abs(o.qty))
        o.cash += -signed * f.price_paise
        o.charges += f.charges_paise
        if o.qty == 0:
            trades.append(
                Trade(
                    strategy_id=f.strategy_id,
                    symbol=f.symbol,
                    direction=o.direction,
                    entry_ts_ns=o.entry_ts,
                    exit_ts_ns=f.ts_ns,
                    qty=o.max_qty,
                    entry_avg_paise=o.entry_value / o.entry_qty if o.entry_qty else 0.0,
                    exit_avg_paise=o.exit_value / o.exit_qty if o.exit_qty else 0.0,
                    gross_pnl_paise=o.cash,
                    charges_paise=o.charges,
                    net_pnl_paise=o.cash - o.charges,
                    exit_reason=f.tag,
                )
            )
            del book[key]
    return trades


def open_feed(
    settings: Settings, start: date, end: date
) -> tuple[Iterable[MarketSlice], Universe, TradingCalendar, list[date]]:
    """The market of the settings over [start, end]: (feed, universe, calendar, trading days)."""
    m = settings.market
    if m.source is MarketSource.SYNTHETIC:
        from algoengine.market.synthetic import SyntheticMarket

        market = SyntheticMarket(m.synthetic, start, end)
        return market, market.universe, market.calendar, market.trading_days
    from algoengine.market.replay import ReplayFeed
    from algoengine.market.synthetic import SyntheticMarket

    assert m.replay_path is not None
    path = Path(m.replay_path)
    if not path.exists():
        raise ConfigurationError(f"market.replay_path: {str(path)!r} does not exist")
    syn = m.synthetic
    if m.instrument_master is not None:
        from algoengine.market.scrip_master import load_scrip_master

        master = Path(m.instrument_master)
        if not master.exists():
            raise ConfigurationError(f"market.instrument_master: {str(master)!r} does not exist")
        universe = Universe(load_scrip_master(master, syn.contracts))
        calendar = TradingCalendar(
            syn.holidays,
            open_time=syn.open_time,
            close_time=syn.close_time,
            trading_days_per_year=syn.trading_days_per_year,
        )
        days = calendar.trading_days(start, end)
    else:  # the synthetic market's instrument master over the range
        reference = SyntheticMarket(syn, start, end)
        universe, calendar, days = reference.universe, reference.calendar, reference.trading_days
    feed = ReplayFeed(path, universe)
    lo = calendar.session_open_ns(days[0]) if days else 0
    hi = calendar.session_close_ns(days[-1]) if days else 0
    return (s_ for s_ in feed if lo <= s_.ts_ns <= hi), universe, calendar, days


def run_code_for(settings: Settings, start: date, end: date, tag: str) -> str:
    """An 8-character run code derived from the run's inputs (deterministic, so that a
    re-run gives the same order ids and byte-identical outputs)."""
    text = f"{tag}|{settings.market.synthetic.seed}|{start}|{end}|{settings.strategies}"
    return "B" + hashlib.sha256(text.encode()).hexdigest()[:7].upper()


def assemble(
    settings: Settings,
    universe: Universe,
    calendar: TradingCalendar,
    *,
    strategy_ids: Sequence[str] | None = None,
    strategies: Sequence[Strategy] | None = None,
    venue: Venue | None = None,
    run_code: str | None = None,
    clock: Clock | None = None,
    with_risk: bool = True,
    journal: Any | None = None,
) -> Engine:
    """Build the engine with the paper exchange, risk, charges and the chosen strategies.

    ``strategies`` (strategy objects) replaces the configured ones; ``venue`` replaces the
    paper exchange; ``with_risk=False`` leaves the risk engine out (benchmarks only)."""
    if strategies is None:
        configs = (
            [settings.strategy(s) for s in strategy_ids]
            if strategy_ids
            else list(settings.strategies)
        )
        strategies = [PremiumSelling(c) for c in configs]
    if venue is None:
        venue = PaperExchange(settings.exchange, list(universe))
    from dataclasses import replace

    engine_cfg = settings.engine
    if run_code is not None:
        engine_cfg = replace(engine_cfg, run_code=run_code)
    if engine_cfg.daily_loss_limit_paise is None:  # the risk limit squares off too
        engine_cfg = replace(engine_cfg, daily_loss_limit_paise=settings.risk.max_daily_loss_paise)
    engine: Engine | None = None

    def ref_price(idx: int) -> int:
        assert engine is not None
        return engine.mark_price(idx)

    def greeks(idx: int) -> tuple[float, float]:
        assert engine is not None
        return engine.unit_greeks(idx)

    def session(day: date) -> tuple[int, int]:
        return calendar.session_open_ns(day), calendar.session_close_ns(day)

    risk = (
        RiskEngine(
            settings.risk,
            len(universe),
            reference_price=ref_price,
            greeks_per_unit=greeks,
            session=session,
        )
        if with_risk
        else None
    )
    engine = Engine(
        universe=universe,
        venue=venue,
        strategies=strategies,
        calendar=calendar,
        config=engine_cfg,
        risk=risk,
        charges=ChargesModel(settings.charges),
        clock=clock,
        journal=journal,
    )
    return engine


@dataclass(slots=True)
class BacktestResult:
    """What a backtest produced."""

    engine: Engine
    metrics: Metrics
    trades: list[Trade]
    report: BacktestReport | None
    seconds: float
    events: int
    slices: int
    days: list[date] = field(default_factory=list)

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0


def _counted(
    feed: Iterable[MarketSlice], bar: Progress, day_count: list[date | None]
) -> Iterator[MarketSlice]:
    for m in feed:
        day = ist_day(m.ts_ns)
        if day != day_count[0]:
            if day_count[0] is not None:
                bar.update()
            day_count[0] = day
        yield m


def run_backtest(
    settings: Settings,
    *,
    strategy_ids: Sequence[str] | None = None,
    start: date | None = None,
    end: date | None = None,
    out_dir: str | Path | None = None,
    progress: bool = False,
    stream: TextIO | None = None,
) -> BacktestResult:
    """Run a backtest over ``[start, end]`` (defaults from ``settings.backtest``) and write
    its outputs into ``out_dir`` (``None``: write nothing)."""
    b = settings.backtest
    start = start or b.start
    end = end or b.end
    feed, universe, calendar, days = open_feed(settings, start, end)
    engine = assemble(
        settings,
        universe,
        calendar,
        strategy_ids=strategy_ids,
        run_code=run_code_for(settings, start, end, "backtest"),
    )
    bar = Progress(len(days), stream or sys.stderr, enabled=progress, label="backtest")
    seen: list[date | None] = [None]
    t0 = time.perf_counter()
    with bar:
        engine.run(_counted(feed, bar, seen))
        bar.update()
    seconds = time.perf_counter() - t0
    return _results(engine, settings, days, seconds, out_dir)


def _results(
    engine: Engine, settings: Settings, days: list[date], seconds: float, out_dir: str | Path | None
) -> BacktestResult:
    trades = round_trips(engine.fills)
    capital = settings.backtest.capital_paise
    ts = [t for t, _ in engine.equity] or [0]
    eq = [capital + n for _, n in engine.equity] or [capital]
    metrics = compute_metrics(
        ts_ns=ts,
        equity_paise=eq,
        starting_capital_paise=capital,
        trade_pnl_paise=[t.net_pnl_paise for t in trades],
    )
    report = None
    if out_dir is not None:
        report = write_outputs(
            engine, trades, metrics, out_dir, capital, settings.backtest.output_format
        )
    return BacktestResult(
        engine=engine,
        metrics=metrics,
        trades=trades,
        report=report,
        seconds=seconds,
        events=engine.events_processed,
        slices=engine.slices_processed,
        days=days,
    )


def _stop_on_signals(engine: Engine, stop_reason: list[str]) -> dict[int, Any]:
    """SIGINT/SIGTERM post a StopEngine (the loop ends after its current event) and note the
    signal in ``stop_reason[0]``; returns the previous handlers, to restore."""
    import signal

    from algoengine.engine.commands import StopEngine

    def on_signal(signum: int, frame: object) -> None:
        stop_reason[0] = f"signal {signal.Signals(signum).name}"
        engine.post(StopEngine(reason=stop_reason[0], issued_by="signal"))

    return {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}


def write_outputs(
    engine: Engine,
    trades: list[Trade],
    metrics: Metrics,
    out_dir: str | Path,
    capital_paise: int,
    fmt: str = "csv",
) -> BacktestReport:
    """Write the run's tables, summary and chart (see the module docstring)."""
    orders: list[dict[str, Any]] = []
    for o in engine.oms.orders.values():
        orders.append(
            {
                "client_order_id": o.client_order_id,
                "strategy_id": o.strategy_id,
                "symbol": o.instrument.symbol,
                "side": o.side.value,
                "order_type": o.order_type.value,
                "qty": o.qty,
                "price_paise": o.price_paise,
                "trigger_price_paise": o.trigger_price_paise,
                "status": o.status.value,
                "filled_qty": o.filled_qty,
                "avg_price_paise": round(o.avg_price_paise, 2),
                "created_ts_ns": o.created_ns,
                "updated_ts_ns": o.updated_ns,
                "tag": o.tag,
                "reason": o.reason,
            }
        )
    equity = {
        "ts_ns": [t for t, _ in engine.equity],
        "equity_paise": [capital_paise + n for _, n in engine.equity],
        "net_pnl_paise": [n for _, n in engine.equity],
    }
    report = write_report(
        out_dir,
        trades=trades,
        orders=orders,
        equity=equity,
        metrics=metrics,
        fmt="parquet" if fmt == "parquet" else "csv",
    )
    fills_path = Path(out_dir) / "fills.csv"
    lines = ["ts_ns,strategy_id,client_order_id,symbol,side,qty,price_paise,charges_paise,tag"]
    for f in engine.fills:
        lines.append(
            f"{f.ts_ns},{f.strategy_id},{f.client_order_id},{f.symbol},{f.side.value},"
            f"{f.qty},{f.price_paise},{f.charges_paise},{f.tag}"
        )
    fills_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return report


@dataclass(slots=True)
class PaperResult(BacktestResult):
    """What a paper run produced (``stop_reason``: why it ended)."""

    stop_reason: str = ""


def new_run_code(prefix: str) -> str:
    """A fresh run code: ``prefix`` and 7 random base-36 characters (client order ids are
    the run code and a sequence, so two runs must never share one)."""
    import secrets

    alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    return prefix + "".join(secrets.choice(alphabet) for _ in range(7))


def paper_day(calendar: TradingCalendar, today: date) -> date:
    """Today if it is a trading day, else the next trading day."""
    return today if calendar.is_trading_day(today) else calendar.next_trading_day(today)


def run_paper(
    settings: Settings,
    *,
    day: date | None = None,
    speed: float | None = None,
    out_dir: str | Path | None = None,
    strategy_ids: Sequence[str] | None = None,
    install_signal_handlers: bool = True,
    use_database: bool = True,
    venue_url: str | None = None,
    anchor_wall_ns: int | None = None,
    broker: str = "paper",
    live_market: bool = False,
) -> PaperResult:
    """Trade one session in paper mode on the synthetic market, on a real clock accelerated
    ``speed`` times, starting at the session's open; stop cleanly at the session's end or on
    SIGINT/SIGTERM (the loop finishes its current event, strategies stop, unsent orders are
    dropped, working ones cancelled, positions reported).

    ``venue_url``: trade against a paper venue running as its own process
    (``python -m algoengine.brokers.paper.server``) instead of one inside this process; then
    ``anchor_wall_ns`` (the same as the venue's) puts both on one accelerated clock, and a
    crashed run of these strategies found in the database is recovered first (rebuilt,
    reconciled with the venue by client order id, carried on; see
    :mod:`algoengine.persistence.recovery`), and the session resumes at the clock's time."""
    import signal

    if live_market and broker != "angelone":
        raise ConfigurationError("a live market feed needs --broker angelone")
    p = settings.paper
    day = day or p.day or _default_day(settings)
    feed, universe, calendar, days = open_feed(settings, day, day)
    clock = _session_clock(calendar, days[0], speed or p.speed, anchor_wall_ns, live_market)
    run_code = new_run_code("P")
    store = _open_store(settings, run_code, mode=_mode(broker)) if use_database else None
    live: Any = None
    venue, universe, feed_url = _open_venue(
        settings, broker, day=day, universe=universe, live_market=live_market, venue_url=venue_url
    )
    engine = assemble(
        settings,
        universe,
        calendar,
        strategy_ids=strategy_ids,
        run_code=run_code,
        clock=clock,
        journal=store.journal if store is not None else None,
        venue=venue,
    )
    if venue is not None and store is not None:
        from algoengine.persistence.recovery import recover

        snapshot = getattr(venue, "snapshot", None)
        cursor = snapshot().last_seq if snapshot is not None else None
        report = recover(
            store.db, venue, engine, strategy_ids=engine.strategy_ids(), new_run_id=run_code
        )
        if cursor is not None:
            venue.seek(cursor)  # later events replay; fills already counted are dropped by id
        if report.run_ids:
            print(report.summary(), flush=True)
    if store is not None:
        store.start_poller(engine)
    if live_market:
        live = live_session_feed(venue, engine, clock, calendar, day, feed_url)
        feed = live
    elif venue is not None:  # resume the session where the clock is (after a crash)
        resume_ns = clock.now_ns() - 60_000_000_000
        feed = (m for m in feed if m.ts_ns >= resume_ns)
    stop_reason = ["session ended"]
    previous = _stop_on_signals(engine, stop_reason) if install_signal_handlers else {}
    t0 = time.perf_counter()
    try:
        engine.run(feed)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if store is not None:
            store.close(stop_reason[0])
        _close_broker(live, venue)
    seconds = time.perf_counter() - t0
    return _paper_result(engine, settings, days, seconds, out_dir, stop_reason[0])


def _close_broker(live: Any, venue: Any) -> None:
    """End a run's broker side: the live feed stopped, the venue closed (Angel One: logged
    out, SEBI: no session carried over)."""
    if live is not None:
        live.stop()
    close = getattr(venue, "close", None)
    if close is not None:
        close()


def _paper_result(
    engine: Engine,
    settings: Settings,
    days: list[date],
    seconds: float,
    out_dir: str | Path | None,
    stop_reason: str,
) -> PaperResult:
    """A paper or live run's result; an operator's stop (command, dashboard) is its reason
    when no signal gave one."""
    if engine.stop_requested and stop_reason == "session ended":
        stop_reason = engine.stop_requested
    base = _results(engine, settings, days, seconds, out_dir)
    return PaperResult(
        **{f.name: getattr(base, f.name) for f in fields(base)}, stop_reason=stop_reason
    )


def _default_day(settings: Settings) -> date:
    """Today (IST) if it is a trading day of the settings' calendar, else the next one."""
    from datetime import datetime, timedelta, timezone

    syn = settings.market.synthetic
    cal = TradingCalendar(syn.holidays, open_time=syn.open_time, close_time=syn.close_time)
    return paper_day(cal, datetime.now(timezone(timedelta(hours=5, minutes=30))).date())


def _mode(broker: str) -> str:
    return "live" if broker == "angelone" else "paper"


def _session_clock(
    calendar: TradingCalendar, day: date, speed: float, anchor_wall_ns: int | None, live: bool
) -> Any:
    """The session's real clock: its open at ``anchor_wall_ns`` (default: now), ``speed``
    times faster. On a live market without an anchor it is the wall clock itself (the
    exchange's time: the session may be under way)."""
    from algoengine.engine.clock import RealClock

    if live and anchor_wall_ns is None:
        if speed != 1.0:
            raise ConfigurationError(
                "a live market runs on the wall clock: speed 1 (an accelerated fake needs "
                "--anchor-wall-ns, the moment of its open)"
            )
        anchor_wall_ns = calendar.session_open_ns(day)
    return RealClock(
        speed=speed, start_ns=calendar.session_open_ns(day), anchor_wall_ns=anchor_wall_ns
    )


def _open_venue(
    settings: Settings,
    broker: str,
    *,
    day: date,
    universe: Universe,
    live_market: bool,
    venue_url: str | None,
) -> tuple[Any, Universe, str]:
    """The run's broker: ``(venue, universe, market feed URL)``. Angel One (its addresses and
    keys from ``ANGEL_ONE_*`` or Secrets Manager) is logged in, and on a live market the
    universe is its instrument master's; a paper venue of its own process at ``venue_url``;
    else None (the engine's own simulated exchange)."""
    if broker == "angelone":
        from algoengine.brokers.angelone.adapter import AngelOneBroker
        from algoengine.brokers.angelone.credentials import AngelOneEndpoints, load_credentials

        endpoints = AngelOneEndpoints.from_env()
        if live_market:  # the broker's instrument master and market feed, not the model
            from algoengine.brokers.angelone.instruments import load_instrument_master

            master = load_instrument_master(
                settings.market.synthetic.contracts, url=endpoints.scrip_master_url, today=day
            )
            universe = master.universe
        venue = AngelOneBroker(
            load_credentials(), list(universe), endpoints=endpoints, order_updates=live_market
        )
        venue.login()
        return venue, universe, endpoints.feed_url
    if venue_url is not None:
        from algoengine.brokers.paper.remote import RemoteVenue

        return RemoteVenue(venue_url), universe, ""
    return None, universe, ""


def live_session_feed(
    broker: Any,
    engine: Engine,
    clock: Any,
    calendar: Any,
    day: date,
    feed_url: str,
    *,
    stale_after_s: float = 5.0,
) -> Any:
    """Angel One's market websocket as the engine's feed for one session: slices until the
    session's close (a heartbeat every second keeps the loop turning while the market is
    silent), on the engine's clock; a stale feed while the market is open posts
    :class:`~algoengine.engine.commands.MarketStale` (opening orders refused) and a fresh one
    undoes it. The returned iterable has ``feed`` (the :class:`AngelOneFeed`) and ``stop()``."""
    from algoengine.brokers.angelone.feed import AngelOneFeed
    from algoengine.engine.commands import MarketStale

    open_ns = calendar.session_open_ns(day)
    close_ns = calendar.session_close_ns(day)

    def session_open() -> bool:
        return bool(open_ns <= clock.now_ns() < close_ns)

    live = AngelOneFeed(
        broker,
        engine.universe,
        feed_url=feed_url,
        heartbeat_s=1.0,
        stale_after_s=stale_after_s,
        now_ns=clock.now_ns,
        session_open=session_open,
        on_stale=lambda: engine.post(MarketStale(stale=True, issued_by="feed")),
        on_fresh=lambda: engine.post(MarketStale(stale=False, issued_by="feed")),
    )
    live.start()

    class _Session:
        feed = live

        def __iter__(self) -> Any:
            for m in live:
                if clock.now_ns() >= close_ns:
                    return
                yield m

        def stop(self) -> None:
            live.stop()

    return _Session()


def next_session(calendar: TradingCalendar, now_ns: int, lead_s: float) -> tuple[date, int]:
    """The next session not yet closed at ``now_ns`` and when to start for it: ``lead_s``
    before its open (log in, download the instrument master, connect the feed), or now if
    that has passed."""
    today = ist_day(now_ns)
    if calendar.is_trading_day(today) and now_ns < calendar.session_close_ns(today):
        day = today
    else:
        day = calendar.next_trading_day(today)
    return day, max(now_ns, calendar.session_open_ns(day) - int(lead_s * 1e9))


def run_sessions(
    settings: Settings,
    *,
    sessions: int | None = None,
    lead_s: float = 600.0,
    on_result: Callable[[PaperResult], None] | None = None,
    on_wait: Callable[[date, int], None] | None = None,
    runner: Callable[..., PaperResult] | None = None,
    **paper_kw: Any,
) -> list[PaperResult]:
    """Trade session after session (a service's life): each is a :func:`run_paper` of its
    own, so a live broker is logged in before each trading day and logged out after it
    (SEBI: no session carried over), and each day's outputs go to ``<out_dir>/<day>``.

    On a live market the wall clock rules: wait until ``lead_s`` before the next session's
    open, trade it to its close, wait for the next. On the synthetic market (paper) the days
    play one after another at once, each on its accelerated clock. Ends after ``sessions``
    sessions (None: never), or when one is stopped by a signal or an operator (SIGINT/SIGTERM
    during a wait end it too). ``on_result(result)`` is called after each session, and
    ``on_wait(day, start_ns)`` before a wait for one. ``runner``: :func:`run_paper` (the
    default) or :func:`run_task` (a scale-out task), given ``paper_kw``.

    Raises
    ------
    ValidationError
        ``sessions`` or ``lead_s`` malformed (names it).
    """
    import signal
    import threading

    from algoengine.market.calendar import TradingCalendar as _Cal

    if sessions is not None and (
        isinstance(sessions, bool) or not isinstance(sessions, int) or sessions < 1
    ):
        raise ValidationError("sessions", sessions, "must be an integer >= 1 (or None)")
    if isinstance(lead_s, bool) or not isinstance(lead_s, int | float) or not 0 <= lead_s <= 86400:
        raise ValidationError("lead_s", lead_s, "must be seconds in [0, 86400]")
    syn = settings.market.synthetic
    cal = _Cal(syn.holidays, open_time=syn.open_time, close_time=syn.close_time)
    live = bool(paper_kw.get("live_market"))
    base_out = Path(paper_kw.pop("out_dir", None) or settings.paper.out_dir)
    first: date | None = paper_kw.pop("day", None)
    stopped = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stopped.set()

    results: list[PaperResult] = []
    day: date | None = None
    while sessions is None or len(results) < sessions:
        if live:
            day, start_ns = next_session(cal, time.time_ns(), lead_s)
            wait_s = (start_ns - time.time_ns()) / 1e9
            if wait_s > 0:
                log.info("waiting for the next session", extra={"day": str(day), "wait_s": wait_s})
                if on_wait is not None:
                    on_wait(day, start_ns)
                previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
                try:
                    stopped.wait(wait_s)
                finally:
                    for s, handler in previous.items():
                        signal.signal(s, handler)
                if stopped.is_set():
                    break
        elif day is None:
            day = first or _default_day(settings)
        else:
            day = cal.next_trading_day(day)
        result = (runner or run_paper)(
            settings, day=day, out_dir=base_out / day.isoformat(), **paper_kw
        )
        results.append(result)
        if on_result is not None:
            on_result(result)
        if result.stop_reason != "session ended":
            break
    return results


class _Store:
    """The database side of a paper or live run: the journal and the command poller."""

    def __init__(self, db: Any, journal: Any) -> None:
        self.db = db
        self.journal = journal
        self.poller: Any = None

    def start_poller(self, engine: Engine) -> None:
        import os
        import socket

        from algoengine.persistence.command_poller import CommandPoller

        owner = f"{socket.gethostname()}:{os.getpid()}"
        self.poller = CommandPoller(
            engine, self.db, owner=owner, strategy_ids=engine.strategy_ids()
        ).start()

    def close(self, reason: str) -> None:
        try:
            if self.poller is not None:
                self.poller.stop()
            if not self.journal.close(timeout=30.0):
                log.warning("journal not fully written: the rest waits in the spool")
        except Exception as exc:
            log.warning("could not close the journal cleanly", extra={"error": str(exc)})
        finally:
            self.db.dispose()


def _open_store(settings: Settings, run_id: str, *, mode: str = "paper") -> _Store | None:
    """Connect to the database (creating the schema on first use) and start the journal;
    ``None`` (with a warning) if the database is unusable at start: a paper run goes on
    without it. (An outage later is the journal's business: it spools and replays.)"""
    from algoengine.persistence.db import ensure_schema, make_engine
    from algoengine.persistence.journal import Journal
    from algoengine.settings import settings_database_url

    j = settings.journal
    try:
        db = make_engine(settings_database_url(settings))
        ensure_schema(db)
        root = Path(j.spool_dir)
        _replay_orphan_spools(db, root)
        journal = Journal(
            db,
            run_id=run_id,
            mode=mode,
            spool_dir=root / run_id,  # one folder per process: tasks may share a working dir
            batch_max=j.batch_max,
            flush_interval_s=j.flush_interval_s,
            on_outage=j.on_outage,
        )
        return _Store(db, journal)
    except Exception as exc:
        log.warning("running without the database", extra={"error": str(exc)})
        return None


def _replay_orphan_spools(db: Any, root: Path) -> None:
    """Replay the spools that crashed processes left under ``root`` (a folder whose journal
    lock nobody holds), so that their records reach the database before anyone recovers
    from it; empty folders are removed."""
    from algoengine.persistence.journal import Journal

    if not root.is_dir():
        return
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        try:
            # opening a Journal on the folder takes its lock (refused while its owner lives)
            # and replays whatever its spool holds
            orphan = Journal(db, run_id=folder.name, mode="paper", spool_dir=folder)
        except ConfigurationError:
            continue  # its process is alive
        if not orphan.close(timeout=30.0):
            log.warning("spool not fully replayed", extra={"spool": str(folder)})
            continue
        try:
            for leftover in folder.iterdir():
                leftover.unlink()
            folder.rmdir()
        except OSError:
            pass


def run_task(
    settings: Settings,
    *,
    day: date | None = None,
    speed: float = 1.0,
    venue_url: str | None = None,
    anchor_wall_ns: int | None = None,
    lease_ttl_s: float = 5.0,
    out_dir: str | Path | None = None,
    install_signal_handlers: bool = True,
    run_code: str | None = None,
    broker: str = "paper-remote",
    live_market: bool = False,
) -> PaperResult:
    """One engine task of a scale-out deployment (several tasks, one database, one broker).

    The task trades only the strategies whose leases it holds (:mod:`algoengine.persistence.
    leases`): at start it takes its fair share; a heartbeat thread renews them every
    ``lease_ttl_s / 3`` and takes over strategies whose owner died (their state is rebuilt
    from the journal and reconciled with the broker, as after a crash:
    :func:`algoengine.persistence.recovery.take_over`). Before every order the engine checks
    that the lease is still valid by this task's own clock, which ends a safety margin
    before anyone else can take it: a task that cannot renew stops sending first. A lost lease
    drops the strategy here without touching its orders (the new owner owns them).

    The broker: a paper venue of its own process (``broker="paper-remote"``, ``venue_url``)
    or Angel One (``broker="angelone"``; ``live_market``: its feed and instrument master, on
    the wall clock unless ``anchor_wall_ns`` aims it at an accelerated fake).
    """
    import functools
    import signal
    import threading

    from algoengine.persistence.leases import LeaseManager
    from algoengine.persistence.recovery import take_over

    if broker not in ("paper-remote", "angelone"):
        raise ConfigurationError(f"a scale-out task trades at a shared broker, not {broker!r}")
    if broker == "paper-remote" and (venue_url is None or anchor_wall_ns is None):
        raise ConfigurationError("a paper-remote task needs the venue's URL and anchor")
    if live_market and broker != "angelone":
        raise ConfigurationError("a live market feed needs --broker angelone")
    day = day or settings.paper.day or _default_day(settings)
    feed, universe, calendar, days = open_feed(settings, day, day)
    clock = _session_clock(calendar, days[0], speed, anchor_wall_ns, live_market)
    run_code = run_code or new_run_code("T")
    store = _open_store(settings, run_code, mode=_mode(broker))
    if store is None:
        raise ConfigurationError("database_url: a scale-out task needs its database")
    venue, universe, feed_url = _open_venue(
        settings, broker, day=day, universe=universe, live_market=live_market, venue_url=venue_url
    )
    engine = assemble(
        settings,
        universe,
        calendar,
        strategies=[],
        run_code=run_code,
        clock=clock,
        journal=store.journal,
        venue=venue,
    )
    configs = {c.strategy_id: c for c in settings.strategies}
    leases = LeaseManager(store.db, run_code, ttl_s=lease_ttl_s)
    leases.ensure(configs)
    held: dict[str, Any] = {}
    lock = threading.Lock()

    def guard(strategy_id: str) -> bool:
        with lock:
            lease = held.get(strategy_id)
        return lease is not None and leases.still_valid(lease)

    engine.lease_guard = guard

    def adopt(lease: Any) -> str:
        strategy = PremiumSelling(configs[lease.strategy_id])
        report = take_over(store.db, venue, engine, strategy, new_run_id=run_code)
        return f"took over {lease.strategy_id}: {report.summary()}"

    snapshot = getattr(venue, "snapshot", None)  # a paper venue's event stream
    cursor = snapshot().last_seq if snapshot is not None else None
    for lease in leases.acquire():
        held[lease.strategy_id] = lease
        adopt(lease)
    if cursor is not None:
        venue.seek(cursor)
    stop = threading.Event()

    def heartbeat() -> None:
        while not stop.wait(leases.renew_interval_s):
            try:
                with lock:
                    current = list(held.values())
                kept = {lease.strategy_id: lease for lease in leases.renew(current)}
                new = leases.acquire() + leases.acquire(orphans=True)
                with lock:
                    lost = [sid for sid in held if sid not in kept]
                    for sid in lost:
                        del held[sid]
                    held.update(kept)
                    for lease in new:
                        held[lease.strategy_id] = lease
                for sid in lost:
                    engine.call_soon(functools.partial(engine.drop_strategy, sid, "lease lost"))
                for lease in new:
                    engine.call_soon(functools.partial(adopt, lease))
            except Exception as exc:  # the database may be away: the guard stops orders
                log.warning("lease heartbeat failed", extra={"error": str(exc)})

    beat = threading.Thread(target=heartbeat, name="lease-heartbeat", daemon=True)
    beat.start()
    store.start_poller(engine)
    stop_reason = ["session ended"]
    previous = _stop_on_signals(engine, stop_reason) if install_signal_handlers else {}
    live: Any = None
    if live_market:
        live = feed = live_session_feed(venue, engine, clock, calendar, days[0], feed_url)
    else:  # the model's market from where the clock is (a task may start mid-session)
        resume_ns = clock.now_ns() - 60_000_000_000
        feed = (m for m in feed if m.ts_ns >= resume_ns)
    t0 = time.perf_counter()
    try:
        engine.run(feed)
    finally:
        stop.set()
        beat.join(timeout=10)
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        try:
            leases.release_all()
        except Exception as exc:
            log.warning("could not release the leases", extra={"error": str(exc)})
        store.close(stop_reason[0])
        _close_broker(live, venue)
    seconds = time.perf_counter() - t0
    return _paper_result(engine, settings, days, seconds, out_dir, stop_reason[0])
