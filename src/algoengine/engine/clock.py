"""Clocks: simulated (backtests: time is whatever the loop says) and real (paper, live).

Every component asks the engine's clock for the time; nothing in the engine reads the wall
clock directly, so that a backtest is deterministic and a paper run can be accelerated.
"""

from __future__ import annotations

import time
from typing import Protocol

from algoengine.errors import ValidationError

__all__ = ["Clock", "RealClock", "SimulatedClock"]


class Clock(Protocol):
    """The engine's notion of now (UTC epoch ns)."""

    def now_ns(self) -> int:
        """The current time."""
        ...


class SimulatedClock:
    """A clock the event loop moves forward; it never goes backwards."""

    def __init__(self, start_ns: int = 0) -> None:
        self._now = start_ns

    def now_ns(self) -> int:
        return self._now

    def advance_to(self, ts_ns: int) -> None:
        """Set the time to ``ts_ns`` (>= now)."""
        if ts_ns < self._now:
            raise ValidationError("ts_ns", ts_ns, f"time went backwards (now {self._now})")
        self._now = ts_ns


class RealClock:
    """Wall-clock time, optionally accelerated: ``speed`` simulated seconds per real second
    from ``start_ns`` (the simulated time at construction)."""

    def __init__(self, *, speed: float = 1.0, start_ns: int | None = None) -> None:
        if not (speed > 0.0):
            raise ValidationError("speed", speed, "must be > 0")
        self.speed = speed
        self._real0 = time.monotonic_ns()
        self._sim0 = time.time_ns() if start_ns is None else start_ns

    def now_ns(self) -> int:
        return self._sim0 + int((time.monotonic_ns() - self._real0) * self.speed)

    def real_delay_s(self, until_ns: int) -> float:
        """Real seconds to wait until simulated time ``until_ns`` (0 if it has passed)."""
        return max(0.0, (until_ns - self.now_ns()) / self.speed / 1e9)
