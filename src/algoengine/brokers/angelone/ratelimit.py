"""Client-side rate limits for Angel One: one token bucket per endpoint.

Angel One answers a plain-text HTTP 403 past its per-second limits (:data:`RATE_LIMITS_PER_S`,
from Angel One's announcement; ``shared/ANGELONE.md``). The adapter takes a token before every
call, so that it stays under them, and :meth:`RateLimiter.penalize` an endpoint after a 403
(nothing is sent there until the penalty has passed). Thread-safe.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping

from algoengine.errors import ValidationError

__all__ = ["RATE_LIMITS_PER_S", "RateLimiter", "TokenBucket"]

#: Requests per second Angel One allows, by route (the last path segment).
RATE_LIMITS_PER_S: dict[str, float] = {
    "placeOrder": 20,
    "modifyOrder": 20,
    "cancelOrder": 20,
    "getCandleData": 3,
    "getLtpData": 10,
    "quote": 10,
    "getRMS": 2,
    "getProfile": 3,
    "getOrderBook": 1,
    "getTradeBook": 1,
    "getPosition": 1,
    "searchScrip": 1,
    "loginByPassword": 1,
    "generateTokens": 1,
    "logout": 1,
}


class TokenBucket:
    """``rate_per_s`` tokens a second, at most ``burst`` saved up.

    Parameters
    ----------
    rate_per_s
        Refill rate [tokens/s] (> 0).
    burst
        Capacity [tokens] (>= 1); the bucket starts full.
    clock
        Monotonic seconds (``time.monotonic``; tests pass their own).
    """

    def __init__(
        self, rate_per_s: float, burst: float = 1.0, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if not isinstance(rate_per_s, int | float) or not math.isfinite(rate_per_s):
            raise ValidationError("rate_per_s", rate_per_s, "must be a finite number")
        if rate_per_s <= 0:
            raise ValidationError("rate_per_s", rate_per_s, "must be > 0")
        if not isinstance(burst, int | float) or not math.isfinite(burst) or burst < 1:
            raise ValidationError("burst", burst, "must be a number >= 1")
        self.rate_per_s = float(rate_per_s)
        self.burst = float(burst)
        self._clock = clock
        self._tokens = self.burst
        self._at = clock()
        self._blocked_until = 0.0
        self.taken = 0  # tokens handed out (observability, tests)

    def _refill(self, now: float) -> None:
        if now > self._at:
            self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate_per_s)
            self._at = now

    def wait_s(self) -> float:
        """Seconds until a token is available (0: now)."""
        now = self._clock()
        self._refill(now)
        wait = max(0.0, (1.0 - self._tokens) / self.rate_per_s)
        return max(wait, self._blocked_until - now)

    def try_take(self) -> bool:
        """Take a token if one is available now."""
        if self.wait_s() > 0:
            return False
        self._tokens -= 1.0
        self.taken += 1
        return True

    def penalize(self, seconds: float) -> None:
        """No token for ``seconds`` from now, and the bucket emptied (after a 403)."""
        now = self._clock()
        self._refill(now)
        self._tokens = 0.0
        self._blocked_until = max(self._blocked_until, now + max(0.0, seconds))


class RateLimiter:
    """Token buckets by route.

    Parameters
    ----------
    limits_per_s
        Requests per second by route (default :data:`RATE_LIMITS_PER_S`); routes not named get
        ``default_per_s``.
    safety
        Fraction of each limit actually used (0 < safety <= 1): Angel One counts in a sliding
        second, so a bucket at exactly the limit can still hit it.
    clock, sleep
        Monotonic seconds and the sleep function (tests pass their own).
    """

    def __init__(
        self,
        limits_per_s: Mapping[str, float] | None = None,
        *,
        default_per_s: float = 1.0,
        safety: float = 0.9,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not isinstance(safety, int | float) or not 0 < safety <= 1:
            raise ValidationError("safety", safety, "must be in (0, 1]")
        self._limits = dict(RATE_LIMITS_PER_S if limits_per_s is None else limits_per_s)
        for route, rate in self._limits.items():
            if not isinstance(rate, int | float) or not math.isfinite(rate) or rate <= 0:
                raise ValidationError(f"limits_per_s.{route}", rate, "must be a number > 0")
        self._default = default_per_s
        self._safety = float(safety)
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._buckets: dict[str, TokenBucket] = {}

    def bucket(self, route: str) -> TokenBucket:
        """The bucket of ``route`` (created on first use)."""
        with self._lock:
            b = self._buckets.get(route)
            if b is None:
                rate = self._limits.get(route, self._default) * self._safety
                burst = max(1.0, math.floor(rate))
                b = self._buckets[route] = TokenBucket(rate, burst, clock=self._clock)
            return b

    def try_acquire(self, route: str) -> bool:
        """Take a token for ``route`` if one is free now (never waits)."""
        b = self.bucket(route)
        with self._lock:
            return b.try_take()

    def acquire(self, route: str, *, timeout_s: float = 5.0) -> bool:
        """Wait for a token for ``route`` up to ``timeout_s`` seconds; False if none came."""
        b = self.bucket(route)
        deadline = self._clock() + timeout_s
        while True:
            with self._lock:
                if b.try_take():
                    return True
                wait = b.wait_s()
            if self._clock() + wait > deadline:
                return False
            self._sleep(max(wait, 0.001))

    def penalize(self, route: str, seconds: float) -> None:
        """Send nothing to ``route`` for ``seconds`` (after its 403)."""
        b = self.bucket(route)
        with self._lock:
            b.penalize(seconds)
