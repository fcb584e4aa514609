"""The engine's commands end to end, as processes: backtest, run (paper), config show."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest


def algoengine(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 300):
    return subprocess.run(
        [sys.executable, "-m", "algoengine.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env={**os.environ, **(env or {})},
    )


def test_a_backtest_is_reproducible_byte_for_byte(tmp_path: Path) -> None:
    outs = []
    for k in range(2):
        out = tmp_path / f"run{k}"
        proc = algoengine(
            "backtest",
            "--from",
            "2026-11-09",
            "--to",
            "2026-11-10",
            "--seed",
            "7",
            "--out",
            str(out),
            "--quiet",
            cwd=tmp_path,
        )
        assert proc.returncode == 0, proc.stderr
        for text in ("Net P&L", "Charges", "Sharpe", "Sortino", "Max drawdown", "Win rate"):
            assert text in proc.stdout
        assert "events/s" in proc.stdout
        outs.append(out)
    names = sorted(p.name for p in outs[0].iterdir())
    assert names == [
        "equity.csv",
        "equity.png",
        "fills.csv",
        "orders.csv",
        "summary.json",
        "trades.csv",
    ]
    for name in names:
        assert (outs[0] / name).read_bytes() == (outs[1] / name).read_bytes(), name
    import sqlite3

    with sqlite3.connect(tmp_path / "algoengine.sqlite") as db:  # the default database
        rows = db.execute("SELECT output_dir, metrics FROM backtest_runs").fetchall()
    assert sorted(r[0] for r in rows) == [str(outs[0]), str(outs[1])]
    assert all('"net_pnl_paise"' in r[1] for r in rows)
    other = tmp_path / "seed8"
    algoengine(
        "backtest",
        "--from",
        "2026-11-09",
        "--to",
        "2026-11-10",
        "--seed",
        "8",
        "--out",
        str(other),
        "--quiet",
        cwd=tmp_path,
    )
    assert (other / "fills.csv").read_bytes() != (outs[0] / "fills.csv").read_bytes()


def test_bad_configuration_names_the_field_and_the_value(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[risk]\nmax_lots_per_order = 0\n")
    proc = algoengine("backtest", "--config", str(cfg), "--quiet", cwd=tmp_path)
    assert proc.returncode == 2
    assert "risk.max_lots_per_order" in proc.stderr and "0" in proc.stderr
    cfg.write_text("[[strategies]]\nstrategy_id = 'x'\nlots = 'two'\n")
    proc = algoengine("config", "show", "--config", str(cfg), cwd=tmp_path)
    assert proc.returncode == 2 and "strategies[0].lots" in proc.stderr
    proc = algoengine("backtest", "--strategy", "nope", "--quiet", cwd=tmp_path)
    assert proc.returncode == 2 and "nope" in proc.stderr


def test_config_show_masks_secrets_and_reads_back(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        'database_url = "postgresql+psycopg://algo:s3cretpw@db:5432/algo"\n'
        "[[strategies]]\nstrategy_id = 'condor'\nkind = 'iron_condor'\nlots = 2\n"
    )
    proc = algoengine(
        "config",
        "show",
        "--config",
        str(cfg),
        cwd=tmp_path,
        env={"ALGOENGINE__RISK__MAX_OPEN_ORDERS": "7"},
    )
    assert proc.returncode == 0, proc.stderr
    assert "s3cretpw" not in proc.stdout
    shown = tomllib.loads(proc.stdout)
    assert shown["risk"]["max_open_orders"] == 7
    assert shown["strategies"][0]["kind"] == "iron_condor" and shown["strategies"][0]["lots"] == 2
    assert "***" in shown["database_url"]


def test_run_trades_a_paper_session_on_an_accelerated_clock(tmp_path: Path) -> None:
    proc = algoengine(
        "run",
        "--speed",
        "5000",  # a session in 4.5 s: slow (debug) builds keep up
        "--day",
        "2026-11-10",
        "--out",
        str(tmp_path / "p"),
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert "stopped: session ended" in proc.stdout
    assert "no open positions" in proc.stdout
    fills = (tmp_path / "p" / "fills.csv").read_text().splitlines()
    assert any(",entry CE" in line for line in fills)
    # the journal stored the run: every order with its final status, every fill, P&L minutes
    import csv
    import sqlite3

    with (tmp_path / "p" / "orders.csv").open() as f:
        report = {r["client_order_id"]: r["status"] for r in csv.DictReader(f)}
    with sqlite3.connect(tmp_path / "algoengine.sqlite") as db:
        stored = dict(db.execute("SELECT client_order_id, status FROM orders").fetchall())
        n_fills = db.execute("SELECT count(*) FROM fills").fetchone()[0]
        n_pnl = db.execute("SELECT count(*) FROM pnl_snapshots").fetchone()[0]
        n_events = db.execute("SELECT count(*) FROM order_events").fetchone()[0]
    assert stored == report
    with (tmp_path / "p" / "equity.csv").open() as f:
        minutes = {int(r["ts_ns"]) // 60_000_000_000 for r in csv.DictReader(f)}
    # one P&L row per strategy and minute of the run (a slow build may cover fewer minutes
    # of market time per minute of the clock: count the minutes the run itself recorded)
    assert n_fills == len(fills) - 1 and n_events >= 2 * len(report)
    assert len(minutes) - 2 <= n_pnl <= len(minutes) + 2


def test_sigterm_stops_a_paper_run_cleanly_and_reports_positions(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "algoengine.cli",
            "run",
            "--speed",
            "300",
            "--day",
            "2026-11-10",
            "--out",
            str(tmp_path / "p"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    time.sleep(4.0)  # 09:15 + 20 simulated minutes: the straddle is on
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "stopped: signal SIGTERM" in out
    # (how far the session got in 4 s depends on the build's speed: positions are open with
    # their stop-losses working, or the stops have already closed them)
    assert ("open positions:" in out and "NIFTY" in out) or "no open positions" in out
    # nothing half-sent; the stop-losses protecting open legs stay working
    orders = (tmp_path / "p" / "orders.csv").read_text().splitlines()
    assert not any(",NEW," in line or ",SUBMITTED," in line for line in orders)
    if "open positions:" in out:
        assert "orders still working at the venue:" in out and "TRIGGER_PENDING" in out


@pytest.mark.parametrize("command", [["backtest", "--help"], ["run", "--help"]])
def test_help(command: list[str], tmp_path: Path) -> None:
    assert algoengine(*command, cwd=tmp_path).returncode == 0


def test_a_recorded_market_replays_to_the_same_backtest(tmp_path: Path) -> None:
    """record the synthetic market (Parquet) and its instrument master (scrip-master JSON),
    then backtest on the replay: the same orders, fills and equity as on the live model."""
    span = ["--from", "2026-11-09", "--to", "2026-11-10", "--seed", "3"]
    assert (
        algoengine("market", "record", *span, "--out", "rec.parquet", cwd=tmp_path).returncode == 0
    )
    assert (
        algoengine("market", "master", *span, "--out", "master.json", cwd=tmp_path).returncode == 0
    )
    syn = algoengine("backtest", *span, "--out", "syn", "--quiet", cwd=tmp_path)
    env = {
        "ALGOENGINE__MARKET__SOURCE": "replay",
        "ALGOENGINE__MARKET__REPLAY_PATH": "rec.parquet",
        "ALGOENGINE__MARKET__INSTRUMENT_MASTER": "master.json",
    }
    rep = algoengine("backtest", *span, "--out", "rep", "--quiet", cwd=tmp_path, env=env)
    assert syn.returncode == 0 and rep.returncode == 0, rep.stderr
    for name in ("fills.csv", "orders.csv", "equity.csv", "trades.csv", "summary.json"):
        assert (tmp_path / "syn" / name).read_bytes() == (tmp_path / "rep" / name).read_bytes()
    assert len((tmp_path / "rep" / "fills.csv").read_text().splitlines()) > 3


def test_a_command_posted_to_the_database_is_carried_out_by_the_running_engine(
    tmp_path: Path,
) -> None:
    """`algoengine command kill-switch` (what the dashboard does) reaches a running paper
    engine through the commands table; the engine acts, records the result, and the run's
    rows show it started and stopped."""
    import sqlite3

    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "algoengine.cli",
            "run",
            "--speed",
            "300",
            "--day",
            "2026-11-10",
            "--out",
            str(tmp_path / "p"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    try:
        time.sleep(4.0)  # the straddle is on, its stop-losses are working
        sent = algoengine("command", "kill-switch", "--wait", "10", cwd=tmp_path)
        assert sent.returncode == 0, sent.stderr
        assert "acted on by" in sent.stdout and "kill switch on" in sent.stdout
        time.sleep(1.0)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "orders still working" not in out  # the kill switch cancelled the stop-losses
    with sqlite3.connect(tmp_path / "algoengine.sqlite") as db:
        [(kind, acted_ns, result)] = db.execute(
            "SELECT kind, acted_ns, result FROM commands"
        ).fetchall()
        runs = db.execute("SELECT mode, status, stop_reason FROM strategy_runs").fetchall()
    assert kind == "KillSwitch" and acted_ns is not None and "orders cancelled" in result
    assert runs == [("paper", "stopped", "signal SIGTERM")]
