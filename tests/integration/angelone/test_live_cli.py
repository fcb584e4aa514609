"""`algoengine run --broker angelone` and `algoengine broker status` as processes, against the
fake Angel One as a process: the real smartapi-python client inside the engine, nothing but
loopback, no secret printed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pyotp

DAY = "2026-11-10"
SECRET_KEYS = {
    "ANGEL_ONE_API_KEY": "test-api-key-123",
    "ANGEL_ONE_CLIENT_ID": "A123456",
    "ANGEL_ONE_PASSWORD": "4321",
    "ANGEL_ONE_TOTP_SECRET": pyotp.random_base32(32),
}


@contextmanager
def _fake_process(tmp_path: Path, anchor: int, speed: str) -> Iterator[dict[str, str]]:
    """The fake Angel One as its own process; yields the engine's environment aimed at it."""
    fake = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "algoengine.brokers.angelone.fake_server",
            "--api-key",
            SECRET_KEYS["ANGEL_ONE_API_KEY"],
            "--client-code",
            SECRET_KEYS["ANGEL_ONE_CLIENT_ID"],
            "--mpin",
            SECRET_KEYS["ANGEL_ONE_PASSWORD"],
            "--totp-secret",
            SECRET_KEYS["ANGEL_ONE_TOTP_SECRET"],
            "--day",
            DAY,
            "--speed",
            speed,
            "--anchor-wall-ns",
            str(anchor),
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert fake.stdout is not None
        urls = dict(fake.stdout.readline().split(maxsplit=1) for _ in range(4))
        yield {
            **os.environ,
            **SECRET_KEYS,
            "ANGEL_ONE_ROOT_URL": urls["root"].strip(),
            "ANGEL_ONE_FEED_URL": urls["feed"].strip(),
            "ANGEL_ONE_ORDER_FEED_URL": urls["order_feed"].strip(),
            "ANGEL_ONE_SCRIP_MASTER_URL": urls["scrip_master"].strip(),
            "ALGOENGINE_PUBLIC_IP_URL": "http://127.0.0.1:9/",  # loopback only
            "HTTPS_PROXY": "http://127.0.0.1:9",
            "NO_PROXY": "127.0.0.1,localhost",
        }
    finally:
        fake.send_signal(signal.SIGTERM)
        try:
            fake.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            fake.kill()


def _run_engine(
    tmp_path: Path, env: dict[str, str], anchor: int, speed: str, seconds: float, *extra: str
) -> tuple[str, str]:
    """`algoengine run --broker angelone ...` for ``seconds``, then SIGTERM; its output."""
    engine = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "algoengine.cli",
            "run",
            "--broker",
            "angelone",
            "--day",
            DAY,
            "--speed",
            speed,
            "--anchor-wall-ns",
            str(anchor),
            "--out",
            "live",
            *extra,
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(seconds)
    engine.send_signal(signal.SIGTERM)
    out, err = engine.communicate(timeout=60)
    assert engine.returncode == 0, err[-3000:]
    assert "stopped: signal SIGTERM" in out
    return out, err


def _no_secret_in(*texts: str) -> None:
    for text in texts:
        for key in ("ANGEL_ONE_API_KEY", "ANGEL_ONE_PASSWORD", "ANGEL_ONE_TOTP_SECRET"):
            assert SECRET_KEYS[key] not in text


def test_live_mode_trades_through_the_fake_and_status_shows_the_account(tmp_path: Path) -> None:
    anchor = time.time_ns() + 3_000_000_000
    with _fake_process(tmp_path, anchor, "300") as env:
        # the session opens, the straddle is sold at 09:20, stops placed
        out, err = _run_engine(tmp_path, env, anchor, "300", 3.0 + 5.0)
        fills = (tmp_path / "live" / "fills.csv").read_text().splitlines()
        assert sum(",entry " in line for line in fills) >= 2  # both legs filled at the broker
        status = subprocess.run(
            [sys.executable, "-m", "algoengine.cli", "broker", "status"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert status.returncode == 0, status.stderr[-2000:]
        assert "client code   A123456" in status.stdout and "logged out" in status.stdout
        assert "positions" in status.stdout and "public IP     unknown" in status.stdout
        _no_secret_in(out, err, status.stdout, status.stderr)
        # the client's log files (with secrets) are kept out
        assert not (tmp_path / "logs").exists()


def test_live_market_feed_drives_the_engine(tmp_path: Path) -> None:
    """`--market live`: the instrument master and the market websocket are the broker's; the
    engine's slices come from the binary ticks, and the straddle it sells is filled at the
    broker's book (whose prices the ticks carried)."""
    anchor = time.time_ns() + 3_000_000_000
    with _fake_process(tmp_path, anchor, "120") as env:
        # 09:15 + 12 s at 120x = 09:39: the 09:20 entry is long done
        out, err = _run_engine(tmp_path, env, anchor, "120", 3.0 + 12.0, "--market", "live")
        _no_secret_in(out, err)
        fills = (tmp_path / "live" / "fills.csv").read_text().splitlines()
        entries = [line for line in fills if ",entry " in line]
        assert len(entries) >= 2, (out[-2000:], err[-3000:])
        equity = (tmp_path / "live" / "equity.csv").read_text().splitlines()
        assert len(equity) > 20  # a point per slice of ticks: the feed drove the loop
        assert not (tmp_path / "logs").exists()
