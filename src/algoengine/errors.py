"""The error hierarchy of algoengine (STYLE.md item 9). Import errors from here.

::

    AlgoEngineError
    ├── ConfigurationError        bad or missing configuration: needs an operator, never retried
    ├── ValidationError           a value breaks a rule (also a ValueError); names field and value
    ├── InvalidTransitionError    an order status change the state table does not allow
    ├── BrokerError               the broker failed to do what was asked
    │   └── TemporaryBrokerError  transient (timeout, rate limit, 5xx): retried with backoff,
    │                             in one place (the broker adapter), never by callers
    ├── OrderRejectedError        an order the venue or risk refused, with the reason
    └── StrategyError             user strategy code failed; caught by the wrapper around every
                                  strategy callback so that it cannot crash the engine

Rules: a venue refusing an order is normally an event (``OrderRejected``), not an exception;
:class:`OrderRejectedError` is for synchronous APIs that must raise. Risk checks never raise in
the hot path: they return a reason that becomes an ``OrderDenied`` event.

:class:`AlgoEngineError`, :class:`ValidationError` and :class:`InvalidTransitionError` are
defined in :mod:`algoengine.domain.errors` (the domain may import nothing else of the project)
and re-exported here; they are the same classes.
"""

from __future__ import annotations

from algoengine.domain.errors import AlgoEngineError, InvalidTransitionError, ValidationError

__all__ = [
    "AlgoEngineError",
    "BrokerError",
    "ConfigurationError",
    "InvalidTransitionError",
    "OrderRejectedError",
    "StrategyError",
    "TemporaryBrokerError",
    "ValidationError",
]


class ConfigurationError(AlgoEngineError):
    """Configuration that is missing, malformed or inconsistent. Needs an operator."""


class BrokerError(AlgoEngineError):
    """The broker (or the connection to it) failed to carry out a request.

    ``code`` is the broker's error code when it gave one (Angel One: ``"AB1004"``, ...).
    """

    def __init__(self, message: str, *, code: str | None = None) -> None:
        self.code = code
        super().__init__(f"[{code}] {message}" if code else message)


class TemporaryBrokerError(BrokerError):
    """A failure worth retrying after a backoff: timeout, rate limit, gateway error."""


class OrderRejectedError(AlgoEngineError):
    """An order that was refused, raised where an API must answer synchronously.

    Not a :class:`BrokerError`: nothing failed and retrying the same order cannot help.
    """

    def __init__(self, reason: str, *, client_order_id: str | None = None) -> None:
        self.reason = reason
        self.client_order_id = client_order_id
        who = f"{client_order_id}: " if client_order_id is not None else ""
        super().__init__(f"{who}order rejected: {reason}")


class StrategyError(AlgoEngineError):
    """User strategy code raised; ``strategy_id`` names the strategy."""

    def __init__(self, message: str, *, strategy_id: str | None = None) -> None:
        self.strategy_id = strategy_id
        super().__init__(f"{strategy_id}: {message}" if strategy_id else message)
