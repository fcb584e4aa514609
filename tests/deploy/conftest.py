"""Fixtures for the deployment tests: a moto server on 127.0.0.1 and a playbook runner.

The playbooks are aimed at moto through the environment alone (AWS_URL, AWS_ENDPOINT_URL, dummy
credentials, a dead proxy so that a call missing the endpoint fails locally); nothing in
deploy/ansible is test-specific except tests/moto-vars.yml.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
ANSIBLE_DIR = ROOT / "deploy" / "ansible"
DOCKER_DIR = ROOT / "deploy" / "docker"
CALLBACKS = Path(__file__).resolve().parent / "callback_plugins"
REGION = "ap-south-1"
BIN = Path(sys.executable).parent


def _tool(name: str) -> str | None:
    local = BIN / name
    return str(local) if local.exists() else shutil.which(name)


ANSIBLE_PLAYBOOK = _tool("ansible-playbook")
MOTO_SERVER = _tool("moto_server")

needs_ansible = pytest.mark.skipif(
    ANSIBLE_PLAYBOOK is None,
    reason="ansible is not installed: pip install -e '.[deploy]' (ansible 12.3.0 bundles "
    "amazon.aws and community.aws)",
)
needs_moto = pytest.mark.skipif(
    MOTO_SERVER is None, reason="moto server is not installed: pip install -e '.[deploy]'"
)


_THREAD = threading.local()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True, kw_only=True)
class Moto:
    """A running moto server."""

    endpoint: str

    def reset(self) -> None:
        req = urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST")
        with urllib.request.urlopen(req, timeout=10):
            pass

    def client(self, service: str) -> Any:
        import boto3

        # a session per thread: the prod cycle runs in a thread, and boto3's default session
        # is not safe to create clients from in two threads at once
        session = getattr(_THREAD, "session", None)
        if session is None:
            session = _THREAD.session = boto3.session.Session()
        return session.client(
            service,
            region_name=REGION,
            endpoint_url=self.endpoint,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )


@contextmanager
def running_moto() -> Iterator[Moto]:
    """A moto server of our own on a free port of 127.0.0.1, stopped on exit."""
    if MOTO_SERVER is None:
        pytest.skip("moto server is not installed: pip install -e '.[deploy]'")
    port = _free_port()
    env = {**os.environ, "MOTO_IAM_LOAD_MANAGED_POLICIES": "true"}
    proc = subprocess.Popen(
        [MOTO_SERVER, "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=2):
                break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"moto_server did not start on {endpoint}")
            time.sleep(0.2)
    try:
        yield Moto(endpoint=endpoint)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="session")
def moto() -> Iterator[Moto]:
    with running_moto() as server:
        yield server


@dataclass(frozen=True, kw_only=True)
class PlaybookRun:
    """The outcome of one ansible-playbook run."""

    returncode: int
    output: str
    counts: dict[str, dict[str, int]]
    changed_tasks: dict[str, list[str]]

    def changed(self, role: str) -> int:
        return self.counts.get(role, {}).get("changed", 0)

    def failed(self) -> int:
        return sum(c["failed"] for c in self.counts.values())


def run_playbook(
    moto: Moto,
    playbook: str,
    env: str,
    tmp_path: Path,
    *,
    check: bool = False,
    extra: tuple[str, ...] = (),
) -> PlaybookRun:
    """Run a playbook of deploy/ansible against moto; per-role counts from role_changes."""
    assert ANSIBLE_PLAYBOOK is not None
    out = tmp_path / f"roles-{playbook}-{env}-{'check' if check else 'real'}-{time.time_ns()}.json"
    run_env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "AWS_URL": moto.endpoint,
        "AWS_ENDPOINT_URL": moto.endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "HTTPS_PROXY": "http://127.0.0.1:9",
        "HTTP_PROXY": "http://127.0.0.1:9",
        "NO_PROXY": "127.0.0.1,localhost",
        "ANSIBLE_LOCALHOST_WARNING": "false",
        "ANSIBLE_CALLBACK_PLUGINS": str(CALLBACKS),
        "ANSIBLE_CALLBACKS_ENABLED": "role_changes",
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-tmp"),
        "ROLE_CHANGES_FILE": str(out),
    }
    for var in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_REGION"):
        run_env.pop(var, None)
    cmd = [
        ANSIBLE_PLAYBOOK,
        playbook,
        "-e",
        f"env={env}",
        "-e",
        "@tests/moto-vars.yml",
        *(["--check"] if check else []),
        *extra,
    ]
    proc = subprocess.run(
        cmd, cwd=ANSIBLE_DIR, env=run_env, capture_output=True, text=True, timeout=600
    )
    data = json.loads(out.read_text()) if out.exists() else {"counts": {}, "changed_tasks": {}}
    return PlaybookRun(
        returncode=proc.returncode,
        output=proc.stdout[-20000:] + proc.stderr[-5000:],
        counts=data["counts"],
        changed_tasks=data["changed_tasks"],
    )
