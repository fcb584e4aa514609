"""Market hours of the paper exchange: NSE's continuous session in IST on UTC epoch ns."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, time, timedelta

__all__ = ["IST_OFFSET_NS", "MarketHours", "ist_date"]

NS_PER_S = 1_000_000_000
NS_PER_DAY = 86_400 * NS_PER_S
#: India Standard Time is UTC+05:30, with no daylight saving.
IST_OFFSET_NS = (5 * 3600 + 30 * 60) * NS_PER_S
_EPOCH = date(1970, 1, 1)


def _split(ts_ns: int) -> tuple[int, int]:
    """(days since the epoch, ns since midnight), both in IST."""
    days, ns_of_day = divmod(ts_ns + IST_OFFSET_NS, NS_PER_DAY)
    return days, ns_of_day


def ist_date(ts_ns: int) -> date:
    """The IST calendar date of a UTC epoch-ns timestamp."""
    return _EPOCH + timedelta(days=_split(ts_ns)[0])


def _ns_of_day(t: time) -> int:
    return ((t.hour * 60 + t.minute) * 60 + t.second) * NS_PER_S + t.microsecond * 1000


@dataclass(frozen=True, kw_only=True, slots=True)
class MarketHours:
    """A daily session ``[open_time, close_time)`` IST on the given weekdays, except holidays."""

    open_time: time
    close_time: time
    weekdays: frozenset[int]
    closed_dates: frozenset[date]

    def is_session_day(self, day: date) -> bool:
        """True if ``day`` (IST) has a session."""
        return day.weekday() in self.weekdays and day not in self.closed_dates

    def is_open(self, ts_ns: int) -> bool:
        """True if the session is running at ``ts_ns``."""
        days, ns_of_day = _split(ts_ns)
        if not self.is_session_day(_EPOCH + timedelta(days=days)):
            return False
        return _ns_of_day(self.open_time) <= ns_of_day < _ns_of_day(self.close_time)

    def close_ns(self, ts_ns: int) -> int:
        """The UTC epoch ns of the close of the IST day containing ``ts_ns``."""
        days, _ = _split(ts_ns)
        return days * NS_PER_DAY + _ns_of_day(self.close_time) - IST_OFFSET_NS
