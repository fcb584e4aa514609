"""The database URL, the engine's SQLite and PostgreSQL set-up, errors without secrets."""

from __future__ import annotations

import socket
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from algoengine.errors import ConfigurationError, ValidationError
from algoengine.persistence.db import (
    DEFAULT_DATABASE_URL,
    MIGRATIONS_DIR,
    database_url,
    ensure_schema,
    head_revision,
    make_engine,
    masked,
    write_transaction,
)


def test_the_environment_wins_then_the_configuration_then_the_default() -> None:
    env = {"ALGOENGINE_DATABASE_URL": "postgresql+psycopg://u:p@db:5432/algo"}
    assert database_url("sqlite:///conf.sqlite", env) == env["ALGOENGINE_DATABASE_URL"]
    assert database_url("sqlite:///conf.sqlite", {}) == "sqlite:///conf.sqlite"
    assert database_url(None, {}) == DEFAULT_DATABASE_URL == "sqlite:///algoengine.sqlite"
    assert database_url("  ", {"ALGOENGINE_DATABASE_URL": " "}) == DEFAULT_DATABASE_URL


def test_database_url_reads_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALGOENGINE_DATABASE_URL", "sqlite:///from-env.sqlite")
    assert database_url("sqlite:///conf.sqlite") == "sqlite:///from-env.sqlite"
    monkeypatch.delenv("ALGOENGINE_DATABASE_URL")
    assert database_url("sqlite:///conf.sqlite") == "sqlite:///conf.sqlite"


@pytest.mark.parametrize(
    "url", ["postgresql://u:pw@h/db", "postgres://u:pw@h/db", "postgresql+psycopg://u:pw@h/db"]
)
def test_postgresql_goes_through_psycopg3_with_pre_ping(url: str) -> None:
    engine = make_engine(url)  # no connection is made yet
    try:
        assert engine.url.drivername == "postgresql+psycopg"
        assert engine.dialect.driver == "psycopg"
        assert engine.pool._pre_ping is True
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    ("url", "match"),
    [
        ("mysql://u:secret@h/db", "unsupported database 'mysql'"),
        ("not a url secret", "not a database URL"),
        ("", "non-empty"),
        ("sqlite:////no/such/folder/x.sqlite", "does not exist"),
    ],
)
def test_unusable_urls_are_configuration_errors_without_the_password(url: str, match: str) -> None:
    with pytest.raises(ConfigurationError, match=match) as info:
        make_engine(url)
    assert "secret" not in str(info.value)
    assert "database_url" in str(info.value)


def test_bad_timeouts_name_the_field() -> None:
    with pytest.raises(ValidationError, match="busy_timeout_ms"):
        make_engine("sqlite://", busy_timeout_ms=-1)
    with pytest.raises(ValidationError, match="connect_timeout_s"):
        make_engine("sqlite://", connect_timeout_s=0)


def test_masked_hides_the_password() -> None:
    assert masked("postgresql+psycopg://algo:s3cr3t@db:5432/x") == (
        "postgresql+psycopg://algo:***@db:5432/x"
    )
    assert "s3cr3t" not in masked("postgresql://algo:s3cr3t@db/x")


def test_sqlite_connections_use_wal_foreign_keys_and_a_busy_timeout(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'a.sqlite'}", busy_timeout_ms=1234)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("PRAGMA journal_mode")).scalar_one() == "wal"
            assert conn.execute(text("PRAGMA foreign_keys")).scalar_one() == 1
            assert conn.execute(text("PRAGMA busy_timeout")).scalar_one() == 1234
    finally:
        engine.dispose()
    # WAL is a property of the file: a plain sqlite3 connection sees it too
    with sqlite3.connect(tmp_path / "a.sqlite") as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_sqlite_ddl_is_transactional(tmp_path: Path) -> None:
    # the sqlite3 driver alone would commit CREATE TABLE at once; our BEGIN makes it roll back
    engine = make_engine(f"sqlite:///{tmp_path / 'a.sqlite'}")
    try:
        with pytest.raises(RuntimeError), write_transaction(engine) as conn:
            conn.execute(text("CREATE TABLE t (x INTEGER)"))
            raise RuntimeError("migration failed half-way")
        with engine.connect() as conn:
            names = conn.execute(text("SELECT name FROM sqlite_master")).scalars().all()
        assert "t" not in names
    finally:
        engine.dispose()


def test_sqlite_write_transactions_take_the_write_lock_up_front(tmp_path: Path) -> None:
    # BEGIN IMMEDIATE: a second writer waits (here: busy timeout 0, so it fails at once) even
    # before the first has written anything, instead of both reading and one failing later
    url = f"sqlite:///{tmp_path / 'a.sqlite'}"
    first, second = make_engine(url), make_engine(url, busy_timeout_ms=0)
    try:
        with first.begin() as conn:
            conn.execute(text("CREATE TABLE t (x INTEGER)"))
        with write_transaction(first):
            with pytest.raises(OperationalError, match="locked"), write_transaction(second):
                pass
            with second.connect() as reader:  # readers are never blocked (WAL)
                assert reader.execute(text("SELECT count(*) FROM t")).scalar_one() == 0
    finally:
        first.dispose()
        second.dispose()


def test_ensure_schema_on_an_unreachable_server_says_so_without_the_password() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    engine = make_engine(f"postgresql+psycopg://algo:hunter2@127.0.0.1:{port}/x")
    try:
        with pytest.raises(ConfigurationError, match="OperationalError") as info:
            ensure_schema(engine)
        assert "hunter2" not in str(info.value)
        assert f"127.0.0.1:{port}" in str(info.value)
    finally:
        engine.dispose()


def test_ensure_schema_on_sqlite_creates_the_file_and_the_schema(tmp_path: Path) -> None:
    path = tmp_path / "fresh.sqlite"
    engine = make_engine(f"sqlite:///{path}")
    try:
        assert ensure_schema(engine) == head_revision()
        assert path.is_file()
    finally:
        engine.dispose()


def test_the_migration_scripts_are_inside_the_package() -> None:
    import algoengine

    package = Path(algoengine.__file__).parent
    assert MIGRATIONS_DIR.is_relative_to(package)
    assert (MIGRATIONS_DIR / "env.py").is_file()
    assert (MIGRATIONS_DIR / "script.py.mako").is_file()
    assert (MIGRATIONS_DIR / "versions" / "0001_initial.py").is_file()
