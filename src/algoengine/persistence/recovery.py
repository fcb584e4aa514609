"""Recovery after a crash: rebuild from the database, reconcile with the broker, carry on.

When an engine task starts for strategies whose latest run is still marked ``running`` (the
process died: kill -9, a lost host), :func:`recover` runs before the event loop:

1. it reads the strategy's orders and fills from the database (what the journals of this
   run and of the runs before it had written: the positions replay from all of them);
2. it asks the broker, by client order id, for each order's status and for the trade book;
3. it reconciles:

   - an order the broker knows takes the broker's status, quantity and fills;
   - an order the database has as NEW or SUBMITTED that the broker never received is
     marked REJECTED ("not received by the venue"): it was never live, and a strategy may
     decide again with a new id; nothing is ever re-sent under the old id;
   - a fill the broker reports that the database lacks (the journal's last ~50 ms before
     the crash) is added, with its charges;
   - a working order the broker has under the crashed run's client-id prefix that the
     database never saw (sent in those last milliseconds; no strategy knows it) is cancelled
     at the broker and reported;

4. the engine takes the result (:meth:`Engine.restore`): positions from the fills, working
   orders tracked again (their fills, cancels and linked exits work), the risk engine's
   positions and working orders; each strategy's ``on_recover`` rebuilds its own state;
5. the old run is marked ``crashed`` with the new run's id as the reason.

So: no order is sent twice (ids are never reused and lost orders are never re-sent), no fill is
lost (the broker's trade book is the last word), no position is forgotten.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from algoengine.domain.orders import OrderStatus
from algoengine.engine.engine import Engine, FillRecord
from algoengine.engine.oms import ManagedOrder
from algoengine.persistence.records import RunStatus
from algoengine.persistence.repositories import (
    fills_of_strategy,
    get_order,
    latest_run,
    orders_of_strategy,
    record_run_stop,
)

__all__ = ["ReconcilableVenue", "Reconciled", "RecoveryReport", "reconcile", "recover", "take_over"]

log = logging.getLogger(__name__)


class ReconcilableVenue(Protocol):
    """What recovery asks of the broker."""

    def order(self, client_order_id: str) -> Any:
        """The broker's report of one order (``OrderStatusReport``-like) or None."""
        ...

    def trades(self) -> Sequence[Any]:
        """The day's trade book: items with client_order_id, trade_id, qty, price_paise,
        ts_ns (attributes or keys)."""
        ...


@dataclass(slots=True)
class RecoveryReport:
    """What recovery found and did."""

    run_ids: list[str] = field(default_factory=list)
    orders: int = 0
    working: int = 0
    lost: list[str] = field(default_factory=list)  # never reached the broker
    updated: list[str] = field(default_factory=list)  # the broker's status differed
    fills_from_db: int = 0
    fills_from_broker: int = 0  # fills the journal had not written
    orphans: list[str] = field(default_factory=list)  # unknown working orders, cancelled
    crashed: list[tuple[str, str]] = field(default_factory=list)  # (run id, strategy id)

    def summary(self) -> str:
        return (
            f"recovered runs {', '.join(self.run_ids) or 'none'}: {self.orders} orders "
            f"({self.working} working, {len(self.updated)} updated from the broker, "
            f"{len(self.lost)} never received by it), {self.fills_from_db} fills from the "
            f"database + {self.fills_from_broker} from the broker's trade book, "
            f"{len(self.orphans)} unknown working orders cancelled"
        )


def _get(item: Any, name: str) -> Any:
    return item[name] if isinstance(item, Mapping) else getattr(item, name)


@dataclass(slots=True)
class Reconciled:
    """The reconciled state of some strategies' crashed runs (see :func:`reconcile`)."""

    orders: list[ManagedOrder]
    fills: list[FillRecord]
    from_broker: list[FillRecord]
    report: RecoveryReport


def recover(
    bind: Any,
    venue: ReconcilableVenue,
    engine: Engine,
    *,
    strategy_ids: Iterable[str],
    new_run_id: str,
) -> RecoveryReport:
    """Take over the crashed runs of ``strategy_ids`` into ``engine`` (before it runs)."""
    r = reconcile(bind, venue, engine, strategy_ids=strategy_ids, new_run_id=new_run_id)
    engine.restore(orders=r.orders, fills=r.fills)
    _finish(bind, engine, r, new_run_id)
    return r.report


def take_over(
    bind: Any,
    venue: ReconcilableVenue,
    engine: Engine,
    strategy: Any,
    *,
    new_run_id: str,
) -> RecoveryReport:
    """Scale-out: adopt one strategy into a RUNNING engine (call it in the loop's thread):
    its previous owner's run is reconciled as after a crash, then
    :meth:`Engine.adopt_strategy` restores it and calls its ``on_recover``."""
    r = reconcile(bind, venue, engine, strategy_ids=[strategy.strategy_id], new_run_id=new_run_id)
    engine.adopt_strategy(strategy, orders=r.orders, fills=r.fills)
    _finish(bind, engine, r, new_run_id)
    return r.report


def _finish(bind: Any, engine: Engine, r: Reconciled, new_run_id: str) -> None:
    journal = engine.journal
    if journal is not None:  # the reconciled state under the new run
        for o in r.orders:
            journal.put_order(o)
        for f in r.from_broker:
            journal.put_fill(f)
    for run_id, sid in r.report.crashed:  # only the strategies taken over here
        record_run_stop(
            bind,
            run_id,
            stopped_ns=time.time_ns(),
            status=RunStatus.CRASHED,
            reason=f"taken over by run {new_run_id}",
            strategy_id=sid,
        )
    log.warning("recovery", extra={"summary": r.report.summary()})


def reconcile(
    bind: Any,
    venue: ReconcilableVenue,
    engine: Engine,
    *,
    strategy_ids: Iterable[str],
    new_run_id: str,
) -> Reconciled:
    """The strategies' latest runs still marked running, reconciled with the broker (the
    steps of the module docstring); nothing is changed in the engine or the database."""
    report = RecoveryReport()
    universe = engine.universe
    managed: list[ManagedOrder] = []
    fills: list[FillRecord] = []
    from_broker: list[FillRecord] = []
    runs: set[tuple[str, str]] = set()
    for sid in strategy_ids:
        run = latest_run(bind, sid, before_run_id=new_run_id)
        if run is not None and run.status is RunStatus.RUNNING:
            runs.add((run.run_id, sid))  # it did not stop cleanly: marked crashed after
        # the strategy's whole record, whichever task wrote it: it may have moved between
        # engine tasks, and a task killed right after a take-over may not have rewritten the
        # orders it adopted under its own run
        rows = orders_of_strategy(bind, sid)
        db_fills = fills_of_strategy(bind, sid)
        have = {(r.trade_id, r.client_order_id) for r in db_fills}
        for r in db_fills:
            fills.append(
                FillRecord(
                    ts_ns=r.ts_ns,
                    strategy_id=r.strategy_id,
                    client_order_id=r.client_order_id,
                    token=r.token,
                    symbol=r.symbol,
                    side=r.side,
                    qty=r.qty,
                    price_paise=r.price_paise,
                    charges_paise=r.charges_paise,
                    tag=r.tag,
                    settlement=r.settlement,
                    trade_id=r.trade_id,
                )
            )
        report.fills_from_db += len(db_fills)
        by_cid: dict[str, ManagedOrder] = {}
        for row in rows:
            inst = universe.by_token(row.token)
            o = ManagedOrder(
                client_order_id=row.client_order_id,
                strategy_id=row.strategy_id,
                idx=universe.index_of(row.token),
                instrument=inst,
                side=row.side,
                order_type=row.order_type,
                qty=row.qty,
                price_paise=row.price_paise,
                trigger_price_paise=row.trigger_price_paise,
                tif=row.tif,
                tag=row.tag,
                created_ns=row.created_ns,
                square_off=row.square_off,
                parent_id=row.parent_id,
                status=row.status,
                filled_qty=row.filled_qty,
                filled_value_paise=row.filled_value_paise,
                venue_order_id=row.venue_order_id,
                reason=row.reason,
                updated_ns=row.updated_ns,
                oco_id=row.oco_id,
            )
            by_cid[o.client_order_id] = o
            managed.append(o)
        report.orders += len(rows)
        # the broker's word on every order that was not finished in the database
        for o in managed:
            if o.strategy_id != sid or o.status.is_terminal:
                continue
            broker = venue.order(o.client_order_id)
            if broker is None:
                if o.status in (OrderStatus.NEW, OrderStatus.SUBMITTED):
                    o.status = OrderStatus.REJECTED
                    o.reason = "not received by the venue before the crash"
                    report.lost.append(o.client_order_id)
                continue
            status = OrderStatus(_get(broker, "status"))
            if status is not o.status:
                report.updated.append(o.client_order_id)
            o.status = status
            o.qty = int(_get(broker, "qty"))
            o.price_paise = _get(broker, "price_paise")
            o.trigger_price_paise = _get(broker, "trigger_price_paise")
            o.venue_order_id = _get(broker, "venue_order_id")
        # fills the journal had not written: the broker's trade book is the last word
        for t in venue.trades():
            cid = str(_get(t, "client_order_id"))
            trade_id = str(_get(t, "trade_id"))
            owner = by_cid.get(cid)
            if owner is None or (trade_id, cid) in have:
                continue
            o = owner
            qty, price = int(_get(t, "qty")), int(_get(t, "price_paise"))
            charges = 0
            if engine.charges is not None:
                from algoengine.market.calendar import ist_date

                first = not any(f.client_order_id == cid for f in fills)
                charges = int(
                    engine.charges.fill_charges(
                        o.side, price, qty, ist_date(int(_get(t, "ts_ns"))), first
                    ).total
                )
            fill = FillRecord(
                ts_ns=int(_get(t, "ts_ns")),
                strategy_id=o.strategy_id,
                client_order_id=cid,
                token=o.instrument.token,
                symbol=o.instrument.symbol,
                side=o.side,
                qty=qty,
                price_paise=price,
                charges_paise=charges,
                tag=o.tag,
                trade_id=trade_id,
            )
            fills.append(fill)
            from_broker.append(fill)
            report.fills_from_broker += 1
        # working orders of the crashed run that the database never saw: nobody owns them
        open_at_broker = getattr(venue, "open_orders", None)
        if open_at_broker is not None and run is not None and run.status is RunStatus.RUNNING:
            prefix = run.run_id
            for rep in open_at_broker():
                cid = str(_get(rep, "client_order_id"))
                if (
                    cid.startswith(prefix)
                    and cid not in by_cid
                    and cid not in report.orphans
                    and get_order(bind, cid) is None  # (another strategy's: not ours to touch)
                ):
                    report.orphans.append(cid)
                    cancel = getattr(venue, "cancel", None)
                    if cancel is not None:
                        cancel(cid, engine.now_ns())
        # each order's filled quantity from the fills now known
        for o in by_cid.values():
            mine = [f for f in fills if f.client_order_id == o.client_order_id]
            o.filled_qty = sum(f.qty for f in mine)
            o.filled_value_paise = sum(f.qty * f.price_paise for f in mine)
            o.trade_ids = {f.trade_id for f in mine}  # a replayed fill event is dropped
    fills.sort(key=lambda f: (f.ts_ns, f.client_order_id, f.trade_id))
    report.working = sum(1 for o in managed if o.is_open)
    report.run_ids = sorted({r for r, _ in runs})
    report.crashed = sorted(runs)
    return Reconciled(orders=managed, fills=fills, from_broker=from_broker, report=report)
