"""Several real engine tasks against one PostgreSQL and one broker (a paper venue process),
sharing four strategies through leases, killed at random and replaced: no strategy ever has two
owners sending orders, none stays orphaned, none enters twice."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

from sqlalchemy import create_engine, text

from .conftest import PostgresServer

DAY = "2026-11-10"
SPEED = "600"  # a simulated minute every 0.1 s
TTL = 1.5
STRATEGIES = {"s1": "09:20:00", "s2": "09:40:00", "s3": "10:00:00", "s4": "10:20:00"}


def config(path: Path) -> None:
    lines = []
    for sid, entry in STRATEGIES.items():
        lines += [
            "[[strategies]]",
            f'strategy_id = "{sid}"',
            f'entry_time = "{entry}"',
            "leg_stop_loss_pct = 30.0",
            "",
        ]
    path.write_text("\n".join(lines))


def start(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, *args],
        cwd=cwd,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_tasks_killed_at_random_never_share_a_strategy(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    db_url = postgres_server.create_database(f"scale_{uuid.uuid4().hex[:8]}")
    config(tmp_path / "c.toml")
    t_open = time.time_ns() + 2_000_000_000
    anchor = str(t_open)
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
            "--config",
            "c.toml",
        ],
        tmp_path,
        {},
    )
    tasks: list[subprocess.Popen[str]] = []
    kills: list[tuple[int, str]] = []
    try:
        assert venue.stdout is not None
        line = venue.stdout.readline()
        assert line.startswith("listening on "), line
        url = line.split()[-1]
        env = {"ALGOENGINE_DATABASE_URL": db_url, "ALGOENGINE_CONFIG": "c.toml"}
        cmd = [
            "-m",
            "algoengine.cli",
            "run",
            "--broker",
            "paper-remote",
            "--scale-out",
            "--venue-url",
            url,
            "--anchor-wall-ns",
            anchor,
            "--speed",
            SPEED,
            "--day",
            DAY,
            "--lease-ttl",
            str(TTL),
        ]

        def spawn() -> None:
            k = len(tasks)
            log = (tmp_path / f"t{k}.log").open("w")
            tasks.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        *cmd,
                        "--out",
                        f"t{k}",
                        "--run-code",
                        f"TK{k:06d}",
                        "--log-level",
                        "INFO",
                    ],
                    cwd=tmp_path,
                    env={**os.environ, **env},
                    stdout=subprocess.PIPE,
                    stderr=log,
                    text=True,
                )
            )

        for _ in range(3):
            spawn()
        rng = random.Random(int(anchor))  # a different victim each run, logged in kills
        for at in (3.5, 8.0):  # seconds after the open: kill a live task at random, replace it
            time.sleep(max(0.0, t_open / 1e9 + at - time.time()))
            k = rng.choice([k for k, p in enumerate(tasks) if p.poll() is None])
            tasks[k].send_signal(signal.SIGKILL)
            tasks[k].wait(timeout=10)
            kills.append((time.time_ns(), f"TK{k:06d}"))
            spawn()
        time.sleep(max(0.0, t_open / 1e9 + 13.0 - time.time()))
    finally:
        for p in [*tasks, venue]:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in [*tasks, venue]:
            try:
                p.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
    db = create_engine(db_url)
    with db.connect() as c:
        orders = c.execute(
            text("SELECT client_order_id, strategy_id, tag, created_ns FROM orders")
        ).fetchall()
        runs = c.execute(
            text("SELECT run_id, strategy_id, started_ns FROM strategy_runs")
        ).fetchall()
    db.dispose()
    assert {s for _, s, _, _ in orders} == set(STRATEGIES)  # every strategy traded
    # (a) never two owners: per strategy, the orders' senders (client id = run code + seq)
    # follow one another in blocks, never interleaved
    for sid in STRATEGIES:
        mine = sorted((o for o in orders if o[1] == sid), key=lambda o: (o[3], o[0]))
        senders = [o[0][:8] for o in mine]
        blocks = [s for k, s in enumerate(senders) if k == 0 or s != senders[k - 1]]
        assert len(blocks) == len(set(blocks)), (sid, senders)
    # (b) none orphaned: each strategy the killed task held moved to another task within the
    # lease's ttl and a margin (heartbeats every ttl/3, a whole ttl before a strategy counts
    # as orphaned beyond the fair share)
    for killed_ns, victim in kills:
        for sid in STRATEGIES:
            owners = sorted((st, r) for r, s, st in runs if s == sid)
            before = [r for st, r in owners if st < killed_ns]
            if not before or before[-1] != victim:
                continue
            after = [st for st, r in owners if st > killed_ns]
            assert after, (sid, "never taken over")
            assert after[0] - killed_ns < 2 * TTL * 1e9 + 2e9, (sid, after[0] - killed_ns)
    # (c) none entered twice: one straddle (two entry orders) per strategy
    for sid in STRATEGIES:
        entries = [o for o in orders if o[1] == sid and o[2].startswith("entry")]
        assert len(entries) == 2, (sid, entries)
