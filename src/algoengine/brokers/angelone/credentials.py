"""Angel One credentials and addresses.

Credentials come from the environment (``ANGEL_ONE_API_KEY``, ``ANGEL_ONE_CLIENT_ID``,
``ANGEL_ONE_PASSWORD`` (the MPIN), ``ANGEL_ONE_TOTP_SECRET``) or, when none of those is set, from
AWS Secrets Manager: the JSON secret ``algo-trading-<env>-api-credentials`` with the same four
keys (``<env>`` from the argument or ``ALGOENGINE_ENV``; or the secret named by
``ANGEL_ONE_CREDENTIALS_SECRET``). Nothing here ever prints a value: the credentials' ``repr``
masks them and every error names the variable or the secret, not its content.

Addresses: ``ANGEL_ONE_ROOT_URL`` (REST), ``ANGEL_ONE_FEED_URL`` (market websocket),
``ANGEL_ONE_ORDER_FEED_URL`` (order-update websocket), ``ANGEL_ONE_SCRIP_MASTER_URL``
(instrument master); Angel One's production addresses by default.
"""

from __future__ import annotations

import os
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from algoengine.errors import ConfigurationError

__all__ = [
    "CREDENTIAL_KEYS",
    "AngelOneCredentials",
    "AngelOneEndpoints",
    "credentials_secret_name",
    "load_credentials",
]

#: The four credential names, in the environment and in the secret.
CREDENTIAL_KEYS = (
    "ANGEL_ONE_API_KEY",
    "ANGEL_ONE_CLIENT_ID",
    "ANGEL_ONE_PASSWORD",
    "ANGEL_ONE_TOTP_SECRET",
)

PRODUCTION_ROOT_URL = "https://apiconnect.angelone.in"
PRODUCTION_FEED_URL = "wss://smartapisocket.angelone.in/smart-stream"
PRODUCTION_ORDER_FEED_URL = "wss://tns.angelone.in/smart-order-update"
PRODUCTION_SCRIP_MASTER_URL = (
    "https://margincalculator.angelone.in/OpenAPI_File/files/OpenAPIScripMaster.json"
)


@dataclass(frozen=True, kw_only=True, slots=True)
class AngelOneCredentials:
    """What a SmartAPI login needs. ``repr`` shows the client code only.

    Parameters
    ----------
    api_key
        The SmartAPI app's key (``X-PrivateKey``).
    client_code
        The account's client code (``ANGEL_ONE_CLIENT_ID``).
    mpin
        The account's MPIN (``ANGEL_ONE_PASSWORD``).
    totp_secret
        The base32 TOTP secret (the login's 6-digit code is derived from it).
    """

    api_key: str = field(repr=False)
    client_code: str
    mpin: str = field(repr=False)
    totp_secret: str = field(repr=False)

    def __post_init__(self) -> None:
        for name in ("api_key", "client_code", "mpin", "totp_secret"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise ConfigurationError(f"Angel One credentials: {name} is missing or empty")

    def totp(self) -> str:
        """The current 6-digit TOTP (SHA1, 30 s)."""
        import pyotp

        try:
            return str(pyotp.TOTP(self.totp_secret).now())
        except (ValueError, TypeError):  # not base32, or too short for pyotp
            raise ConfigurationError(
                "Angel One credentials: the TOTP secret is not valid base32 (26+ characters)"
            ) from None

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, source: str) -> AngelOneCredentials:
        """From the four :data:`CREDENTIAL_KEYS` (``source`` names where they came from in
        errors)."""
        missing = [k for k in CREDENTIAL_KEYS if not str(data.get(k) or "").strip()]
        if missing:
            raise ConfigurationError(f"Angel One credentials in {source}: missing {missing}")
        return cls(
            api_key=str(data["ANGEL_ONE_API_KEY"]).strip(),
            client_code=str(data["ANGEL_ONE_CLIENT_ID"]).strip(),
            mpin=str(data["ANGEL_ONE_PASSWORD"]).strip(),
            totp_secret=str(data["ANGEL_ONE_TOTP_SECRET"]).strip().replace(" ", ""),
        )


def credentials_secret_name(environment: str) -> str:
    """``algo-trading-<environment>-api-credentials``."""
    if not isinstance(environment, str) or not environment.strip():
        raise ConfigurationError("Angel One credentials: the environment name is empty")
    return f"algo-trading-{environment.strip()}-api-credentials"


def load_credentials(
    *, environment: str | None = None, env: Mapping[str, str] | None = None
) -> AngelOneCredentials:
    """The credentials: from the environment if any of the four variables is set (then all
    must be), else from the Secrets Manager secret (see the module docstring).

    Raises
    ------
    ConfigurationError
        Some variables set and others not; no variables and no environment name to find the
        secret by; the secret unreadable or incomplete (named, never its values).
    """
    env = os.environ if env is None else env
    if any(env.get(k) for k in CREDENTIAL_KEYS):
        return AngelOneCredentials.from_mapping(env, source="the environment")
    name = env.get("ANGEL_ONE_CREDENTIALS_SECRET")
    if not name:
        environment = environment or env.get("ALGOENGINE_ENV")
        if not environment:
            raise ConfigurationError(
                "Angel One credentials: set ANGEL_ONE_API_KEY, ANGEL_ONE_CLIENT_ID, "
                "ANGEL_ONE_PASSWORD and ANGEL_ONE_TOTP_SECRET, or ALGOENGINE_ENV to read the "
                "secret algo-trading-<env>-api-credentials"
            )
        name = credentials_secret_name(environment)
    from algoengine.secrets import get_secret

    return AngelOneCredentials.from_mapping(get_secret(name), source=f"secret {name!r}")


def _url(name: str, value: str, schemes: tuple[str, ...]) -> str:
    parts = urllib.parse.urlsplit(value)
    if parts.scheme not in schemes or not parts.netloc:
        raise ConfigurationError(f"{name}: {value!r} is not a {'/'.join(schemes)} URL")
    return value.rstrip("/") if parts.path in ("", "/") else value


@dataclass(frozen=True, kw_only=True, slots=True)
class AngelOneEndpoints:
    """Where Angel One is (production by default; tests aim these at the fake).

    Parameters
    ----------
    root_url
        REST base, ``scheme://host[:port]`` with no path.
    feed_url
        The market-feed websocket (SmartWebSocketV2).
    order_feed_url
        The order-update websocket.
    scrip_master_url
        The instrument master JSON.
    """

    root_url: str = PRODUCTION_ROOT_URL
    feed_url: str = PRODUCTION_FEED_URL
    order_feed_url: str = PRODUCTION_ORDER_FEED_URL
    scrip_master_url: str = PRODUCTION_SCRIP_MASTER_URL

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "root_url", _url("ANGEL_ONE_ROOT_URL", self.root_url, ("http", "https"))
        )
        _url("ANGEL_ONE_FEED_URL", self.feed_url, ("ws", "wss"))
        _url("ANGEL_ONE_ORDER_FEED_URL", self.order_feed_url, ("ws", "wss"))
        _url("ANGEL_ONE_SCRIP_MASTER_URL", self.scrip_master_url, ("http", "https"))

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> AngelOneEndpoints:
        """From the ``ANGEL_ONE_*_URL`` variables; unset ones keep production's."""
        env = os.environ if env is None else env
        return cls(
            root_url=env.get("ANGEL_ONE_ROOT_URL") or PRODUCTION_ROOT_URL,
            feed_url=env.get("ANGEL_ONE_FEED_URL") or PRODUCTION_FEED_URL,
            order_feed_url=env.get("ANGEL_ONE_ORDER_FEED_URL") or PRODUCTION_ORDER_FEED_URL,
            scrip_master_url=env.get("ANGEL_ONE_SCRIP_MASTER_URL") or PRODUCTION_SCRIP_MASTER_URL,
        )
