"""The .pyi stubs shipped beside the compiled modules match them (mypy.stubtest)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from algoengine._ext import KERNELS

ALLOWLIST = Path(__file__).resolve().parents[1] / "stubtest_allowlist.txt"


@pytest.mark.parametrize("kernel", KERNELS)
def test_stub_matches_compiled_module(kernel: str) -> None:
    pytest.importorskip("mypy")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy.stubtest",
            f"algoengine._ext.{kernel}",
            "--allowlist",
            str(ALLOWLIST),
            "--ignore-unused-allowlist",  # one allowlist serves every kernel
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
