"""Database connection and schema: the URL, the SQLAlchemy engine, and the Alembic migrations.

The URL
-------
``ALGOENGINE_DATABASE_URL`` wins, else the configuration's ``database_url``, else
``sqlite:///algoengine.sqlite`` (a file in the working directory: zero set-up). Supported:

- SQLite: ``sqlite:///relative/path.sqlite``, ``sqlite:////absolute/path.sqlite``,
  ``sqlite://`` (in memory; tests only). Every connection gets WAL journal mode (readers never
  block the writer), ``foreign_keys=ON`` and a busy timeout; SQLAlchemy, not the ``sqlite3``
  driver, emits ``BEGIN`` so that DDL is transactional (a failed migration leaves nothing
  half-done) and writes start with ``BEGIN IMMEDIATE`` (a writer waits for the lock up front
  instead of failing on a read-to-write upgrade).
- PostgreSQL 15 through psycopg 3: ``postgresql+psycopg://user:password@host:5432/db``
  (``postgresql://`` and ``postgres://`` are read as psycopg 3, the driver we ship). Pooled
  connections are checked before use (``pool_pre_ping``: a restarted server is survived) and a
  connection attempt gives up after ``connect_timeout`` seconds.

The schema
----------
Alembic migrations ship inside the package (``algoengine/persistence/migrations``); the
Alembic configuration is built in code, so no ``alembic.ini`` is needed on disk and
``algoengine db upgrade`` works from a wheel. :func:`ensure_schema` is what the engine calls at
start: an empty database is migrated to the newest revision; a database at an older revision
is refused unless ``upgrade_outdated`` (production migrates as a deliberate step, before the
new tasks start); a database at a revision this code does not know (written by a newer
algoengine) is always refused. Migrations on PostgreSQL hold an advisory lock, so that several
engine tasks starting together migrate once.

Passwords never appear in errors or output: URLs are shown with the password masked.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import Connection, Engine, create_engine, event, inspect
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.pool import ConnectionPoolEntry

from algoengine.errors import ConfigurationError, ValidationError
from algoengine.persistence.models import Base

__all__ = [
    "DEFAULT_DATABASE_URL",
    "ENV_VAR",
    "MIGRATIONS_DIR",
    "current_revision",
    "database_error",
    "database_url",
    "downgrade",
    "ensure_schema",
    "head_revision",
    "make_engine",
    "masked",
    "migrations_config",
    "upgrade",
    "write_transaction",
]

#: The environment variable that overrides the configured URL.
ENV_VAR = "ALGOENGINE_DATABASE_URL"
#: A SQLite file in the working directory.
DEFAULT_DATABASE_URL = "sqlite:///algoengine.sqlite"
#: The Alembic script directory, inside the installed package.
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

#: Any PostgreSQL advisory-lock key of our own (``hash('algoengine.migrations')``, fixed).
_MIGRATION_LOCK_KEY = 0x616C676F_6D696772  # "algomigr"
#: Execution option that makes the SQLite ``begin`` hook emit ``BEGIN IMMEDIATE``.
_WRITE_OPTION = "algoengine_write"

_SQLITE_DRIVERS = frozenset({"sqlite", "sqlite+pysqlite"})
_POSTGRES_DRIVERS = frozenset({"postgresql", "postgres", "postgresql+psycopg"})

T = TypeVar("T")

log = logging.getLogger(__name__)


def database_url(settings_url: str | None = None, env: Mapping[str, str] | None = None) -> str:
    """The database URL to use.

    Parameters
    ----------
    settings_url
        The configuration's ``database_url`` (``None``: not configured).
    env
        The environment (default ``os.environ``); its ``ALGOENGINE_DATABASE_URL``, when set
        and not blank, wins.

    Returns
    -------
    str
        The URL, else :data:`DEFAULT_DATABASE_URL`.
    """
    environ = os.environ if env is None else env
    from_env = environ.get(ENV_VAR, "").strip()
    if from_env:
        return from_env
    if settings_url is not None and settings_url.strip():
        return settings_url.strip()
    return DEFAULT_DATABASE_URL


def _parse(url: str | URL) -> URL:
    """Parse and normalise a URL (PostgreSQL -> psycopg 3); ConfigurationError if unusable."""
    if isinstance(url, URL):
        parsed = url
    else:
        if not isinstance(url, str) or not url.strip():
            raise ConfigurationError(f"database_url: must be a non-empty URL, got {url!r}")
        try:
            parsed = make_url(url.strip())
        except ArgumentError:
            # the text may hold a password: do not echo it
            raise ConfigurationError(
                "database_url: not a database URL (expected sqlite:///path or "
                "postgresql+psycopg://user:password@host:port/db)"
            ) from None
    if parsed.drivername in _POSTGRES_DRIVERS:
        return parsed.set(drivername="postgresql+psycopg")
    if parsed.drivername in _SQLITE_DRIVERS:
        return parsed.set(drivername="sqlite")
    raise ConfigurationError(
        f"database_url: unsupported database {parsed.drivername!r} "
        f"({masked(parsed)}); use sqlite:///path or postgresql+psycopg://..."
    )


def masked(url: str | URL) -> str:
    """The URL as text with its password replaced by ``***`` (safe to print or log)."""
    try:
        parsed = url if isinstance(url, URL) else make_url(url)
    except ArgumentError:
        return "<unparsable URL>"
    return parsed.render_as_string(hide_password=True)


def _json_dumps(value: Any) -> str:
    # NaN and infinities are not JSON: PostgreSQL refuses them, SQLite would store them; refuse
    # them everywhere so that both databases behave the same
    return json.dumps(value, allow_nan=False, ensure_ascii=False, separators=(",", ":"))


def make_engine(
    url: str | URL,
    *,
    busy_timeout_ms: int = 5_000,
    connect_timeout_s: int = 10,
    echo: bool = False,
) -> Engine:
    """A SQLAlchemy engine for ``url``, set up for algoengine (see the module docstring).

    Parameters
    ----------
    url
        A SQLite or PostgreSQL URL (see :func:`database_url`).
    busy_timeout_ms
        SQLite: how long a statement waits for another connection's lock [ms].
    connect_timeout_s
        PostgreSQL: how long a connection attempt may take [s] (unless the URL's query sets
        ``connect_timeout``).
    echo
        Log every statement (debugging).

    Returns
    -------
    sqlalchemy.Engine

    Raises
    ------
    ConfigurationError
        An unparsable or unsupported URL, or a SQLite file whose folder does not exist.
    ValidationError
        A negative timeout.
    """
    if isinstance(busy_timeout_ms, bool) or not isinstance(busy_timeout_ms, int):
        raise ValidationError("busy_timeout_ms", busy_timeout_ms, "must be an integer")
    if busy_timeout_ms < 0:
        raise ValidationError("busy_timeout_ms", busy_timeout_ms, "must be >= 0")
    if isinstance(connect_timeout_s, bool) or not isinstance(connect_timeout_s, int):
        raise ValidationError("connect_timeout_s", connect_timeout_s, "must be an integer")
    if connect_timeout_s < 1:
        raise ValidationError("connect_timeout_s", connect_timeout_s, "must be >= 1")
    parsed = _parse(url)
    if parsed.drivername == "sqlite":
        return _sqlite_engine(parsed, busy_timeout_ms, echo)
    # keepalives and a statement timeout: a write stuck on a dead connection or a network
    # partition fails (into the journal's outage path) instead of hanging its thread
    connect_args: dict[str, Any] = {
        "application_name": "algoengine",
        "keepalives": 1,
        "keepalives_idle": 5,
        "keepalives_interval": 2,
        "keepalives_count": 3,
        "options": "-c statement_timeout=10000",
    }
    if "connect_timeout" not in parsed.query:
        connect_args["connect_timeout"] = connect_timeout_s
    return create_engine(
        parsed,
        pool_pre_ping=True,
        connect_args=connect_args,
        json_serializer=_json_dumps,
        echo=echo,
    )


def _sqlite_engine(url: URL, busy_timeout_ms: int, echo: bool) -> Engine:
    path = url.database
    if path and path != ":memory:" and not path.startswith("file:"):
        folder = Path(path).expanduser().resolve().parent
        if not folder.is_dir():
            raise ConfigurationError(
                f"database_url: folder {str(folder)!r} of the SQLite file does not exist"
            )
    engine = create_engine(url, json_serializer=_json_dumps, echo=echo)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        # SQLAlchemy emits BEGIN itself (see _on_begin), so that DDL is transactional
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
            _set_wal(cursor, busy_timeout_ms)
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")  # WAL: durable at checkpoints, fast
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        write = conn.get_execution_options().get(_WRITE_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


def _set_wal(cursor: Any, busy_timeout_ms: int) -> None:
    """Put the database in WAL mode (a setting stored in the file: only its first connection
    changes it). The switch needs a moment of exclusive access and SQLite answers "database
    is locked" without waiting when another connection is opening the new file at the same
    time, so it is retried until the busy timeout."""
    deadline = time.monotonic() + busy_timeout_ms / 1000.0
    while True:
        try:
            mode = str(cursor.execute("PRAGMA journal_mode").fetchone()[0]).lower()
            if mode not in ("wal", "memory"):  # "memory": an in-memory database
                cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(0.005)


@contextmanager
def write_transaction(bind: Engine | Connection) -> Iterator[Connection]:
    """A connection inside a write transaction, committed on success, rolled back on error.

    With an :class:`~sqlalchemy.Engine`, a connection is taken from the pool and one
    transaction is begun (SQLite: ``BEGIN IMMEDIATE``). With a
    :class:`~sqlalchemy.Connection`, the caller's transaction is joined (begun if none is
    open, and then committed here): several repository calls can share one transaction.
    """
    if isinstance(bind, Connection):
        if bind.in_transaction():
            yield bind
        else:
            bind.execution_options(**{_WRITE_OPTION: True})
            with bind.begin():
                yield bind
        return
    with bind.connect() as conn:
        conn.execution_options(**{_WRITE_OPTION: True})
        with conn.begin():
            yield conn


# ---- migrations ----------------------------------------------------------------------------


def migrations_config(connection: Connection | None = None) -> Config:
    """An Alembic :class:`~alembic.config.Config` for the packaged migrations, built in code.

    Parameters
    ----------
    connection
        The connection the migrations run on (``env.py`` uses it); ``None`` for offline use
        (listing revisions).
    """
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


@functools.cache
def _scripts() -> ScriptDirectory:
    """The packaged revisions (read once: they cannot change while the process runs)."""
    return ScriptDirectory.from_config(migrations_config())


def head_revision() -> str:
    """The newest revision of the packaged migrations."""
    head = _scripts().get_current_head()
    if head is None:  # pragma: no cover - the package always ships revisions
        raise ConfigurationError("no Alembic revisions found in " + str(MIGRATIONS_DIR))
    return head


def _known_revisions() -> set[str]:
    return {rev.revision for rev in _scripts().walk_revisions()}


def database_error(url: str | URL, exc: SQLAlchemyError) -> ConfigurationError:
    """A :class:`ConfigurationError` for a database failure: the URL (password masked), the
    error's class and the first line of its message (the driver's, when there is one)."""
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip()
    first = text.splitlines()[0] if text else ""
    return ConfigurationError(f"database {masked(url)}: {type(exc).__name__}: {first}")


@contextmanager
def _engine_of(engine_or_url: Engine | str | URL) -> Iterator[Engine]:
    """The engine given, or a temporary one for a URL (disposed afterwards)."""
    if isinstance(engine_or_url, Engine):
        yield engine_or_url
        return
    engine = make_engine(engine_or_url)
    try:
        yield engine
    finally:
        engine.dispose()


def _current(conn: Connection) -> str | None:
    return MigrationContext.configure(conn).get_current_revision()


def _migrate(engine_or_url: Engine | str | URL, work: Callable[[Connection], T]) -> T:
    """Run ``work`` in one write transaction, under the migration lock on PostgreSQL."""
    with _engine_of(engine_or_url) as engine:
        try:
            with write_transaction(engine) as conn:
                if conn.dialect.name == "postgresql":
                    conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK_KEY})")
                return work(conn)
        except CommandError as exc:
            raise ConfigurationError(f"database {masked(engine.url)}: {exc}") from None
        except SQLAlchemyError as exc:
            raise database_error(engine.url, exc) from exc


def upgrade(engine_or_url: Engine | str | URL, revision: str = "head") -> str | None:
    """Migrate the database up to ``revision`` (default: the newest).

    Parameters
    ----------
    engine_or_url
        An engine from :func:`make_engine`, or a URL.
    revision
        An Alembic revision id, ``"head"``, or a relative step such as ``"+1"``.

    Returns
    -------
    str or None
        The revision the database is at afterwards.

    Raises
    ------
    ConfigurationError
        The database is at a revision this code does not know, ``revision`` is unknown, or
        the database cannot be reached.
    """

    def work(conn: Connection) -> str | None:
        _refuse_unknown(conn)
        before = _current(conn)
        command.upgrade(migrations_config(conn), revision)
        after = _current(conn)
        if after != before:
            log.info(
                "database migrated",
                extra={
                    "database": masked(conn.engine.url),
                    "from_revision": before,
                    "to_revision": after,
                },
            )
        return after

    return _migrate(engine_or_url, work)


def downgrade(engine_or_url: Engine | str | URL, revision: str) -> str | None:
    """Migrate the database down to ``revision`` (``"base"``: drop every table of ours).

    Returns
    -------
    str or None
        The revision the database is at afterwards (``None`` at base).
    """

    def work(conn: Connection) -> str | None:
        _refuse_unknown(conn)
        before = _current(conn)
        command.downgrade(migrations_config(conn), revision)
        after = _current(conn)
        log.warning(
            "database downgraded",
            extra={
                "database": masked(conn.engine.url),
                "from_revision": before,
                "to_revision": after,
            },
        )
        return after

    return _migrate(engine_or_url, work)


def current_revision(engine_or_url: Engine | str | URL) -> str | None:
    """The database's revision (``None``: never migrated, e.g. an empty database).

    Raises
    ------
    ConfigurationError
        The database cannot be reached.
    """
    with _engine_of(engine_or_url) as engine:
        try:
            with engine.connect() as conn:
                return _current(conn)
        except SQLAlchemyError as exc:
            raise database_error(engine.url, exc) from exc


def _refuse_unknown(conn: Connection) -> None:
    current = _current(conn)
    if current is not None and current not in _known_revisions():
        raise ConfigurationError(
            f"database {masked(conn.engine.url)} is at revision {current!r}, which this "
            f"algoengine does not know (written by a newer version?); the newest known is "
            f"{head_revision()!r}. Run the matching algoengine, or use another database."
        )


def ensure_schema(engine: Engine, *, upgrade_outdated: bool = False) -> str:
    """Make sure the database holds the schema this code expects (the engine calls it at start).

    - An empty database (no revision and none of our tables) is migrated to the newest
      revision.
    - At the newest revision: nothing to do.
    - At an older known revision: migrated when ``upgrade_outdated``, else refused.
    - At an unknown revision (a newer algoengine wrote it), or holding our tables without a
      revision (created by hand): refused.

    Returns
    -------
    str
        The revision the database is at (the newest).

    Raises
    ------
    ConfigurationError
        The database cannot be used as it is, with what to do; or it cannot be reached.
    """
    head = head_revision()

    def work(conn: Connection) -> str:
        current = _current(conn)
        if current == head:
            return head
        _refuse_unknown(conn)
        if current is None:
            ours = set(Base.metadata.tables) & set(inspect(conn).get_table_names())
            if ours:
                raise ConfigurationError(
                    f"database {masked(conn.engine.url)} holds algoengine tables "
                    f"({', '.join(sorted(ours))}) but no migration revision: it was not made "
                    "by `algoengine db upgrade`; use an empty database or migrate it by hand"
                )
        elif not upgrade_outdated:
            raise ConfigurationError(
                f"database {masked(conn.engine.url)} is at revision {current!r}, this "
                f"algoengine needs {head!r}: run `algoengine db upgrade` first"
            )
        command.upgrade(migrations_config(conn), "head")
        log.info(
            "database migrated",
            extra={
                "database": masked(conn.engine.url),
                "from_revision": current,
                "to_revision": head,
            },
        )
        return head

    if current_revision(engine) == head:  # the common case, without taking the write lock
        return head
    return _migrate(engine, work)
