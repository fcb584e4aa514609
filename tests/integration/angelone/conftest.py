"""Fixtures for the fake Angel One: one server per module on an accelerated clock, the REAL
``smartapi-python`` client imported with its import-time network call contained, and every
client run from a private temporary working directory (it writes ``./logs/<date>/app.log``
with secrets in it).

Containment: ``SmartConnect``'s class body calls ``requests.get('https://api.ipify.org')``
when ``SmartApi`` is first imported. The import runs with ``HTTPS_PROXY``/``HTTP_PROXY``
pointing at a closed loopback port, ``NO_PROXY`` covering loopback, and
``socket.create_connection`` refusing any non-loopback address, so nothing leaves the machine;
the environment is restored after the import.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from types import ModuleType
from typing import Any

import pyotp
import pytest

from algoengine.brokers.angelone.fake_server import FakeAngelOne
from algoengine.settings import Settings

DAY = date(2026, 11, 4)  # a Wednesday: a trading day, not a NIFTY expiry
SPEED = 120.0  # a session minute is 0.5 s
API_KEY = "fakeApiKey01"
CLIENT = "F12345"
MPIN = "4321"
TOTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"  # base32, 160 bits
_LOOPBACK = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True)
class SmartApiModules:
    SmartConnect: Any
    SmartWebSocketV2: Any
    SmartWebSocketOrderUpdate: Any
    exceptions: ModuleType


@pytest.fixture(scope="session")
def smartapi() -> SmartApiModules:
    """The real client's classes, imported with the network contained."""
    real = socket.create_connection
    attempts: list[Any] = []

    def loopback_only(address: Any, *args: Any, **kwargs: Any) -> socket.socket:
        if address[0] not in _LOOPBACK:
            attempts.append(address)
            raise OSError(f"test guard: no connection to {address[0]!r}")
        return real(address, *args, **kwargs)

    real_getaddrinfo = socket.getaddrinfo

    def resolve_loopback_only(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host not in _LOOPBACK:  # urllib3 resolves before it connects
            attempts.append((host,))
            raise socket.gaierror(f"test guard: no lookup of {host!r}")
        return real_getaddrinfo(host, *args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(socket, "getaddrinfo", resolve_loopback_only)
        mp.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
        mp.setenv("HTTP_PROXY", "http://127.0.0.1:9")
        mp.setenv("NO_PROXY", "127.0.0.1,localhost")
        mp.setattr(socket, "create_connection", loopback_only)
        import SmartApi.smartExceptions as exceptions  # noqa: N813
        from SmartApi import SmartConnect
        from SmartApi.smartWebSocketOrderUpdate import SmartWebSocketOrderUpdate
        from SmartApi.smartWebSocketV2 import SmartWebSocketV2

    # the call went to the dead proxy (refused) or was stopped by the guard: never out
    assert all(a[0] in ("api.ipify.org",) for a in attempts), attempts
    return SmartApiModules(SmartConnect, SmartWebSocketV2, SmartWebSocketOrderUpdate, exceptions)


@pytest.fixture(scope="module")
def fake_server() -> Iterator[FakeAngelOne]:
    # the session opened 10 real seconds ago: ~20 session minutes of bars exist
    fake = FakeAngelOne(
        Settings(),
        DAY,
        speed=SPEED,
        anchor_wall_ns=time.time_ns() - 10_000_000_000,
        api_key=API_KEY,
        client_code=CLIENT,
        mpin=MPIN,
        totp_secret=TOTP_SECRET,
    )
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def fake(fake_server: FakeAngelOne) -> Iterator[FakeAngelOne]:
    """The module's server; faults and rate limits are reset after each test."""
    yield fake_server
    fake_server.clear_faults()
    fake_server.add_fault({"kind": "rate_limits", "enabled": False})


@pytest.fixture
def client_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Run the client in a private directory; nothing may appear in the original one."""
    before = Path.cwd()
    had_logs = (before / "logs").exists()
    work = tmp_path / "client"
    work.mkdir()
    monkeypatch.chdir(work)
    yield work
    assert (before / "logs").exists() == had_logs, "the client wrote logs outside its tmp dir"


@pytest.fixture
def connect(smartapi: SmartApiModules, fake: FakeAngelOne, client_cwd: Path) -> Any:
    """A factory of logged-in SmartConnect clients (timeout 2 s)."""

    def make(login: bool = True, timeout: int = 2) -> Any:
        api = smartapi.SmartConnect(api_key=API_KEY, root=fake.root_url, timeout=timeout)
        if login:
            answer = api.generateSession(CLIENT, MPIN, pyotp.TOTP(TOTP_SECRET).now())
            assert answer["status"] is True, answer
        return api

    return make
