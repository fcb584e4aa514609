"""Integration fixtures: a real PostgreSQL server for the session, and ``db_url``, one fresh
database per test, parametrized over SQLite and PostgreSQL so that the same tests run on both.

PostgreSQL: the binaries are found on PATH, else in ``/usr/lib/postgresql/<version>/bin``
(highest version first), or in ``ALGOENGINE_PG_BIN``. The server is started once per session
in a temporary folder: ``initdb`` with trust authentication, listening only on 127.0.0.1 on a
free port, its unix socket in the same folder, durability off (``fsync``, ``full_page_writes``,
``synchronous_commit``: test data need not survive a power cut). As root (initdb refuses to
run as root) the folder belongs to the ``postgres`` user and the binaries run through
``runuser``. The server is stopped and the folder removed at the end, also after failures.
Without binaries the PostgreSQL half of the tests is skipped, saying why.

``ALGOENGINE_TEST_POSTGRES_URL`` (a superuser URL, e.g. a CI service container) makes the tests
use that server instead of starting one.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import NullPool

from algoengine.persistence.db import make_engine, upgrade

PG_USER = "postgres"


@dataclass
class PostgresServer:
    """A PostgreSQL server the tests may create and drop databases on."""

    admin_url: URL

    def _admin(self) -> Engine:
        return create_engine(self.admin_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)

    def create_database(self, name: str) -> str:
        admin = self._admin()
        try:
            with admin.connect() as conn:
                conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        finally:
            admin.dispose()
        return self.admin_url.set(database=name).render_as_string(hide_password=False)

    def drop_database(self, name: str) -> None:
        admin = self._admin()
        try:
            with admin.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            admin.dispose()


def _find_bin_dir() -> Path | None:
    candidates: list[Path] = []
    if os.environ.get("ALGOENGINE_PG_BIN"):
        candidates.append(Path(os.environ["ALGOENGINE_PG_BIN"]))
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)

    def version(p: str) -> float:
        try:
            return float(Path(p).parent.name)
        except ValueError:
            return 0.0

    candidates += [
        Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version)[::-1]
    ]
    for folder in candidates:
        if (folder / "initdb").is_file() and (folder / "pg_ctl").is_file():
            return folder
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class _Runner:
    """Runs the PostgreSQL binaries as the postgres user when we are root."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin_dir = bin_dir
        self.as_root = os.geteuid() == 0

    def __call__(self, tool: str, *args: str, timeout: float = 60) -> None:
        cmd = [str(self.bin_dir / tool), *args]
        if self.as_root:
            cmd = ["runuser", "-u", PG_USER, "--", *cmd]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0:
            raise RuntimeError(
                f"{tool} failed ({proc.returncode}): {proc.stderr.strip() or proc.stdout.strip()}"
            )


def _start_server(bin_dir: Path) -> Iterator[PostgresServer]:
    run = _Runner(bin_dir)
    if run.as_root:
        try:
            pw = pwd.getpwnam(PG_USER)
        except KeyError:
            pytest.skip(f"running as root and there is no {PG_USER!r} user to run PostgreSQL")
        if shutil.which("runuser") is None:
            pytest.skip("running as root and runuser is missing: cannot run PostgreSQL")
    base = Path(tempfile.mkdtemp(prefix="algoengine-pg-"))
    data = base / "data"
    log = base / "server.log"
    started = False
    try:
        if run.as_root:
            os.chown(base, pw.pw_uid, pw.pw_gid)
        run(
            "initdb",
            "-D",
            str(data),
            "-A",
            "trust",
            "-U",
            PG_USER,
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
            "--no-instructions",
        )
        for attempt in range(3):
            port = _free_port()
            options = (
                f"-c listen_addresses=127.0.0.1 -p {port} -k {base} -c fsync=off "
                "-c synchronous_commit=off -c full_page_writes=off -c max_connections=40"
            )
            try:
                run(
                    "pg_ctl",
                    "-D",
                    str(data),
                    "-l",
                    str(log),
                    "-w",
                    "-t",
                    "30",
                    "-o",
                    options,
                    "start",
                )
                started = True
                break
            except RuntimeError:
                if attempt == 2:  # the port may have been taken between probe and start
                    raise
        url = URL.create(
            "postgresql+psycopg", username=PG_USER, host="127.0.0.1", port=port, database="postgres"
        )
        yield PostgresServer(admin_url=url)
    except RuntimeError as exc:
        tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
        raise RuntimeError(f"{exc}\n--- server log ---\n{tail}") from exc
    finally:
        if started:
            with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
                run("pg_ctl", "-D", str(data), "-m", "immediate", "-w", "stop", timeout=30)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A running PostgreSQL server for the whole session (skips if none can be had)."""
    external = os.environ.get("ALGOENGINE_TEST_POSTGRES_URL")
    if external:
        yield PostgresServer(admin_url=make_url(external).set(drivername="postgresql+psycopg"))
        return
    bin_dir = _find_bin_dir()
    if bin_dir is None:
        pytest.skip(
            "no PostgreSQL server binaries (initdb, pg_ctl) on PATH or in "
            "/usr/lib/postgresql/*/bin: install postgresql-15 or set ALGOENGINE_PG_BIN"
        )
    yield from _start_server(bin_dir)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of a fresh, empty database: a SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'algoengine.sqlite'}"
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    name = f"algoengine_test_{uuid.uuid4().hex[:12]}"
    url = server.create_database(name)
    try:
        yield url
    finally:
        server.drop_database(name)


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """An engine on the fresh database of ``db_url`` (no schema yet)."""
    eng = make_engine(db_url)
    try:
        yield eng
    finally:
        eng.dispose()


@pytest.fixture
def migrated(engine: Engine) -> Engine:
    """``engine`` with the schema at the newest revision."""
    upgrade(engine)
    return engine


# ---- a server of one test's own, which the test may stop and start ---------------------------


@dataclass
class StoppablePostgres:
    """A PostgreSQL server for one test, which it may stop (as an outage) and start again on
    the same port with the same data (see :func:`stoppable_postgres`)."""

    run: _Runner
    base: Path
    port: int
    running: bool = False

    @property
    def data(self) -> Path:
        return self.base / "data"

    @property
    def log(self) -> Path:
        return self.base / "server.log"

    @property
    def admin_url(self) -> URL:
        return URL.create(
            "postgresql+psycopg",
            username=PG_USER,
            host="127.0.0.1",
            port=self.port,
            database="postgres",
        )

    def start(self) -> None:
        """Start the server (waits until it takes connections)."""
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.base} -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=40"
        )
        try:
            self.run(
                "pg_ctl",
                "-D",
                str(self.data),
                "-l",
                str(self.log),
                "-w",
                "-t",
                "30",
                "-o",
                options,
                "start",
            )
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}\n--- server log ---\n{self.server_log()}") from exc
        self.running = True

    def stop(self, mode: str = "fast") -> None:
        """Stop the server: ``fast`` (connections are cut, as a failover does) or
        ``immediate`` (as a crash)."""
        self.run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "30", "stop")
        self.running = False

    def create_database(self, name: str) -> str:
        """A new database; its URL (with credentials)."""
        return PostgresServer(admin_url=self.admin_url).create_database(name)

    def server_log(self) -> str:
        return self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""


@pytest.fixture
def stoppable_postgres() -> Iterator[StoppablePostgres]:
    """A PostgreSQL server started for one test alone (``initdb`` in a temporary folder, on a
    free port), which the test may stop and start; removed afterwards. Skipped without server
    binaries, and when ``ALGOENGINE_TEST_POSTGRES_URL`` names an external server (which the
    tests cannot stop)."""
    if os.environ.get("ALGOENGINE_TEST_POSTGRES_URL"):
        pytest.skip("ALGOENGINE_TEST_POSTGRES_URL: an external server cannot be stopped")
    bin_dir = _find_bin_dir()
    if bin_dir is None:
        pytest.skip(
            "no PostgreSQL server binaries (initdb, pg_ctl) on PATH or in "
            "/usr/lib/postgresql/*/bin: install postgresql-15 or set ALGOENGINE_PG_BIN"
        )
    run = _Runner(bin_dir)
    if run.as_root and (shutil.which("runuser") is None or not _has_user(PG_USER)):
        pytest.skip(f"running as root without runuser or a {PG_USER!r} user: cannot run PostgreSQL")
    base = Path(tempfile.mkdtemp(prefix="algoengine-pg-stoppable-"))
    server = StoppablePostgres(run=run, base=base, port=_free_port())
    try:
        if run.as_root:
            pw = pwd.getpwnam(PG_USER)
            os.chown(base, pw.pw_uid, pw.pw_gid)
        run(
            "initdb",
            "-D",
            str(server.data),
            "-A",
            "trust",
            "-U",
            PG_USER,
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
            "--no-instructions",
        )
        for attempt in range(3):
            try:
                server.start()
                break
            except RuntimeError:
                if attempt == 2:  # the port may have been taken between probe and start
                    raise
                server.port = _free_port()
        yield server
    finally:
        if server.running:
            with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
                server.stop("immediate")
        shutil.rmtree(base, ignore_errors=True)


def _has_user(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True
