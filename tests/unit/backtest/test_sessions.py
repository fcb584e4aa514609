"""Session after session (`algoengine run --continuous`): which session comes next and when
to start for it; paper days played one after another; a live service waiting for the next
open and stopped cleanly by SIGTERM while it waits."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from algoengine.backtest.runner import next_session, run_sessions
from algoengine.errors import ValidationError
from algoengine.market.calendar import TradingCalendar
from algoengine.settings import Settings

IST = timezone(timedelta(hours=5, minutes=30))
CAL = TradingCalendar([date(2026, 11, 24)])  # a Tuesday holiday


def at(d: date, h: int, m: int) -> int:
    return int(datetime(d.year, d.month, d.day, h, m, tzinfo=IST).timestamp() * 1e9)


@pytest.mark.parametrize(
    ("now", "day", "start"),
    [
        # before the open: that day's session, 10 min before its 09:15 open
        (at(date(2026, 11, 23), 7, 0), date(2026, 11, 23), at(date(2026, 11, 23), 9, 5)),
        # inside the lead: start now
        (at(date(2026, 11, 23), 9, 10), date(2026, 11, 23), at(date(2026, 11, 23), 9, 10)),
        # under way: join it now
        (at(date(2026, 11, 23), 11, 0), date(2026, 11, 23), at(date(2026, 11, 23), 11, 0)),
        # after the close: the next trading day (the 24th is a holiday)
        (at(date(2026, 11, 23), 15, 30), date(2026, 11, 25), at(date(2026, 11, 25), 9, 5)),
        # Saturday: Monday
        (at(date(2026, 11, 28), 10, 0), date(2026, 11, 30), at(date(2026, 11, 30), 9, 5)),
    ],
)
def test_the_next_session_and_when_to_start_for_it(now: int, day: date, start: int) -> None:
    assert next_session(CAL, now, 600.0) == (day, start)


def test_paper_sessions_play_one_after_another(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    seen: list[str] = []
    results = run_sessions(
        Settings(),
        sessions=2,
        day=date(2026, 11, 6),  # a Friday: then Monday the 9th
        speed=5000.0,
        out_dir=tmp_path / "p",
        install_signal_handlers=False,
        on_result=lambda r: seen.append(str(r.days[0])),
    )
    assert seen == ["2026-11-06", "2026-11-09"]
    assert [r.stop_reason for r in results] == ["session ended"] * 2
    for d in seen:
        fills = (tmp_path / "p" / d / "fills.csv").read_text().splitlines()
        assert any(",entry CE" in line for line in fills), d
    # two runs, each with its own run code (fresh client order ids)
    codes = {r.engine.config.run_code for r in results}
    assert len(codes) == 2


def test_bad_session_counts_are_refused_by_name() -> None:
    for bad in (0, -1, True, 1.5):
        with pytest.raises(ValidationError) as err:
            run_sessions(Settings(), sessions=bad)  # type: ignore[arg-type]
        assert err.value.field == "sessions"
    with pytest.raises(ValidationError) as err:
        run_sessions(Settings(), sessions=1, lead_s=-5)
    assert err.value.field == "lead_s"


def test_a_live_service_waits_for_the_next_open_and_stops_on_sigterm(tmp_path: Path) -> None:
    """The next three weeks are holidays: the service waits (no login, no session) and a
    SIGTERM ends the wait at once, cleanly."""
    today = datetime.now(IST).date()
    holidays = ", ".join(f'"{today + timedelta(days=k)}"' for k in range(22))
    (tmp_path / "cfg.toml").write_text(f"[market.synthetic]\nholidays = [{holidays}]\n")
    dead = "http://127.0.0.1:9"
    env = {
        **os.environ,
        "ANGEL_ONE_API_KEY": "k",
        "ANGEL_ONE_CLIENT_ID": "C1",
        "ANGEL_ONE_PASSWORD": "1234",
        "ANGEL_ONE_TOTP_SECRET": "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP",
        "ANGEL_ONE_ROOT_URL": dead,
        "ANGEL_ONE_FEED_URL": "ws://127.0.0.1:9",
        "ANGEL_ONE_ORDER_FEED_URL": "ws://127.0.0.1:9",
        "ANGEL_ONE_SCRIP_MASTER_URL": dead + "/master.json",
        "HTTPS_PROXY": dead,
        "NO_PROXY": "127.0.0.1,localhost",
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "algoengine.cli",
            "run",
            "--config",
            str(tmp_path / "cfg.toml"),
            "--broker",
            "angelone",
            "--market",
            "live",
            "--continuous",
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(3.0)
    if proc.poll() is not None:
        raise AssertionError(proc.communicate()[1][-2000:])  # it should still be waiting
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err[-2000:]
    assert time.monotonic() - t0 < 5.0
    first_day = today + timedelta(days=22)
    while first_day.weekday() >= 5:
        first_day += timedelta(days=1)
    assert f"waiting for the next session: {first_day}, starting {first_day} 09:05 IST" in out
    assert "session " + str(first_day) not in out and "Net P&L" not in out  # none ran
