"""The paper exchange: scenarios asserting the exact event sequence, prices and quantities.

The instrument is a NIFTY option: lot 75, tick Rs 0.05 (5 paise), freeze quantity 1,800. Prices
are paise (10_000 = Rs 100.00). The session day is Monday 3 November 2025, IST.
"""

from __future__ import annotations

import random
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

import pytest

from algoengine.brokers import Broker
from algoengine.brokers.paper import (
    MarketHours,
    PaperExchange,
    PaperExchangeConfig,
    QueueModel,
    ist_date,
)
from algoengine.domain import (
    Instrument,
    InstrumentKind,
    OptionType,
    OrderAccepted,
    OrderCancelled,
    OrderCancelRejected,
    OrderEvent,
    OrderFilled,
    OrderFillEvent,
    OrderModified,
    OrderModifyRejected,
    OrderRejected,
    OrderRequest,
    OrderStatus,
    OrderTriggered,
    OrderType,
    RejectCode,
    Side,
    StatusTrigger,
    TimeInForce,
    ValidationError,
    next_status,
)

IST = timezone(timedelta(hours=5, minutes=30))
DAY = date(2025, 11, 3)  # a Monday
TOKEN = "58784"
MS = 1_000_000


def ist(hh: int, mm: int, ss: int = 0, *, day: date = DAY) -> int:
    """UTC epoch ns of an IST wall-clock time."""
    return int(datetime(day.year, day.month, day.day, hh, mm, ss, tzinfo=IST).timestamp()) * (
        1_000_000_000
    )


T0 = ist(10, 0)

NIFTY_CE = Instrument(
    token=TOKEN,
    symbol="NIFTY11NOV2525800CE",
    exchange="NFO",
    underlying="NIFTY",
    kind=InstrumentKind.OPTION,
    expiry=date(2025, 11, 11),
    strike_paise=2_580_000,
    option_type=OptionType.CE,
    lot_size=75,
    tick_paise=5,
    freeze_qty=1_800,
)


def exchange(**config: Any) -> PaperExchange:
    config.setdefault("price_band_bps", 2000)  # the rule tests below use a 20 % band
    return PaperExchange(PaperExchangeConfig(**config), [NIFTY_CE])


def order(
    cid: str,
    side: Side,
    qty: int,
    price: int | None = None,
    *,
    order_type: OrderType | None = None,
    trigger: int | None = None,
    tif: TimeInForce = TimeInForce.DAY,
    token: str = TOKEN,
) -> OrderRequest:
    if order_type is None:
        order_type = OrderType.LIMIT if price is not None else OrderType.MARKET
    return OrderRequest(
        client_order_id=cid,
        instrument_token=token,
        side=side,
        order_type=order_type,
        qty=qty,
        price_paise=price,
        trigger_price_paise=trigger,
        tif=tif,
        strategy_id="test",
    )


def brief(e: OrderEvent) -> tuple[Any, ...]:
    """The parts of an event a scenario asserts on."""
    if isinstance(e, OrderAccepted):
        return ("accepted", e.client_order_id, e.status.value)
    if isinstance(e, OrderTriggered):
        return ("triggered", e.client_order_id, e.last_price_paise)
    if isinstance(e, OrderFillEvent):
        kind = "filled" if isinstance(e, OrderFilled) else "partial"
        return (kind, e.client_order_id, e.qty, e.price_paise, e.filled_qty, e.remaining_qty)
    if isinstance(e, OrderCancelled):
        return ("cancelled", e.client_order_id, e.reason, e.filled_qty, e.cancelled_qty)
    if isinstance(e, OrderRejected):
        return ("rejected", e.client_order_id, e.code.value)
    if isinstance(e, OrderModified):
        return ("modified", e.client_order_id, e.qty, e.price_paise, e.trigger_price_paise)
    if isinstance(e, OrderModifyRejected):
        return ("modify rejected", e.client_order_id, e.code.value)
    if isinstance(e, OrderCancelRejected):
        return ("cancel rejected", e.client_order_id, e.code.value)
    raise AssertionError(e)


def drain(ex: PaperExchange) -> list[tuple[Any, ...]]:
    return [brief(e) for e in ex.drain_events()]


def book_100(ex: PaperExchange, ts: int = T0) -> None:
    """A market around Rs 100: bids 100.00 x150, 99.95 x300; asks 100.05 x150, 100.10 x300."""
    ex.on_depth(TOKEN, [(10_000, 150), (9_995, 300)], [(10_005, 150), (10_010, 300)], ts)


# ---- queue position ----------------------------------------------------------------------------


def test_a_limit_order_rests_behind_the_displayed_queue_and_fills_as_prints_consume_it() -> None:
    ex = exchange()
    book_100(ex)
    ex.submit(order("B1", Side.BUY, 150, 10_000), T0 + 1)
    assert drain(ex) == [("accepted", "B1", "OPEN")]
    assert ex.queue_ahead("B1") == 150
    assert ex.depth(TOKEN)[0][0] == (10_000, 300)

    ex.on_trade(TOKEN, 10_000, 100, T0 + 2)  # takes 100 of the 150 ahead of us
    assert drain(ex) == []
    assert ex.queue_ahead("B1") == 50
    ex.on_trade(TOKEN, 10_000, 125, T0 + 3)  # 50 ahead, then 75 of ours
    assert drain(ex) == [("partial", "B1", 75, 10_000, 75, 75)]
    assert ex.queue_ahead("B1") == 0
    ex.on_trade(TOKEN, 10_000, 500, T0 + 4)
    assert drain(ex) == [("filled", "B1", 75, 10_000, 150, 0)]
    assert ex.open_orders() == []
    assert ex.order("B1") is not None and ex.order("B1").status is OrderStatus.FILLED  # type: ignore[union-attr]


def test_liquidity_that_joins_later_queues_behind_us() -> None:
    ex = exchange()
    book_100(ex)
    ex.submit(order("B1", Side.BUY, 75, 10_000), T0 + 1)
    ex.on_depth(TOKEN, [(10_000, 400), (9_995, 300)], [(10_005, 150)], T0 + 2)
    assert ex.queue_ahead("B1") == 150  # the 250 that joined are behind
    ex.on_trade(TOKEN, 10_000, 225, T0 + 3)
    assert drain(ex)[-1] == ("filled", "B1", 75, 10_000, 75, 0)


@pytest.mark.parametrize(
    ("model", "ahead_after"),
    [
        # 150 ahead, 100 behind; 100 cancelled without a trade.
        (QueueModel.PROPORTIONAL, 90),  # 150 - 100 * 150 / 250
        (QueueModel.FROM_BACK, 100),  # the 100 behind go first... all of them, then none ahead
        (QueueModel.FROM_FRONT, 50),
    ],
)
def test_a_level_shrinking_without_trades_moves_our_queue_as_the_model_says(
    model: QueueModel, ahead_after: int
) -> None:
    ex = exchange(queue_model=model)
    book_100(ex)
    ex.submit(order("B1", Side.BUY, 75, 10_000), T0 + 1)
    ex.on_depth(TOKEN, [(10_000, 250)], [(10_005, 150)], T0 + 2)
    assert ex.queue_ahead("B1") == 150
    ex.on_depth(TOKEN, [(10_000, 150)], [(10_005, 150)], T0 + 3)
    expected = {QueueModel.FROM_BACK: 150}.get(model, ahead_after)
    assert ex.queue_ahead("B1") == expected
    assert ex.depth(TOKEN)[0][0] == (10_000, 150 + 75)


def test_a_level_that_disappears_leaves_us_first_in_the_queue() -> None:
    ex = exchange()
    book_100(ex)
    ex.submit(order("B1", Side.BUY, 75, 10_000), T0 + 1)
    ex.on_depth(TOKEN, [(9_995, 300)], [(10_005, 150)], T0 + 2)
    assert ex.queue_ahead("B1") == 0
    assert ex.depth(TOKEN)[0] == [(10_000, 75), (9_995, 300)]


def test_a_full_snapshot_keeps_deeper_levels_it_does_not_show() -> None:
    ex = exchange(depth_levels=2)
    book_100(ex)
    ex.on_depth(TOKEN, [(10_000, 150), (9_995, 300)], [(10_005, 150), (10_010, 300)], T0 + 1)
    # Two bids shown of two: the side is "full", so a deeper level at 99.90 is unknown, kept.
    ex.on_depth(TOKEN, [(10_005, 100), (10_000, 150)], [(10_010, 300), (10_015, 50)], T0 + 2)
    bids, asks = ex.depth(TOKEN)
    assert bids == [(10_005, 100), (10_000, 150), (9_995, 300)]
    assert asks == [(10_010, 300), (10_015, 50)]  # 100.05 was inside the range shown: gone


def test_a_print_through_our_price_fills_us_before_the_worse_level() -> None:
    ex = exchange()
    book_100(ex)
    ex.submit(order("S1", Side.SELL, 75, 10_005), T0 + 1)
    assert ex.queue_ahead("S1") == 150
    ex.on_trade(TOKEN, 10_010, 250, T0 + 2)  # a buyer lifted 100.05 and into 100.10
    assert drain(ex)[1:] == [("filled", "S1", 75, 10_005, 75, 0)]
    assert ex.depth(TOKEN)[1] == [(10_010, 275)]


def test_a_print_inside_the_spread_fills_nothing() -> None:
    ex = exchange()
    ex.on_depth(TOKEN, [(10_000, 150)], [(10_010, 150)], T0)
    ex.submit(order("B1", Side.BUY, 75, 10_000), T0 + 1)
    ex.on_trade(TOKEN, 10_005, 1_000, T0 + 2)
    assert drain(ex) == [("accepted", "B1", "OPEN")]
    assert ex.last_price_paise(TOKEN) == 10_005
    assert ex.queue_ahead("B1") == 150


# ---- the market moving through a resting order -------------------------------------------------


def test_an_ask_moving_through_our_bid_fills_us_at_our_price_once() -> None:
    ex = exchange()
    ex.on_depth(TOKEN, [(9_995, 100)], [(10_010, 100)], T0)
    ex.submit(order("B1", Side.BUY, 150, 10_000), T0 + 1)  # improves the bid
    ex.on_depth(TOKEN, [(9_985, 100)], [(9_990, 50), (10_010, 100)], T0 + 2)
    assert drain(ex) == [("accepted", "B1", "OPEN"), ("partial", "B1", 50, 10_000, 50, 100)]
    # The feed keeps showing the 50 we traded with: not traded again (liquidity consumption).
    ex.on_depth(TOKEN, [(9_985, 100)], [(9_990, 50), (10_010, 100)], T0 + 3)
    assert drain(ex) == []
    # 30 more appear at 99.90: those trade with us.
    ex.on_depth(TOKEN, [(9_985, 100)], [(9_990, 80), (10_010, 100)], T0 + 4)
    assert drain(ex) == [("partial", "B1", 30, 10_000, 80, 70)]
    assert ex.depth(TOKEN)[1] == [(10_010, 100)]


def test_without_liquidity_consumption_every_snapshot_trades_again() -> None:
    ex = exchange(liquidity_consumption=False)
    ex.on_depth(TOKEN, [(9_995, 100)], [(10_010, 100)], T0)
    ex.submit(order("B1", Side.BUY, 150, 10_000), T0 + 1)
    for k in range(3):
        ex.on_depth(TOKEN, [(9_985, 100)], [(9_990, 50), (10_010, 100)], T0 + 2 + k)
    assert drain(ex)[1:] == [
        ("partial", "B1", 50, 10_000, 50, 100),
        ("partial", "B1", 50, 10_000, 100, 50),
        ("filled", "B1", 50, 10_000, 150, 0),
    ]


def test_a_bid_moving_up_to_our_offer_fills_it() -> None:
    ex = exchange()
    book_100(ex)
    ex.submit(order("S1", Side.SELL, 75, 10_010), T0 + 1)  # behind 300 at 100.10
    ex.on_depth(TOKEN, [(10_010, 40), (10_005, 100)], [(10_015, 300)], T0 + 2)
    assert drain(ex)[1:] == [("partial", "S1", 40, 10_010, 40, 35)]


# ---- marketable orders -------------------------------------------------------------------------


def test_a_marketable_limit_sweeps_levels_and_rests_the_remainder() -> None:
    ex = exchange()
    book_100(ex)
    ex.submit(order("B1", Side.BUY, 600, 10_010), T0 + 1)
    assert drain(ex) == [
        ("accepted", "B1", "OPEN"),
        ("partial", "B1", 150, 10_005, 150, 450),
        ("partial", "B1", 300, 10_010, 450, 150),
    ]
    bids, asks = ex.depth(TOKEN)
    assert bids[0] == (10_010, 150) and asks == []
    assert ex.queue_ahead("B1") == 0
    [report] = ex.open_orders()
    assert (report.status, report.filled_qty, report.remaining_qty) == (
        OrderStatus.PARTIALLY_FILLED,
        450,
        150,
    )


def test_an_ioc_remainder_is_cancelled() -> None:
    ex = exchange()
    book_100(ex)
    ex.submit(order("B1", Side.BUY, 600, 10_010, tif=TimeInForce.IOC), T0 + 1)
    ex.submit(order("B2", Side.BUY, 75, 9_995, tif=TimeInForce.IOC), T0 + 2)
    assert drain(ex) == [
        ("accepted", "B1", "OPEN"),
        ("partial", "B1", 150, 10_005, 150, 450),
        ("partial", "B1", 300, 10_010, 450, 150),
        ("cancelled", "B1", "IOC remainder", 450, 150),
        ("accepted", "B2", "OPEN"),
        ("cancelled", "B2", "IOC remainder", 0, 75),
    ]
    assert ex.open_orders() == []
    assert ex.depth(TOKEN)[0] == [(10_000, 150), (9_995, 300)]


def test_market_orders_fill_walk_the_book_and_cancel_what_is_left() -> None:
    ex = exchange()
    book_100(ex)
    ex.submit(order("S1", Side.SELL, 225), T0 + 1)
    ex.submit(order("S2", Side.SELL, 300), T0 + 2)
    assert drain(ex) == [
        ("accepted", "S1", "OPEN"),
        ("partial", "S1", 150, 10_000, 150, 75),
        ("filled", "S1", 75, 9_995, 225, 0),
        ("accepted", "S2", "OPEN"),
        ("partial", "S2", 225, 9_995, 225, 75),
        ("cancelled", "S2", "market order remainder", 225, 75),
    ]
    ex.submit(order("S3", Side.SELL, 75), T0 + 3)  # no bids left at all
    assert drain(ex) == [("rejected", "S3", "NO_LIQUIDITY")]


# ---- stop-loss orders --------------------------------------------------------------------------


def test_a_stop_loss_market_buy_triggers_on_a_print_and_takes_the_offer() -> None:
    ex = exchange()
    ex.on_trade(TOKEN, 10_000, 75, T0)
    ex.on_depth(TOKEN, [(10_000, 150)], [(10_100, 150), (10_105, 300)], T0)
    ex.submit(
        order("SL1", Side.BUY, 150, order_type=OrderType.STOPLOSS_MARKET, trigger=10_100), T0 + 1
    )
    ex.on_trade(TOKEN, 10_050, 75, T0 + 2)  # below the trigger: nothing
    ex.on_depth(TOKEN, [(10_000, 150)], [(10_100, 150), (10_105, 300)], T0 + 3)
    assert drain(ex) == [("accepted", "SL1", "TRIGGER_PENDING")]
    assert ex.order("SL1").status is OrderStatus.TRIGGER_PENDING  # type: ignore[union-attr]
    ex.on_trade(TOKEN, 10_100, 50, T0 + 4)  # the print takes 50 at 101.00, then we trigger
    assert drain(ex) == [
        ("triggered", "SL1", 10_100),
        ("partial", "SL1", 100, 10_100, 100, 50),
        ("filled", "SL1", 50, 10_105, 150, 0),
    ]


def test_a_stop_loss_limit_sell_triggers_fills_down_to_its_price_and_rests() -> None:
    ex = exchange()
    ex.on_trade(TOKEN, 10_000, 75, T0)
    ex.on_depth(TOKEN, [(9_900, 75), (9_895, 75), (9_890, 75), (9_885, 500)], [(10_005, 150)], T0)
    ex.submit(
        order("SL1", Side.SELL, 300, 9_890, order_type=OrderType.STOPLOSS_LIMIT, trigger=9_900),
        T0 + 1,
    )
    ex.on_depth(
        TOKEN, [(9_900, 75), (9_895, 75), (9_890, 75), (9_885, 500)], [(9_950, 150)], T0 + 2
    )  # depth alone never triggers
    assert drain(ex) == [("accepted", "SL1", "TRIGGER_PENDING")]
    ex.on_trade(TOKEN, 9_900, 75, T0 + 3)
    assert drain(ex) == [
        ("triggered", "SL1", 9_900),
        ("partial", "SL1", 75, 9_895, 75, 225),
        ("partial", "SL1", 75, 9_890, 150, 150),
    ]
    assert ex.depth(TOKEN)[1][0] == (9_890, 150)  # the remainder rests as a limit order
    assert ex.order("SL1").status is OrderStatus.PARTIALLY_FILLED  # type: ignore[union-attr]


def test_a_stop_can_be_cancelled_or_have_its_trigger_moved_before_it_triggers() -> None:
    ex = exchange()
    book_100(ex)
    ex.on_trade(TOKEN, 10_000, 75, T0)
    ex.submit(
        order("SL1", Side.SELL, 75, order_type=OrderType.STOPLOSS_MARKET, trigger=9_950), T0 + 1
    )
    ex.submit(
        order("SL2", Side.SELL, 75, order_type=OrderType.STOPLOSS_MARKET, trigger=9_950), T0 + 1
    )
    ex.cancel("SL1", T0 + 2)
    ex.modify("SL2", T0 + 3, trigger_price_paise=9_995)
    ex.on_trade(TOKEN, 9_995, 1, T0 + 4)
    assert drain(ex) == [
        ("accepted", "SL1", "TRIGGER_PENDING"),
        ("accepted", "SL2", "TRIGGER_PENDING"),
        ("cancelled", "SL1", "user", 0, 75),
        ("modified", "SL2", 75, None, 9_995),
        ("triggered", "SL2", 9_995),
        # the two prints took 76 of the 150 bid at 100.00 (a print takes the best bid first)
        ("partial", "SL2", 74, 10_000, 74, 1),
        ("filled", "SL2", 1, 9_995, 75, 0),
    ]


def test_a_triggered_stop_market_with_nothing_to_take_is_cancelled() -> None:
    ex = exchange()
    ex.on_trade(TOKEN, 10_000, 75, T0)
    ex.submit(
        order("SL1", Side.SELL, 75, order_type=OrderType.STOPLOSS_MARKET, trigger=9_950), T0 + 1
    )
    ex.on_trade(TOKEN, 9_900, 75, T0 + 2)
    assert drain(ex) == [
        ("accepted", "SL1", "TRIGGER_PENDING"),
        ("triggered", "SL1", 9_900),
        ("cancelled", "SL1", "no liquidity", 0, 75),
    ]


# ---- rejections --------------------------------------------------------------------------------


def _sl(side: Side, price: int | None, trigger: int) -> OrderRequest:
    kind = OrderType.STOPLOSS_LIMIT if price is not None else OrderType.STOPLOSS_MARKET
    return order("X1", side, 75, price, order_type=kind, trigger=trigger)


@pytest.mark.parametrize(
    ("request_", "code", "words"),
    [
        (order("X1", Side.BUY, 100, 10_000), RejectCode.LOT_SIZE, "lot size 75"),
        (order("X1", Side.BUY, 1_875, 10_000), RejectCode.FREEZE_QTY, "freeze quantity 1800"),
        (order("X1", Side.BUY, 75, 10_003), RejectCode.TICK_SIZE, "tick 5"),
        (_sl(Side.BUY, None, 10_103), RejectCode.TICK_SIZE, "trigger price 10103"),
        # band: 20 % around the last trade, Rs 100.00: 80.00 to 120.00
        (order("X1", Side.BUY, 75, 12_005), RejectCode.PRICE_BAND, "8000-12000"),
        (order("X1", Side.SELL, 75, 7_995), RejectCode.PRICE_BAND, "price band"),
        (_sl(Side.BUY, None, 12_050), RejectCode.PRICE_BAND, "trigger price 12050"),
        (_sl(Side.BUY, 10_095, 10_100), RejectCode.TRIGGER_PRICE, "below its trigger"),
        (_sl(Side.SELL, 9_905, 9_900), RejectCode.TRIGGER_PRICE, "above its trigger"),
        (_sl(Side.BUY, 10_000, 9_990), RejectCode.TRIGGER_CROSSED, "already crossed"),
        (_sl(Side.SELL, None, 10_000), RejectCode.TRIGGER_CROSSED, "already crossed"),
        (
            order("X1", Side.BUY, 75, 10_000, token="99999"),
            RejectCode.UNKNOWN_INSTRUMENT,
            "'99999'",
        ),
    ],
)
def test_orders_breaking_an_exchange_rule_are_rejected_with_the_rule(
    request_: OrderRequest, code: RejectCode, words: str
) -> None:
    ex = exchange()
    book_100(ex)
    ex.on_trade(TOKEN, 10_000, 75, T0)
    ex.submit(request_, T0 + 1)
    [event] = ex.drain_events()
    assert isinstance(event, OrderRejected)
    assert (event.code, event.client_order_id, event.ts_ns) == (code, "X1", T0 + 1)
    assert words in event.reason
    assert event.venue_order_id is not None
    assert ex.order("X1") is None or ex.order("X1").status is OrderStatus.REJECTED  # type: ignore[union-attr]
    assert ex.open_orders() == []


def test_the_band_uses_the_mid_before_any_trade_and_can_be_set_per_instrument() -> None:
    ex = exchange(price_band_bps=1_000)
    ex.on_depth(TOKEN, [(10_000, 150)], [(10_010, 150)], T0)  # mid 100.05
    ex.submit(order("X1", Side.BUY, 75, 11_010), T0 + 1)  # 110.10 > 100.05 * 1.1 = 110.055
    ex.submit(order("X2", Side.BUY, 75, 11_005), T0 + 1)
    assert drain(ex)[:2] == [("rejected", "X1", "PRICE_BAND"), ("accepted", "X2", "OPEN")]
    free = exchange(price_band_bps_by_token={TOKEN: None})
    book_100(free)
    free.submit(order("X1", Side.BUY, 75, 50_000), T0 + 1)
    assert drain(free)[0] == ("accepted", "X1", "OPEN")


def test_a_duplicate_client_order_id_is_rejected_and_the_first_order_is_untouched() -> None:
    ex = exchange()
    book_100(ex)
    ex.submit(order("B1", Side.BUY, 75, 9_995), T0 + 1)
    ex.submit(order("B1", Side.BUY, 75, 9_990), T0 + 2)
    first, second = ex.drain_events()
    assert brief(first) == ("accepted", "B1", "OPEN")
    assert isinstance(second, OrderRejected)
    assert second.code is RejectCode.DUPLICATE_CLIENT_ORDER_ID
    assert second.venue_order_id != first.venue_order_id
    [report] = ex.open_orders()
    assert (report.venue_order_id, report.price_paise) == (first.venue_order_id, 9_995)


def test_cancel_and_modify_of_unknown_or_finished_orders_are_rejected() -> None:
    ex = exchange()
    book_100(ex)
    ex.submit(order("B1", Side.BUY, 75), T0 + 1)  # a market order: fills at once
    ex.cancel("B1", T0 + 2)
    ex.modify("B1", T0 + 3, qty=150)
    ex.cancel("NOPE", T0 + 4)
    ex.modify("NOPE", T0 + 5, price_paise=10_000)
    events = ex.drain_events()
    assert [brief(e) for e in events] == [
        ("accepted", "B1", "OPEN"),
        ("filled", "B1", 75, 10_005, 75, 0),
        ("cancel rejected", "B1", "ORDER_NOT_OPEN"),
        ("modify rejected", "B1", "ORDER_NOT_OPEN"),
        ("cancel rejected", "NOPE", "UNKNOWN_ORDER"),
        ("modify rejected", "NOPE", "UNKNOWN_ORDER"),
    ]
    assert events[2].venue_order_id == events[0].venue_order_id
    assert events[4].venue_order_id is None
    assert ex.order("B1").status is OrderStatus.FILLED  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"qty": 100}, RejectCode.LOT_SIZE),
        ({"qty": 1_875}, RejectCode.FREEZE_QTY),
        ({"qty": 75}, RejectCode.INVALID_MODIFY),  # not above the 75 already filled
        ({"price_paise": 9_997}, RejectCode.TICK_SIZE),
        ({"price_paise": 5_000}, RejectCode.PRICE_BAND),
        ({"trigger_price_paise": 9_000}, RejectCode.INVALID_MODIFY),  # a limit order
        ({}, RejectCode.INVALID_MODIFY),
    ],
)
def test_a_modification_breaking_a_rule_is_rejected_and_changes_nothing(
    change: dict[str, int], code: RejectCode
) -> None:
    ex = exchange()
    book_100(ex)
    ex.submit(order("B1", Side.BUY, 150, 10_000), T0 + 1)
    ex.on_trade(TOKEN, 10_000, 225, T0 + 2)  # 150 ahead, then 75 of ours
    before = ex.order("B1")
    ex.modify("B1", T0 + 3, **change)
    assert drain(ex)[-1] == ("modify rejected", "B1", code.value)
    assert ex.order("B1") == before
    assert ex.queue_ahead("B1") == 0


# ---- cancel and modify -------------------------------------------------------------------------


def test_cancel_takes_a_resting_order_off_the_book() -> None:
    ex = exchange()
    book_100(ex)
    ex.submit(order("B1", Side.BUY, 150, 10_000), T0 + 1)
    ex.on_trade(TOKEN, 10_000, 225, T0 + 2)
    ex.cancel("B1", T0 + 3)
    assert drain(ex) == [
        ("accepted", "B1", "OPEN"),
        ("partial", "B1", 75, 10_000, 75, 75),
        ("cancelled", "B1", "user", 75, 75),
    ]
    assert ex.depth(TOKEN)[0] == [(9_995, 300)]
    assert ex.queue_ahead("B1") is None


def test_modify_keeps_priority_on_a_qty_decrease_and_loses_it_on_a_price_change() -> None:
    ex = exchange()
    book_100(ex)
    ex.submit(order("B1", Side.BUY, 300, 10_000), T0 + 1)
    ex.on_trade(TOKEN, 10_000, 100, T0 + 2)
    ex.on_depth(TOKEN, [(10_000, 250), (9_995, 300)], [(10_005, 150)], T0 + 3)  # 200 behind us
    assert ex.queue_ahead("B1") == 50
    ex.modify("B1", T0 + 4, qty=150)
    assert ex.queue_ahead("B1") == 50
    ex.modify("B1", T0 + 5, qty=225)  # an increase goes to the back
    assert ex.queue_ahead("B1") == 250
    ex.modify("B1", T0 + 6, price_paise=9_995)
    assert ex.queue_ahead("B1") == 300
    ex.modify("B1", T0 + 7, price_paise=10_000)  # back again, but at the tail now
    assert ex.queue_ahead("B1") == 250
    assert drain(ex) == [
        ("accepted", "B1", "OPEN"),
        ("modified", "B1", 150, 10_000, None),
        ("modified", "B1", 225, 10_000, None),
        ("modified", "B1", 225, 9_995, None),
        ("modified", "B1", 225, 10_000, None),
    ]


def test_modify_to_a_crossing_price_trades_like_a_new_order() -> None:
    ex = exchange()
    book_100(ex)
    ex.submit(order("B1", Side.BUY, 225, 10_000), T0 + 1)
    ex.modify("B1", T0 + 2, price_paise=10_005)
    assert drain(ex) == [
        ("accepted", "B1", "OPEN"),
        ("modified", "B1", 225, 10_005, None),
        ("partial", "B1", 150, 10_005, 150, 75),
    ]
    assert ex.depth(TOKEN)[0][0] == (10_005, 75)


# ---- latency -----------------------------------------------------------------------------------


def test_an_order_meets_the_book_as_it_is_when_it_arrives() -> None:
    ex = exchange(order_latency_ns=5 * MS, report_latency_ns=2 * MS)
    book_100(ex)
    ex.submit(order("B1", Side.BUY, 75), T0 + 1 * MS)  # a market buy, arrives at +6 ms
    ex.on_depth(TOKEN, [(10_000, 150)], [(10_020, 75)], T0 + 3 * MS)  # the offer moved away
    assert ex.open_orders() == []
    ex.advance(T0 + 6 * MS)
    assert ex.drain_events() == []  # the reports are 2 ms away
    ex.advance(T0 + 8 * MS - 1)
    assert ex.drain_events() == []
    ex.advance(T0 + 8 * MS)
    events = ex.drain_events()
    assert [brief(e) for e in events] == [
        ("accepted", "B1", "OPEN"),
        ("filled", "B1", 75, 10_020, 75, 0),
    ]
    assert {e.ts_ns for e in events} == {T0 + 6 * MS}  # exchange time


def test_a_cancel_can_arrive_too_late() -> None:
    ex = exchange(order_latency_ns=5 * MS)
    book_100(ex)
    ex.submit(order("S1", Side.SELL, 75, 10_005), T0)
    ex.advance(T0 + 5 * MS)
    ex.cancel("S1", T0 + 6 * MS)  # arrives at +11 ms
    ex.on_trade(TOKEN, 10_005, 225, T0 + 8 * MS)
    ex.advance(T0 + 11 * MS)
    assert drain(ex) == [
        ("accepted", "S1", "OPEN"),
        ("filled", "S1", 75, 10_005, 75, 0),
        ("cancel rejected", "S1", "ORDER_NOT_OPEN"),
    ]


def test_requests_due_before_market_input_run_first() -> None:
    ex = exchange(order_latency_ns=MS)
    book_100(ex)
    ex.submit(order("B1", Side.BUY, 75, 10_000), T0)
    ex.on_trade(TOKEN, 10_000, 225, T0 + MS)  # the order arrived at exactly this time
    assert drain(ex) == [("accepted", "B1", "OPEN"), ("filled", "B1", 75, 10_000, 75, 0)]


# ---- market hours ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ts", "accepted"),
    [
        (ist(9, 14, 59), False),
        (ist(9, 15), True),
        (ist(15, 29, 59), True),
        (ist(15, 30), False),
        (ist(10, 0, day=date(2025, 11, 1)), False),  # a Saturday
        (ist(10, 0, day=date(2025, 11, 5)), False),  # a holiday in the config
    ],
)
def test_orders_are_accepted_only_in_the_session(ts: int, accepted: bool) -> None:
    ex = exchange(closed_dates=frozenset({date(2025, 11, 5)}))
    ex.on_depth(TOKEN, [(10_000, 150)], [(10_005, 150)], ts)
    ex.submit(order("B1", Side.BUY, 75, 10_000), ts)
    [event] = ex.drain_events()
    if accepted:
        assert brief(event) == ("accepted", "B1", "OPEN")
    else:
        assert isinstance(event, OrderRejected) and event.code is RejectCode.MARKET_CLOSED
        assert event.reason == "market closed"


def test_working_orders_are_cancelled_at_the_close() -> None:
    ex = exchange()
    book_100(ex)
    ex.on_trade(TOKEN, 10_000, 75, T0)
    ex.submit(order("B1", Side.BUY, 75, 9_995), T0 + 1)
    ex.submit(
        order("SL1", Side.SELL, 75, order_type=OrderType.STOPLOSS_MARKET, trigger=9_900), T0 + 2
    )
    drain(ex)
    ex.advance(ist(15, 29, 59))
    assert len(ex.open_orders()) == 2
    ex.advance(ist(16, 0))
    events = ex.drain_events()
    assert [brief(e) for e in events] == [
        ("cancelled", "B1", "market closed", 0, 75),
        ("cancelled", "SL1", "market closed", 0, 75),
    ]
    assert {e.ts_ns for e in events} == {ist(15, 30)}
    assert ex.open_orders() == []


def test_market_hours_can_be_switched_off() -> None:
    ex = exchange(enforce_market_hours=False)
    ts = ist(3, 0, day=date(2025, 11, 2))  # a Sunday night
    ex.on_depth(TOKEN, [(10_000, 150)], [(10_005, 150)], ts)
    ex.submit(order("B1", Side.BUY, 75, 10_000), ts)
    ex.advance(ist(23, 0))
    assert drain(ex) == [("accepted", "B1", "OPEN")]


def test_market_hours_in_ist() -> None:
    hours = MarketHours(
        open_time=time(9, 15),
        close_time=time(15, 30),
        weekdays=frozenset(range(5)),
        closed_dates=frozenset(),
    )
    assert hours.close_ns(ist(10, 0)) == ist(15, 30)
    assert ist_date(ist(0, 10)) == DAY  # 18:40 UTC the day before
    assert hours.is_open(ist(9, 15)) and not hours.is_open(ist(9, 15) - 1)


# ---- ids, determinism, protocol, misuse --------------------------------------------------------


def test_venue_and_trade_ids_look_like_the_exchanges() -> None:
    ex = exchange()
    book_100(ex)
    ex.submit(order("B1", Side.BUY, 225), T0 + 1)
    ex.submit(order("B2", Side.BUY, 75, 10_010), T0 + 2)
    events = ex.drain_events()
    venue_ids = {e.venue_order_id for e in events}
    assert len(venue_ids) == 2
    assert all(v is not None and len(v) == 15 and v.startswith("251103") for v in venue_ids)
    trade_ids = [e.trade_id for e in events if isinstance(e, OrderFillEvent)]
    assert len(trade_ids) == len(set(trade_ids)) == 3 and all(t.isdigit() for t in trade_ids)


def _random_session(seed: int) -> list[OrderEvent]:
    """A seeded random mix of depth, prints and orders of every kind."""
    rng = random.Random(seed)
    ex = exchange(order_latency_ns=2 * MS, report_latency_ns=MS)
    mid = 10_000
    ts = T0
    cids: list[str] = []
    events: list[OrderEvent] = []
    for step in range(400):
        ts += rng.randint(1, 3) * MS
        roll = rng.random()
        if roll < 0.35:
            mid += 5 * rng.randint(-2, 2)
            bids = [(mid - 5 * (k + 1), 75 * rng.randint(1, 8)) for k in range(5)]
            asks = [(mid + 5 * (k + 1), 75 * rng.randint(1, 8)) for k in range(5)]
            ex.on_depth(TOKEN, bids, asks, ts)
        elif roll < 0.6:
            ex.on_trade(TOKEN, mid + 5 * rng.randint(-3, 3), rng.randint(1, 600), ts)
        elif roll < 0.85:
            cid = f"R{step}"
            side = rng.choice([Side.BUY, Side.SELL])
            kind = rng.choice(list(OrderType))
            price = mid + 5 * rng.randint(-4, 4)
            trigger = price - 5 * side.sign * rng.randint(0, 2)
            ex.submit(
                order(
                    cid,
                    side,
                    75 * rng.randint(1, 4),
                    price if kind.has_limit_price else None,
                    order_type=kind,
                    trigger=trigger if kind.is_stop else None,
                    tif=rng.choice([TimeInForce.DAY, TimeInForce.IOC]),
                ),
                ts,
            )
            cids.append(cid)
        elif cids:
            cid = rng.choice(cids)
            if rng.random() < 0.5:
                ex.cancel(cid, ts)
            else:
                ex.modify(cid, ts, qty=75 * rng.randint(1, 4))
        events.extend(ex.drain_events())
    ex.advance(ist(15, 31))
    events.extend(ex.drain_events())
    return events


def test_same_inputs_give_the_same_events() -> None:
    first = _random_session(7)
    assert first == _random_session(7)
    assert len(first) > 200  # about 100 orders and what happened to them
    assert first != _random_session(8)


def test_every_event_sequence_follows_the_status_table_and_fills_respect_limits() -> None:
    events = _random_session(11)
    status: dict[str, OrderStatus] = {}
    filled: dict[str, int] = {}
    kinds = set()
    for e in events:
        kinds.add(type(e).__name__)
        trigger = e.status_trigger
        if trigger is None:
            continue
        if isinstance(e, OrderRejected) and e.code is RejectCode.DUPLICATE_CLIENT_ORDER_ID:
            continue
        current = status.get(e.client_order_id, OrderStatus.SUBMITTED)
        status[e.client_order_id] = next_status(current, trigger)
        if isinstance(e, OrderFillEvent):
            filled[e.client_order_id] = filled.get(e.client_order_id, 0) + e.qty
            assert e.filled_qty == filled[e.client_order_id]
            assert e.qty > 0 and e.remaining_qty >= 0
    assert all(s.is_terminal for s in status.values())  # the close ended every order
    assert {
        "OrderAccepted",
        "OrderTriggered",
        "OrderPartiallyFilled",
        "OrderFilled",
        "OrderCancelled",
        "OrderRejected",
        "OrderModified",
    } <= kinds
    assert StatusTrigger.FILL in {e.status_trigger for e in events}


def test_the_paper_exchange_is_a_broker() -> None:
    assert isinstance(exchange(), Broker)


def test_misuse_raises_validation_errors() -> None:
    ex = exchange()
    book_100(ex, T0 + 10)
    with pytest.raises(ValidationError) as info:
        ex.advance(T0)
    assert info.value.field == "ts_ns"
    with pytest.raises(ValidationError) as info:
        ex.on_depth(TOKEN, [(10_005, 150)], [(10_005, 150)], T0 + 11)
    assert "crossed" in str(info.value)
    with pytest.raises(ValidationError):
        ex.on_depth(TOKEN, [(9_995, 150), (10_000, 150)], [], T0 + 11)  # worst first
    with pytest.raises(ValidationError):
        ex.on_depth(TOKEN, [(10_001, 150)], [], T0 + 11)  # off the grid
    with pytest.raises(ValidationError) as info:
        ex.on_trade("99999", 10_000, 75, T0 + 11)
    assert info.value.field == "token"
    with pytest.raises(ValidationError) as info:
        ex.submit("B1", T0 + 11)  # type: ignore[arg-type]
    assert info.value.field == "request"
    with pytest.raises(ValidationError) as info:
        ex.modify("B1", T0 + 11, qty=0)
    assert info.value.field == "qty"
    with pytest.raises(ValidationError):
        PaperExchangeConfig(market_open=time(15, 30), market_close=time(9, 15))
    with pytest.raises(ValidationError):
        PaperExchangeConfig(price_band_bps=0)
    # An empty depth slot (Angel One sends zeros) is fine.
    ex.on_depth(TOKEN, [(10_000, 150), (0, 0)], [(10_005, 150)], T0 + 12)
    assert ex.depth(TOKEN) == ([(10_000, 150)], [(10_005, 150)])
