"""``algoengine db upgrade | downgrade | current`` (wired the way ``algoengine.cli`` wires its
commands: a subparser whose ``func`` returns the exit code)."""

from __future__ import annotations

import argparse
import socket
from pathlib import Path

import pytest

from algoengine.errors import ConfigurationError
from algoengine.persistence.cli import add_db_commands
from algoengine.persistence.db import current_revision, head_revision


def run(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="algoengine")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    add_db_commands(sub)
    args = parser.parse_args(argv)
    result: int = args.func(args)
    return result


def test_upgrade_current_downgrade(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'a.sqlite'}"
    assert run("db", "current", "--url", url) == 0
    assert "at revision none" in capsys.readouterr().out
    assert run("db", "upgrade", "--url", url) == 0
    assert f"at revision {head_revision()} (head)" in capsys.readouterr().out
    assert current_revision(url) == head_revision()
    assert run("db", "current", "--url", url) == 0
    assert f"{head_revision()} (head)" in capsys.readouterr().out
    assert run("db", "downgrade", "--url", url, "--revision", "base") == 0
    assert "at revision none" in capsys.readouterr().out
    assert current_revision(url) is None


def test_the_url_comes_from_the_environment_then_the_configuration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from_config = tmp_path / "conf.sqlite"
    config = tmp_path / "algoengine.toml"
    config.write_text(f'database_url = "sqlite:///{from_config}"\n')
    monkeypatch.delenv("ALGOENGINE_DATABASE_URL", raising=False)
    monkeypatch.delenv("ALGOENGINE_CONFIG", raising=False)
    assert run("db", "upgrade", "--config", str(config)) == 0
    assert from_config.is_file()
    assert str(from_config) in capsys.readouterr().out

    from_env = tmp_path / "env.sqlite"
    monkeypatch.setenv("ALGOENGINE_DATABASE_URL", f"sqlite:///{from_env}")
    assert run("db", "upgrade", "--config", str(config)) == 0
    assert current_revision(f"sqlite:///{from_env}") == head_revision()


def test_downgrade_needs_a_revision_and_url_excludes_config() -> None:
    with pytest.raises(SystemExit):
        run("db", "downgrade", "--url", "sqlite://")
    with pytest.raises(SystemExit):
        run("db", "current", "--url", "sqlite://", "--config", "x.toml")


def test_errors_are_configuration_errors_without_the_password(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="nosuchrev"):
        run(
            "db",
            "upgrade",
            "--url",
            f"sqlite:///{tmp_path / 'a.sqlite'}",
            "--revision",
            "nosuchrev",
        )
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ConfigurationError, match="OperationalError") as info:
        run("db", "current", "--url", f"postgresql://algo:hunter2@127.0.0.1:{port}/x")
    assert "hunter2" not in str(info.value) and "***" in str(info.value)
