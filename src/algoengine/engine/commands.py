"""Commands to the engine (from the dashboard, the CLI or a signal): imperative names.

They enter the event loop through :meth:`Engine.post` (thread-safe) and run between market
events, in the loop's thread, in the order they were posted.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "Command",
    "KillSwitch",
    "MarketStale",
    "Pause",
    "Resume",
    "SquareOff",
    "StopEngine",
    "StopStrategy",
]


@dataclass(frozen=True, kw_only=True, slots=True)
class Command:
    """Base of the commands; ``issued_by`` names who asked (user, "cli", "signal", ...)."""

    issued_by: str = "engine"


@dataclass(frozen=True, kw_only=True, slots=True)
class KillSwitch(Command):
    """Engage (``on=True``) or release the kill switch. Engaged: every working order is
    cancelled and no new order passes the risk engine, except square-off orders."""

    on: bool = True


@dataclass(frozen=True, kw_only=True, slots=True)
class SquareOff(Command):
    """Cancel the orders of one strategy (``None``: all) and close its positions."""

    strategy_id: str | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class Pause(Command):
    """Stop calling a strategy's market callbacks (its working exits stay at the venue)."""

    strategy_id: str | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class Resume(Command):
    """Undo :class:`Pause`."""

    strategy_id: str | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class MarketStale(Command):
    """The market feed went stale (``stale=True``: no tick for too long while the market is
    open) or is fresh again. While it is stale, orders that open or add to a position are
    refused (``STALE_MARKET``): nothing is decided on prices the engine cannot see. Exits,
    stops already at the venue and timers (time exits) go on. Independent of :class:`Pause`,
    so a freshening feed never resumes a strategy a user paused."""

    stale: bool = True


@dataclass(frozen=True, kw_only=True, slots=True)
class StopStrategy(Command):
    """Stop a strategy: cancel its open orders, call its ``on_stop``."""

    strategy_id: str


@dataclass(frozen=True, kw_only=True, slots=True)
class StopEngine(Command):
    """Stop the run cleanly after the current event (SIGINT/SIGTERM post this)."""

    reason: str = "stop requested"
