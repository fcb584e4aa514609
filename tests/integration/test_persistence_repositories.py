"""The repositories, round trip, on SQLite and on a real PostgreSQL 15 (the same tests).

Orders and their events come from the real order manager (the OMS) driven through a small
recording venue, journaled the way the engine's writer will: the order row and the event, with
``seq`` = the event's position in the order's history.
"""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import Engine

from algoengine.domain.events import (
    OrderAccepted,
    OrderDenied,
    OrderEvent,
    OrderFilled,
    OrderPartiallyFilled,
)
from algoengine.domain.instruments import Instrument, InstrumentKind, OptionType
from algoengine.domain.orders import OrderRequest, OrderStatus, OrderType, Side
from algoengine.engine.commands import KillSwitch, Pause, SquareOff, StopEngine, StopStrategy
from algoengine.engine.engine import FillRecord
from algoengine.engine.oms import ManagedOrder, OrderManager
from algoengine.engine.portfolio import Portfolio
from algoengine.errors import ValidationError
from algoengine.persistence import repositories as repo
from algoengine.persistence.db import write_transaction
from algoengine.persistence.records import (
    BacktestRunRow,
    FillRow,
    OrderEventRow,
    OrderRow,
    PnlSnapshotRow,
    PositionRow,
    RiskEventRow,
    RunMode,
    RunStatus,
    StrategyRunRow,
)

BIG_NS = 1_893_456_000_000_000_000  # 2030-01-01: far beyond 2**31 (and 2**53)
BIG_PAISE = 2**40 + 5  # beyond 32 bits
RUN = "run1"
SID = "straddle"

CE = Instrument(
    token="58784",
    symbol="NIFTY06JAN2624000CE",
    exchange="NFO",
    underlying="NIFTY",
    kind=InstrumentKind.OPTION,
    expiry=date(2026, 1, 6),
    strike_paise=2_400_000,
    option_type=OptionType.CE,
    lot_size=65,
    tick_paise=5,
    freeze_qty=1800,
)


class RecordingVenue:
    """The broker side of the OMS: records what was sent (the events are fed by the test)."""

    def __init__(self) -> None:
        self.sent: list[OrderRequest] = []

    def submit(self, request: OrderRequest, ts_ns: int) -> None:
        self.sent.append(request)

    def cancel(self, client_order_id: str, ts_ns: int) -> None:
        pass

    def modify(
        self,
        client_order_id: str,
        ts_ns: int,
        *,
        qty: int | None = None,
        price_paise: int | None = None,
        trigger_price_paise: int | None = None,
    ) -> None:
        pass


class DenyAbove:
    """A pre-trade check that denies orders above a quantity."""

    def check(self, order: ManagedOrder, ts_ns: int) -> tuple[str, str] | None:
        if order.qty > 130:
            return "MAX_LOTS_PER_ORDER", f"qty {order.qty} above 130"
        return None


def start_run(engine: Engine, *strategies: str) -> None:
    repo.record_run_start(
        engine,
        [
            StrategyRunRow(
                run_id=RUN,
                strategy_id=s,
                mode=RunMode.PAPER,
                started_ns=BIG_NS,
                config={"stop_loss_pct": 30.0, "lots": 1},
                owner="task-a",
                fencing_token=2**40,
            )
            for s in (strategies or (SID,))
        ],
    )


def journal_oms(engine: Engine) -> tuple[OrderManager, list[tuple[OrderEvent, ManagedOrder]]]:
    """An OMS whose every applied event is journaled (order row + event) in one transaction."""
    seen: list[tuple[OrderEvent, ManagedOrder]] = []

    def sink(event: OrderEvent, order: ManagedOrder) -> None:
        seen.append((event, order))
        with write_transaction(engine) as conn:
            repo.upsert_order(conn, OrderRow.from_managed(order, run_id=RUN))
            repo.append_order_event(conn, OrderEventRow.from_event(event, seq=len(order.events)))

    oms = OrderManager(RecordingVenue(), check=DenyAbove(), sink=sink, run_code="R1")
    return oms, seen


# ---- runs ----------------------------------------------------------------------------------


def test_runs_start_stop_and_latest(migrated: Engine) -> None:
    start_run(migrated, SID, "condor")
    run = repo.get_run(migrated, RUN, SID)
    assert run is not None
    assert run.mode is RunMode.PAPER and run.status is RunStatus.RUNNING
    assert run.started_ns == BIG_NS and run.fencing_token == 2**40
    assert run.config == {"stop_loss_pct": 30.0, "lots": 1}

    later = StrategyRunRow(run_id="run2", strategy_id=SID, mode="live", started_ns=BIG_NS + 1)
    repo.record_run_start(migrated, later)
    assert repo.latest_run(migrated, SID) == later
    assert repo.latest_run(migrated, SID, before_run_id="run2") == run
    assert repo.latest_run(migrated, "nobody") is None

    assert repo.record_run_stop(migrated, RUN, stopped_ns=BIG_NS + 5, strategy_id=SID) == 1
    assert (
        repo.record_run_stop(
            migrated, RUN, stopped_ns=BIG_NS + 6, reason="crash", status=RunStatus.CRASHED
        )
        == 1
    )
    assert repo.record_run_stop(migrated, RUN, stopped_ns=BIG_NS + 7) == 0  # none running
    stopped = repo.get_run(migrated, RUN, SID)
    assert stopped is not None
    assert (stopped.status, stopped.stopped_ns) == (RunStatus.STOPPED, BIG_NS + 5)
    condor = repo.get_run(migrated, RUN, "condor")
    assert condor is not None
    assert (condor.status, condor.stop_reason) == (RunStatus.CRASHED, "crash")
    with pytest.raises(ValidationError, match="status"):
        repo.record_run_stop(migrated, RUN, stopped_ns=1, status=RunStatus.RUNNING)


def test_a_run_id_is_recorded_once_and_a_failed_batch_writes_nothing(migrated: Engine) -> None:
    start_run(migrated)
    fresh = StrategyRunRow(run_id=RUN, strategy_id="fresh", mode="paper", started_ns=1)
    dup = StrategyRunRow(run_id=RUN, strategy_id=SID, mode="paper", started_ns=1)
    with pytest.raises(ValidationError, match="already recorded"):
        repo.record_run_start(migrated, [fresh, dup])
    assert repo.get_run(migrated, RUN, "fresh") is None


# ---- orders and the event journal ----------------------------------------------------------


def test_the_oms_journal_round_trips_orders_and_events(migrated: Engine) -> None:
    start_run(migrated)
    oms, seen = journal_oms(migrated)
    t0 = BIG_NS
    [sell] = oms.submit(
        strategy_id=SID,
        idx=1,
        instrument=CE,
        side=Side.SELL,
        qty=130,
        order_type=OrderType.LIMIT,
        price_paise=BIG_PAISE,
        ts_ns=t0,
        tag="entry",
    )
    [denied] = oms.submit(
        strategy_id=SID,
        idx=1,
        instrument=CE,
        side=Side.SELL,
        qty=195,
        order_type=OrderType.LIMIT,
        price_paise=10_000,
        ts_ns=t0 + 1,
    )
    [sl] = oms.submit(
        strategy_id=SID,
        idx=1,
        instrument=CE,
        side=Side.BUY,
        qty=65,
        order_type=OrderType.STOPLOSS_LIMIT,
        price_paise=13_500,
        trigger_price_paise=13_000,
        ts_ns=t0 + 2,
        tag="sl",
    )
    # the SUBMIT of the working orders happened locally (no event); journal their rows
    repo.upsert_order(
        migrated, [OrderRow.from_managed(oms.orders[c], run_id=RUN) for c in (sell, sl)]
    )
    oms.on_events(
        [
            OrderAccepted(
                ts_ns=t0 + 10, client_order_id=sell, venue_order_id="V1", status=OrderStatus.OPEN
            ),
            OrderPartiallyFilled(
                ts_ns=t0 + 20,
                client_order_id=sell,
                venue_order_id="V1",
                trade_id="T1",
                instrument_token=CE.token,
                side=Side.SELL,
                qty=65,
                price_paise=BIG_PAISE,
                filled_qty=65,
                remaining_qty=65,
            ),
            OrderFilled(
                ts_ns=t0 + 30,
                client_order_id=sell,
                venue_order_id="V1",
                trade_id="T2",
                instrument_token=CE.token,
                side=Side.SELL,
                qty=65,
                price_paise=BIG_PAISE,
                filled_qty=130,
                remaining_qty=0,
            ),
            OrderAccepted(
                ts_ns=t0 + 40,
                client_order_id=sl,
                venue_order_id="V2",
                status=OrderStatus.TRIGGER_PENDING,
            ),
        ],
        t0 + 40,
    )

    stored = repo.get_order(migrated, sell)
    assert stored == OrderRow.from_managed(oms.orders[sell], run_id=RUN)
    assert stored is not None
    assert stored.status is OrderStatus.FILLED and stored.filled_qty == 130
    assert stored.filled_value_paise == 130 * BIG_PAISE and stored.avg_price_paise == BIG_PAISE
    assert stored.venue_order_id == "V1" and stored.updated_ns == t0 + 30

    refused = repo.get_order(migrated, denied)
    assert refused is not None
    assert refused.status is OrderStatus.REJECTED and "above 130" in (refused.reason or "")

    # recovery's view: the open orders of the run, oldest first
    assert [o.client_order_id for o in repo.open_orders(migrated, RUN)] == [sl]
    assert repo.open_orders(migrated, RUN, strategy_id="other") == []
    assert [o.client_order_id for o in repo.orders_of_run(migrated, RUN)] == [sell, denied, sl]

    # the journal: in order, and each entry gives back the very event
    journal = repo.order_events(migrated, sell)
    assert [e.seq for e in journal] == [1, 2, 3]
    assert [e.kind for e in journal] == ["OrderAccepted", "OrderPartiallyFilled", "OrderFilled"]
    assert [e.to_event() for e in journal] == oms.orders[sell].events
    [denial] = repo.order_events(migrated, denied)
    assert isinstance(denial.to_event(), OrderDenied) and denial.to_event() == seen[0][0]


def test_an_older_order_snapshot_never_overwrites_a_newer_one(migrated: Engine) -> None:
    start_run(migrated)
    base = OrderRow(
        client_order_id="R1000001",
        run_id=RUN,
        strategy_id=SID,
        token=CE.token,
        symbol=CE.symbol,
        exchange="NFO",
        side=Side.SELL,
        order_type=OrderType.LIMIT,
        tif="DAY",
        qty=65,
        price_paise=100,
        trigger_price_paise=None,
        status=OrderStatus.SUBMITTED,
        created_ns=10,
        updated_ns=10,
    )
    open_ = _replace(base, status=OrderStatus.OPEN, venue_order_id="V9", updated_ns=20)
    filled = _replace(
        open_, status=OrderStatus.FILLED, filled_qty=65, filled_value_paise=6500, updated_ns=30
    )
    repo.upsert_order(migrated, [base, open_, filled])
    assert repo.get_order(migrated, "R1000001") == filled
    repo.upsert_order(migrated, open_)  # replayed late: ignored
    assert repo.get_order(migrated, "R1000001") == filled
    again = _replace(filled, tag="seen again", created_ns=99)  # same time: applied, created kept
    repo.upsert_order(migrated, again)
    assert repo.get_order(migrated, "R1000001") == _replace(again, created_ns=10)


def _replace(row: OrderRow, **changes: object) -> OrderRow:
    from dataclasses import replace

    return replace(row, **changes)  # type: ignore[arg-type]


def test_a_replayed_order_event_is_ignored_and_seq_orders_the_journal(migrated: Engine) -> None:
    def accepted(seq: int, ts: int) -> OrderEventRow:
        event = OrderAccepted(
            ts_ns=ts, client_order_id="R1000002", venue_order_id=str(seq), status=OrderStatus.OPEN
        )
        return OrderEventRow.from_event(event, seq=seq)

    assert repo.append_order_event(migrated, [accepted(2, BIG_NS + 2), accepted(1, BIG_NS)]) == 2
    assert repo.append_order_event(migrated, [accepted(1, 0), accepted(3, BIG_NS + 3)]) == 1
    journal = repo.order_events(migrated, "R1000002")
    assert [(e.seq, e.ts_ns) for e in journal] == [(1, BIG_NS), (2, BIG_NS + 2), (3, BIG_NS + 3)]
    assert repo.append_order_event(migrated, []) == 0


# ---- fills, positions, P&L -----------------------------------------------------------------


def fill(trade_id: str, cid: str = "R1000001", ts: int = BIG_NS, qty: int = 65) -> FillRow:
    return FillRow(
        run_id=RUN,
        strategy_id=SID,
        trade_id=trade_id,
        client_order_id=cid,
        ts_ns=ts,
        token=CE.token,
        symbol=CE.symbol,
        side=Side.SELL,
        qty=qty,
        price_paise=BIG_PAISE,
        charges_paise=2_345,
        tag="entry",
    )


def test_fills_are_idempotent_on_trade_and_client_order_id(migrated: Engine) -> None:
    start_run(migrated)
    assert repo.insert_fill(migrated, [fill("T1", ts=BIG_NS + 5), fill("T2")]) == 2
    # recovery replays: the same fills again, one new one, and the same trade id on another
    # order (a different fill)
    again = [
        fill("T1", ts=BIG_NS + 5),
        fill("T2"),
        fill("T3", ts=BIG_NS + 9),
        fill("T1", cid="R1000009", ts=BIG_NS + 7),
    ]
    assert repo.insert_fill(migrated, again) == 2
    assert repo.insert_fill(migrated, fill("T3", ts=BIG_NS + 9)) == 0
    got = repo.fills_of_run(migrated, RUN)
    assert [(f.trade_id, f.client_order_id) for f in got] == [
        ("T2", "R1000001"),
        ("T1", "R1000001"),
        ("T1", "R1000009"),
        ("T3", "R1000001"),
    ]
    assert got[0] == fill("T2")
    assert repo.fills_of_run(migrated, RUN, strategy_id="other") == []


def test_a_settlement_fill_from_the_engine_record(migrated: Engine) -> None:
    start_run(migrated)
    record = FillRecord(
        ts_ns=BIG_NS,
        strategy_id=SID,
        client_order_id="",
        token=CE.token,
        symbol=CE.symbol,
        side=Side.BUY,
        qty=65,
        price_paise=0,
        charges_paise=0,
        tag="expiry settlement",
        settlement=True,
    )
    row = FillRow.from_record(record, run_id=RUN)
    assert repo.insert_fill(migrated, row) == 1
    assert repo.insert_fill(migrated, FillRow.from_record(record, run_id=RUN)) == 0
    [stored] = repo.fills_of_run(migrated, RUN)
    assert stored == row and stored.settlement and stored.client_order_id == ""


def test_positions_from_the_portfolio_are_updated_in_place(migrated: Engine) -> None:
    start_run(migrated, SID, "condor")
    book = Portfolio()
    book.add_fill(SID, 1, CE.token, Side.SELL, 130, BIG_PAISE, 4_000)
    book.add_fill("condor", 2, "58785", Side.BUY, 65, 9_000, 1_000)
    pos = book.position(SID, 1, CE.token)
    pos.mark_paise = BIG_PAISE - 500
    rows = [
        PositionRow.from_position(p, run_id=RUN, updated_ns=BIG_NS) for p in book.positions.values()
    ]
    repo.upsert_position(migrated, rows)
    assert repo.positions(migrated, RUN) == sorted(rows, key=lambda r: (r.strategy_id, r.token))
    stored = repo.positions(migrated, RUN, strategy_id=SID)[0]
    assert stored.qty == -130 and stored.unrealised_paise == pos.unrealised_paise

    book.add_fill(SID, 1, CE.token, Side.BUY, 130, BIG_PAISE - 1_000, 4_000)  # closes it
    closed = PositionRow.from_position(pos, run_id=RUN, updated_ns=BIG_NS + 60)
    repo.upsert_position(migrated, closed)
    repo.upsert_position(migrated, rows[0])  # an older snapshot replayed: ignored
    assert repo.positions(migrated, RUN, strategy_id=SID) == [closed]
    assert closed.qty == 0 and closed.realised_paise == pos.realised_paise == 130 * 1_000
    assert [p.strategy_id for p in repo.positions(migrated, RUN, open_only=True)] == ["condor"]


def test_pnl_snapshots_latest_per_strategy_and_history(migrated: Engine) -> None:
    start_run(migrated, SID, "condor")
    repo.record_run_start(
        migrated,
        StrategyRunRow(run_id="run2", strategy_id=SID, mode="paper", started_ns=BIG_NS + 10),
    )
    minute = 60_000_000_000

    def snap(run: str, sid: str, k: int, net: int) -> PnlSnapshotRow:
        return PnlSnapshotRow(
            run_id=run,
            strategy_id=sid,
            ts_ns=BIG_NS + k * minute,
            realised_paise=net + 100,
            unrealised_paise=-BIG_PAISE,
            charges_paise=100 - BIG_PAISE,
            net_paise=net,
        )

    rows = [snap(RUN, SID, k, -k * 1_000) for k in range(5)]
    rows += [snap(RUN, "condor", k, k) for k in range(3)]
    repo.insert_pnl_snapshot(migrated, rows)
    repo.insert_pnl_snapshot(migrated, snap(RUN, "condor", 2, 77))  # the minute rewritten
    assert repo.latest_pnl(migrated) == [snap(RUN, "condor", 2, 77), rows[4]]
    repo.insert_pnl_snapshot(migrated, snap("run2", SID, 9, 5))
    assert repo.latest_pnl(migrated) == [snap(RUN, "condor", 2, 77), snap("run2", SID, 9, 5)]
    assert repo.latest_pnl(migrated, run_id=RUN) == [snap(RUN, "condor", 2, 77), rows[4]]
    history = repo.pnl_history(
        migrated, SID, run_id=RUN, from_ns=BIG_NS + minute, to_ns=BIG_NS + 3 * minute
    )
    assert history == rows[1:4]
    assert len(repo.pnl_history(migrated, SID)) == 6


# ---- risk, commands, audit, backtests ------------------------------------------------------


def test_risk_events_from_denials_replays_ignored(migrated: Engine) -> None:
    denied = OrderDenied(
        ts_ns=BIG_NS,
        client_order_id="R1000003",
        venue_order_id=None,
        code="MAX_LOTS_PER_ORDER",
        reason="3 lots above 2",
    )
    row = RiskEventRow.from_denied(denied, run_id=RUN, strategy_id=SID)
    general = RiskEventRow(ts_ns=BIG_NS + 1, code="KILL_SWITCH", reason="engaged by ops")
    assert repo.insert_risk_event(migrated, [row, general]) == 2
    assert repo.insert_risk_event(migrated, [row, general]) == 1  # no client id: not deduplicated
    assert repo.risk_events(migrated, strategy_id=SID) == [row]
    newest = repo.risk_events(migrated, since_ns=BIG_NS + 1)
    assert newest == [general, general]
    assert len(repo.risk_events(migrated, limit=1)) == 1


def test_the_commands_flow(migrated: Engine) -> None:
    posted = [
        KillSwitch(on=True, issued_by="ops@desk"),
        Pause(strategy_id=SID, issued_by="dashboard"),
        SquareOff(issued_by="cli"),
        StopStrategy(strategy_id="condor", issued_by="dashboard"),
        StopEngine(reason="deploy", issued_by="signal"),
    ]
    ids = [repo.post_command(migrated, c, issued_ns=BIG_NS + i) for i, c in enumerate(posted)]
    assert ids == sorted(ids) and len(set(ids)) == 5

    pending = repo.pending_commands(migrated)
    assert [c.id for c in pending] == ids
    assert [c.to_command() for c in pending] == posted  # the engine gets the very commands
    assert pending[0].issued_ns == BIG_NS and pending[0].payload == {"on": True}
    # a task holding only SID's lease sees SID's commands and the global ones
    mine = repo.pending_commands(migrated, strategy_ids={SID})
    assert [c.kind for c in mine] == ["KillSwitch", "Pause", "SquareOff", "StopEngine"]
    assert [c.kind for c in repo.pending_commands(migrated, strategy_ids=())] == [
        "KillSwitch",
        "SquareOff",
        "StopEngine",
    ]

    assert repo.mark_command_acted(
        migrated,
        ids[0],
        acted_ns=BIG_NS + 9,
        acted_by="task-a",
        result="kill switch on; 3 orders cancelled",
    )
    assert not repo.mark_command_acted(
        migrated, ids[0], acted_ns=BIG_NS + 10, acted_by="task-b", result="late"
    )
    assert not repo.mark_command_acted(migrated, 10**12, acted_ns=1, acted_by="x", result="")
    assert [c.id for c in repo.pending_commands(migrated)] == ids[1:]
    done = repo.get_command(migrated, ids[0])
    assert done is not None
    assert (done.acted_ns, done.acted_by, done.result) == (
        BIG_NS + 9,
        "task-a",
        "kill switch on; 3 orders cancelled",
    )
    assert len(repo.pending_commands(migrated, limit=2)) == 2


def test_audit_log_keeps_json_details(migrated: Engine) -> None:
    details = {
        "strategy": SID,
        "limits": {"max_lots": 2, "loss_paise": -BIG_PAISE},
        "big": 2**62,
        "ratio": 0.125,
        "tags": ["a", None, True],
    }
    first = repo.audit(
        migrated, ts_ns=BIG_NS, actor="ops@desk", action="risk.limits.changed", details=details
    )
    second = repo.audit(migrated, ts_ns=BIG_NS + 1, actor="engine", action="started")
    entries = repo.audit_entries(migrated)
    assert [e.id for e in entries] == [second, first]
    assert entries[1].details == details  # 2**62 comes back exact (not a float)
    assert entries[0].details == {}
    assert [e.action for e in repo.audit_entries(migrated, actor="ops@desk")] == [
        "risk.limits.changed"
    ]


def test_backtest_runs_recorded_at_start_and_finish(migrated: Engine) -> None:
    bid = repo.new_backtest_id()
    params = {"from": "2026-11-02", "to": "2026-11-27", "seed": 7, "strategies": ["straddle"]}
    start = BacktestRunRow(id=bid, params=params, started_ns=BIG_NS)
    assert repo.record_backtest_run(migrated, start) == bid
    assert repo.get_backtest_run(migrated, bid) == start
    metrics = {
        "net_pnl_paise": -BIG_PAISE,
        "sharpe": 1.25,
        "profit_factor": "inf",
        "recovery_ts_ns": None,
        "n_trades": 40,
    }
    done = BacktestRunRow(
        id=bid,
        params=params,
        started_ns=BIG_NS,
        finished_ns=BIG_NS + 10**12,
        metrics=metrics,
        output_dir="/tmp/out",
    )
    repo.record_backtest_run(migrated, done)
    assert repo.get_backtest_run(migrated, bid) == done
    assert repo.get_backtest_run(migrated, "nope") is None


# ---- validation, the same on both databases ------------------------------------------------


def test_values_the_schema_cannot_hold_are_refused_naming_the_column(migrated: Engine) -> None:
    start_run(migrated)
    with pytest.raises(ValidationError, match=r"fills\.symbol.*longer than 64"):
        repo.insert_fill(migrated, _fill_with(symbol="S" * 65))
    with pytest.raises(ValidationError, match=r"fills\.price_paise.*64-bit"):
        repo.insert_fill(migrated, _fill_with(price_paise=2**63))
    with pytest.raises(ValidationError, match=r"audit_log\.actor.*longer than 128"):
        repo.audit(migrated, ts_ns=1, actor="x" * 129, action="a")
    with pytest.raises(ValidationError, match="details"):
        repo.audit(migrated, ts_ns=1, actor="x", action="a", details={"v": float("nan")})
    with pytest.raises(ValidationError, match=r"fills\[1\]"):
        repo.insert_fill(migrated, [fill("T1"), "not a fill"])  # type: ignore[list-item]
    assert repo.fills_of_run(migrated, RUN) == []
    assert repo.audit_entries(migrated) == []


def _fill_with(**changes: object) -> FillRow:
    from dataclasses import replace

    return replace(fill("T1"), **changes)  # type: ignore[arg-type]


def test_calls_on_one_connection_share_its_transaction(migrated: Engine) -> None:
    start_run(migrated)
    with pytest.raises(RuntimeError), migrated.connect() as conn, conn.begin():
        repo.insert_fill(conn, fill("T1"))
        repo.audit(conn, ts_ns=1, actor="engine", action="fill")
        assert len(repo.fills_of_run(conn, RUN)) == 1  # visible inside the transaction
        raise RuntimeError("the writer died before commit")
    assert repo.fills_of_run(migrated, RUN) == []
    assert repo.audit_entries(migrated) == []
    with migrated.connect() as conn, conn.begin():
        repo.insert_fill(conn, fill("T1"))
        repo.audit(conn, ts_ns=1, actor="engine", action="fill")
    assert len(repo.fills_of_run(migrated, RUN)) == 1
