"""The row values: validation naming the field, conversions from and to the engine's objects."""

from __future__ import annotations

import dataclasses
from datetime import date
from typing import Any

import pytest

from algoengine.domain.events import (
    OrderAccepted,
    OrderCancelled,
    OrderCancelRejected,
    OrderDenied,
    OrderEvent,
    OrderFilled,
    OrderModified,
    OrderModifyRejected,
    OrderPartiallyFilled,
    OrderRejected,
    OrderTriggered,
    RejectCode,
)
from algoengine.domain.instruments import Instrument, InstrumentKind, OptionType
from algoengine.domain.orders import OrderStatus, OrderType, Side, TimeInForce
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
from algoengine.engine.engine import FillRecord
from algoengine.engine.oms import ManagedOrder
from algoengine.engine.portfolio import PnL
from algoengine.errors import ValidationError
from algoengine.persistence.records import (
    COMMAND_KINDS,
    EVENT_KINDS,
    BacktestRunRow,
    CommandRow,
    FillRow,
    OrderEventRow,
    OrderRow,
    PnlSnapshotRow,
    RunMode,
    RunStatus,
    StrategyRunRow,
    command_fields,
    event_payload,
    settlement_trade_id,
)

TS = 1_767_583_800_000_000_000
PE = Instrument(
    token="58790",
    symbol="NIFTY06JAN2624000PE",
    exchange="NFO",
    underlying="NIFTY",
    kind=InstrumentKind.OPTION,
    expiry=date(2026, 1, 6),
    strike_paise=2_400_000,
    option_type=OptionType.PE,
    lot_size=65,
    tick_paise=5,
    freeze_qty=1800,
)

ONE_OF_EACH_EVENT: list[OrderEvent] = [
    OrderAccepted(ts_ns=TS, client_order_id="A1", venue_order_id="9", status=OrderStatus.OPEN),
    OrderAccepted(
        ts_ns=TS, client_order_id="A1", venue_order_id="9", status=OrderStatus.TRIGGER_PENDING
    ),
    OrderTriggered(ts_ns=TS, client_order_id="A1", venue_order_id="9", last_price_paise=13_005),
    OrderPartiallyFilled(
        ts_ns=TS,
        client_order_id="A1",
        venue_order_id="9",
        trade_id="T1",
        instrument_token="58790",
        side=Side.SELL,
        qty=65,
        price_paise=12_000,
        filled_qty=65,
        remaining_qty=65,
    ),
    OrderFilled(
        ts_ns=TS,
        client_order_id="A1",
        venue_order_id="9",
        trade_id="T2",
        instrument_token="58790",
        side=Side.BUY,
        qty=65,
        price_paise=12_005,
        filled_qty=130,
        remaining_qty=0,
    ),
    OrderCancelled(
        ts_ns=TS,
        client_order_id="A1",
        venue_order_id="9",
        reason="user",
        filled_qty=0,
        cancelled_qty=65,
    ),
    OrderRejected(
        ts_ns=TS,
        client_order_id="A1",
        venue_order_id=None,
        code=RejectCode.PRICE_BAND,
        reason="outside the band",
    ),
    OrderModified(
        ts_ns=TS,
        client_order_id="A1",
        venue_order_id="9",
        qty=65,
        price_paise=None,
        trigger_price_paise=13_000,
    ),
    OrderModifyRejected(
        ts_ns=TS,
        client_order_id="A1",
        venue_order_id="9",
        code=RejectCode.INVALID_MODIFY,
        reason="no",
    ),
    OrderCancelRejected(
        ts_ns=TS,
        client_order_id="A1",
        venue_order_id=None,
        code=RejectCode.UNKNOWN_ORDER,
        reason="unknown",
    ),
    OrderDenied(
        ts_ns=TS,
        client_order_id="A1",
        venue_order_id=None,
        code="KILL_SWITCH",
        reason="kill switch engaged",
    ),
]


def test_every_order_event_class_round_trips_through_its_journal_row() -> None:
    covered = {type(e).__name__ for e in ONE_OF_EACH_EVENT}
    assert covered == set(EVENT_KINDS) - {"OrderFillEvent"}  # the base of the two fills
    for seq, event in enumerate(ONE_OF_EACH_EVENT, start=1):
        row = OrderEventRow.from_event(event, seq=seq)
        assert (row.kind, row.seq, row.ts_ns) == (type(event).__name__, seq, TS)
        # as the database gives it back: plain JSON data
        again = OrderEventRow(**{**dataclasses.asdict(row), "payload": dict(row.payload)})
        assert again.to_event() == event
        assert type(again.to_event()) is type(event)


def test_event_payloads_are_plain_json_data() -> None:
    payload = event_payload(ONE_OF_EACH_EVENT[6])
    assert payload == {
        "ts_ns": TS,
        "client_order_id": "A1",
        "venue_order_id": None,
        "code": "PRICE_BAND",
        "reason": "outside the band",
    }
    assert type(payload["code"]) is str


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"kind": "OrderExploded"}, "kind"),
        ({"seq": 0}, "seq"),
        ({"ts_ns": -1}, "ts_ns"),
        ({"client_order_id": ""}, "client_order_id"),
        ({"payload": {"x": float("inf")}}, "payload"),
        ({"payload": {1: "a"}}, "payload"),
    ],
)
def test_bad_journal_rows_name_the_field(changes: dict[str, Any], field: str) -> None:
    good = {"client_order_id": "A1", "seq": 1, "kind": "OrderAccepted", "ts_ns": 1, "payload": {}}
    with pytest.raises(ValidationError) as info:
        OrderEventRow(**{**good, **changes})
    assert info.value.field == field


def test_a_payload_that_does_not_fit_its_event_is_a_validation_error() -> None:
    row = OrderEventRow.from_event(ONE_OF_EACH_EVENT[0], seq=1)
    extra = dataclasses.replace(row, payload={**row.payload, "colour": "red"})
    with pytest.raises(ValidationError, match="colour"):
        extra.to_event()
    missing = dataclasses.replace(row, payload={"ts_ns": 1})
    with pytest.raises(ValidationError, match="payload"):
        missing.to_event()
    bad_enum = dataclasses.replace(row, payload={**row.payload, "status": "SIDEWAYS"})
    with pytest.raises(ValidationError, match=r"payload\.status"):
        bad_enum.to_event()


def test_order_row_from_a_managed_order() -> None:
    order = ManagedOrder(
        client_order_id="R1000004",
        strategy_id="s",
        idx=3,
        instrument=PE,
        side=Side.SELL,
        order_type=OrderType.STOPLOSS_LIMIT,
        qty=130,
        price_paise=13_500,
        trigger_price_paise=13_000,
        tif=TimeInForce.DAY,
        tag="sl",
        created_ns=TS,
        square_off=True,
        parent_id="R1000003",
        oco_id="R1000005",
    )
    row = OrderRow.from_managed(order, run_id="run1")
    assert (row.token, row.symbol, row.exchange) == ("58790", PE.symbol, "NFO")
    assert row.updated_ns == TS  # never below created_ns (the OMS starts it at 0)
    assert (row.status, row.filled_qty, row.avg_price_paise, row.is_open) == (
        OrderStatus.NEW,
        0,
        0.0,
        True,
    )
    assert (row.square_off, row.parent_id, row.oco_id) == (True, "R1000003", "R1000005")
    order.status, order.filled_qty, order.filled_value_paise = OrderStatus.FILLED, 130, 130 * 13_400
    done = OrderRow.from_managed(order, run_id="run1")
    assert done.avg_price_paise == 13_400 and not done.is_open


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"side": "SIDEWAYS"}, "side"),
        ({"status": "LOST"}, "status"),
        ({"qty": 0}, "qty"),
        ({"qty": True}, "qty"),
        ({"filled_qty": 66}, "filled_qty"),
        ({"price_paise": -5}, "price_paise"),
        ({"symbol": " "}, "symbol"),
        ({"square_off": "yes"}, "square_off"),
        ({"updated_ns": 1.5}, "updated_ns"),
    ],
)
def test_bad_order_rows_name_the_field(changes: dict[str, Any], field: str) -> None:
    good: dict[str, Any] = dict(
        client_order_id="A1",
        run_id="r",
        strategy_id="s",
        token="1",
        symbol="S",
        exchange="NFO",
        side="BUY",
        order_type="LIMIT",
        tif="DAY",
        qty=65,
        price_paise=100,
        trigger_price_paise=None,
        status="OPEN",
        created_ns=1,
        updated_ns=1,
    )
    assert OrderRow(**good).side is Side.BUY  # strings become the domain's enums
    with pytest.raises(ValidationError) as info:
        OrderRow(**{**good, **changes})
    assert info.value.field == field


def test_fill_rows_from_engine_records() -> None:
    record = FillRecord(
        ts_ns=TS,
        strategy_id="s",
        client_order_id="A1",
        token="58790",
        symbol=PE.symbol,
        side=Side.SELL,
        qty=65,
        price_paise=12_000,
        charges_paise=3_456,
        tag="entry",
    )
    row = FillRow.from_record(record, run_id="r", trade_id="T77")
    assert (row.trade_id, row.client_order_id, row.charges_paise) == ("T77", "A1", 3_456)
    with pytest.raises(ValidationError, match="trade_id"):
        FillRow.from_record(record, run_id="r")  # a real fill needs its trade id
    settle = dataclasses.replace(record, client_order_id="", settlement=True, price_paise=0)
    srow = FillRow.from_record(settle, run_id="r")
    assert srow.trade_id == settlement_trade_id("58790", TS) and srow.settlement
    with pytest.raises(ValidationError) as info:
        FillRow(**{**dataclasses.asdict(row), "client_order_id": ""})  # only settlements
    assert info.value.field == "client_order_id"


def test_pnl_snapshots_keep_the_identity() -> None:
    pnl = PnL(realised=5_000, unrealised=-2_000, charges=700, gross=3_000, net=2_300)
    row = PnlSnapshotRow.from_pnl(pnl, run_id="r", strategy_id="s", ts_ns=TS)
    assert row.net_paise == 2_300
    with pytest.raises(ValidationError) as info:
        dataclasses.replace(row, net_paise=2_301)
    assert info.value.field == "net_paise"


def test_strategy_run_rows() -> None:
    run = StrategyRunRow(run_id="r", strategy_id="s", mode="backtest", started_ns=0)
    assert (run.mode, run.status, run.config) == (RunMode.BACKTEST, RunStatus.RUNNING, {})
    with pytest.raises(ValidationError) as info:
        StrategyRunRow(run_id="r", strategy_id="s", mode="yolo", started_ns=0)
    assert info.value.field == "mode"
    with pytest.raises(ValidationError) as info:
        StrategyRunRow(
            run_id="r",
            strategy_id="s",
            mode="live",
            started_ns=0,
            config={"when": date(2026, 1, 1)},
        )
    assert info.value.field == "config"


def test_backtest_rows_take_metrics_to_dict_output() -> None:
    metrics = {"sharpe": 1.5, "profit_factor": "inf", "max_drawdown_paise": 12_345}
    row = BacktestRunRow(id="b1", params={"seed": 1}, started_ns=5, finished_ns=9, metrics=metrics)
    assert row.metrics == metrics
    with pytest.raises(ValidationError) as info:
        BacktestRunRow(id="b1", params={}, started_ns=5, metrics={"sharpe": float("inf")})
    assert info.value.field == "metrics"
    with pytest.raises(ValidationError) as info:
        BacktestRunRow(id="b1", params={}, started_ns=5, finished_ns=4)
    assert info.value.field == "finished_ns"


ONE_OF_EACH_COMMAND: list[Command] = [
    KillSwitch(on=False, issued_by="ops"),
    SquareOff(strategy_id="s", issued_by="dashboard"),
    SquareOff(issued_by="cli"),
    Pause(strategy_id=None, issued_by="dashboard"),
    Resume(strategy_id="s"),
    StopStrategy(strategy_id="s", issued_by="ops"),
    StopEngine(reason="maintenance", issued_by="signal"),
    MarketStale(stale=True, issued_by="feed"),
]


def test_every_command_round_trips_through_its_row() -> None:
    assert {type(c).__name__ for c in ONE_OF_EACH_COMMAND} == set(COMMAND_KINDS)
    for i, command in enumerate(ONE_OF_EACH_COMMAND):
        kind, strategy_id, payload = command_fields(command)
        row = CommandRow(
            id=i + 1,
            kind=kind,
            strategy_id=strategy_id,
            payload=payload,
            issued_by=command.issued_by,
            issued_ns=TS,
        )
        assert row.to_command() == command


def test_commands_that_cannot_be_rebuilt_are_validation_errors() -> None:
    with pytest.raises(ValidationError, match="not an engine command"):
        command_fields(Command())
    with pytest.raises(ValidationError, match="not an engine command"):
        CommandRow(
            id=1, kind="SelfDestruct", strategy_id=None, payload={}, issued_by="x", issued_ns=0
        ).to_command()
    with pytest.raises(ValidationError, match="takes none"):
        CommandRow(
            id=1,
            kind="KillSwitch",
            strategy_id="s",
            payload={"on": True},
            issued_by="x",
            issued_ns=0,
        ).to_command()
    with pytest.raises(ValidationError, match="volume"):
        CommandRow(
            id=1,
            kind="KillSwitch",
            strategy_id=None,
            payload={"volume": 11},
            issued_by="x",
            issued_ns=0,
        ).to_command()
