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
    """Wall-clock time, optionally accelerated: ``speed`` simulated seconds per real second,
    simulated time ``start_ns`` at the real moment ``anchor_wall_ns`` (UTC epoch ns; default:
    construction). Two processes given the same ``start_ns``, ``speed`` and ``anchor_wall_ns``
    share one simulated time (an engine and a separate paper venue, or an engine restarted
    after a crash that must carry on in the same accelerated session)."""

    def __init__(
        self, *, speed: float = 1.0, start_ns: int | None = None, anchor_wall_ns: int | None = None
    ) -> None:
        if not (speed > 0.0):
            raise ValidationError("speed", speed, "must be > 0")
        self.speed = speed
        now_wall = time.time_ns()
        self.anchor_wall_ns = now_wall if anchor_wall_ns is None else anchor_wall_ns
        self.start_ns = now_wall if start_ns is None else start_ns
        # monotonic from here on: the anchor's wall time mapped onto the monotonic clock once
        self._mono_anchor = time.monotonic_ns() - (now_wall - self.anchor_wall_ns)

    def now_ns(self) -> int:
        return self.start_ns + int((time.monotonic_ns() - self._mono_anchor) * self.speed)

    def real_delay_s(self, until_ns: int) -> float:
        """Real seconds to wait until simulated time ``until_ns`` (0 if it has passed)."""
        return max(0.0, (until_ns - self.now_ns()) / self.speed / 1e9)
