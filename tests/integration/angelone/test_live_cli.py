"""`algoengine run --broker angelone` and `algoengine broker status` as processes, against the
fake Angel One as a process: the real smartapi-python client inside the engine, nothing but
loopback, no secret printed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyotp

DAY = "2026-11-10"
SECRET_KEYS = {
    "ANGEL_ONE_API_KEY": "test-api-key-123",
    "ANGEL_ONE_CLIENT_ID": "A123456",
    "ANGEL_ONE_PASSWORD": "4321",
    "ANGEL_ONE_TOTP_SECRET": pyotp.random_base32(32),
}


def test_live_mode_trades_through_the_fake_and_status_shows_the_account(tmp_path: Path) -> None:
    anchor = time.time_ns() + 3_000_000_000
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
            "300",
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
        env = {
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
                "300",
                "--anchor-wall-ns",
                str(anchor),
                "--out",
                "live",
            ],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(3.0 + 5.0)  # the session opens, the straddle is sold at 09:20, stops placed
        engine.send_signal(signal.SIGTERM)
        out, err = engine.communicate(timeout=60)
        assert engine.returncode == 0, err[-2000:]
        assert "stopped: signal SIGTERM" in out
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
        for text in (out, err, status.stdout, status.stderr):
            for key in ("ANGEL_ONE_API_KEY", "ANGEL_ONE_PASSWORD", "ANGEL_ONE_TOTP_SECRET"):
                assert SECRET_KEYS[key] not in text
        assert not (
            tmp_path / "logs"
        ).exists()  # the client's log files (with secrets) are kept out
    finally:
        fake.send_signal(signal.SIGTERM)
        try:
            fake.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            fake.kill()
