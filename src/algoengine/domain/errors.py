"""The errors the domain itself raises: the root of the project's hierarchy lives here.

``domain/`` imports nothing of the project but itself (STYLE.md item 1), yet its value objects
must raise the project's :class:`ValidationError`. So the root :class:`AlgoEngineError` and the
two errors the domain raises are defined here, and :mod:`algoengine.errors` (the one place the
rest of the project imports errors from) re-exports them: ``algoengine.errors.ValidationError
is algoengine.domain.errors.ValidationError``.
"""

from __future__ import annotations

__all__ = ["AlgoEngineError", "InvalidTransitionError", "ValidationError"]


class AlgoEngineError(Exception):
    """Root of every error algoengine raises on purpose."""


class ValidationError(AlgoEngineError, ValueError):
    """A value that breaks a rule: a programming or data error at a boundary.

    Parameters
    ----------
    field
        The name of the offending field or argument (``"qty"``, ``"lot_size"``, ...).
    value
        The offending value, kept as given.
    message
        What the rule is, e.g. ``"must be a positive integer"``.
    """

    def __init__(self, field: str, value: object, message: str) -> None:
        self.field = field
        self.value = value
        self.message = message
        super().__init__(f"{field}={value!r}: {message}")


class InvalidTransitionError(AlgoEngineError):
    """An order status transition that the state table does not allow.

    ``status`` and ``trigger`` are the row that is missing from the table; ``client_order_id``
    names the order when the caller knows it (for the log line and the journal).
    """

    def __init__(self, status: object, trigger: object, client_order_id: str | None = None) -> None:
        self.status = status
        self.trigger = trigger
        self.client_order_id = client_order_id
        who = f" (client_order_id={client_order_id!r})" if client_order_id is not None else ""
        super().__init__(f"no transition from {status} on {trigger}{who}")
