"""Two live engine tasks (`run --broker angelone --market live --scale-out`) sharing two
strategies through leases in a real PostgreSQL, trading through the fake Angel One as a
process; one task is killed with SIGKILL mid-session. Each strategy has one sender at a time,
the survivor takes the orphan over (state rebuilt from the journal and reconciled with the
broker's books), no strategy enters twice and no order is at the broker twice."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

from sqlalchemy import create_engine, text

from ..conftest import PostgresServer
from .test_live_cli import DAY, _fake_process

SPEED = "120"  # a session minute is 0.5 s
TTL = 1.5
STRATEGIES = {"s1": "09:20:00", "s2": "09:25:00"}


def test_two_live_tasks_share_the_strategies_and_survive_a_kill(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    db_url = postgres_server.create_database(f"live_{uuid.uuid4().hex[:8]}")
    lines = []
    for sid, entry in STRATEGIES.items():
        lines += ["[[strategies]]", f'strategy_id = "{sid}"', f'entry_time = "{entry}"', ""]
    (tmp_path / "c.toml").write_text("\n".join(lines))
    t_open = time.time_ns() + 5_000_000_000  # the tasks log in and connect first
    anchor = str(t_open)
    tasks: list[subprocess.Popen[str]] = []
    killed_ns = 0
    with _fake_process(tmp_path, t_open, SPEED) as env:
        env = {**env, "ALGOENGINE_DATABASE_URL": db_url, "ALGOENGINE_CONFIG": "c.toml"}
        try:
            for k in range(2):
                tasks.append(
                    subprocess.Popen(
                        [
                            sys.executable,
                            "-m",
                            "algoengine.cli",
                            "run",
                            "--broker",
                            "angelone",
                            "--market",
                            "live",
                            "--scale-out",
                            "--anchor-wall-ns",
                            anchor,
                            "--speed",
                            SPEED,
                            "--day",
                            DAY,
                            "--lease-ttl",
                            str(TTL),
                            "--run-code",
                            f"LT{k:06d}",
                            "--out",
                            f"t{k}",
                        ],
                        cwd=tmp_path,
                        env=env,
                        stdout=subprocess.PIPE,
                        stderr=(tmp_path / f"t{k}.log").open("w"),
                        text=True,
                    )
                )
            # both entries done (09:25 is 5 s after the open; 5 minutes more): kill one task
            time.sleep(max(0.0, t_open / 1e9 + 7.5 - time.time()))
            tasks[0].send_signal(signal.SIGKILL)
            tasks[0].wait(timeout=10)
            killed_ns = time.time_ns()
            time.sleep(max(0.0, t_open / 1e9 + 14.0 - time.time()))
        finally:
            for p in tasks:
                if p.poll() is None:
                    p.send_signal(signal.SIGTERM)
            outs = []
            for p in tasks:
                try:
                    outs.append(p.communicate(timeout=60)[0])
                except subprocess.TimeoutExpired:
                    p.kill()
                    outs.append("")
        assert tasks[1].returncode == 0, (tmp_path / "t1.log").read_text()[-3000:]
        assert "stopped: signal SIGTERM" in outs[1]
        book = _broker_book(env, tmp_path)
    db = create_engine(db_url)
    with db.connect() as c:
        orders = c.execute(
            text("SELECT client_order_id, strategy_id, tag, created_ns, status FROM orders")
        ).fetchall()
        runs = c.execute(
            text("SELECT run_id, strategy_id, started_ns FROM strategy_runs")
        ).fetchall()
    db.dispose()
    assert {o[1] for o in orders} == set(STRATEGIES)  # both traded
    for sid in STRATEGIES:  # one sender at a time: the senders' blocks never interleave
        mine = sorted((o for o in orders if o[1] == sid), key=lambda o: (o[3], o[0]))
        senders = [o[0][:8] for o in mine]
        blocks = [s for k, s in enumerate(senders) if k == 0 or s != senders[k - 1]]
        assert len(blocks) == len(set(blocks)), (sid, senders)
        entries = [o for o in mine if o[2].startswith("entry")]
        assert len(entries) == 2, (sid, entries)  # entered once, by whoever held it
    # the killed task's strategies went to the survivor within the lease's ttl and a margin
    victims = {s for r, s, st in runs if r == "LT000000" and st < killed_ns}
    assert victims, "the killed task held no strategy"
    for sid in victims:
        after = sorted(st for r, s, st in runs if s == sid and r == "LT000001" and st > killed_ns)
        assert after and after[0] - killed_ns < 2 * TTL * 1e9 + 3e9, (sid, after)
    # at the broker: every order once, all of them known to the database
    tags = Counter(r["ordertag"] for r in book)
    assert tags and all(n == 1 for n in tags.values()), tags
    assert set(tags) <= {o[0] for o in orders}


def _broker_book(env: dict[str, str], cwd: Path) -> list[dict[str, object]]:
    """Angel One's order book as the fake holds it, read with the adapter."""
    code = (
        "import json\n"
        "from algoengine.brokers.angelone.adapter import AngelOneBroker\n"
        "from algoengine.brokers.angelone.credentials import load_credentials\n"
        "b = AngelOneBroker(load_credentials(), [])\n"
        "b.login()\n"
        "print(json.dumps(b._book()))\n"
        "b.close()\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    import json

    return list(json.loads(out.stdout.strip().splitlines()[-1]))
