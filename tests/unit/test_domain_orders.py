"""Domain: the order status machine, order requests, instruments, events and the error tree."""

from __future__ import annotations

import ast
import dataclasses
import itertools
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from algoengine import errors
from algoengine.domain import (
    TRANSITIONS,
    Instrument,
    InstrumentKind,
    InvalidTransitionError,
    OptionType,
    OrderAccepted,
    OrderCancelled,
    OrderCancelRejected,
    OrderFilled,
    OrderModified,
    OrderModifyRejected,
    OrderPartiallyFilled,
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
    can_transition,
    next_status,
)

S, T = OrderStatus, StatusTrigger

# ---- the status machine ------------------------------------------------------------------------

EXPECTED = {
    (S.NEW, T.SUBMIT): S.SUBMITTED,
    (S.NEW, T.REJECT): S.REJECTED,
    (S.NEW, T.CANCEL): S.CANCELLED,
    (S.SUBMITTED, T.ACCEPT): S.OPEN,
    (S.SUBMITTED, T.ACCEPT_TRIGGER_PENDING): S.TRIGGER_PENDING,
    (S.SUBMITTED, T.REJECT): S.REJECTED,
    (S.SUBMITTED, T.PARTIAL_FILL): S.PARTIALLY_FILLED,
    (S.SUBMITTED, T.FILL): S.FILLED,
    (S.SUBMITTED, T.CANCEL): S.CANCELLED,
    (S.TRIGGER_PENDING, T.TRIGGER): S.OPEN,
    (S.TRIGGER_PENDING, T.MODIFY): S.TRIGGER_PENDING,
    (S.TRIGGER_PENDING, T.CANCEL): S.CANCELLED,
    (S.OPEN, T.PARTIAL_FILL): S.PARTIALLY_FILLED,
    (S.OPEN, T.FILL): S.FILLED,
    (S.OPEN, T.MODIFY): S.OPEN,
    (S.OPEN, T.CANCEL): S.CANCELLED,
    (S.PARTIALLY_FILLED, T.PARTIAL_FILL): S.PARTIALLY_FILLED,
    (S.PARTIALLY_FILLED, T.FILL): S.FILLED,
    (S.PARTIALLY_FILLED, T.MODIFY): S.PARTIALLY_FILLED,
    (S.PARTIALLY_FILLED, T.CANCEL): S.CANCELLED,
}


def test_transition_table_is_exactly_the_expected_one() -> None:
    assert dict(TRANSITIONS) == EXPECTED


@pytest.mark.parametrize(("status", "trigger"), sorted(itertools.product(S, T)))
def test_every_status_trigger_pair_is_either_a_row_or_an_error(
    status: OrderStatus, trigger: StatusTrigger
) -> None:
    if (status, trigger) in EXPECTED:
        assert can_transition(status, trigger)
        assert next_status(status, trigger) is EXPECTED[(status, trigger)]
    else:
        assert not can_transition(status, trigger)
        with pytest.raises(InvalidTransitionError) as info:
            next_status(status, trigger, client_order_id="S1-0001")
        assert info.value.status is status and info.value.trigger is trigger
        assert "S1-0001" in str(info.value)


def test_terminal_statuses_have_no_way_out_and_working_ones_can_always_be_cancelled() -> None:
    for status in S:
        if status.is_terminal:
            assert not any(can_transition(status, t) for t in T)
        if status.is_working:
            assert next_status(status, T.CANCEL) is S.CANCELLED
            assert next_status(status, T.MODIFY) is status
    assert {s for s in S if s.is_working} == {S.TRIGGER_PENDING, S.OPEN, S.PARTIALLY_FILLED}
    assert {s for s in S if s.is_terminal} == {S.FILLED, S.CANCELLED, S.REJECTED}


def test_the_table_cannot_be_changed() -> None:
    with pytest.raises(TypeError):
        TRANSITIONS[(S.FILLED, T.CANCEL)] = S.CANCELLED  # type: ignore[index]


def _ids() -> dict[str, Any]:
    return {"ts_ns": 1, "client_order_id": "c1", "venue_order_id": "v1"}


def _fill(kind: type[OrderPartiallyFilled] | type[OrderFilled], remaining: int) -> Any:
    return kind(
        **_ids(),
        trade_id="t1",
        instrument_token="58784",
        side=Side.BUY,
        qty=75,
        price_paise=10_000,
        filled_qty=75,
        remaining_qty=remaining,
    )


def test_events_name_their_transition_and_walk_a_stop_order_to_filled() -> None:
    events = [
        OrderAccepted(**_ids(), status=S.TRIGGER_PENDING),
        OrderModified(**_ids(), qty=150, price_paise=10_100, trigger_price_paise=10_050),
        OrderModifyRejected(**_ids(), code=RejectCode.LOT_SIZE, reason="lot size"),
        OrderTriggered(**_ids(), last_price_paise=10_050),
        _fill(OrderPartiallyFilled, 75),
        OrderCancelRejected(**_ids(), code=RejectCode.ORDER_NOT_OPEN, reason="x"),
        _fill(OrderFilled, 0),
    ]
    status = next_status(S.NEW, T.SUBMIT)
    seen = []
    for event in events:
        if event.status_trigger is not None:
            status = next_status(status, event.status_trigger)
        seen.append(status)
    assert seen == [
        S.TRIGGER_PENDING,
        S.TRIGGER_PENDING,
        S.TRIGGER_PENDING,
        S.OPEN,
        S.PARTIALLY_FILLED,
        S.PARTIALLY_FILLED,
        S.FILLED,
    ]
    assert OrderAccepted(**_ids(), status=S.OPEN).status_trigger is T.ACCEPT
    assert OrderRejected(**_ids(), code=RejectCode.TICK_SIZE, reason="x").status_trigger is (
        T.REJECT
    )
    cancelled = OrderCancelled(**_ids(), reason="user", filled_qty=0, cancelled_qty=75)
    assert cancelled.status_trigger is T.CANCEL


def test_events_are_frozen_and_keyword_only() -> None:
    event = OrderAccepted(**_ids(), status=S.OPEN)
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.status = S.FILLED  # type: ignore[misc]
    with pytest.raises(TypeError):
        OrderAccepted(1, "c1", "v1", S.OPEN)  # type: ignore[misc]


# ---- order requests ----------------------------------------------------------------------------


def request(**overrides: Any) -> OrderRequest:
    fields: dict[str, Any] = {
        "client_order_id": "S1-000001",
        "instrument_token": "58784",
        "side": Side.BUY,
        "order_type": OrderType.LIMIT,
        "qty": 75,
        "price_paise": 10_000,
        "strategy_id": "straddle-1",
    }
    fields.update(overrides)
    return OrderRequest(**fields)


def test_valid_requests_of_every_type() -> None:
    assert request().tif is TimeInForce.DAY
    request(order_type=OrderType.MARKET, price_paise=None, tif=TimeInForce.IOC)
    request(order_type=OrderType.STOPLOSS_LIMIT, trigger_price_paise=9_990)
    request(order_type=OrderType.STOPLOSS_MARKET, price_paise=None, trigger_price_paise=9_990)
    request(client_order_id="A" * 20)
    with pytest.raises(dataclasses.FrozenInstanceError):
        request().qty = 150  # type: ignore[misc]


@pytest.mark.parametrize(
    ("field", "overrides"),
    [
        ("client_order_id", {"client_order_id": "A" * 21}),
        ("client_order_id", {"client_order_id": ""}),
        ("client_order_id", {"client_order_id": "has space"}),
        ("client_order_id", {"client_order_id": 12}),
        ("instrument_token", {"instrument_token": ""}),
        ("side", {"side": "BUY"}),
        ("order_type", {"order_type": "LIMIT"}),
        ("qty", {"qty": 0}),
        ("qty", {"qty": 75.0}),
        ("qty", {"qty": True}),
        ("price_paise", {"price_paise": 0}),
        ("price_paise", {"price_paise": 100.5}),
        ("price_paise", {"price_paise": None}),
        ("price_paise", {"order_type": OrderType.MARKET}),
        ("price_paise", {"order_type": OrderType.STOPLOSS_MARKET, "trigger_price_paise": 9_990}),
        ("trigger_price_paise", {"trigger_price_paise": 9_990}),
        ("trigger_price_paise", {"order_type": OrderType.STOPLOSS_LIMIT}),
        (
            "trigger_price_paise",
            {"order_type": OrderType.STOPLOSS_LIMIT, "trigger_price_paise": -5},
        ),
        ("tif", {"tif": "IOC"}),
        ("strategy_id", {"strategy_id": ""}),
    ],
)
def test_invalid_requests_name_the_field(field: str, overrides: dict[str, Any]) -> None:
    with pytest.raises(ValidationError) as info:
        request(**overrides)
    assert info.value.field == field
    assert str(info.value).startswith(f"{field}=")


def test_exchange_rules_are_left_to_the_venue() -> None:
    # Off-lot, off-tick, and a buy stop-limit priced below its trigger are valid requests:
    # the exchange answers them with a rejection event, as Angel One will.
    request(qty=100, price_paise=10_003)
    request(order_type=OrderType.STOPLOSS_LIMIT, price_paise=9_000, trigger_price_paise=9_990)


# ---- instruments -------------------------------------------------------------------------------


def instrument(**overrides: Any) -> Instrument:
    fields: dict[str, Any] = {
        "token": "58784",
        "symbol": "NIFTY28OCT2524400CE",
        "exchange": "NFO",
        "underlying": "NIFTY",
        "kind": InstrumentKind.OPTION,
        "expiry": date(2025, 10, 28),
        "strike_paise": 2_440_000,
        "option_type": OptionType.CE,
        "lot_size": 75,
        "tick_paise": 5,
        "freeze_qty": 1_800,
    }
    fields.update(overrides)
    return Instrument(**fields)


def test_valid_instruments() -> None:
    option = instrument()
    assert option.is_option and option.is_on_tick(10_005) and not option.is_on_tick(10_003)
    assert option.is_lot_multiple(150) and not option.is_lot_multiple(100)
    future = instrument(
        kind=InstrumentKind.FUTURE, strike_paise=None, option_type=None, symbol="NIFTY28OCT25FUT"
    )
    assert not future.is_option
    instrument(
        kind=InstrumentKind.INDEX,
        expiry=None,
        strike_paise=None,
        option_type=None,
        token="99926000",
        symbol="Nifty 50",
    )
    assert option.option_type == "CE"  # StrEnum: compares with Angel One's strings


@pytest.mark.parametrize(
    ("field", "overrides"),
    [
        ("token", {"token": ""}),
        ("symbol", {"symbol": " "}),
        ("exchange", {"exchange": None}),
        ("underlying", {"underlying": ""}),
        ("kind", {"kind": "option"}),
        ("expiry", {"expiry": "2025-10-28"}),
        ("expiry", {"expiry": None}),
        ("strike_paise", {"strike_paise": None}),
        ("strike_paise", {"strike_paise": 0}),
        ("option_type", {"option_type": None}),
        ("option_type", {"option_type": "CE"}),
        ("lot_size", {"lot_size": 0}),
        ("lot_size", {"lot_size": 75.0}),
        ("tick_paise", {"tick_paise": 0}),
        ("freeze_qty", {"freeze_qty": 50}),
        ("strike_paise", {"kind": InstrumentKind.FUTURE, "option_type": None}),
        ("option_type", {"kind": InstrumentKind.FUTURE, "strike_paise": None}),
        (
            "expiry",
            {
                "kind": InstrumentKind.FUTURE,
                "expiry": None,
                "strike_paise": None,
                "option_type": None,
            },
        ),
        ("expiry", {"kind": InstrumentKind.INDEX, "strike_paise": None, "option_type": None}),
    ],
)
def test_invalid_instruments_name_the_field(field: str, overrides: dict[str, Any]) -> None:
    with pytest.raises(ValidationError) as info:
        instrument(**overrides)
    assert info.value.field == field


# ---- errors and boundaries ---------------------------------------------------------------------


def test_error_hierarchy() -> None:
    assert errors.ValidationError is ValidationError
    assert issubclass(errors.ValidationError, ValueError)
    for cls in (
        errors.ConfigurationError,
        errors.ValidationError,
        errors.BrokerError,
        errors.OrderRejectedError,
        errors.StrategyError,
        errors.InvalidTransitionError,
    ):
        assert issubclass(cls, errors.AlgoEngineError)
    assert issubclass(errors.TemporaryBrokerError, errors.BrokerError)
    assert not issubclass(errors.OrderRejectedError, errors.BrokerError)
    err = errors.ValidationError("qty", 0, "must be >= 1")
    assert (err.field, err.value, str(err)) == ("qty", 0, "qty=0: must be >= 1")
    rejected = errors.OrderRejectedError("freeze quantity", client_order_id="S1-1")
    assert rejected.reason == "freeze quantity" and "S1-1" in str(rejected)
    assert errors.TemporaryBrokerError("timeout", code="AB1004").code == "AB1004"
    assert "momentum" in str(errors.StrategyError("boom", strategy_id="momentum"))


def test_domain_imports_nothing_of_the_project_but_itself() -> None:
    domain = Path(errors.__file__).parent / "domain"
    for path in domain.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                if name.split(".")[0] == "algoengine":
                    assert name.startswith("algoengine.domain"), f"{path.name} imports {name}"
