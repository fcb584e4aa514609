"""The engine end to end on a micro market: straddle entry, stop-loss at the right price,
time exit, kill switch, daily-loss square-off, expiry settlement, freeze slicing, and the
accounting identity in every run."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import date, time
from typing import Any

from algoengine.domain.events import OrderDenied
from algoengine.domain.market_data import MarketSlice
from algoengine.domain.orders import OrderType, Side
from algoengine.engine.commands import KillSwitch, MarketStale, Pause, Resume
from algoengine.engine.engine import Engine, EngineConfig, StrategyState
from algoengine.strategies.base import Strategy, StrategyContext
from algoengine.strategies.premium import PremiumSelling, PremiumSellingConfig

from ._micro import DAY1, EXPIRY, Calendar, Row, bar_slice, exchange, flat, ist_ns, universe

SPOT, CE, PE = 0, 1, 2  # universe indices: NIFTY, 24000 CE, 24000 PE


def minutes(day: date, start: tuple[int, int], end: tuple[int, int]) -> Iterator[int]:
    t = ist_ns(day, *start)
    stop = ist_ns(day, *end)
    while t <= stop:
        yield t
        t += 60_000_000_000


def quiet_day(
    day: date,
    spot: int = 2_401_000,
    ce: int = 10_000,
    pe: int = 9_000,
    until: tuple[int, int] = (15, 29),
) -> list[MarketSlice]:
    return [
        bar_slice(ts, [flat(SPOT, spot), flat(CE, ce), flat(PE, pe)])
        for ts in minutes(day, (9, 16), until)
    ]


def make_engine(strategies: list[Strategy], **cfg: Any) -> Engine:
    u = universe()
    return Engine(
        universe=u,
        venue=exchange(u),
        strategies=strategies,
        calendar=Calendar(),
        config=EngineConfig(run_code="T", **cfg),
    )


def straddle(**kw: Any) -> PremiumSelling:
    return PremiumSelling(PremiumSellingConfig(strategy_id="straddle", **kw))


def assert_accounting_identity(engine: Engine) -> None:
    cash = sum(
        (f.price_paise if f.side is Side.SELL else -f.price_paise) * f.qty for f in engine.fills
    )
    charges = sum(f.charges_paise for f in engine.fills)
    open_value = sum(p.qty * p.mark_paise for p in engine.portfolio.of())
    assert engine.portfolio.pnl().net == cash - charges + open_value
    assert engine.equity[-1][1] == engine.portfolio.pnl().net


def test_straddle_enters_at_entry_time_and_exits_at_exit_time() -> None:
    s = straddle(leg_stop_loss_pct=30.0)
    e = make_engine([s])
    e.run(quiet_day(DAY1))
    entries = [f for f in e.fills if f.tag.startswith("entry")]
    assert {(f.symbol[-7:], f.side, f.qty, f.price_paise) for f in entries} == {
        ("24000CE", Side.SELL, 65, 9_950),  # market sells hit the bid
        ("24000PE", Side.SELL, 65, 8_950),
    }
    assert {f.ts_ns for f in entries} == {ist_ns(DAY1, 9, 20)}
    exits = [f for f in e.fills if f.tag.startswith("exit")]
    assert {f.ts_ns for f in exits} == {ist_ns(DAY1, 15, 15)}
    assert {(f.side, f.price_paise) for f in exits} == {(Side.BUY, 10_050), (Side.BUY, 9_050)}
    assert not e.portfolio.open_positions()
    assert e.portfolio.pnl().net == 65 * (9_950 - 10_050) + 65 * (8_950 - 9_050)
    assert_accounting_identity(e)


def test_a_leg_stop_loss_fires_in_the_bar_that_reaches_its_trigger_not_before() -> None:
    s = straddle(leg_stop_loss_pct=30.0)
    e = make_engine([s])
    feed = quiet_day(DAY1, until=(9, 30))
    t1, t2 = ist_ns(DAY1, 9, 31), ist_ns(DAY1, 9, 32)
    # trigger = 99.50 * 1.3 = 129.35; limit 5 % above = 135.85
    feed.append(
        bar_slice(
            t1, [flat(SPOT, 2_402_000), Row(CE, 10_000, 12_900, 10_000, 12_000), flat(PE, 9_000)]
        )
    )
    feed.append(
        bar_slice(
            t2, [flat(SPOT, 2_403_000), Row(CE, 12_000, 13_100, 11_900, 12_500), flat(PE, 9_000)]
        )
    )
    feed += quiet_day(DAY1, ce=12_500)[16:]  # the rest of the day from 09:32
    e.run(feed)
    [stop] = [f for f in e.fills if f.tag == "stop CE"]
    assert stop.ts_ns == t2 and stop.side is Side.BUY and stop.qty == 65
    assert 12_935 <= stop.price_paise <= 13_585  # between trigger and limit
    assert stop.price_paise == 13_150  # the ask when the high printed: 131.00 + 0.50
    stop_order = next(o for o in e.oms.orders.values() if o.tag == "stop CE")
    assert (stop_order.trigger_price_paise, stop_order.price_paise) == (12_935, 13_585)
    assert any("CE stopped out" in what for _, what in s.log)
    assert_accounting_identity(e)


class Spammer(Strategy):
    """Sells one lot of the CE on every slice from 09:20 until it is told no."""

    def __init__(self) -> None:
        super().__init__("spam")
        self.denied: list[OrderDenied] = []

    def on_slice(self, ctx: StrategyContext, market: MarketSlice) -> None:
        if ctx.now_ns() >= ist_ns(ctx.today(), 9, 20) and len(self.denied) < 3:
            ctx.place(CE, Side.SELL, 65, OrderType.LIMIT, price_paise=14_000)

    def on_order_update(self, ctx: StrategyContext, event: Any, order: Any) -> None:
        if isinstance(event, OrderDenied):
            self.denied.append(event)


def test_the_kill_switch_cancels_working_orders_and_blocks_new_ones() -> None:
    spam = Spammer()
    e = make_engine([spam])
    kill_at = ist_ns(DAY1, 9, 26)

    def feed() -> Iterator[MarketSlice]:
        for m in quiet_day(DAY1, until=(9, 40)):
            if m.ts_ns == kill_at:
                e.post(KillSwitch(on=True, issued_by="test"))
            yield m

    e.run(feed())
    resting = [o for o in e.oms.orders.values() if o.created_ns < kill_at]
    assert len(resting) == 6  # 09:20 .. 09:25, resting sells at 140.00
    assert all(o.status.value == "CANCELLED" and o.reason == "user" for o in resting)
    assert [d.code for d in spam.denied] == ["KILL_SWITCH"] * 3
    assert {d.ts_ns for d in spam.denied} == {kill_at, kill_at + 60 * 10**9, kill_at + 120 * 10**9}
    assert e.kill_switch


def test_a_stale_market_refuses_opening_orders_but_exits_still_pass() -> None:
    """MarketStale (posted by a live feed's watchdog): the straddle opened at 09:20 keeps its
    15:15 time exit while the feed is stale; the spammer's opening sells are refused with
    STALE_MARKET until the feed is fresh again; a user's Pause is not undone by it."""
    s = straddle(leg_stop_loss_pct=None)
    spam = Spammer()
    e = make_engine([s, spam])
    stale_at, fresh_at = ist_ns(DAY1, 9, 22), ist_ns(DAY1, 9, 24)
    exit_stale_at = ist_ns(DAY1, 15, 10)
    paused = []

    def feed() -> Iterator[MarketSlice]:
        for m in quiet_day(DAY1):
            if m.ts_ns == stale_at:
                e.post(Pause(strategy_id="straddle", issued_by="user"))
                e.post(MarketStale(stale=True, issued_by="feed"))
            if m.ts_ns == fresh_at:
                e.post(MarketStale(stale=False, issued_by="feed"))
                paused.append(e.state("straddle"))
                e.post(Resume(strategy_id="straddle", issued_by="user"))
            if m.ts_ns == exit_stale_at:
                e.post(MarketStale(stale=True, issued_by="feed"))
            yield m

    e.run(feed())
    assert [d.code for d in spam.denied] == ["STALE_MARKET"] * 3
    assert [d.ts_ns for d in spam.denied] == [stale_at, stale_at + 60 * 10**9, exit_stale_at]
    assert all("stale" in d.reason for d in spam.denied)
    assert paused == [StrategyState.PAUSED]  # fresh again did not resume the user's pause
    # the spammer sold again between the feed freshening and going stale at 15:10
    assert any(o.created_ns == fresh_at for o in e.oms.orders.values() if o.strategy_id == "spam")
    exits = [f for f in e.fills if f.strategy_id == "straddle" and f.tag.startswith("exit")]
    assert {f.ts_ns for f in exits} == {ist_ns(DAY1, 15, 15)} and len(exits) == 2
    assert e.market_stale
    assert_accounting_identity(e)


def test_the_daily_loss_limit_squares_off_and_stops_the_strategy() -> None:
    s = straddle(leg_stop_loss_pct=None)
    e = make_engine([s], daily_loss_limit_paise=65 * 2_000)  # Rs 1,300
    feed = quiet_day(DAY1, until=(9, 30))
    for k, ts in enumerate(minutes(DAY1, (9, 31), (9, 40))):
        ce = 10_000 + 500 * (k + 1)  # the call rises 5 rupees a minute
        feed.append(bar_slice(ts, [flat(SPOT, 2_401_000 + 500 * k), flat(CE, ce), flat(PE, 9_000)]))
    e.run(feed)
    assert e.state("straddle") == StrategyState.STOPPED
    assert not e.portfolio.open_positions()
    squares = [f for f in e.fills if f.tag == "square off"]
    assert {f.side for f in squares} == {Side.BUY} and len(squares) == 2
    # stopped at the first mark past the limit: the CE at 118.00 -> loss 65*(118.50-99.50)-...
    assert e.portfolio.pnl("straddle").net <= -65 * 2_000
    assert_accounting_identity(e)


def test_an_expiring_short_held_to_expiry_settles_at_intrinsic_value() -> None:
    s = straddle(leg_stop_loss_pct=None, hold_to_expiry=True, exit_time=time(15, 25))
    e = make_engine([s])
    feed = quiet_day(EXPIRY, spot=2_415_000, ce=15_200, pe=300)
    e.run(feed)
    settles = [f for f in e.fills if f.settlement]
    assert {(f.symbol[-7:], f.side, f.price_paise) for f in settles} == {
        ("24000CE", Side.BUY, 15_000),  # 24150 - 24000
        ("24000PE", Side.BUY, 0),
    }
    assert not e.portfolio.open_positions()
    assert_accounting_identity(e)


def test_orders_above_the_freeze_quantity_are_sliced_on_the_way_in_and_out() -> None:
    s = straddle(leg_stop_loss_pct=None, lots=40)  # 2600 units, freeze 1800
    e = make_engine([s])
    e.run(quiet_day(DAY1))
    orders = list(e.oms.orders.values())
    assert sorted(o.qty for o in orders if o.tag == "entry CE") == [845, 1755]
    assert sorted(o.qty for o in orders if o.tag == "exit CE") == [845, 1755]
    assert all(o.qty <= 1800 for o in orders)
    assert sum(f.qty for f in e.fills if f.tag == "entry CE") == 2600
    assert sum(f.qty for f in e.fills if f.tag == "exit CE") == 2600
    assert not e.portfolio.open_positions()
    assert_accounting_identity(e)


class Broken(Strategy):
    def on_slice(self, ctx: StrategyContext, market: MarketSlice) -> None:
        raise RuntimeError("bug in user code")


def test_a_failing_strategy_is_logged_and_stopped_without_stopping_the_engine() -> None:
    s = straddle(leg_stop_loss_pct=None)
    e = make_engine([Broken("broken"), s], max_strategy_errors=5)
    e.run(quiet_day(DAY1))
    assert e.state("broken") == StrategyState.STOPPED
    assert any(f.tag.startswith("exit") for f in e.fills)  # the other strategy carried on


class BarCollector(Strategy):
    def __init__(self) -> None:
        super().__init__("bars")
        self.bars: list[Any] = []
        self.ticks: list[tuple[int, int]] = []

    def on_slice(self, ctx: StrategyContext, market: MarketSlice) -> None:
        spot = ctx.universe.spot("NIFTY")
        assert spot is not None
        i = ctx.universe.index_of(spot.token)
        if i in set(int(x) for x in market.idx):
            self.ticks.append((market.ts_ns, ctx.ltp_paise(i)))

    def on_bar(self, ctx: StrategyContext, bar: Any) -> None:
        if bar.token == "99926000":
            self.bars.append(bar)


def test_in_tick_mode_the_engine_builds_minute_bars_of_the_index() -> None:
    from algoengine.market.synthetic import SyntheticMarket, SyntheticMarketConfig

    market = SyntheticMarket(SyntheticMarketConfig(seed=1, mode="ticks"), DAY1, DAY1)
    collector = BarCollector()
    e = Engine(
        universe=market.universe,
        venue=exchange(market.universe),
        strategies=[collector],
        calendar=market.calendar,
        config=EngineConfig(run_code="T"),
    )
    e.run(market)
    bars = collector.bars
    assert len(bars) >= 370  # every minute of the session but the last
    assert all(b.ts_ns % 60_000_000_000 == 0 for b in bars)
    assert all(b2.ts_ns - b1.ts_ns == 60_000_000_000 for b1, b2 in itertools.pairwise(bars))
    for b in bars[:50]:
        inside = [p for t, p in collector.ticks if b.ts_ns <= t < b.ts_ns + 60_000_000_000]
        assert (b.open_paise, b.high_paise, b.low_paise, b.close_paise) == (
            inside[0],
            max(inside),
            min(inside),
            inside[-1],
        )
