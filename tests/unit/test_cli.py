"""The `algoengine` command: --version, health (the container health check), chain."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import algoengine
from algoengine import cli
from algoengine._ext import KERNELS, check_build

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "algoengine.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def test_version_is_the_installed_distribution_version() -> None:
    proc = run("--version")
    assert proc.returncode == 0
    assert proc.stdout.strip() == f"algoengine {algoengine.__version__}"
    assert re.fullmatch(r"\d+\.\d+\.\d+.*", algoengine.__version__)


def test_console_script_is_installed() -> None:
    exe = Path(sys.executable).with_name("algoengine")
    assert exe.exists(), "pip install should create the algoengine console script"
    proc = subprocess.run([str(exe), "health"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "healthy" in proc.stdout


def test_health_imports_every_kernel() -> None:
    status = check_build()
    assert set(status) == set(KERNELS)
    assert all(err is None for err in status.values()), status
    assert cli.main(["health"]) == 0


def test_health_exits_1_naming_the_missing_kernel() -> None:
    code = (
        "import sys, algoengine._ext as e; e.KERNELS = e.KERNELS + ('nosuchkernel',);"
        "from algoengine import cli; sys.exit(cli.main(['health']))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert "nosuchkernel" in proc.stderr
    assert "pip install -e ." in proc.stderr
    assert "ok  algoengine._ext.greeks" in proc.stdout


def test_health_fails_when_the_compiled_module_cannot_load(tmp_path: Path) -> None:
    # A copy of the package whose compiled module is missing: what a source checkout that was
    # never built looks like. The health check must say so, not crash or pass.
    pkg = Path(algoengine.__file__).parent
    dst = tmp_path / "algoengine"
    dst.mkdir()
    for src in pkg.rglob("*.py"):
        target = dst / src.relative_to(pkg)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(src.read_text())
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    proc = run("health", env=env)
    assert proc.returncode == 1
    assert "MISSING  algoengine._ext.greeks" in proc.stdout
    assert "greeks" in proc.stderr


def test_chain_prints_a_chain_and_recovers_the_smile() -> None:
    proc = run(
        "chain",
        "--spot",
        "51000",
        "--strike-step",
        "100",
        "--strikes",
        "4",
        "--underlying",
        "BANKNIFTY",
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "BANKNIFTY option chain: spot 51000.00" in out
    rows = [line for line in out.splitlines() if re.match(r"\s+-?\d+\.\d{3}\s", line)]
    assert len(rows) == 9
    strikes = [float(row.split("|")[1]) for row in rows]
    assert strikes == sorted(strikes) and strikes[1] - strikes[0] == 100
    err = float(re.search(r"max error ([0-9.e+-]+)", out).group(1))  # type: ignore[union-attr]
    assert err < 1e-10


@pytest.mark.parametrize("args", [["chain", "--spot", "-5"], ["chain", "--atm-vol", "abc"]])
def test_chain_rejects_bad_input_naming_the_option(args: list[str]) -> None:
    proc = run(*args)
    assert proc.returncode == 2
    assert args[1].lstrip("-") in proc.stderr


def test_no_command_prints_help_and_exits_2() -> None:
    proc = run()
    assert proc.returncode == 2
    assert "health" in proc.stdout and "chain" in proc.stdout
