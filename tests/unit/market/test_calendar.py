"""TradingCalendar: trading days, sessions, expiry rules and time to expiry."""

from __future__ import annotations

import dataclasses
import itertools
import random
from datetime import date, datetime, time, timedelta, timezone

import pytest

from algoengine.errors import ValidationError
from algoengine.market import DEFAULT_CONTRACTS, TradingCalendar, ist_date

IST = timezone(timedelta(hours=5, minutes=30))
NIFTY = DEFAULT_CONTRACTS["NIFTY"]  # weekly on Tuesday (+ monthly last Tuesday)
BANKNIFTY = DEFAULT_CONTRACTS["BANKNIFTY"]  # monthly, last Tuesday
MIN = 60 * 10**9


def ts(y: int, mo: int, d: int, h: int, mi: int, s: int = 0) -> int:
    """UTC epoch ns of an IST wall-clock time."""
    return int(datetime(y, mo, d, h, mi, s, tzinfo=IST).timestamp()) * 10**9


# ---- days ------------------------------------------------------------------------------------


def test_weekends_and_holidays_are_not_trading_days() -> None:
    cal = TradingCalendar([date(2025, 10, 2)])  # Gandhi Jayanti, a Thursday
    assert cal.is_trading_day(date(2025, 10, 1))
    assert not cal.is_trading_day(date(2025, 10, 2))
    assert not cal.is_trading_day(date(2025, 10, 4))  # Saturday
    assert cal.next_trading_day(date(2025, 10, 1)) == date(2025, 10, 3)
    assert cal.next_trading_day(date(2025, 10, 3)) == date(2025, 10, 6)
    assert cal.previous_trading_day(date(2025, 10, 6)) == date(2025, 10, 3)
    assert cal.previous_trading_day(date(2025, 10, 3)) == date(2025, 10, 1)
    assert cal.trading_days(date(2025, 9, 30), date(2025, 10, 6)) == [
        date(2025, 9, 30),
        date(2025, 10, 1),
        date(2025, 10, 3),
        date(2025, 10, 6),
    ]
    assert cal.trading_days(date(2025, 10, 6), date(2025, 10, 5)) == []


def test_count_trading_days_agrees_with_the_list() -> None:
    rnd = random.Random(1)
    base = date(2025, 1, 1)
    holidays = [base + timedelta(days=rnd.randrange(400)) for _ in range(25)]
    cal = TradingCalendar(holidays, weekdays=(0, 1, 2, 3, 4, 5))
    for _ in range(300):
        a = base + timedelta(days=rnd.randrange(400))
        b = a + timedelta(days=rnd.randrange(-3, 60))
        assert cal.count_trading_days(a, b) == len(cal.trading_days(a, b))


def test_sessions_are_ist_on_utc_ns() -> None:
    cal = TradingCalendar()
    day = date(2025, 10, 6)
    # 09:15 IST is 03:45 UTC
    assert cal.session_open_ns(day) == ts(2025, 10, 6, 9, 15)
    assert cal.session_close_ns(day) == ts(2025, 10, 6, 15, 30)
    assert cal.session_minutes == 375
    assert cal.is_open(ts(2025, 10, 6, 9, 15))
    assert not cal.is_open(ts(2025, 10, 6, 15, 30))
    assert not cal.is_open(ts(2025, 10, 5, 10, 0))  # Sunday
    assert ist_date(ts(2025, 10, 6, 0, 10)) == day  # 18:40 UTC on the 5th


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"weekdays": ()}, "weekdays"),
        ({"weekdays": (7,)}, "weekdays"),
        ({"open_time": time(15, 30), "close_time": time(9, 15)}, "close_time"),
        ({"trading_days_per_year": 0}, "trading_days_per_year"),
        ({"holidays": ["2025-10-02"]}, "holidays"),
    ],
)
def test_bad_calendar_settings_name_the_field(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as err:
        TradingCalendar(**kwargs)  # type: ignore[arg-type]
    assert err.value.field == field


# ---- expiries --------------------------------------------------------------------------------


def test_weekly_expiries_fall_on_the_weekday() -> None:
    cal = TradingCalendar()
    assert cal.expiries(NIFTY, date(2025, 10, 1), date(2025, 10, 31)) == [
        date(2025, 10, 7),
        date(2025, 10, 14),
        date(2025, 10, 21),
        date(2025, 10, 28),
    ]


def test_monthly_expiries_fall_on_the_last_weekday_of_the_month() -> None:
    cal = TradingCalendar()
    assert cal.expiries(BANKNIFTY, date(2025, 10, 1), date(2026, 1, 31)) == [
        date(2025, 10, 28),
        date(2025, 11, 25),
        date(2025, 12, 30),
        date(2026, 1, 27),
    ]
    thursday = dataclasses.replace(BANKNIFTY, monthly_expiry_weekday=3)
    assert cal.expiries(thursday, date(2025, 7, 1), date(2025, 7, 31)) == [date(2025, 7, 31)]


def test_an_expiry_on_a_holiday_moves_to_the_previous_trading_day() -> None:
    # 21 Oct 2025 (Tuesday) is a holiday, and so is Monday the 20th: the expiry moves to Friday
    cal = TradingCalendar([date(2025, 10, 21)])
    assert date(2025, 10, 20) in cal.expiries(NIFTY, date(2025, 10, 15), date(2025, 10, 25))
    cal2 = TradingCalendar([date(2025, 10, 20), date(2025, 10, 21)])
    assert cal2.expiries(NIFTY, date(2025, 10, 15), date(2025, 10, 25)) == [date(2025, 10, 17)]
    # a monthly expiry too, and a move out of the range drops it
    cal3 = TradingCalendar([date(2025, 12, 30)])
    assert cal3.expiries(BANKNIFTY, date(2025, 12, 1), date(2025, 12, 31)) == [date(2025, 12, 29)]
    assert cal3.expiries(BANKNIFTY, date(2025, 12, 30), date(2025, 12, 31)) == []
    # a move INTO the range from just after it
    assert cal2.expiries(NIFTY, date(2025, 10, 15), date(2025, 10, 17)) == [date(2025, 10, 17)]


def test_an_expiry_on_a_weekend_weekday_moves_back() -> None:
    sunday = dataclasses.replace(NIFTY, weekly_expiry_weekday=6, monthly_expiry_weekday=None)
    cal = TradingCalendar()
    assert cal.expiries(sunday, date(2025, 10, 1), date(2025, 10, 12)) == [
        date(2025, 10, 3),
        date(2025, 10, 10),
    ]


def test_listed_expiries_include_the_expiry_day_itself() -> None:
    cal = TradingCalendar()
    assert cal.listed_expiries(NIFTY, date(2025, 10, 7)) == (
        date(2025, 10, 7),
        date(2025, 10, 14),
        date(2025, 10, 21),
    )
    assert cal.listed_expiries(NIFTY, date(2025, 10, 8))[0] == date(2025, 10, 14)
    assert cal.listed_expiries(BANKNIFTY, date(2025, 10, 29)) == (
        date(2025, 11, 25),
        date(2025, 12, 30),
    )
    many = dataclasses.replace(BANKNIFTY, expiries_listed=7)
    assert len(cal.listed_expiries(many, date(2025, 10, 1))) == 7


# ---- time to expiry --------------------------------------------------------------------------


def test_years_to_expiry_counts_session_minutes() -> None:
    cal = TradingCalendar()
    year_min = 375 * 252
    expiry = date(2025, 10, 7)  # Tuesday
    assert cal.years_to_expiry(ts(2025, 10, 7, 15, 0), expiry) == pytest.approx(30 / year_min)
    # Monday 15:00: 30 minutes today + the whole of Tuesday's session
    assert cal.years_to_expiry(ts(2025, 10, 6, 15, 0), expiry) == pytest.approx(405 / year_min)
    # before Monday's open: two whole sessions; over the weekend too
    two = 750 / year_min
    assert cal.years_to_expiry(ts(2025, 10, 6, 8, 0), expiry) == pytest.approx(two)
    assert cal.years_to_expiry(ts(2025, 10, 4, 12, 0), expiry) == pytest.approx(two)
    assert cal.years_to_expiry(ts(2025, 10, 3, 15, 30), expiry) == pytest.approx(two)
    # zero at and after the expiry close, never negative
    assert cal.years_to_expiry(ts(2025, 10, 7, 15, 30), expiry) == 0.0
    assert cal.years_to_expiry(ts(2025, 10, 7, 18, 0), expiry) == 0.0
    assert cal.years_to_expiry(ts(2025, 10, 9, 10, 0), expiry) == 0.0
    assert cal.calendar_years_to_expiry(ts(2025, 10, 7, 15, 30), expiry) == 0.0
    assert cal.calendar_years_to_expiry(ts(2025, 10, 9, 10, 0), expiry) == 0.0


def test_holidays_take_no_trading_time() -> None:
    expiry = date(2025, 10, 9)
    t = ts(2025, 10, 6, 12, 0)
    plain = TradingCalendar().years_to_expiry(t, expiry)
    with_holiday = TradingCalendar([date(2025, 10, 8)]).years_to_expiry(t, expiry)
    assert plain - with_holiday == pytest.approx(375 / (375 * 252))
    custom = TradingCalendar(trading_days_per_year=250).years_to_expiry(t, expiry)
    assert custom == pytest.approx(plain * 252 / 250)


def test_trading_time_is_monotone_and_stops_outside_sessions() -> None:
    cal = TradingCalendar([date(2025, 10, 10)])
    expiry = date(2025, 10, 14)
    start = ts(2025, 10, 2, 0, 0)
    values = [cal.years_to_expiry(start + k * 7 * MIN, expiry) for k in range(9 * 24 * 14)]
    assert all(b <= a for a, b in itertools.pairwise(values))
    assert values[-1] == 0.0
    # overnight and over the weekend/holiday trading time stands still, calendar time runs
    fri_close, mon_open = ts(2025, 10, 9, 15, 30), ts(2025, 10, 13, 9, 15)
    assert cal.years_to_expiry(fri_close, expiry) == cal.years_to_expiry(mon_open, expiry)
    assert cal.calendar_years_to_expiry(fri_close, expiry) > cal.calendar_years_to_expiry(
        mon_open, expiry
    )
    assert cal.calendar_years_to_expiry(fri_close, expiry) - cal.calendar_years_to_expiry(
        mon_open, expiry
    ) == pytest.approx((mon_open - fri_close) / (365 * 86_400e9))


def test_trading_and_calendar_time_differ_as_expected() -> None:
    cal = TradingCalendar()
    t = ts(2025, 10, 1, 9, 15)
    expiry = date(2025, 10, 28)
    # 20 sessions (1 Oct .. 28 Oct, no holidays) vs 27.26 calendar days
    assert cal.years_to_expiry(t, expiry) == pytest.approx(20 / 252)
    assert cal.calendar_years_to_expiry(t, expiry) == pytest.approx((27 + 6.25 / 24) / 365)
