"""kill -9 of a real engine process in the middle of a session, against a paper venue in its
own process and a real PostgreSQL: the restarted engine rebuilds from the database, reconciles
with the venue by client order id and carries on. No order is sent twice, no fill is lost, no
position is forgotten."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

from sqlalchemy import create_engine, text

from .conftest import PostgresServer

DAY = "2026-11-10"
SPEED = "1000"  # the session's 375 minutes in 22.5 s


def start(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, *args],
        cwd=cwd,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def get(url: str) -> dict:  # type: ignore[type-arg]
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=5) as r:
        return json.loads(r.read())  # type: ignore[no-any-return]


def test_kill_minus_9_mid_session_and_carry_on(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    db_url = postgres_server.create_database(f"crash_{uuid.uuid4().hex[:8]}")
    anchor = str(time.time_ns() + 2_000_000_000)  # the session opens in 2 s
    venue = start(
        [
            "-m",
            "algoengine.brokers.paper.server",
            "--day",
            DAY,
            "--speed",
            SPEED,
            "--anchor-wall-ns",
            anchor,
            "--port",
            "0",
        ],
        tmp_path,
        {},
    )
    engines: list[subprocess.Popen[str]] = []
    try:
        assert venue.stdout is not None
        line = venue.stdout.readline()
        assert line.startswith("listening on "), line + venue.stderr.read()  # type: ignore[union-attr]
        url = line.split()[-1]
        env = {"ALGOENGINE_DATABASE_URL": db_url}
        run = [
            "-m",
            "algoengine.cli",
            "run",
            "--broker",
            "paper-remote",
            "--venue-url",
            url,
            "--anchor-wall-ns",
            anchor,
            "--speed",
            SPEED,
            "--day",
            DAY,
        ]
        first = start([*run, "--out", "o1"], tmp_path, env)
        engines.append(first)
        time.sleep(2.0 + 2.4)  # 09:15 + 40 simulated minutes: the straddle is on, stops working
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        assert first.returncode == -signal.SIGKILL

        db = create_engine(db_url)
        with db.connect() as c:
            crashed = c.execute(text("SELECT run_id, status FROM strategy_runs")).fetchall()
            before = c.execute(text("SELECT count(*) FROM orders WHERE tag LIKE 'entry%'")).scalar()
        assert [s for _, s in crashed] == ["running"]  # it had no chance to say anything
        assert before == 2

        second = start([*run, "--out", "o2"], tmp_path, env)
        engines.append(second)
        out, err = second.communicate(timeout=90)
        assert second.returncode == 0, err
        assert "recovered runs" in out, out
        assert "no open positions" in out, out

        book = get(f"{url}/book")
        with db.connect() as c:
            runs = dict(c.execute(text("SELECT run_id, status FROM strategy_runs")).fetchall())
            orders = c.execute(
                text("SELECT client_order_id, tag, status, filled_qty FROM orders")
            ).fetchall()
            fills = c.execute(text("SELECT trade_id, client_order_id, qty FROM fills")).fetchall()
            pos = c.execute(
                text(
                    "SELECT token, sum(CASE WHEN side='BUY' THEN qty ELSE -qty END) "
                    "FROM fills GROUP BY token"
                )
            ).fetchall()
        db.dispose()
    finally:
        for p in [*engines, venue]:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.communicate(timeout=20)
                except subprocess.TimeoutExpired:
                    p.kill()
    assert sorted(runs.values()) == ["crashed", "stopped"]
    # no order twice: one straddle's entries for the day, every id once
    entries = [o for o in orders if o[1].startswith("entry")]
    assert len(entries) == 2
    assert len({o[0] for o in orders}) == len(orders)
    # no fill lost: the database has exactly the venue's trade book
    assert {(f[0], f[1]) for f in fills} == {
        (t["trade_id"], t["client_order_id"]) for t in book["trades"]
    }
    # no position forgotten: everything bought back by the end, nothing working at the venue
    assert all(q == 0 for _, q in pos), pos
    assert book["orders"] == []
