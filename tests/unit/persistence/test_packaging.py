"""The Alembic migrations ship in a wheel: every file of the migrations folder is either a
module of a package setuptools finds or matched by ``[tool.setuptools.package-data]``."""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path

from algoengine.persistence.db import MIGRATIONS_DIR

ROOT = Path(__file__).resolve().parents[3]
SRC = ROOT / "src"


def _shipped(path: Path, package_data: dict[str, list[str]]) -> bool:
    if path.suffix == ".py":
        return (path.parent / "__init__.py").is_file()
    # a data file: a pattern of its package or of a package above it
    for package, patterns in package_data.items():
        folder = SRC.joinpath(*package.split("."))
        if path.is_relative_to(folder):
            inner = str(path.relative_to(folder))
            if any(fnmatch.fnmatch(inner, p) for p in patterns):
                return True
    return False


def test_every_migration_file_is_in_the_wheel() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    package_data: dict[str, list[str]] = config["tool"]["setuptools"]["package-data"]
    source = SRC / "algoengine" / "persistence" / "migrations"
    files = [p for p in source.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    assert {p.name for p in files} >= {"env.py", "script.py.mako", "0001_initial.py"}
    missing = [str(p.relative_to(SRC)) for p in files if not _shipped(p, package_data)]
    assert missing == []
    if not MIGRATIONS_DIR.is_relative_to(SRC):  # running against an installed wheel: check it
        absent = [
            str(p.relative_to(source))
            for p in files
            if not (MIGRATIONS_DIR / p.relative_to(source)).is_file()
        ]
        assert absent == []


def test_the_database_packages_are_dependencies() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    names = {
        d.split(">")[0].split("[")[0].strip().lower() for d in config["project"]["dependencies"]
    }
    assert {"sqlalchemy", "alembic", "psycopg"} <= names
