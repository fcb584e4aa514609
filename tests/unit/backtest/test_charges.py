"""Tests for ``algoengine.backtest.charges``: hand-computed contract-note examples, the dated
rate sets, brokerage once per order, the GST base, half-up rounding and bad rates."""

from __future__ import annotations

import math
from datetime import date, datetime
from typing import Any

import pytest

from algoengine.backtest.charges import DEFAULT_RATES, ChargeRates, Charges, ChargesModel
from algoengine.domain.orders import Side
from algoengine.errors import ConfigurationError, ValidationError

BEFORE = date(2026, 3, 31)  # last day of STT 0.1 % on option sells
AFTER = date(2026, 4, 1)  # first day of STT 0.15 %


@pytest.fixture
def model() -> ChargesModel:
    return ChargesModel(DEFAULT_RATES)


# Sell / buy 75 units (one NIFTY lot) at Rs 100.00: premium turnover 750_000 paise (Rs 7,500).
#   brokerage     2000 (first fill)
#   STT           750_000 x 0.001  = 750       (after 2026-04-01: x 0.0015 = 1125)
#   exchange txn  750_000 x 0.0003503 = 262.725 -> 263
#   SEBI          750_000 x 1e-6 = 0.75 -> 1
#   stamp (buy)   750_000 x 0.00003 = 22.5 -> 23 (half up)
#   GST           (2000 + 263 + 1) x 0.18 = 407.52 -> 408
@pytest.mark.parametrize(
    ("side", "day", "expected"),
    [
        (Side.SELL, BEFORE, Charges(brokerage=2000, stt=750, exchange_txn=263, sebi=1, gst=408)),
        (Side.SELL, AFTER, Charges(brokerage=2000, stt=1125, exchange_txn=263, sebi=1, gst=408)),
        (Side.BUY, BEFORE, Charges(brokerage=2000, exchange_txn=263, sebi=1, stamp=23, gst=408)),
        (Side.BUY, AFTER, Charges(brokerage=2000, exchange_txn=263, sebi=1, stamp=23, gst=408)),
    ],
)
def test_hand_computed_first_fill(
    model: ChargesModel, side: Side, day: date, expected: Charges
) -> None:
    got = model.fill_charges(side, 10_000, 75, day, True)
    assert got == expected
    assert (
        got.total
        == {
            (Side.SELL, BEFORE): 3422,
            (Side.SELL, AFTER): 3797,
            (Side.BUY, BEFORE): 2695,
            (Side.BUY, AFTER): 2695,
        }[(side, day)]
    )


def test_side_as_string(model: ChargesModel) -> None:
    assert model.fill_charges("SELL", 10_000, 75, BEFORE, True) == model.fill_charges(
        Side.SELL, 10_000, 75, BEFORE, True
    )


def test_brokerage_only_on_the_first_fill_of_an_order(model: ChargesModel) -> None:
    # one sell order of 225 filled as 75 + 150 at Rs 100.00
    first = model.fill_charges(Side.SELL, 10_000, 75, BEFORE, True)
    second = model.fill_charges(Side.SELL, 10_000, 150, BEFORE, False)
    assert (first.brokerage, second.brokerage) == (2000, 0)
    # second: turnover 1_500_000; STT 1500, exchange 525.45 -> 525, SEBI 1.5 -> 2,
    # GST (0 + 525 + 2) x 0.18 = 94.86 -> 95
    assert second == Charges(stt=1500, exchange_txn=525, sebi=2, gst=95)
    order = first + second
    assert order.brokerage == 2000
    assert order.total == first.total + second.total == 3422 + 2122


def test_gst_base_is_brokerage_exchange_and_sebi_only(model: ChargesModel) -> None:
    c = model.fill_charges(Side.SELL, 10_000, 75, AFTER, True)
    assert c.gst == round((c.brokerage + c.exchange_txn + c.sebi) * 0.18)  # 407.52 -> 408
    assert c.gst != round((c.brokerage + c.exchange_txn + c.sebi + c.stt) * 0.18)
    b = model.fill_charges(Side.BUY, 10_000, 75, AFTER, False)
    assert b.gst == 48  # (263 + 1) x 0.18 = 47.52; stamp duty is not in the base


@pytest.mark.parametrize(
    ("side", "price", "qty", "part", "expected"),
    [
        (Side.BUY, 10_000, 75, "stamp", 23),  # 22.5 -> 23 (round() would give 22)
        (Side.BUY, 100_000, 50, "exchange_txn", 1752),  # 5_000_000 x 0.0003503 = 1751.5
        (Side.BUY, 10_000, 50, "sebi", 1),  # 500_000 x 1e-6 = 0.5 -> 1
        (Side.BUY, 9_995, 50, "sebi", 0),  # 0.49975 -> 0
        (Side.SELL, 100, 5, "stt", 1),  # 500 x 0.001 = 0.5 -> 1
        (Side.SELL, 5, 1, "exchange_txn", 0),  # tiny premium: 0.0017515 -> 0
        (Side.SELL, 5, 1, "gst", 0),
        (Side.SELL, 0, 75, "stt", 0),  # a zero-premium fill pays no turnover charges
    ],
)
def test_rounding_half_up_per_component(
    model: ChargesModel, side: Side, price: int, qty: int, part: str, expected: int
) -> None:
    assert getattr(model.fill_charges(side, price, qty, BEFORE, False), part) == expected


def test_gst_rounding_half_up() -> None:
    # brokerage 25 paise, no other charge: GST 25 x 0.18 = 4.5 -> 5
    rates = ChargeRates(
        effective_from=BEFORE,
        brokerage_per_order_paise=25,
        exchange_txn_rate=0,
        sebi_fee_rate=0,
    )
    c = ChargesModel([rates]).fill_charges(Side.BUY, 1, 1, BEFORE, True)
    assert (c.brokerage, c.gst, c.total) == (25, 5, 30)


def test_exercise_charges(model: ChargesModel) -> None:
    # Rs 10,000 of intrinsic value: 0.125 % before 2026-04-01, 0.15 % from then
    assert model.exercise_charges(1_000_000, BEFORE) == Charges(stt=1250)
    assert model.exercise_charges(1_000_000, AFTER) == Charges(stt=1500)
    assert model.exercise_charges(1_000_000, AFTER).total == 1500
    assert model.exercise_charges(400, BEFORE).stt == 1  # 0.5 -> 1
    assert model.exercise_charges(0, BEFORE).total == 0


def test_rates_are_picked_by_date(model: ChargesModel) -> None:
    assert model.rates_on(date(2024, 10, 1)).stt_sell_rate == 0.001
    assert model.rates_on(BEFORE).stt_sell_rate == 0.001
    assert model.rates_on(AFTER).stt_sell_rate == 0.0015
    assert model.rates_on(date(2030, 1, 1)).exercise_stt_rate == 0.0015
    with pytest.raises(ConfigurationError, match=r"2024-09-30.*2024-10-01"):
        model.fill_charges(Side.SELL, 10_000, 75, date(2024, 9, 30), True)


def test_custom_dated_sets_in_any_order() -> None:
    a = ChargeRates(effective_from=date(2025, 1, 1), brokerage_per_order_paise=0)
    b = ChargeRates(effective_from=date(2020, 1, 1), brokerage_per_order_paise=1_000)
    m = ChargesModel([a, b])
    assert m.rates == (b, a)
    assert m.fill_charges(Side.BUY, 100, 1, date(2024, 12, 31), True).brokerage == 1_000
    assert m.fill_charges(Side.BUY, 100, 1, date(2025, 1, 1), True).brokerage == 0
    assert ChargesModel().rates == DEFAULT_RATES


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("stt_sell_rate", -0.001),
        ("stt_sell_rate", 1.5),
        ("exchange_txn_rate", math.nan),
        ("sebi_fee_rate", math.inf),
        ("stamp_duty_buy_rate", "0.00003"),
        ("gst_rate", True),
        ("gst_rate", 18),
        ("exercise_stt_rate", None),
        ("brokerage_per_order_paise", -1),
        ("brokerage_per_order_paise", 20.0),
        ("effective_from", "2026-04-01"),
        ("effective_from", datetime(2026, 4, 1)),
    ],
)
def test_bad_rates_name_the_field(field: str, value: Any) -> None:
    kw: dict[str, Any] = {"effective_from": AFTER, field: value}
    with pytest.raises(ValidationError) as err:
        ChargeRates(**kw)
    assert err.value.field == field


def test_rates_accept_ints_and_bounds() -> None:
    r = ChargeRates(effective_from=AFTER, gst_rate=1, stt_sell_rate=0)
    assert (r.gst_rate, r.stt_sell_rate) == (1.0, 0.0)
    assert isinstance(r.gst_rate, float)


@pytest.mark.parametrize(
    ("rates", "field"),
    [
        ([], "rates"),
        (DEFAULT_RATES[0], "rates"),
        ([DEFAULT_RATES[0], "x"], "rates[1]"),
        ([DEFAULT_RATES[0], ChargeRates(effective_from=date(2024, 10, 1))], "rates"),
    ],
)
def test_bad_model(rates: Any, field: str) -> None:
    with pytest.raises(ValidationError) as err:
        ChargesModel(rates)
    assert err.value.field == field


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (("HOLD", 10_000, 75, BEFORE, True), "side"),
        ((Side.BUY, -5, 75, BEFORE, True), "price_paise"),
        ((Side.BUY, 100.0, 75, BEFORE, True), "price_paise"),
        ((Side.BUY, 10_000, 0, BEFORE, True), "qty"),
        ((Side.BUY, 10_000, 7.5, BEFORE, True), "qty"),
        ((Side.BUY, 10_000, 75, datetime(2026, 3, 31, 10), True), "day"),
        ((Side.BUY, 10_000, 75, "2026-03-31", True), "day"),
        ((Side.BUY, 10_000, 75, BEFORE, 1), "first_fill_of_order"),
    ],
)
def test_bad_fill_arguments(model: ChargesModel, args: tuple[Any, ...], field: str) -> None:
    with pytest.raises(ValidationError) as err:
        model.fill_charges(*args)
    assert err.value.field == field


@pytest.mark.parametrize("value", [-1, 1.5, True])
def test_bad_exercise_value(model: ChargesModel, value: Any) -> None:
    with pytest.raises(ValidationError) as err:
        model.exercise_charges(value, BEFORE)
    assert err.value.field == "intrinsic_value_paise"


def test_charges_value_object() -> None:
    c = Charges(brokerage=1, stt=2, exchange_txn=3, sebi=4, stamp=5, gst=6)
    assert c.total == 21
    assert c + Charges() == c
    with pytest.raises(AttributeError):
        c.stt = 0  # type: ignore[misc]
