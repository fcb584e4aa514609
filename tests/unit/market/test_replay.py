"""Replay: slices to CSV/Parquet and back, the simple bars format, malformed files."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

from algoengine.domain.market_data import MarketSlice
from algoengine.errors import ValidationError
from algoengine.market import (
    SLICE_COLUMNS,
    MarketFeed,
    ReplayFeed,
    SyntheticMarket,
    SyntheticMarketConfig,
    read_slices,
    write_slices,
)
from tests.unit.market.test_synthetic import same

IST = timezone(timedelta(hours=5, minutes=30))


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_bars_round_trip(
    tmp_path: Path, suffix: str, bars_market: SyntheticMarket, bars_slices: list[MarketSlice]
) -> None:
    # the last 100 bars of the expiry day and the first of the next day
    chosen = bars_slices[650:800]
    path = tmp_path / f"bars{suffix}"
    n = write_slices(path, chosen, bars_market.universe)
    assert n == sum(len(s) for s in chosen)
    feed = ReplayFeed(path, bars_market.universe)
    assert isinstance(feed, MarketFeed) and feed.format == "slices"
    back = list(feed)
    assert len(back) == len(feed) == len(chosen)
    assert all(same(a, b) for a, b in zip(back, chosen, strict=True))
    assert feed.trading_days == [date(2025, 10, 7), date(2025, 10, 8)]
    assert feed.skipped_rows == 0


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_ticks_round_trip(tmp_path: Path, suffix: str) -> None:
    day = date(2025, 10, 6)
    market = SyntheticMarket(
        SyntheticMarketConfig(seed=2, mode="ticks", tick_interval_s=30), day, day
    )
    slices = list(market)[:300]
    path = tmp_path / f"ticks{suffix}"
    write_slices(path, slices, market.universe)
    back = read_slices(path, market.universe)
    assert len(back) == len(slices)
    assert all(same(a, b) for a, b in zip(back, slices, strict=True))
    assert all(b.open_paise is None and not b.bar_close for b in back)


def test_csv_layout_and_unsorted_input(
    tmp_path: Path, bars_market: SyntheticMarket, bars_slices: list[MarketSlice]
) -> None:
    path = tmp_path / "s.csv"
    write_slices(path, bars_slices[:3], bars_market.universe)
    lines = path.read_text().splitlines()
    assert lines[0].replace('"', "") == ",".join(SLICE_COLUMNS)
    # the file need not be sorted: reversing the rows of whole slices gives the same slices
    body = lines[1:]
    n0, n1 = len(bars_slices[0]), len(bars_slices[1])
    shuffled = body[n0 + n1 :] + body[n0 : n0 + n1] + body[:n0]
    path.write_text("\n".join([lines[0], *shuffled]) + "\n")
    back = read_slices(path, bars_market.universe)
    assert all(same(a, b) for a, b in zip(back, bars_slices[:3], strict=True))


def _write(path: Path, rows: list[list[object]], header: tuple[str, ...] = SLICE_COLUMNS) -> Path:
    lines = [",".join(header)] + [",".join(str(v) for v in r) for r in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def _row(ts: int = 1, token: str = "99926000", kw: dict[str, object] | None = None) -> list[object]:
    values: dict[str, object] = {
        "ts_ns": ts,
        "token": token,
        "ltp_paise": 2_450_000,
        "bid_paise": 0,
        "bid_qty": 0,
        "ask_paise": 0,
        "ask_qty": 0,
        "volume": 0,
        "oi": 0,
        "bar_close": "true",
        "open_paise": 2_450_000,
        "high_paise": 2_450_000,
        "low_paise": 2_450_000,
    }
    values.update(kw or {})
    return [values[c] for c in SLICE_COLUMNS]


def test_unknown_tokens_raise_or_are_skipped(tmp_path: Path, bars_market: SyntheticMarket) -> None:
    u = bars_market.universe
    path = _write(tmp_path / "u.csv", [_row(), _row(token="424242"), _row(ts=2)])
    with pytest.raises(ValidationError) as err:
        ReplayFeed(path, u)
    assert err.value.field == "token" and "row 1" in str(err.value) and err.value.value == "424242"
    feed = ReplayFeed(path, u, unknown_tokens="skip")
    assert feed.skipped_rows == 1
    assert [len(s) for s in feed] == [1, 1]


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ({"bid_paise": "abc"}, "bid_paise"),
        ({"ask_qty": -65}, "ask_qty"),
        ({"ts_ns": "12.5"}, "ts_ns"),
        ({"ltp_paise": ""}, "ltp_paise"),
        ({"bar_close": "maybe"}, "bar_close"),
        ({"high_paise": ""}, "high_paise"),  # OHLC must be all or none
    ],
)
def test_malformed_values_name_column_and_row(
    tmp_path: Path, bars_market: SyntheticMarket, bad: dict[str, object], field: str
) -> None:
    path = _write(tmp_path / "m.csv", [_row(), _row(ts=2, kw=bad)])
    with pytest.raises(ValidationError) as err:
        ReplayFeed(path, bars_market.universe)
    assert err.value.field == field
    assert "row 1" in str(err.value)


def test_a_short_csv_row_is_named(tmp_path: Path, bars_market: SyntheticMarket) -> None:
    path = tmp_path / "short.csv"
    path.write_text(",".join(SLICE_COLUMNS) + "\n" + ",".join(map(str, _row())) + "\n1,2,3\n")
    with pytest.raises(ValidationError, match="row 1"):
        ReplayFeed(path, bars_market.universe)


def test_a_slice_must_agree_on_bar_close(tmp_path: Path, bars_market: SyntheticMarket) -> None:
    path = _write(tmp_path / "b.csv", [_row(), _row(token="99926009", kw={"bar_close": "false"})])
    with pytest.raises(ValidationError) as err:
        ReplayFeed(path, bars_market.universe)
    assert err.value.field == "bar_close"


def test_bad_files(tmp_path: Path, bars_market: SyntheticMarket) -> None:
    u = bars_market.universe
    with pytest.raises(ValidationError) as err:
        ReplayFeed(tmp_path / "none.csv", u)
    assert err.value.field == "path"
    with pytest.raises(ValidationError):
        write_slices(tmp_path / "x.txt", [], u)
    (tmp_path / "cols.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ValidationError, match="neither"):
        ReplayFeed(tmp_path / "cols.csv", u)
    (tmp_path / "junk.parquet").write_text("not parquet")
    with pytest.raises(ValidationError) as err:
        ReplayFeed(tmp_path / "junk.parquet", u)
    assert err.value.field == "path"
    empty = tmp_path / "empty.parquet"
    write_slices(empty, [], u)
    assert list(ReplayFeed(empty, u)) == []


# ---- the simple bars format ------------------------------------------------------------------

SIMPLE = ("ts", "token", "open", "high", "low", "close", "volume")


def test_simple_bars_convert_rupees_exactly_and_accumulate_volume(
    tmp_path: Path, bars_market: SyntheticMarket
) -> None:
    u = bars_market.universe
    t0 = datetime(2025, 10, 6, 9, 15, tzinfo=IST)
    t0_ns = int(t0.timestamp()) * 10**9
    rows = [
        ["2025-10-06T09:15:00", "99926000", "24500.05", "24512.35", "24490", "24510.1", "0"],
        [t0_ns, "99926009", "55000", "55010.5", "54990.25", "55001.00", "0"],
        ["2025-10-06T09:16:00+05:30", "99926000", "24510.10", "24520", "24505.5", "24515", "10"],
        ["2025-10-06 03:47:00+00:00", "99926000", "24515", "24516", "24514", "24515.95", "5"],
        # the next day: the cumulative volume starts again
        ["2025-10-07T09:15:00", "99926000", "24600", "24600", "24600", "24600", "7"],
    ]
    path = _write(tmp_path / "simple.csv", rows, SIMPLE)  # type: ignore[arg-type]
    feed = ReplayFeed(path, u)
    assert feed.format == "bars"
    slices = list(feed)
    assert [s.ts_ns for s in slices] == [
        t0_ns + 60 * 10**9,
        t0_ns + 120 * 10**9,
        t0_ns + 180 * 10**9,
        t0_ns + 86_400 * 10**9 + 60 * 10**9,
    ]
    first = slices[0]
    assert first.bar_close and list(first.idx) == [0, 1]
    assert list(first.ltp_paise) == [2_451_010, 5_500_100]
    assert first.open_paise is not None and list(first.open_paise) == [2_450_005, 5_500_000]
    assert first.high_paise is not None and list(first.high_paise) == [2_451_235, 5_501_050]
    assert first.low_paise is not None and list(first.low_paise) == [2_449_000, 5_499_025]
    assert list(first.bid_paise) == [0, 0] and list(first.ask_qty) == [0, 0]
    assert [int(s.volume[0]) for s in slices] == [0, 10, 15, 7]
    assert slices[2].ltp_paise[0] == 2_451_595
    assert feed.trading_days == [date(2025, 10, 6), date(2025, 10, 7)]


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ({"close": "24512.355"}, "close"),
        ({"open": "24.500.0"}, "open"),
        ({"high": "-5"}, "high"),
        ({"high": "24400"}, "high"),  # below the open
        ({"low": "24600"}, "low"),
        ({"volume": "1.5"}, "volume"),
        ({"ts": "yesterday"}, "ts"),
    ],
)
def test_simple_bars_errors(
    tmp_path: Path, bars_market: SyntheticMarket, bad: dict[str, str], field: str
) -> None:
    good = {
        "ts": "2025-10-06T09:15:00",
        "token": "99926000",
        "open": "24500",
        "high": "24510",
        "low": "24490",
        "close": "24505",
        "volume": "3",
    }
    rows = [[good[c] for c in SIMPLE], [{**good, **bad}[c] for c in SIMPLE]]
    path = _write(tmp_path / "bad.csv", rows, SIMPLE)  # type: ignore[arg-type]
    with pytest.raises(ValidationError) as err:
        ReplayFeed(path, bars_market.universe)
    assert err.value.field == field and "row 1" in str(err.value)


def test_simple_bars_in_parquet(tmp_path: Path, bars_market: SyntheticMarket) -> None:
    import pyarrow as pa  # type: ignore[import-untyped]
    import pyarrow.parquet as pq  # type: ignore[import-untyped]

    table = pa.table(
        {
            "ts": ["2025-10-06T09:15:00"],
            "token": ["99926000"],
            "open": ["24500.5"],
            "high": ["24501"],
            "low": ["24500"],
            "close": ["24500.75"],
            "volume": [0],
        }
    )
    path = tmp_path / "simple.parquet"
    pq.write_table(table, path)
    (s,) = list(ReplayFeed(path, bars_market.universe))
    assert s.ltp_paise[0] == 2_450_075 and s.open_paise is not None and s.open_paise[0] == 2_450_050
    assert np.array_equal(s.idx, [0])
