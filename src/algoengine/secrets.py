"""Secrets from AWS Secrets Manager (production) or the environment (everywhere else).

Nothing secret is ever in the repository, the configuration files or a log line: values come
from the environment or from Secrets Manager at start, and every message about them names the
secret, never its value.

- :func:`get_secret`: a JSON secret as a dict (``boto3``; the region from ``AWS_REGION`` /
  ``AWS_DEFAULT_REGION``, the endpoint from ``AWS_ENDPOINT_URL`` when set, which is how the
  tests point it at the moto server on 127.0.0.1).
- :func:`resolve_database_url`: the database URL, in this order: ``ALGOENGINE_DATABASE_URL``;
  the parts in the environment (``ALGOENGINE_DB_USERNAME`` and ``ALGOENGINE_DB_PASSWORD``,
  which ECS injects from the secret, with ``ALGOENGINE_DB_HOST``, ``ALGOENGINE_DB_PORT``
  (5432) and ``ALGOENGINE_DB_NAME`` (algoengine): the deployed task definitions' way);
  the secret named by ``ALGOENGINE_DB_SECRET`` or the configuration's ``database_secret``
  (``algo-trading-<env>-db-password``: username and password, and host, port, dbname unless
  the environment gives them); the configuration's ``database_url``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from algoengine.errors import ConfigurationError

__all__ = ["database_url_from_secret", "get_secret", "resolve_database_url"]


def get_secret(name: str, *, region: str | None = None) -> dict[str, Any]:
    """The JSON object stored in the secret ``name``.

    Raises
    ------
    ConfigurationError
        naming the secret (not its value) when it cannot be read or is not a JSON object.
    """
    import boto3  # type: ignore[import-untyped, unused-ignore]
    from botocore.exceptions import (  # type: ignore[import-untyped, unused-ignore]
        BotoCoreError,
        ClientError,
    )

    region = region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    try:
        client = boto3.client("secretsmanager", region_name=region or "ap-south-1")
        answer = client.get_secret_value(SecretId=name)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "error")
        raise ConfigurationError(f"secret {name!r}: {code}") from None
    except BotoCoreError as exc:
        raise ConfigurationError(f"secret {name!r}: {type(exc).__name__}") from None
    text = answer.get("SecretString")
    try:
        value = json.loads(text) if isinstance(text, str) else None
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise ConfigurationError(f"secret {name!r}: not a JSON object")
    return value


_ENV_PARTS = {
    "username": "ALGOENGINE_DB_USERNAME",
    "password": "ALGOENGINE_DB_PASSWORD",
    "host": "ALGOENGINE_DB_HOST",
    "port": "ALGOENGINE_DB_PORT",
    "dbname": "ALGOENGINE_DB_NAME",
}


def database_url_from_secret(
    secret: Mapping[str, Any], *, name: str = "secret", env: Mapping[str, str] | None = None
) -> str:
    """``postgresql+psycopg://user:password@host:port/dbname`` from the database secret
    (keys username, password, host, port; dbname defaults to ``algoengine``). Keys the secret
    lacks are taken from ``env`` (``ALGOENGINE_DB_HOST``, ...): RDS's master secret holds the
    credentials, the task definition names the host."""
    env = env or {}
    secret = {
        k: secret.get(k) or env.get(var) or ("5432" if k == "port" else None)
        for k, var in _ENV_PARTS.items()
    }
    missing = [k for k in ("username", "password", "host", "port") if not secret.get(k)]
    if missing:
        raise ConfigurationError(f"secret {name!r}: missing {', '.join(missing)}")
    user = quote(str(secret["username"]), safe="")
    password = quote(str(secret["password"]), safe="")
    dbname = quote(str(secret.get("dbname") or "algoengine"), safe="")
    try:
        port = int(secret["port"])
    except (TypeError, ValueError):
        raise ConfigurationError(f"secret {name!r}: port is not a number") from None
    return f"postgresql+psycopg://{user}:{password}@{secret['host']}:{port}/{dbname}"


def resolve_database_url(
    configured_url: str | None,
    configured_secret: str | None = None,
    env: Mapping[str, str] | None = None,
) -> str:
    """The database URL (see the module docstring for the order)."""
    env = os.environ if env is None else env
    if env.get("ALGOENGINE_DATABASE_URL"):
        return env["ALGOENGINE_DATABASE_URL"]
    if all(env.get(_ENV_PARTS[k]) for k in ("username", "password", "host")):
        return database_url_from_secret({}, name="the ALGOENGINE_DB_* environment", env=env)
    secret_name = env.get("ALGOENGINE_DB_SECRET") or configured_secret
    if secret_name:
        return database_url_from_secret(get_secret(secret_name), name=secret_name, env=env)
    return configured_url or "sqlite:///algoengine.sqlite"
