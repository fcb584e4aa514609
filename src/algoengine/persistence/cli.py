"""``algoengine db``: migrate the database and show its revision.

::

    algoengine db upgrade [--revision REV] [--url URL | --config FILE]
    algoengine db downgrade --revision REV [--url URL | --config FILE]
    algoengine db current [--url URL | --config FILE]

The URL: ``--url``, else ``ALGOENGINE_DATABASE_URL``, else the configuration's
``database_url`` (``--config`` or ``ALGOENGINE_CONFIG``), else the SQLite default (see
:func:`algoengine.persistence.db.database_url`). Output never shows the password.
Errors (an unreachable database, an unknown revision) raise
:class:`~algoengine.errors.ConfigurationError`, which the ``algoengine`` command prints and
exits 2 on.
"""

from __future__ import annotations

import argparse

from algoengine.persistence.db import (
    current_revision,
    downgrade,
    head_revision,
    masked,
    upgrade,
)

__all__ = ["add_db_commands"]


def _url(args: argparse.Namespace) -> str:
    if args.url:
        return str(args.url)
    from algoengine.settings import load_settings, settings_database_url

    return settings_database_url(load_settings(args.config))


def _describe(revision: str | None) -> str:
    if revision is None:
        return "none (empty database: `algoengine db upgrade` creates the tables)"
    head = head_revision()
    return f"{revision} (head)" if revision == head else f"{revision} (newest is {head})"


def _cmd_upgrade(args: argparse.Namespace) -> int:
    url = _url(args)
    revision = upgrade(url, args.revision)
    print(f"{masked(url)}: at revision {_describe(revision)}")
    return 0


def _cmd_downgrade(args: argparse.Namespace) -> int:
    url = _url(args)
    revision = downgrade(url, args.revision)
    print(f"{masked(url)}: at revision {_describe(revision)}")
    return 0


def _cmd_current(args: argparse.Namespace) -> int:
    url = _url(args)
    revision = current_revision(url)
    print(f"{masked(url)}: at revision {_describe(revision)}")
    return 0


def add_db_commands(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    """Add ``db upgrade | downgrade | current`` to the ``algoengine`` command's subparsers.

    Each subcommand sets ``func`` (called with the parsed arguments, returning the exit
    code), as the other ``algoengine`` commands do.

    Returns
    -------
    argparse.ArgumentParser
        The ``db`` parser.
    """
    db = subparsers.add_parser("db", help="database: migrate it, show its revision")
    db_sub = db.add_subparsers(dest="db_command", metavar="SUBCOMMAND", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        where = p.add_mutually_exclusive_group()
        where.add_argument(
            "--url",
            help="database URL (default: ALGOENGINE_DATABASE_URL, the configuration's "
            "database_url, else sqlite:///algoengine.sqlite)",
        )
        where.add_argument("--config", help="configuration file whose database_url to use")

    up = db_sub.add_parser("upgrade", help="migrate up (default: to the newest revision)")
    common(up)
    up.add_argument("--revision", default="head", help="target revision (default: head)")
    up.set_defaults(func=_cmd_upgrade)

    down = db_sub.add_parser("downgrade", help="migrate down ('base': drop every table)")
    common(down)
    down.add_argument("--revision", required=True, help="target revision, or 'base'")
    down.set_defaults(func=_cmd_downgrade)

    cur = db_sub.add_parser("current", help="show the database's revision")
    common(cur)
    cur.set_defaults(func=_cmd_current)
    return db
