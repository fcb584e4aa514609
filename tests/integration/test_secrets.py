"""Database credentials from AWS Secrets Manager (the moto server on 127.0.0.1), used to reach
a real PostgreSQL: the engine's way in production (``algo-trading-<env>-db-password``)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import inspect
from sqlalchemy.engine import make_url

from algoengine.errors import ConfigurationError
from algoengine.persistence.db import ensure_schema, make_engine
from algoengine.secrets import resolve_database_url

from .conftest import PostgresServer

SECRET = "algo-trading-test-db-password"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def moto_env() -> Iterator[dict[str, str]]:
    """A moto server on 127.0.0.1 and the environment that points boto3 at it."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    env = {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "ap-south-1",
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield env
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        server.stop()


def put_secret(name: str, value: dict[str, object]) -> None:
    import boto3

    client = boto3.client("secretsmanager", region_name="ap-south-1")
    client.create_secret(Name=name, SecretString=json.dumps(value))


def test_the_database_url_comes_from_the_secret_and_reaches_postgres(
    moto_env: dict[str, str], postgres_server: PostgresServer, tmp_path: Path
) -> None:
    dbname = f"secret_{uuid.uuid4().hex[:8]}"
    server_url = make_url(postgres_server.create_database(dbname))
    put_secret(
        SECRET,
        {
            "username": server_url.username,
            "password": "s3cr3t/with:odd@chars",  # the test server trusts local connections
            "host": server_url.host,
            "port": server_url.port,
            "dbname": dbname,
        },
    )
    url = resolve_database_url("sqlite:///ignored.sqlite", SECRET, env={})
    assert url.startswith("postgresql+psycopg://") and f"/{dbname}" in url
    engine = make_engine(url)
    ensure_schema(engine)
    assert "orders" in inspect(engine).get_table_names()
    engine.dispose()
    # the CLI takes the secret's name from the environment; no value is printed
    proc = subprocess.run(
        [sys.executable, "-m", "algoengine.cli", "db", "current"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={**os.environ, "ALGOENGINE_DB_SECRET": SECRET},
    )
    assert proc.returncode == 0, proc.stderr
    assert "s3cr3t" not in proc.stdout + proc.stderr
    # the environment's URL wins over the secret
    assert resolve_database_url(None, SECRET, env={"ALGOENGINE_DATABASE_URL": "sqlite:///x"}) == (
        "sqlite:///x"
    )


def test_a_missing_or_malformed_secret_is_a_clear_error(moto_env: dict[str, str]) -> None:
    with pytest.raises(ConfigurationError) as info:
        resolve_database_url(None, "algo-trading-nope-db-password", env={})
    assert "algo-trading-nope-db-password" in str(info.value)
    put_secret("algo-trading-half-db-password", {"username": "u", "password": "pw-value"})
    with pytest.raises(ConfigurationError) as info:
        resolve_database_url(None, "algo-trading-half-db-password", env={})
    assert "host" in str(info.value) and "pw-value" not in str(info.value)


def test_angel_one_credentials_come_from_the_environments_secret(
    moto_env: dict[str, str],
) -> None:
    """Production's way: no ANGEL_ONE_* variables, ALGOENGINE_ENV names the environment and
    the four keys come from ``algo-trading-<env>-api-credentials`` (or the secret named by
    ANGEL_ONE_CREDENTIALS_SECRET); an incomplete secret is refused naming the missing key,
    never showing a value."""
    from algoengine.brokers.angelone.credentials import load_credentials

    keys = {
        "ANGEL_ONE_API_KEY": "prod-api-key-9",
        "ANGEL_ONE_CLIENT_ID": "P765432",
        "ANGEL_ONE_PASSWORD": "9182",
        "ANGEL_ONE_TOTP_SECRET": "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP",
    }
    put_secret("algo-trading-test-api-credentials", keys)
    creds = load_credentials(env={"ALGOENGINE_ENV": "test"})
    assert (creds.api_key, creds.client_code, creds.mpin) == ("prod-api-key-9", "P765432", "9182")
    assert len(creds.totp()) == 6 and "9182" not in repr(creds)

    put_secret("custom-angel", {**keys, "ANGEL_ONE_CLIENT_ID": "Q1"})
    named = load_credentials(env={"ANGEL_ONE_CREDENTIALS_SECRET": "custom-angel"})
    assert named.client_code == "Q1"

    put_secret("algo-trading-broken-api-credentials", {**keys, "ANGEL_ONE_PASSWORD": ""})
    with pytest.raises(ConfigurationError, match="ANGEL_ONE_PASSWORD") as err:
        load_credentials(env={"ALGOENGINE_ENV": "broken"})
    assert "prod-api-key-9" not in str(err.value) and "JBSW" not in str(err.value)
    with pytest.raises(ConfigurationError, match="algo-trading-absent-api-credentials"):
        load_credentials(env={"ALGOENGINE_ENV": "absent"})


def test_the_url_from_the_task_definitions_environment(moto_env: dict[str, str]) -> None:
    """The deployed task definitions' way: ECS injects the username and password from the
    secret and names the host, port and database in the environment; or the engine reads
    RDS's secret (credentials only) itself and takes the host from the environment."""
    env = {
        "ALGOENGINE_DB_USERNAME": "algotrading",
        "ALGOENGINE_DB_PASSWORD": "p@ss/word",
        "ALGOENGINE_DB_HOST": "db.internal",
        "ALGOENGINE_DB_NAME": "algotrading",
    }
    assert resolve_database_url("sqlite:///x", None, env=env) == (
        "postgresql+psycopg://algotrading:p%40ss%2Fword@db.internal:5432/algotrading"
    )
    partial_env = {k: v for k, v in env.items() if k != "ALGOENGINE_DB_HOST"}
    assert resolve_database_url("sqlite:///x", None, env=partial_env) == "sqlite:///x"
    put_secret("algo-trading-task-db-password", {"username": "u", "password": "pw"})
    url = resolve_database_url(
        None,
        None,
        env={
            "ALGOENGINE_DB_SECRET": "algo-trading-task-db-password",
            "ALGOENGINE_DB_HOST": "db.internal",
            "ALGOENGINE_DB_PORT": "6432",
        },
    )
    assert url == "postgresql+psycopg://u:pw@db.internal:6432/algoengine"
