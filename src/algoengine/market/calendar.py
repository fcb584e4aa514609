"""The exchange's trading calendar: sessions, expiries and time to expiry.

Days are IST calendar dates; times are UTC epoch nanoseconds (IST is UTC+05:30 all year).
Holidays come from configuration (:class:`TradingCalendar` takes them as a parameter); none are
hard-coded.

Expiry rules (:meth:`TradingCalendar.expiries`): a weekly contract expires on its weekday every
week, a monthly one on the last such weekday of the month; an expiry date that is not a trading
day (holiday or weekend) moves to the PREVIOUS trading day.

Time to expiry (:meth:`TradingCalendar.years_to_expiry`) is counted in trading time: the
session minutes left until the expiry session's close (the rest of today's session, every full
session in between, and the expiry day's session) divided by ``session_minutes *
trading_days_per_year`` (375 * 252 by default). Overnight, weekends and holidays take no time,
so an option's time value decays only while the market is open, as traders model index
options. :meth:`TradingCalendar.calendar_years_to_expiry` is the calendar-time version (to
15:30 IST of the expiry day, / 365 days) for comparison. Both are 0 at and after the expiry
session's close, never negative.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from datetime import date, time, timedelta

from algoengine.errors import ValidationError
from algoengine.market.contracts import ContractSpec

__all__ = ["IST_OFFSET_NS", "NS_PER_DAY", "NS_PER_MINUTE", "TradingCalendar", "ist_date"]

NS_PER_S = 1_000_000_000
NS_PER_MINUTE = 60 * NS_PER_S
NS_PER_DAY = 86_400 * NS_PER_S
#: India Standard Time is UTC+05:30, with no daylight saving.
IST_OFFSET_NS = (5 * 3600 + 30 * 60) * NS_PER_S
_EPOCH_ORD = date(1970, 1, 1).toordinal()
_NS_PER_CALENDAR_YEAR = 365 * NS_PER_DAY


def ist_date(ts_ns: int) -> date:
    """The IST calendar date of a UTC epoch-ns timestamp."""
    return date.fromordinal((ts_ns + IST_OFFSET_NS) // NS_PER_DAY + _EPOCH_ORD)


def _ns_of_day(t: time) -> int:
    return ((t.hour * 60 + t.minute) * 60 + t.second) * NS_PER_S + t.microsecond * 1000


def _check_date(name: str, value: object) -> date:
    if not isinstance(value, date):
        raise ValidationError(name, value, "must be a datetime.date")
    return value


class TradingCalendar:
    """Trading days and sessions of the exchange.

    Parameters
    ----------
    holidays
        Exchange holidays (IST dates) with no session.
    weekdays
        Weekdays (Monday = 0) with a session; default Monday-Friday.
    open_time, close_time
        The session in IST; default 09:15-15:30 (375 minutes).
    trading_days_per_year
        Trading days in a year of trading time (default 252).

    Raises
    ------
    ValidationError
        naming the parameter that breaks a rule.
    """

    def __init__(
        self,
        holidays: Iterable[date] = (),
        *,
        weekdays: Iterable[int] = (0, 1, 2, 3, 4),
        open_time: time = time(9, 15),
        close_time: time = time(15, 30),
        trading_days_per_year: float = 252.0,
    ) -> None:
        hol: set[date] = set()
        for d in holidays:
            hol.add(_check_date("holidays", d))
        wd: set[int] = set()
        for w in weekdays:
            if not isinstance(w, int) or isinstance(w, bool) or not 0 <= w <= 6:
                raise ValidationError("weekdays", w, "must be weekdays 0 (Monday) .. 6")
            wd.add(w)
        if not wd:
            raise ValidationError("weekdays", tuple(weekdays), "needs at least one weekday")
        if not isinstance(open_time, time) or not isinstance(close_time, time):
            raise ValidationError("open_time", open_time, "open_time/close_time must be times")
        if close_time <= open_time:
            raise ValidationError("close_time", close_time, "must be after open_time")
        if (
            not isinstance(trading_days_per_year, int | float)
            or isinstance(trading_days_per_year, bool)
            or not 1.0 <= trading_days_per_year <= 366.0
        ):
            raise ValidationError(
                "trading_days_per_year", trading_days_per_year, "must be a number in [1, 366]"
            )
        self._weekdays = frozenset(wd)
        self._holidays = frozenset(hol)
        # ordinals of the holidays that would otherwise be trading days, sorted (for counting)
        self._hol_ords = sorted(d.toordinal() for d in hol if d.weekday() in wd)
        self._weekday_mask = tuple(w in wd for w in range(7))
        self.open_time = open_time
        self.close_time = close_time
        self.trading_days_per_year = float(trading_days_per_year)
        self._open_ns = _ns_of_day(open_time)
        self._close_ns = _ns_of_day(close_time)
        #: Length of a session in ns and in minutes.
        self.session_ns = self._close_ns - self._open_ns
        self.session_minutes = self.session_ns / NS_PER_MINUTE
        self._ns_per_trading_year = self.session_ns * self.trading_days_per_year
        self._listed_cache: dict[tuple[ContractSpec, date], tuple[date, ...]] = {}

    @property
    def holidays(self) -> frozenset[date]:
        """The configured holidays."""
        return self._holidays

    @property
    def weekdays(self) -> frozenset[int]:
        """Weekdays with a session (Monday = 0)."""
        return self._weekdays

    # ---- days ------------------------------------------------------------------------------

    def is_trading_day(self, day: date) -> bool:
        """True if ``day`` has a session."""
        return self._weekday_mask[day.weekday()] and day not in self._holidays

    def next_trading_day(self, day: date) -> date:
        """The first trading day strictly after ``day``."""
        d = day + timedelta(days=1)
        while not self.is_trading_day(d):
            d += timedelta(days=1)
        return d

    def previous_trading_day(self, day: date) -> date:
        """The last trading day strictly before ``day``."""
        d = day - timedelta(days=1)
        while not self.is_trading_day(d):
            d -= timedelta(days=1)
        return d

    def trading_days(self, start: date, end: date) -> list[date]:
        """The trading days in ``[start, end]`` (both inclusive), in order."""
        _check_date("start", start)
        _check_date("end", end)
        out: list[date] = []
        d = start
        one = timedelta(days=1)
        while d <= end:
            if self.is_trading_day(d):
                out.append(d)
            d += one
        return out

    def count_trading_days(self, start: date, end: date) -> int:
        """How many trading days lie in ``[start, end]`` (0 if ``end < start``); O(log h)."""
        return self._count(start.toordinal(), end.toordinal())

    def _count(self, a: int, b: int) -> int:
        """Trading days with ordinal in [a, b]."""
        if b < a:
            return 0
        n = b - a + 1
        weeks, rem = divmod(n, 7)
        per_week = len(self._weekdays)
        count = weeks * per_week
        wd = (a - 1) % 7  # date.fromordinal(1) is a Monday: weekday = (ordinal - 1) % 7
        mask = self._weekday_mask
        for k in range(rem):
            if mask[(wd + k) % 7]:
                count += 1
        hol = self._hol_ords
        return count - (bisect.bisect_right(hol, b) - bisect.bisect_left(hol, a))

    # ---- sessions --------------------------------------------------------------------------

    def _day_start_ns(self, day: date) -> int:
        return (day.toordinal() - _EPOCH_ORD) * NS_PER_DAY - IST_OFFSET_NS

    def session_open_ns(self, day: date) -> int:
        """UTC epoch ns of the session open on ``day`` (IST)."""
        return self._day_start_ns(day) + self._open_ns

    def session_close_ns(self, day: date) -> int:
        """UTC epoch ns of the session close on ``day`` (IST)."""
        return self._day_start_ns(day) + self._close_ns

    def is_open(self, ts_ns: int) -> bool:
        """True if a session is running at ``ts_ns`` (open inclusive, close exclusive)."""
        day = ist_date(ts_ns)
        if not self.is_trading_day(day):
            return False
        return self.session_open_ns(day) <= ts_ns < self.session_close_ns(day)

    # ---- expiries --------------------------------------------------------------------------

    def _adjust(self, day: date) -> date:
        return day if self.is_trading_day(day) else self.previous_trading_day(day)

    def expiries(self, spec: ContractSpec, start: date, end: date) -> list[date]:
        """The expiry dates of ``spec``'s contracts in ``[start, end]``, ascending.

        Weekly expiries fall on ``spec.weekly_expiry_weekday`` every week, monthly ones on the
        last ``spec.monthly_expiry_weekday`` of each month; a date that is not a trading day
        moves to the previous trading day (and is reported if the moved date is in range).
        """
        _check_date("start", start)
        _check_date("end", end)
        if end < start:
            return []
        raw: set[date] = set()
        # a holiday move goes backwards, so look a little past ``end``
        scan_end = end + timedelta(days=14)
        w = spec.weekly_expiry_weekday
        if w is not None:
            d = start + timedelta(days=(w - start.weekday()) % 7)
            while d <= scan_end:
                raw.add(d)
                d += timedelta(days=7)
        m = spec.monthly_expiry_weekday
        if m is not None:
            year, month = start.year, start.month
            while date(year, month, 1) <= scan_end:
                nxt = date(year + month // 12, month % 12 + 1, 1)
                last = nxt - timedelta(days=1)
                raw.add(last - timedelta(days=(last.weekday() - m) % 7))
                year, month = nxt.year, nxt.month
        out = {self._adjust(d) for d in raw}
        return sorted(d for d in out if start <= d <= end)

    def listed_expiries(self, spec: ContractSpec, day: date) -> tuple[date, ...]:
        """The ``spec.expiries_listed`` nearest expiries on or after ``day`` (an expiry is
        listed through its expiry day's session)."""
        key = (spec, day)
        cached = self._listed_cache.get(key)
        if cached is not None:
            return cached
        n = spec.expiries_listed
        horizon = 40 * (n + 1) if spec.weekly_expiry_weekday is None else 8 * (n + 1)
        found = self.expiries(spec, day, day + timedelta(days=horizon))
        while len(found) < n:
            horizon *= 2
            found = self.expiries(spec, day, day + timedelta(days=horizon))
        out = tuple(found[:n])
        if len(self._listed_cache) > 4096:
            self._listed_cache.clear()
        self._listed_cache[key] = out
        return out

    # ---- time to expiry --------------------------------------------------------------------

    def session_ns_left(self, ts_ns: int, expiry: date) -> int:
        """Session nanoseconds from ``ts_ns`` to the close of ``expiry``'s session (>= 0)."""
        day = ist_date(ts_ns)
        e = expiry.toordinal()
        d = day.toordinal()
        if e < d:
            return 0
        left = 0
        if self.is_trading_day(day):
            start = self._day_start_ns(day)
            t = ts_ns - start
            if t < self._open_ns:
                left = self.session_ns
            elif t < self._close_ns:
                left = self._close_ns - t
        return left + self._count(d + 1, e) * self.session_ns

    def years_to_expiry(self, ts_ns: int, expiry: date) -> float:
        """Trading time to the close of ``expiry``'s session, in years (see the module
        docstring): session minutes left / (session minutes * trading days per year)."""
        return self.session_ns_left(ts_ns, expiry) / self._ns_per_trading_year

    def calendar_years_to_expiry(self, ts_ns: int, expiry: date) -> float:
        """Calendar time to ``close_time`` IST of ``expiry``, in years of 365 days (>= 0)."""
        return max(0, self.session_close_ns(expiry) - ts_ns) / _NS_PER_CALENDAR_YEAR
