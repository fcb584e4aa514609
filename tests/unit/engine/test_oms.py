"""Order manager: slicing, client ids, denials, the throttle, linked exits, status discipline."""

from __future__ import annotations

from typing import Any

import pytest

from algoengine.domain.events import (
    OrderAccepted,
    OrderCancelled,
    OrderDenied,
    OrderFilled,
    OrderModified,
    OrderPartiallyFilled,
)
from algoengine.domain.orders import OrderStatus, OrderType, Side
from algoengine.engine.oms import ManagedOrder, OrderManager, ThrottleConfig
from algoengine.errors import ValidationError

from ._micro import option

NS = 1_000_000_000
INST = option(24000, "CE", "1001")


class Venue:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, int, dict[str, Any]]] = []

    def submit(self, request: Any, ts_ns: int) -> None:
        self.calls.append(("submit", request.client_order_id, ts_ns, {"qty": request.qty}))

    def cancel(self, client_order_id: str, ts_ns: int) -> None:
        self.calls.append(("cancel", client_order_id, ts_ns, {}))

    def modify(self, client_order_id: str, ts_ns: int, **kw: Any) -> None:
        self.calls.append(("modify", client_order_id, ts_ns, kw))


def make(check: Any = None, **throttle: int) -> tuple[OrderManager, Venue, list[Any]]:
    venue = Venue()
    seen: list[Any] = []
    oms = OrderManager(
        venue,
        check=check,
        sink=lambda e, o: seen.append((type(e).__name__, o.client_order_id)),
        run_code="T1",
        throttle=ThrottleConfig(**throttle),
    )
    return oms, venue, seen


def submit(oms: OrderManager, qty: int, ts: int = 0, **kw: Any) -> list[str]:
    args: dict[str, Any] = dict(
        strategy_id="s",
        idx=1,
        instrument=INST,
        side=Side.SELL,
        qty=qty,
        order_type=OrderType.MARKET,
        ts_ns=ts,
    )
    args.update(kw)
    return oms.submit(**args)


def test_orders_above_the_freeze_quantity_are_sliced_into_whole_lots() -> None:
    assert OrderManager.slices(65 * 60, INST) == [1755, 1755, 390]  # freeze 1800 -> 27 lots
    assert OrderManager.slices(1755, INST) == [1755]
    assert OrderManager.slices(65, INST) == [65]
    oms, venue, _ = make()
    ids = submit(oms, 65 * 60)
    assert [c[3]["qty"] for c in venue.calls] == [1755, 1755, 390]
    assert ids == ["T1000001", "T1000002", "T1000003"]
    assert {oms.orders[i].parent_id for i in ids[1:]} == {ids[0]}
    assert all(len(i) <= 20 for i in ids)


def test_bad_quantities_raise_naming_the_field() -> None:
    oms, venue, _ = make()
    for qty in (0, -65, 100):
        with pytest.raises(ValidationError) as info:
            submit(oms, qty)
        assert info.value.field == "qty"
    assert venue.calls == []


class DenyBig:
    def check(self, order: ManagedOrder, ts_ns: int) -> tuple[str, str] | None:
        return ("MAX_LOTS_PER_ORDER", "too big") if order.qty > 65 else None


def test_a_denied_slice_never_leaves_and_says_why() -> None:
    oms, venue, seen = make(check=DenyBig())
    [big] = submit(oms, 130)
    [small] = submit(oms, 65)
    assert oms.orders[big].status is OrderStatus.REJECTED
    assert oms.orders[big].reason == "too big"
    assert isinstance(oms.orders[big].events[0], OrderDenied)
    assert [c[1] for c in venue.calls] == [small]
    assert ("OrderDenied", big) in seen


def test_the_throttle_sends_at_most_n_per_second_and_drops_nothing() -> None:
    oms, venue, _ = make(orders_per_second=10)
    for _ in range(25):
        submit(oms, 65, ts=5 * NS)
    assert len(venue.calls) == 10 and oms.pending_actions() == 15
    assert oms.next_release_ns(5 * NS) == 6 * NS
    assert oms.release(6 * NS - 1) == 0
    assert oms.release(6 * NS) == 10
    assert oms.release(7 * NS) == 5
    times = sorted(c[2] for c in venue.calls)
    for k in range(len(times) - 10):  # any 11 sends span at least a second
        assert times[k + 10] - times[k] >= NS
    assert len({c[1] for c in venue.calls}) == 25


def test_cancelling_an_order_still_in_the_throttle_never_sends_it() -> None:
    oms, venue, seen = make(orders_per_second=1)
    a, b = submit(oms, 65)[0], submit(oms, 65)[0]
    assert oms.cancel(b, 0)
    assert oms.orders[b].status is OrderStatus.CANCELLED
    oms.release(10 * NS)
    assert [c[1] for c in venue.calls] == [a]
    assert ("OrderCancelled", b) in seen
    assert not oms.cancel(b, 10 * NS)  # finished: nothing to do


def ev(cls: Any, cid: str, **kw: Any) -> Any:
    return cls(ts_ns=kw.pop("ts_ns", 1), client_order_id=cid, venue_order_id="V" + cid, **kw)


def fill(cls: Any, cid: str, qty: int, filled: int, left: int, price: int = 100) -> Any:
    return ev(
        cls,
        cid,
        trade_id=f"T{filled}",
        instrument_token=INST.token,
        side=Side.BUY,
        qty=qty,
        price_paise=price,
        filled_qty=filled,
        remaining_qty=left,
    )


def test_linked_exits_one_fill_cancels_the_other_and_a_partial_fill_shrinks_it() -> None:
    oms, venue, _ = make()
    [stop] = submit(
        oms,
        130,
        side=Side.BUY,
        order_type=OrderType.STOPLOSS_LIMIT,
        price_paise=14_000,
        trigger_price_paise=13_000,
    )
    [target] = submit(oms, 130, side=Side.BUY, order_type=OrderType.LIMIT, price_paise=5_000)
    oms.link_oco(stop, target)
    oms.on_events(
        [
            ev(OrderAccepted, stop, status=OrderStatus.TRIGGER_PENDING),
            ev(OrderAccepted, target, status=OrderStatus.OPEN),
        ],
        1,
    )
    oms.on_events([fill(OrderPartiallyFilled, target, 65, 65, 65)], 2)
    assert venue.calls[-1] == (
        "modify",
        stop,
        2,
        {"qty": 65, "price_paise": None, "trigger_price_paise": None},
    )
    oms.on_events([fill(OrderFilled, target, 65, 130, 0)], 3)
    assert venue.calls[-1] == ("cancel", stop, 3, {})


def test_an_event_the_status_table_forbids_is_dropped_not_applied() -> None:
    oms, _, seen = make()
    [cid] = submit(oms, 65)
    oms.on_events([ev(OrderAccepted, cid, status=OrderStatus.OPEN)], 1)
    oms.on_events([ev(OrderCancelled, cid, reason="user", filled_qty=0, cancelled_qty=65)], 2)
    n = len(seen)
    oms.on_events([fill(OrderFilled, cid, 65, 65, 0)], 3)  # a fill after the cancel
    assert oms.orders[cid].status is OrderStatus.CANCELLED and oms.orders[cid].filled_qty == 0
    assert len(seen) == n


def test_a_modification_is_applied_when_the_venue_confirms_it() -> None:
    oms, venue, _ = make()
    [cid] = submit(oms, 65, order_type=OrderType.LIMIT, price_paise=10_000)
    oms.on_events([ev(OrderAccepted, cid, status=OrderStatus.OPEN)], 1)
    assert oms.modify(cid, 2, price_paise=10_500)
    assert venue.calls[-1] == (
        "modify",
        cid,
        2,
        {"qty": None, "price_paise": 10_500, "trigger_price_paise": None},
    )
    assert oms.orders[cid].price_paise == 10_000  # not yet
    oms.on_events([ev(OrderModified, cid, qty=65, price_paise=10_500, trigger_price_paise=None)], 3)
    assert oms.orders[cid].price_paise == 10_500


def test_run_code_is_checked() -> None:
    with pytest.raises(ValidationError):
        OrderManager(Venue(), check=None, sink=lambda e, o: None, run_code="bad code!")


def test_a_fill_delivered_twice_is_applied_once() -> None:
    oms, _, seen = make()
    [cid] = submit(oms, 130)
    oms.on_events([ev(OrderAccepted, cid, status=OrderStatus.OPEN)], 1)
    part = fill(OrderPartiallyFilled, cid, 65, 65, 65)
    oms.on_events([part, part], 2)  # a redelivery (replay after a reconnect or a restart)
    assert oms.orders[cid].filled_qty == 65
    assert [k for k, c in seen if k == "OrderPartiallyFilled"] == ["OrderPartiallyFilled"]


def test_a_send_that_fails_in_transit_is_sent_again_with_the_same_id() -> None:
    from algoengine.errors import TemporaryBrokerError

    class Flaky(Venue):
        fail = 2

        def submit(self, request: Any, ts_ns: int) -> None:
            if self.fail:
                self.fail -= 1
                raise TemporaryBrokerError("connection reset")
            super().submit(request, ts_ns)

    venue = Flaky()
    oms = OrderManager(venue, check=None, sink=lambda e, o: None, run_code="T1")
    [cid] = submit(oms, 65, ts=0)
    assert venue.calls == [] and oms.pending_actions() == 1
    assert oms.orders[cid].status is OrderStatus.SUBMITTED  # it may have arrived
    retry = oms.next_release_ns(0)
    assert retry is not None and retry > 0
    oms.release(retry)  # fails again: backs off longer
    later = oms.next_release_ns(retry)
    assert later is not None and later - retry > retry
    assert oms.release(later) == 1
    assert [(c[0], c[1]) for c in venue.calls] == [("submit", cid)]  # once, same id
