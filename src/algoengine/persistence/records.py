"""The values the repositories write and return: one frozen dataclass per table row.

Each row type validates itself on construction (a :class:`~algoengine.errors.ValidationError`
names the field and the value) and converts from the engine's objects:
:meth:`OrderRow.from_managed` (an OMS order), :meth:`OrderEventRow.from_event` /
:meth:`OrderEventRow.to_event` (order events, both ways), :meth:`FillRow.from_record` (the
engine's :class:`~algoengine.engine.engine.FillRecord`), :meth:`PositionRow.from_position`,
:meth:`PnlSnapshotRow.from_pnl`, :meth:`RiskEventRow.from_denied`, and
:func:`command_fields` / :meth:`CommandRow.to_command` (engine commands, both ways).

Units: prices and money in paise, quantities in units, times in UTC epoch nanoseconds.
Enumerations are the domain's (``Side``, ``OrderType``, ...); their string values are accepted
too (rows read back from the database are built from them).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum, StrEnum
from typing import TYPE_CHECKING, Any

from algoengine.domain import events as _events
from algoengine.domain.events import OrderDenied, OrderEvent
from algoengine.domain.orders import OrderStatus, OrderType, Side, TimeInForce
from algoengine.engine import commands as _commands
from algoengine.engine.commands import Command
from algoengine.errors import ValidationError
from algoengine.persistence._checks import (
    check_bool,
    check_enum,
    check_int,
    check_json,
    check_opt_int,
    check_opt_json,
    check_opt_str,
    check_str,
)

if TYPE_CHECKING:
    from algoengine.engine.engine import FillRecord
    from algoengine.engine.oms import ManagedOrder
    from algoengine.engine.portfolio import PnL, Position

__all__ = [
    "COMMAND_KINDS",
    "EVENT_KINDS",
    "AuditRow",
    "BacktestRunRow",
    "CommandRow",
    "FillRow",
    "OrderEventRow",
    "OrderRow",
    "PnlSnapshotRow",
    "PositionRow",
    "RiskEventRow",
    "RunMode",
    "RunStatus",
    "StrategyRunRow",
    "command_fields",
    "event_payload",
    "settlement_trade_id",
]


class RunMode(StrEnum):
    """How a run trades: simulated clock and venue, real clock and simulated venue, or live."""

    BACKTEST = "backtest"
    PAPER = "paper"
    LIVE = "live"


class RunStatus(StrEnum):
    """Where a strategy run is: running, stopped cleanly, failed (an error stopped it), or
    crashed (found still ``running`` by the next start: the process died)."""

    RUNNING = "running"
    STOPPED = "stopped"
    FAILED = "failed"
    CRASHED = "crashed"


#: Order event classes by name (the ``kind`` column of ``order_events``).
EVENT_KINDS: Mapping[str, type[OrderEvent]] = types.MappingProxyType(
    {
        name: cls
        for name, cls in vars(_events).items()
        if isinstance(cls, type) and issubclass(cls, OrderEvent) and cls is not OrderEvent
    }
)

#: Engine command classes by name (the ``kind`` column of ``commands``).
COMMAND_KINDS: Mapping[str, type[Command]] = types.MappingProxyType(
    {
        name: cls
        for name, cls in vars(_commands).items()
        if isinstance(cls, type) and issubclass(cls, Command) and cls is not Command
    }
)


def _set(obj: object, name: str, value: object) -> None:
    object.__setattr__(obj, name, value)


# ---- runs ----------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class StrategyRunRow:
    """One strategy in one run of the engine.

    Parameters
    ----------
    run_id
        The run's id (unique per start of the engine).
    strategy_id
        The strategy's id.
    mode
        backtest, paper or live.
    started_ns
        When the run started [UTC epoch ns].
    config
        The strategy's configuration (JSON object), as it ran.
    status
        running, stopped, failed or crashed.
    stopped_ns, stop_reason
        When and why it stopped (``None`` while running).
    owner
        Scale-out: the engine task that ran it (host/task id).
    fencing_token
        Scale-out: the lease's fencing token the run held.
    """

    run_id: str
    strategy_id: str
    mode: RunMode
    started_ns: int
    config: Mapping[str, Any] = field(default_factory=dict)
    status: RunStatus = RunStatus.RUNNING
    stopped_ns: int | None = None
    stop_reason: str | None = None
    owner: str | None = None
    fencing_token: int | None = None

    def __post_init__(self) -> None:
        check_str("run_id", self.run_id)
        check_str("strategy_id", self.strategy_id)
        _set(self, "mode", check_enum("mode", self.mode, RunMode))
        check_int("started_ns", self.started_ns, minimum=0)
        _set(self, "config", check_json("config", self.config))
        _set(self, "status", check_enum("status", self.status, RunStatus))
        check_opt_int("stopped_ns", self.stopped_ns, minimum=0)
        check_opt_str("stop_reason", self.stop_reason)
        check_opt_str("owner", self.owner)
        check_opt_int("fencing_token", self.fencing_token, minimum=0)


# ---- orders --------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class OrderRow:
    """An order (one slice) as stored: the OMS's :class:`~algoengine.engine.oms.ManagedOrder`
    without the live objects. ``filled_value_paise`` is the sum of price x quantity over the
    fills, exact; :attr:`avg_price_paise` derives the average."""

    client_order_id: str
    run_id: str
    strategy_id: str
    token: str
    symbol: str
    exchange: str
    side: Side
    order_type: OrderType
    tif: TimeInForce
    qty: int
    price_paise: int | None
    trigger_price_paise: int | None
    status: OrderStatus
    created_ns: int
    updated_ns: int
    filled_qty: int = 0
    filled_value_paise: int = 0
    venue_order_id: str | None = None
    tag: str = ""
    reason: str | None = None
    square_off: bool = False
    parent_id: str | None = None
    oco_id: str | None = None

    def __post_init__(self) -> None:
        for name in ("client_order_id", "run_id", "strategy_id", "token", "symbol", "exchange"):
            check_str(name, getattr(self, name))
        _set(self, "side", check_enum("side", self.side, Side))
        _set(self, "order_type", check_enum("order_type", self.order_type, OrderType))
        _set(self, "tif", check_enum("tif", self.tif, TimeInForce))
        _set(self, "status", check_enum("status", self.status, OrderStatus))
        check_int("qty", self.qty, minimum=1)
        check_opt_int("price_paise", self.price_paise, minimum=0)
        check_opt_int("trigger_price_paise", self.trigger_price_paise, minimum=0)
        check_int("filled_qty", self.filled_qty, minimum=0)
        if self.filled_qty > self.qty:
            raise ValidationError("filled_qty", self.filled_qty, f"exceeds qty {self.qty}")
        check_int("filled_value_paise", self.filled_value_paise, minimum=0)
        check_int("created_ns", self.created_ns, minimum=0)
        check_int("updated_ns", self.updated_ns, minimum=0)
        check_opt_str("venue_order_id", self.venue_order_id)
        check_str("tag", self.tag, empty=True)
        if self.reason is not None:
            check_str("reason", self.reason, empty=True)
        check_bool("square_off", self.square_off)
        check_opt_str("parent_id", self.parent_id)
        check_opt_str("oco_id", self.oco_id)

    @property
    def avg_price_paise(self) -> float:
        """Average fill price [paise] (0.0 before any fill)."""
        return self.filled_value_paise / self.filled_qty if self.filled_qty else 0.0

    @property
    def is_open(self) -> bool:
        """Not in a terminal status."""
        return not self.status.is_terminal

    @classmethod
    def from_managed(cls, order: ManagedOrder, *, run_id: str) -> OrderRow:
        """The row of an OMS order (its ``updated_ns`` is at least its ``created_ns``)."""
        inst = order.instrument
        return cls(
            client_order_id=order.client_order_id,
            run_id=run_id,
            strategy_id=order.strategy_id,
            token=inst.token,
            symbol=inst.symbol,
            exchange=inst.exchange,
            side=order.side,
            order_type=order.order_type,
            tif=order.tif,
            qty=order.qty,
            price_paise=order.price_paise,
            trigger_price_paise=order.trigger_price_paise,
            status=order.status,
            created_ns=order.created_ns,
            updated_ns=max(order.updated_ns, order.created_ns),
            filled_qty=order.filled_qty,
            filled_value_paise=order.filled_value_paise,
            venue_order_id=order.venue_order_id,
            tag=order.tag,
            reason=order.reason,
            square_off=order.square_off,
            parent_id=order.parent_id,
            oco_id=order.oco_id,
        )


def event_payload(event: OrderEvent) -> dict[str, Any]:
    """An order event's fields as JSON data (enumerations as their values)."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(event):
        value = getattr(event, f.name)
        out[f.name] = value.value if isinstance(value, Enum) else value
    return out


def _enum_of(hint: object) -> type[Enum] | None:
    """The Enum class in a field's type (``Side`` or ``Side | None``), else None."""
    candidates = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    for c in candidates:
        if isinstance(c, type) and issubclass(c, Enum):
            return c
    return None


@dataclass(frozen=True, kw_only=True, slots=True)
class OrderEventRow:
    """One entry of the append-only order event journal.

    Parameters
    ----------
    client_order_id
        The order's client id.
    seq
        The event's position in its order's history, from 1 (the OMS's ``order.events``
        index + 1); ``(client_order_id, seq)`` is unique, so a replay is a no-op.
    kind
        The event class's name (``"OrderFilled"``, ...; see :data:`EVENT_KINDS`).
    ts_ns
        The event's time [UTC epoch ns].
    payload
        The event's fields (:func:`event_payload`).
    """

    client_order_id: str
    seq: int
    kind: str
    ts_ns: int
    payload: Mapping[str, Any]

    def __post_init__(self) -> None:
        check_str("client_order_id", self.client_order_id)
        check_int("seq", self.seq, minimum=1)
        if self.kind not in EVENT_KINDS:
            raise ValidationError("kind", self.kind, "not an order event class")
        check_int("ts_ns", self.ts_ns, minimum=0)
        _set(self, "payload", check_json("payload", self.payload))

    @classmethod
    def from_event(cls, event: OrderEvent, *, seq: int) -> OrderEventRow:
        """The journal entry of ``event``, the ``seq``-th of its order."""
        return cls(
            client_order_id=event.client_order_id,
            seq=seq,
            kind=type(event).__name__,
            ts_ns=event.ts_ns,
            payload=event_payload(event),
        )

    def to_event(self) -> OrderEvent:
        """The order event again (recovery replays these).

        Raises
        ------
        ValidationError
            The payload does not fit the event class (missing or unknown fields, bad values).
        """
        cls = EVENT_KINDS[self.kind]
        hints = typing.get_type_hints(cls)
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(self.payload) - names
        if unknown:
            raise ValidationError("payload", sorted(unknown), f"not fields of {self.kind}")
        kwargs: dict[str, Any] = {}
        for name, value in self.payload.items():
            enum = _enum_of(hints[name])
            kwargs[name] = (
                check_enum(f"payload.{name}", value, enum)
                if enum is not None and value is not None
                else value
            )
        try:
            return cls(**kwargs)
        except TypeError as exc:
            raise ValidationError("payload", dict(self.payload), str(exc)) from None


# ---- fills, positions, P&L -----------------------------------------------------------------


def settlement_trade_id(token: str, ts_ns: int) -> str:
    """The trade id given to an expiry settlement (it has none from the exchange)."""
    return f"SETTLE-{token}-{ts_ns}"


@dataclass(frozen=True, kw_only=True, slots=True)
class FillRow:
    """One fill. ``(trade_id, client_order_id)`` identifies it: writing it twice is a no-op.
    Expiry settlements have ``client_order_id=""`` and ``settlement=True``."""

    run_id: str
    strategy_id: str
    trade_id: str
    client_order_id: str
    ts_ns: int
    token: str
    symbol: str
    side: Side
    qty: int
    price_paise: int
    charges_paise: int = 0
    tag: str = ""
    settlement: bool = False

    def __post_init__(self) -> None:
        for name in ("run_id", "strategy_id", "trade_id", "token", "symbol"):
            check_str(name, getattr(self, name))
        check_str("client_order_id", self.client_order_id, empty=self.settlement)
        check_int("ts_ns", self.ts_ns, minimum=0)
        _set(self, "side", check_enum("side", self.side, Side))
        check_int("qty", self.qty, minimum=1)
        check_int("price_paise", self.price_paise, minimum=0)
        check_int("charges_paise", self.charges_paise)
        check_str("tag", self.tag, empty=True)
        check_bool("settlement", self.settlement)

    @classmethod
    def from_record(cls, fill: FillRecord, *, run_id: str, trade_id: str | None = None) -> FillRow:
        """The row of an engine :class:`~algoengine.engine.engine.FillRecord`.

        ``trade_id`` is the exchange's trade id (the fill event's); a settlement without one
        gets :func:`settlement_trade_id`.
        """
        if trade_id is None:
            trade_id = getattr(fill, "trade_id", None) or None
        if trade_id is None:
            if not fill.settlement:
                raise ValidationError("trade_id", None, "required for a fill (not a settlement)")
            trade_id = settlement_trade_id(fill.token, fill.ts_ns)
        return cls(
            run_id=run_id,
            strategy_id=fill.strategy_id,
            trade_id=trade_id,
            client_order_id=fill.client_order_id,
            ts_ns=fill.ts_ns,
            token=fill.token,
            symbol=fill.symbol,
            side=fill.side,
            qty=fill.qty,
            price_paise=fill.price_paise,
            charges_paise=fill.charges_paise,
            tag=fill.tag,
            settlement=fill.settlement,
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class PositionRow:
    """A strategy's position in one instrument (the portfolio's numbers; see
    :mod:`algoengine.engine.portfolio`): ``realised = cash + open_cost``,
    ``unrealised = qty * mark - open_cost``."""

    run_id: str
    strategy_id: str
    token: str
    qty: int
    open_cost_paise: int
    cash_paise: int
    charges_paise: int
    updated_ns: int
    bought_qty: int = 0
    sold_qty: int = 0
    mark_paise: int = 0

    def __post_init__(self) -> None:
        for name in ("run_id", "strategy_id", "token"):
            check_str(name, getattr(self, name))
        for name in ("qty", "open_cost_paise", "cash_paise", "charges_paise", "mark_paise"):
            check_int(name, getattr(self, name))
        check_int("bought_qty", self.bought_qty, minimum=0)
        check_int("sold_qty", self.sold_qty, minimum=0)
        check_int("updated_ns", self.updated_ns, minimum=0)

    @property
    def realised_paise(self) -> int:
        return self.cash_paise + self.open_cost_paise

    @property
    def unrealised_paise(self) -> int:
        return self.qty * self.mark_paise - self.open_cost_paise

    @classmethod
    def from_position(cls, pos: Position, *, run_id: str, updated_ns: int) -> PositionRow:
        """The row of a portfolio :class:`~algoengine.engine.portfolio.Position`."""
        return cls(
            run_id=run_id,
            strategy_id=pos.strategy_id,
            token=pos.token,
            qty=pos.qty,
            open_cost_paise=pos.open_cost_paise,
            cash_paise=pos.cash_paise,
            charges_paise=pos.charges_paise,
            updated_ns=updated_ns,
            bought_qty=pos.bought_qty,
            sold_qty=pos.sold_qty,
            mark_paise=pos.mark_paise,
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class PnlSnapshotRow:
    """A strategy's P&L at one minute [paise]: ``net = realised + unrealised - charges``."""

    run_id: str
    strategy_id: str
    ts_ns: int
    realised_paise: int
    unrealised_paise: int
    charges_paise: int
    net_paise: int

    def __post_init__(self) -> None:
        check_str("run_id", self.run_id)
        check_str("strategy_id", self.strategy_id)
        check_int("ts_ns", self.ts_ns, minimum=0)
        for name in ("realised_paise", "unrealised_paise", "charges_paise", "net_paise"):
            check_int(name, getattr(self, name))
        expected = self.realised_paise + self.unrealised_paise - self.charges_paise
        if self.net_paise != expected:
            raise ValidationError(
                "net_paise", self.net_paise, f"must be realised + unrealised - charges = {expected}"
            )

    @classmethod
    def from_pnl(cls, pnl: PnL, *, run_id: str, strategy_id: str, ts_ns: int) -> PnlSnapshotRow:
        """The snapshot of a portfolio :class:`~algoengine.engine.portfolio.PnL`."""
        return cls(
            run_id=run_id,
            strategy_id=strategy_id,
            ts_ns=ts_ns,
            realised_paise=pnl.realised,
            unrealised_paise=pnl.unrealised,
            charges_paise=pnl.charges,
            net_paise=pnl.net,
        )


# ---- risk, commands, audit, backtests ------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class RiskEventRow:
    """An order the engine refused before it left (or another risk decision, without a
    client order id)."""

    ts_ns: int
    code: str
    reason: str
    run_id: str | None = None
    strategy_id: str | None = None
    client_order_id: str | None = None

    def __post_init__(self) -> None:
        check_int("ts_ns", self.ts_ns, minimum=0)
        check_str("code", self.code)
        check_str("reason", self.reason, empty=True)
        check_opt_str("run_id", self.run_id)
        check_opt_str("strategy_id", self.strategy_id)
        check_opt_str("client_order_id", self.client_order_id)

    @classmethod
    def from_denied(
        cls, event: OrderDenied, *, run_id: str | None, strategy_id: str | None
    ) -> RiskEventRow:
        """The row of an ``OrderDenied`` event."""
        return cls(
            ts_ns=event.ts_ns,
            code=event.code,
            reason=event.reason,
            run_id=run_id,
            strategy_id=strategy_id,
            client_order_id=event.client_order_id,
        )


def command_fields(command: Command) -> tuple[str, str | None, dict[str, Any]]:
    """``(kind, strategy_id, payload)`` of an engine command, for the ``commands`` table.

    Raises
    ------
    ValidationError
        Not one of the engine's command classes (:data:`COMMAND_KINDS`).
    """
    kind = type(command).__name__
    if COMMAND_KINDS.get(kind) is not type(command):
        raise ValidationError("command", command, "not an engine command")
    payload = _command_payload(command)
    strategy_id = payload.pop("strategy_id", None)
    payload.pop("issued_by", None)
    if strategy_id is not None:
        check_str("strategy_id", strategy_id)
    check_str("issued_by", command.issued_by)
    return kind, strategy_id, check_json("payload", payload)


def _command_payload(command: Command) -> dict[str, Any]:
    return {f.name: getattr(command, f.name) for f in dataclasses.fields(command)}


@dataclass(frozen=True, kw_only=True, slots=True)
class CommandRow:
    """A command as stored: what, for which strategy (``None``: all), who issued it and when,
    and once acted on, when, by which engine task, with what result."""

    id: int
    kind: str
    strategy_id: str | None
    payload: Mapping[str, Any]
    issued_by: str
    issued_ns: int
    acted_ns: int | None = None
    acted_by: str | None = None
    result: str | None = None

    def to_command(self) -> Command:
        """The engine command again.

        Raises
        ------
        ValidationError
            An unknown kind, or a payload that does not fit it.
        """
        cls = COMMAND_KINDS.get(self.kind)
        if cls is None:
            raise ValidationError("kind", self.kind, "not an engine command")
        names = {f.name for f in dataclasses.fields(cls)}
        kwargs = dict(self.payload)
        kwargs["issued_by"] = self.issued_by
        if "strategy_id" in names:
            kwargs["strategy_id"] = self.strategy_id
        elif self.strategy_id is not None:
            raise ValidationError("strategy_id", self.strategy_id, f"{self.kind} takes none")
        unknown = set(kwargs) - names
        if unknown:
            raise ValidationError("payload", sorted(unknown), f"not fields of {self.kind}")
        try:
            return cls(**kwargs)
        except TypeError as exc:
            raise ValidationError("payload", dict(self.payload), str(exc)) from None


@dataclass(frozen=True, kw_only=True, slots=True)
class AuditRow:
    """One audit entry: who (``actor``) did what (``action``) when, with details."""

    id: int
    ts_ns: int
    actor: str
    action: str
    details: Mapping[str, Any]


@dataclass(frozen=True, kw_only=True, slots=True)
class BacktestRunRow:
    """A backtest: its parameters, when it ran, its metrics (``Metrics.to_dict()``) and where
    its report went. Recorded at the start (no metrics) and again at the end."""

    id: str
    params: Mapping[str, Any]
    started_ns: int
    finished_ns: int | None = None
    metrics: Mapping[str, Any] | None = None
    output_dir: str | None = None

    def __post_init__(self) -> None:
        check_str("id", self.id)
        _set(self, "params", check_json("params", self.params))
        check_int("started_ns", self.started_ns, minimum=0)
        check_opt_int("finished_ns", self.finished_ns, minimum=0)
        if self.finished_ns is not None and self.finished_ns < self.started_ns:
            raise ValidationError("finished_ns", self.finished_ns, "is before started_ns")
        _set(self, "metrics", check_opt_json("metrics", self.metrics))
        check_opt_str("output_dir", self.output_dir)
