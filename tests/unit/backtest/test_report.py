"""algoengine.backtest.report: report files (CSV, Parquet, JSON, PNG) and the progress bar."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from algoengine.backtest.metrics import Metrics, compute_metrics
from algoengine.backtest.report import Progress, write_report
from algoengine.errors import ValidationError

NS = 1_000_000_000
CAPITAL = 1_000_000  # Rs 10,000


class Side(StrEnum):
    BUY = "BUY"
    SELL = "SELL"


@dataclass(frozen=True, kw_only=True)
class Trade:
    trade_id: int
    symbol: str
    side: Side
    qty: int
    entry_ts_ns: int
    exit_ts_ns: int
    pnl_paise: int
    session: date


def _minute_ts(days: int = 2, minutes: int = 30) -> list[int]:
    start = datetime(2025, 11, 3, 3, 45, tzinfo=UTC)  # 09:15 IST
    return [
        int((start + timedelta(days=d, minutes=m)).timestamp()) * NS
        for d in range(days)
        for m in range(minutes)
    ]


TS = _minute_ts()
EQUITY = [CAPITAL + 500 * ((i * 7) % 11) - 40 * i for i in range(len(TS))]
TRADES = [
    Trade(
        trade_id=1,
        symbol="NIFTY04NOV2524400CE",
        side=Side.SELL,
        qty=75,
        entry_ts_ns=TS[1],
        exit_ts_ns=TS[10],
        pnl_paise=1_500,
        session=date(2025, 11, 3),
    ),
    Trade(
        trade_id=2,
        symbol="NIFTY04NOV2524400PE",
        side=Side.SELL,
        qty=75,
        entry_ts_ns=TS[31],
        exit_ts_ns=TS[50],
        pnl_paise=-2_250,
        session=date(2025, 11, 4),
    ),
]
ORDERS: list[dict[str, Any]] = [
    {"client_order_id": "S1-1", "side": Side.SELL, "qty": 75, "price_paise": 12_000},
    {"client_order_id": "S1-2", "side": Side.BUY, "qty": 75, "price_paise": None, "tag": "exit"},
]


def _metrics() -> Metrics:
    return compute_metrics(
        ts_ns=TS,
        equity_paise=EQUITY,
        starting_capital_paise=CAPITAL,
        trade_pnl_paise=[t.pnl_paise for t in TRADES],
    )


def _equity_columns() -> dict[str, Any]:
    return {"ts_ns": np.asarray(TS, dtype=np.int64), "equity_paise": np.asarray(EQUITY)}


def _write(out: Path, fmt: str = "csv", **overrides: Any) -> Any:
    args: dict[str, Any] = {
        "trades": TRADES,
        "orders": ORDERS,
        "equity": _equity_columns(),
        "metrics": _metrics(),
        "fmt": fmt,
    }
    args.update(overrides)
    return write_report(out, **args)


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_csv_report_files(tmp_path: Path) -> None:
    report = _write(tmp_path / "run")
    assert report.directory == tmp_path / "run"
    trades = _read_csv(report.trades)
    assert list(trades[0]) == [
        "trade_id",
        "symbol",
        "side",
        "qty",
        "entry_ts_ns",
        "exit_ts_ns",
        "pnl_paise",
        "session",
    ]
    assert trades[1] == {
        "trade_id": "2",
        "symbol": "NIFTY04NOV2524400PE",
        "side": "SELL",
        "qty": "75",
        "entry_ts_ns": str(TS[31]),
        "exit_ts_ns": str(TS[50]),
        "pnl_paise": "-2250",
        "session": "2025-11-04",
    }
    orders = _read_csv(report.orders)
    assert list(orders[0]) == ["client_order_id", "side", "qty", "price_paise", "tag"]
    assert orders[0]["tag"] == "" and orders[1]["price_paise"] == ""
    assert orders[1]["tag"] == "exit" and orders[1]["side"] == "BUY"
    equity = _read_csv(report.equity)
    assert len(equity) == len(TS)
    assert list(equity[0]) == ["ts_ns", "equity_paise", "drawdown_paise", "drawdown_fraction"]
    assert [int(r["ts_ns"]) for r in equity] == TS
    assert [int(r["equity_paise"]) for r in equity] == EQUITY
    peak = CAPITAL
    for row, value in zip(equity, EQUITY, strict=True):
        peak = max(peak, value)
        assert int(row["drawdown_paise"]) == peak - value
        assert float(row["drawdown_fraction"]) == pytest.approx((peak - value) / peak)
    assert not list(tmp_path.glob("run/.*.tmp"))


def test_summary_json_equals_metrics(tmp_path: Path) -> None:
    metrics = _metrics()
    report = _write(tmp_path, metrics=metrics)
    summary = json.loads(report.summary.read_text(encoding="utf-8"))
    assert summary == metrics.to_dict()
    assert summary["net_pnl_paise"] == EQUITY[-1] - CAPITAL
    assert summary["n_trades"] == 2


def test_parquet_report_is_readable_by_pyarrow(tmp_path: Path) -> None:
    report = _write(tmp_path, fmt="parquet")
    assert report.trades.name == "trades.parquet"
    trades = pq.read_table(report.trades)
    assert trades.column_names[:3] == ["trade_id", "symbol", "side"]
    assert trades.schema.field("pnl_paise").type == pa.int64()
    assert trades.column("pnl_paise").to_pylist() == [1_500, -2_250]
    assert trades.column("session").to_pylist() == ["2025-11-03", "2025-11-04"]
    orders = pq.read_table(report.orders)
    assert orders.column("price_paise").to_pylist() == [12_000, None]
    assert orders.column("tag").to_pylist() == [None, "exit"]
    equity = pq.read_table(report.equity)
    assert equity.schema.field("ts_ns").type == pa.int64()
    assert equity.column("ts_ns").to_pylist() == TS
    assert equity.column("equity_paise").to_pylist() == EQUITY
    # the CSV and the Parquet report hold the same values
    csv_report = _write(tmp_path / "csv")
    csv_dd = [int(r["drawdown_paise"]) for r in _read_csv(csv_report.equity)]
    assert equity.column("drawdown_paise").to_pylist() == csv_dd


def test_png_is_byte_identical_for_identical_input(tmp_path: Path) -> None:
    a = _write(tmp_path / "a").chart.read_bytes()
    b = _write(tmp_path / "b", fmt="parquet").chart.read_bytes()
    assert a[:8] == b"\x89PNG\r\n\x1a\n"
    assert a == b
    assert b"matplotlib" not in a.lower()  # no Software tag with a version
    # a different curve draws a different picture
    other = _write(tmp_path / "c", equity={"ts_ns": TS, "equity_paise": [CAPITAL] * len(TS)})
    assert other.chart.read_bytes() != a


def test_png_is_identical_in_a_fresh_process(tmp_path: Path) -> None:
    here = _write(tmp_path / "here").chart.read_bytes()
    code = (
        "import sys; sys.path.insert(0, sys.argv[2]); "
        "import test_report as t; from pathlib import Path; "
        "t._write(Path(sys.argv[1]))"
    )
    subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "there"), str(Path(__file__).parent)],
        check=True,
        env={**os.environ, "PYTHONHASHSEED": "123", "MPLBACKEND": "pdf"},
        timeout=120,
    )
    assert (tmp_path / "there" / "equity.png").read_bytes() == here


def test_rows_as_column_mapping_and_empty_tables(tmp_path: Path) -> None:
    report = _write(
        tmp_path,
        trades=[],
        orders={"client_order_id": ["a", "b"], "qty": np.array([75, 150])},
        equity=[{"ts_ns": t, "equity_paise": e} for t, e in zip(TS, EQUITY, strict=True)],
    )
    assert report.trades.read_bytes() == b""
    assert _read_csv(report.orders) == [
        {"client_order_id": "a", "qty": "75"},
        {"client_order_id": "b", "qty": "150"},
    ]
    assert len(_read_csv(report.equity)) == len(TS)
    pq_report = _write(tmp_path / "pq", fmt="parquet", trades=[])
    assert pq.read_table(pq_report.trades).num_rows == 0


def test_one_sample_curve(tmp_path: Path) -> None:
    metrics = compute_metrics(ts_ns=TS[:1], equity_paise=[CAPITAL], starting_capital_paise=CAPITAL)
    report = _write(tmp_path, equity={"ts_ns": TS[:1], "equity_paise": [CAPITAL]}, metrics=metrics)
    assert report.chart.stat().st_size > 0


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"fmt": "xlsx"}, "fmt"),
        ({"metrics": {"sharpe": 1.0}}, "metrics"),
        ({"equity": {"ts_ns": TS}}, "equity.equity_paise"),
        ({"equity": {"ts_ns": TS, "equity_paise": [1.5] * len(TS)}}, "equity.equity_paise"),
        ({"equity": {"ts_ns": [], "equity_paise": []}}, "equity"),
        ({"orders": {"a": [1, 2], "b": [1]}}, "orders.b"),
        ({"orders": [ORDERS[0], TRADES[0]]}, "orders[1]"),
        ({"trades": [TRADES[0], ORDERS[0]]}, "trades[1]"),
        ({"trades": "trades.csv"}, "trades"),
    ],
)
def test_bad_tables_name_the_field(tmp_path: Path, overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        _write(tmp_path / "out", **overrides)
    assert info.value.field == field
    assert not (tmp_path / "out").exists()  # nothing written


def test_parquet_mixed_column_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as info:
        _write(tmp_path / "out", fmt="parquet", orders=[{"x": 1}, {"x": "one"}])
    assert info.value.field == "orders.x"
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------------------------------------
# Progress


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_progress_draws_one_updating_line() -> None:
    out, clock = io.StringIO(), FakeClock()
    bar = Progress(4, out, True, label="backtest", width=8, clock=clock)
    for _ in range(4):
        clock.now += 1.0
        bar.update()
    bar.close()
    text = out.getvalue()
    assert text.endswith("\n") and text.count("\n") == 1  # one line, ended once
    frames = text.rstrip("\n").split("\r")[1:]
    assert len(frames) == 5  # four updates and the close
    assert frames[0].startswith("backtest [##......]  25.0% 1/4 1.0/s ETA 00:03")
    assert frames[-1] == "backtest [########] 100.0% 4/4 1.0/s 00:04"


def test_progress_throttles_and_always_draws_the_end() -> None:
    out, clock = io.StringIO(), FakeClock()
    bar = Progress(100, out, True, width=10, min_interval_s=0.5, clock=clock)
    for _ in range(100):
        bar.update()  # the clock does not move: only the first and the last draw
    assert out.getvalue().count("\r") == 2
    assert out.getvalue().split("\r")[-1].startswith("[##########] 100.0% 100/100")


def test_progress_disabled_writes_nothing_and_unknown_total() -> None:
    out = io.StringIO()
    with Progress(10, out, enabled=False) as bar:
        bar.update(3)
    assert out.getvalue() == "" and bar.count == 3
    clock = FakeClock()
    with Progress(None, out, True, label="slices", clock=clock) as bar:
        clock.now += 2.0
        bar.update(500)
    assert out.getvalue().split("\r")[-1] == "slices 500 250.0/s 00:02\n"
    # a shorter line blanks the rest of a longer one
    out2 = io.StringIO()
    p = Progress(None, out2, True, min_interval_s=0.0, clock=clock)
    p.update(100_000)
    p.count = 0
    p.update(1)
    last = out2.getvalue().split("\r")[-1]
    assert len(last) == len(out2.getvalue().split("\r")[-2])
    with pytest.raises(ValidationError):
        Progress(-1, out2)


def test_progress_default_stream_is_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    with Progress(2, label="x") as bar:
        bar.update(2)
    captured = capsys.readouterr()
    assert captured.out == "" and "2/2" in captured.err
