"""Angel One error codes as typed exceptions (``shared/ANGELONE.md``).

Every answer of the REST API that is not a success goes through :func:`error_for`, which
returns (never raises) the exception for its code:

=====================================  ==========================================  ==========
codes                                  exception                                   retried?
=====================================  ==========================================  ==========
AG8001 AG8002 AG8003                   :class:`SessionExpiredError`                refresh, once
AB8050 AB8051                          :class:`RefreshTokenError`                  log in again
AG8004 AB1000 AB1050 AB1006            :class:`AuthenticationError`                no: operator
AB1004 AB2001, HTTP 5xx                :class:`AngelOneServerError` (temporary)    yes, bounded
plain-text HTTP 403 (access rate)      :class:`RateLimitedError` (temporary)       yes, backoff
AB1008 AB1009 AB1012 AB4006 AB4008     :class:`RequestRefusedError`                no: rejection
AB1013 AB1014 AB1015 AB1016            :class:`NotFoundError`                      no
anything else                          :class:`AngelOneApiError`                   no
=====================================  ==========================================  ==========

A refused *order* becomes an ``OrderRejected`` event carrying the broker's own message; the
:attr:`RequestRefusedError.reject_code` says which :class:`~algoengine.domain.events.RejectCode`.
No message built here contains a token, a PIN or a TOTP: only the broker's code and text.
"""

from __future__ import annotations

from algoengine.domain.events import RejectCode
from algoengine.errors import BrokerError, TemporaryBrokerError

__all__ = [
    "AUTH_CODES",
    "NOT_FOUND_CODES",
    "REFRESH_CODES",
    "REFUSED_CODES",
    "SERVER_CODES",
    "SESSION_CODES",
    "AngelOneApiError",
    "AngelOneServerError",
    "AuthenticationError",
    "NotFoundError",
    "RateLimitedError",
    "RefreshTokenError",
    "RequestRefusedError",
    "SessionExpiredError",
    "error_for",
]

SESSION_CODES = frozenset({"AG8001", "AG8002", "AG8003"})
REFRESH_CODES = frozenset({"AB8050", "AB8051"})
AUTH_CODES = frozenset({"AG8004", "AB1000", "AB1050", "AB1006"})
SERVER_CODES = frozenset({"AB1004", "AB2001"})
REFUSED_CODES: dict[str, RejectCode] = {
    "AB1008": RejectCode.OTHER,  # invalid variety
    "AB1009": RejectCode.UNKNOWN_INSTRUMENT,  # symbol not found
    "AB1012": RejectCode.OTHER,  # invalid product type
    "AB4006": RejectCode.UNKNOWN_INSTRUMENT,  # invalid symboltoken
    "AB4008": RejectCode.OTHER,  # ordertag too long
}
NOT_FOUND_CODES = frozenset({"AB1013", "AB1014", "AB1015", "AB1016"})


class AngelOneApiError(BrokerError):
    """Angel One answered a request with an error: ``code`` (``"AB1009"``), the broker's
    ``message`` and the ``route`` (the last path segment, ``"placeOrder"``)."""

    def __init__(self, message: str, *, code: str | None, route: str) -> None:
        self.message = message
        self.route = route
        super().__init__(f"{route}: {message}", code=code)


class SessionExpiredError(AngelOneApiError):
    """The jwt is invalid, expired or missing (AG8001-AG8003): refresh the session."""


class RefreshTokenError(AngelOneApiError):
    """The refresh token is invalid or expired (AB8050/AB8051): log in again."""


class AuthenticationError(AngelOneApiError):
    """Wrong API key, client code, MPIN or TOTP, or a blocked client: needs an operator."""


class RequestRefusedError(AngelOneApiError):
    """The broker refused the request as malformed (bad variety, symbol, product, ordertag):
    retrying cannot help; for an order it is a rejection with ``reject_code``."""

    def __init__(
        self, message: str, *, code: str | None, route: str, reject_code: RejectCode
    ) -> None:
        self.reject_code = reject_code
        super().__init__(message, code=code, route=route)


class NotFoundError(AngelOneApiError):
    """The order, trade, holding or position named does not exist (AB1013-AB1016)."""


class AngelOneServerError(TemporaryBrokerError):
    """Angel One failed on its side (AB1004 "something went wrong", AB2001 internal error,
    an HTTP 5xx or a reply that is not JSON): worth a bounded retry, after checking that the
    request did not take effect."""

    def __init__(self, message: str, *, code: str | None, route: str) -> None:
        self.message = message
        self.route = route
        super().__init__(f"{route}: {message}", code=code)


class RateLimitedError(TemporaryBrokerError):
    """The plain-text HTTP 403 "exceeding access rate" (or our own bucket ran dry): back off."""

    def __init__(self, route: str) -> None:
        self.route = route
        self.message = "access rate exceeded"
        super().__init__(f"{route}: access rate exceeded", code="HTTP 403")


def error_for(code: str | None, message: str, *, route: str) -> BrokerError:
    """The exception for an Angel One error answer (see the module table); returned, not
    raised, so that the caller decides."""
    text = message or "no message"
    if code in SESSION_CODES:
        return SessionExpiredError(text, code=code, route=route)
    if code in REFRESH_CODES:
        return RefreshTokenError(text, code=code, route=route)
    if code in AUTH_CODES:
        return AuthenticationError(text, code=code, route=route)
    if code in SERVER_CODES:
        return AngelOneServerError(text, code=code, route=route)
    if code is not None and code in REFUSED_CODES:
        return RequestRefusedError(text, code=code, route=route, reject_code=REFUSED_CODES[code])
    if code in NOT_FOUND_CODES:
        return NotFoundError(text, code=code, route=route)
    return AngelOneApiError(text, code=code, route=route)
