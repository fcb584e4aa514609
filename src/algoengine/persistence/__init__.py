"""Persistence: everything the engine does is stored, so that the dashboard, the reports and
recovery read one truth.

- :mod:`~algoengine.persistence.db`: the database URL (``ALGOENGINE_DATABASE_URL``, the
  configuration, else a SQLite file), the SQLAlchemy engine (SQLite in WAL mode, or
  PostgreSQL 15 through psycopg 3), and the Alembic migrations shipped in the package
  (:func:`ensure_schema` migrates an empty database on first use).
- :mod:`~algoengine.persistence.models`: the tables (SQLAlchemy 2 typed declarative).
- :mod:`~algoengine.persistence.records`: the row values the repositories take and give,
  with conversions from and to the engine's objects.
- :mod:`~algoengine.persistence.repositories`: the writes (batched, idempotent where the
  engine journals) and the queries of recovery and the dashboard.
- :mod:`~algoengine.persistence.journal`: the engine's batched background writer, with a
  local spool that keeps every record through a database outage and replays it.
- :mod:`~algoengine.persistence.command_poller`: commands from the commands table (the
  dashboard, ``algoengine command``) into the event loop, results recorded.
- :mod:`~algoengine.persistence.leases`: which engine task runs which strategy (leases with
  heartbeats and fencing tokens; never two owners).
- :mod:`~algoengine.persistence.cli`: ``algoengine db upgrade | downgrade | current``.

Money is integer paise, quantities integer units, times integer UTC epoch nanoseconds, in the
database as everywhere else.
"""

from algoengine.persistence.db import (
    current_revision,
    database_url,
    downgrade,
    ensure_schema,
    head_revision,
    make_engine,
    upgrade,
    write_transaction,
)

__all__ = [
    "current_revision",
    "database_url",
    "downgrade",
    "ensure_schema",
    "head_revision",
    "make_engine",
    "upgrade",
    "write_transaction",
]
