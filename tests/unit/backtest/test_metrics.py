"""algoengine.backtest.metrics on small series computed by hand.

Times: 15:30 IST (10:00 UTC) on consecutive days from Monday 3 November 2025. Capital
Rs 1,000 (100_000 paise) unless stated.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from algoengine.backtest.metrics import (
    Metrics,
    compute_metrics,
    daily_returns,
    drawdown_series,
    format_paise,
)
from algoengine.errors import ValidationError

DAY0 = datetime(2025, 11, 3, 10, 0, tzinfo=UTC)  # 15:30 IST
NS = 1_000_000_000


def ts(day: int, minutes: int = 0) -> int:
    """Epoch ns of ``day`` days after DAY0 plus ``minutes``."""
    return int((DAY0 + timedelta(days=day, minutes=minutes)).timestamp()) * NS


CAPITAL = 100_000
# day closes: +10 %, -10 %, +10 %, flat
CLOSES = [110_000, 99_000, 108_900, 108_900]
DAILY_TS = [ts(d) for d in range(4)]


def test_net_pnl_return_and_drawdown() -> None:
    m = compute_metrics(ts_ns=DAILY_TS, equity_paise=CLOSES, starting_capital_paise=CAPITAL)
    assert m.starting_capital_paise == CAPITAL
    assert m.final_equity_paise == 108_900
    assert m.net_pnl_paise == 8_900
    assert m.return_on_capital == pytest.approx(0.089)
    assert m.trading_days == 4
    assert (m.start_ts_ns, m.end_ts_ns) == (DAILY_TS[0], DAILY_TS[-1])
    assert m.max_drawdown_paise == 11_000
    assert m.max_drawdown_fraction == pytest.approx(0.1)
    assert m.max_drawdown_peak_ts_ns == DAILY_TS[0]
    assert m.max_drawdown_trough_ts_ns == DAILY_TS[1]
    assert m.max_drawdown_recovery_ts_ns is None


def test_sharpe_and_sortino_by_hand() -> None:
    # r = [0.1, -0.1, 0.1, 0.0]; mean 0.025; deviations 0.075, -0.125, 0.075, -0.025
    # sample variance = (0.005625 + 0.015625 + 0.005625 + 0.000625) / 3 = 0.0275 / 3
    # downside deviation = sqrt((0 + 0.01 + 0 + 0) / 4) = 0.05
    m = compute_metrics(ts_ns=DAILY_TS, equity_paise=CLOSES, starting_capital_paise=CAPITAL)
    assert m.sharpe == pytest.approx(0.025 / math.sqrt(0.0275 / 3) * math.sqrt(252), rel=1e-12)
    assert m.sortino == pytest.approx(0.025 / 0.05 * math.sqrt(252), rel=1e-12)
    assert m.risk_free_rate == 0.0 and m.periods_per_year == 252


def test_risk_free_rate_and_periods() -> None:
    # rf 2.52 % a year over 252 days is 0.0001 a day: the excess mean is 0.0249
    m = compute_metrics(
        ts_ns=DAILY_TS, equity_paise=CLOSES, starting_capital_paise=CAPITAL, risk_free_rate=0.0252
    )
    assert m.sharpe == pytest.approx(0.0249 / math.sqrt(0.0275 / 3) * math.sqrt(252), rel=1e-9)
    # excess: 0.0999, -0.1001, 0.0999, -0.0001 -> shortfalls -0.1001 and -0.0001
    downside = math.sqrt((0.1001**2 + 0.0001**2) / 4)
    assert m.sortino == pytest.approx(0.0249 / downside * math.sqrt(252), rel=1e-9)
    m365 = compute_metrics(
        ts_ns=DAILY_TS, equity_paise=CLOSES, starting_capital_paise=CAPITAL, periods_per_year=365
    )
    assert m365.sharpe == pytest.approx(0.025 / math.sqrt(0.0275 / 3) * math.sqrt(365), rel=1e-12)


def test_minute_curve_gives_the_daily_returns_of_its_closes() -> None:
    # Each day: samples from 09:15 to 15:30 IST with intraday noise; the close is the last one.
    times, values = [], []
    for d, close in enumerate(CLOSES):
        for k, minute in enumerate(range(-375, 1, 25)):
            times.append(ts(d, minute))
            values.append(close if minute == 0 else close + (-1) ** k * 3_000)
    m = compute_metrics(ts_ns=times, equity_paise=values, starting_capital_paise=CAPITAL)
    daily = compute_metrics(ts_ns=DAILY_TS, equity_paise=CLOSES, starting_capital_paise=CAPITAL)
    assert m.trading_days == 4
    assert m.sharpe == pytest.approx(daily.sharpe, rel=1e-12)
    assert m.sortino == pytest.approx(daily.sortino, rel=1e-12)
    # but the drawdown sees the intraday dips: peak 113_000 on day 0, trough 96_000 on day 1
    assert m.max_drawdown_paise == 17_000
    assert m.max_drawdown_fraction == pytest.approx(17_000 / 113_000)


def test_daily_returns_group_by_ist_day() -> None:
    # 18:29 UTC is 23:59 IST; 18:31 UTC is 00:01 IST of the next day
    t0 = int(datetime(2025, 11, 3, 18, 29, tzinfo=UTC).timestamp()) * NS
    t1 = int(datetime(2025, 11, 3, 18, 31, tzinfo=UTC).timestamp()) * NS
    days, r = daily_returns([t0, t1], [101_000, 102_010], starting_capital_paise=CAPITAL)
    assert list(r) == pytest.approx([0.01, 0.01])
    assert days[1] - days[0] == 1
    days_utc, r_utc = daily_returns(
        [t0, t1], [101_000, 102_010], starting_capital_paise=CAPITAL, utc_offset_minutes=0
    )
    assert days_utc.size == 1 and r_utc[0] == pytest.approx(0.0201)


@pytest.mark.parametrize(
    ("closes", "sharpe", "sortino"),
    [
        ([100_000, 100_000, 100_000], 0.0, 0.0),  # flat: zero mean, zero variance
        ([110_000, 121_000, 133_100], math.inf, math.inf),  # exactly +10 % every day
        ([99_000, 98_010], -math.inf, -math.sqrt(252)),  # exactly -1 %: downside 0.01
        ([105_000], 0.0, 0.0),  # one daily return: undefined, 0
    ],
)
def test_degenerate_ratios_are_documented_values(
    closes: list[int], sharpe: float, sortino: float
) -> None:
    m = compute_metrics(
        ts_ns=[ts(d) for d in range(len(closes))],
        equity_paise=closes,
        starting_capital_paise=CAPITAL,
    )
    assert m.sharpe == pytest.approx(sharpe)
    assert m.sortino == pytest.approx(sortino)
    assert not math.isnan(m.sharpe) and not math.isnan(m.sortino)


def test_only_up_days_give_infinite_sortino_and_finite_sharpe() -> None:
    m = compute_metrics(
        ts_ns=DAILY_TS[:3], equity_paise=[101_000, 103_020, 104_050], starting_capital_paise=CAPITAL
    )
    assert math.isfinite(m.sharpe) and m.sharpe > 0
    assert m.sortino == math.inf


def test_blown_account_keeps_ratios_finite() -> None:
    m = compute_metrics(
        ts_ns=DAILY_TS, equity_paise=[50_000, 0, -10_000, 5_000], starting_capital_paise=CAPITAL
    )
    assert math.isfinite(m.sharpe) and math.isfinite(m.sortino)
    assert m.max_drawdown_paise == 110_000 and m.max_drawdown_fraction == pytest.approx(1.1)


def test_drawdown_peak_touched_twice_and_recovery() -> None:
    eq = [100_000, 110_000, 105_000, 110_000, 99_000, 120_000]
    t = [ts(0, 10 * k) for k in range(len(eq))]
    m = compute_metrics(ts_ns=t, equity_paise=eq, starting_capital_paise=CAPITAL)
    assert m.max_drawdown_paise == 11_000
    assert m.max_drawdown_peak_ts_ns == t[3]  # the last time at the peak before the trough
    assert m.max_drawdown_trough_ts_ns == t[4]
    assert m.max_drawdown_recovery_ts_ns == t[5]


def test_drawdown_from_the_starting_capital() -> None:
    t = [ts(0, k) for k in range(3)]
    m = compute_metrics(
        ts_ns=t, equity_paise=[90_000, 95_000, 100_000], starting_capital_paise=CAPITAL
    )
    assert m.max_drawdown_paise == 10_000
    assert m.max_drawdown_fraction == pytest.approx(0.1)
    assert m.max_drawdown_peak_ts_ns == t[0]
    assert m.max_drawdown_trough_ts_ns == t[0]
    assert m.max_drawdown_recovery_ts_ns == t[2]
    peak, dd, frac = drawdown_series(
        [90_000, 95_000, 120_000, 60_000], starting_capital_paise=CAPITAL
    )
    assert list(peak) == [100_000, 100_000, 120_000, 120_000]
    assert list(dd) == [10_000, 5_000, 0, 60_000]
    assert list(frac) == pytest.approx([0.1, 0.05, 0.0, 0.5])


def test_no_drawdown() -> None:
    m = compute_metrics(
        ts_ns=DAILY_TS[:2], equity_paise=[100_000, 100_500], starting_capital_paise=CAPITAL
    )
    assert (m.max_drawdown_paise, m.max_drawdown_fraction) == (0, 0.0)
    assert m.max_drawdown_peak_ts_ns is None and m.max_drawdown_trough_ts_ns is None


def test_trade_statistics() -> None:
    m = compute_metrics(
        ts_ns=DAILY_TS,
        equity_paise=CLOSES,
        starting_capital_paise=CAPITAL,
        trade_pnl_paise=[500, -200, 0, 300, -100],
    )
    assert (m.n_trades, m.n_wins, m.n_losses) == (5, 2, 2)
    assert m.win_rate == pytest.approx(0.4)
    assert m.avg_win_paise == pytest.approx(400.0)
    assert m.avg_loss_paise == pytest.approx(-150.0)
    assert m.avg_trade_paise == pytest.approx(100.0)
    assert (m.largest_win_paise, m.largest_loss_paise) == (500, -200)
    assert (m.gross_profit_paise, m.gross_loss_paise) == (800, -300)
    assert m.profit_factor == pytest.approx(800 / 300)


@pytest.mark.parametrize(
    ("pnl", "profit_factor", "win_rate"),
    [([], 0.0, 0.0), ([0, 0], 0.0, 0.0), ([100, 50], math.inf, 1.0), ([-100], 0.0, 0.0)],
)
def test_profit_factor_edges(pnl: list[int], profit_factor: float, win_rate: float) -> None:
    m = compute_metrics(
        ts_ns=DAILY_TS, equity_paise=CLOSES, starting_capital_paise=CAPITAL, trade_pnl_paise=pnl
    )
    assert m.profit_factor == profit_factor
    assert m.win_rate == win_rate
    assert m.n_trades == len(pnl)


def test_exposure() -> None:
    m = compute_metrics(
        ts_ns=DAILY_TS,
        equity_paise=CLOSES,
        starting_capital_paise=CAPITAL,
        in_market=np.array([False, True, True, False]),
    )
    assert m.exposure == 0.5
    plain = compute_metrics(ts_ns=DAILY_TS, equity_paise=CLOSES, starting_capital_paise=CAPITAL)
    assert plain.exposure is None


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"equity_paise": [1.5, 2.0, 3.0, 4.0]}, "equity_paise"),
        ({"equity_paise": [1, 2, 3]}, "equity_paise"),
        ({"ts_ns": [], "equity_paise": []}, "ts_ns"),
        ({"ts_ns": [3, 2, 4, 5]}, "ts_ns[1]"),
        ({"ts_ns": [[1, 2], [3, 4]]}, "ts_ns"),
        ({"starting_capital_paise": 0}, "starting_capital_paise"),
        ({"starting_capital_paise": True}, "starting_capital_paise"),
        ({"trade_pnl_paise": [1.5]}, "trade_pnl_paise"),
        ({"in_market": [1, 0, 1, 0]}, "in_market"),
        ({"in_market": [True, False]}, "in_market"),
        ({"risk_free_rate": math.nan}, "risk_free_rate"),
        ({"periods_per_year": 0}, "periods_per_year"),
        ({"utc_offset_minutes": 5000}, "utc_offset_minutes"),
    ],
)
def test_bad_input_names_the_field(kwargs: dict[str, object], field: str) -> None:
    args: dict[str, object] = {
        "ts_ns": DAILY_TS,
        "equity_paise": CLOSES,
        "starting_capital_paise": CAPITAL,
        **kwargs,
    }
    with pytest.raises(ValidationError) as info:
        compute_metrics(**args)  # type: ignore[arg-type]
    assert info.value.field == field


def test_to_dict_is_json_safe_and_complete() -> None:
    m = compute_metrics(
        ts_ns=DAILY_TS, equity_paise=CLOSES, starting_capital_paise=CAPITAL, trade_pnl_paise=[5]
    )
    d = m.to_dict()
    assert list(d) == [f for f in Metrics.__dataclass_fields__]
    assert d["profit_factor"] == "inf"
    assert d["net_pnl_paise"] == 8_900 and isinstance(d["net_pnl_paise"], int)
    assert json.loads(json.dumps(d, allow_nan=False)) == d


def test_format_summary_and_rupees() -> None:
    m = compute_metrics(
        ts_ns=DAILY_TS,
        equity_paise=[1_234_567_890 + c for c in CLOSES],
        starting_capital_paise=1_234_567_890,
        trade_pnl_paise=[500, -200],
    )
    text = m.format_summary()
    lines = text.splitlines()
    assert len(lines) == 17 and len({len(line) for line in lines}) == 1  # aligned columns
    assert "Starting capital" in lines[0] and lines[0].endswith("Rs 1,23,45,678.90")
    assert any(line.startswith("Net P&L") and line.endswith("Rs 1,089.00") for line in lines)
    assert any(line.startswith("Profit factor") and line.endswith("2.500") for line in lines)
    assert format_paise(0) == "Rs 0.00"
    assert format_paise(5) == "Rs 0.05"
    assert format_paise(-100) == "-Rs 1.00"
    assert format_paise(99_999) == "Rs 999.99"
    assert format_paise(100_000) == "Rs 1,000.00"
    assert format_paise(10_000_000) == "Rs 1,00,000.00"
    assert format_paise(12_345_678_901) == "Rs 12,34,56,789.01"
