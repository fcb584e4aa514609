"""The adapter's parts that need no server: rate-limit buckets, credentials and addresses,
the error-code table, rupee conversion."""

from __future__ import annotations

import pytest

from algoengine.brokers.angelone.adapter import paise_to_rupees
from algoengine.brokers.angelone.credentials import (
    AngelOneCredentials,
    AngelOneEndpoints,
    credentials_secret_name,
    load_credentials,
)
from algoengine.brokers.angelone.errors import (
    AngelOneServerError,
    AuthenticationError,
    NotFoundError,
    RefreshTokenError,
    RequestRefusedError,
    SessionExpiredError,
    error_for,
)
from algoengine.brokers.angelone.ratelimit import RateLimiter, TokenBucket
from algoengine.domain.events import RejectCode
from algoengine.errors import ConfigurationError, TemporaryBrokerError, ValidationError


class FakeTime:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.t += s


def test_token_bucket_rate_and_penalty() -> None:
    clock = FakeTime()
    b = TokenBucket(2.0, 2, clock=clock)
    assert b.try_take() and b.try_take() and not b.try_take()
    clock.t += 0.5
    assert b.try_take() and not b.try_take()
    b.penalize(3.0)
    clock.t += 2.9
    assert not b.try_take()
    clock.t += 0.2
    assert b.try_take()
    with pytest.raises(ValidationError):
        TokenBucket(0.0)


def test_rate_limiter_waits_and_gives_up() -> None:
    clock = FakeTime()
    rl = RateLimiter({"getOrderBook": 1}, safety=1.0, clock=clock, sleep=clock.sleep)
    assert rl.acquire("getOrderBook")
    start = clock.t
    assert rl.acquire("getOrderBook", timeout_s=2.0)
    assert clock.t - start == pytest.approx(1.0, abs=0.01)
    assert not rl.acquire("getOrderBook", timeout_s=0.5)
    assert not rl.try_acquire("getOrderBook")
    with pytest.raises(ValidationError, match=r"limits_per_s\.x"):
        RateLimiter({"x": -1})


def test_credentials_from_env_masked_and_partial_env_refused() -> None:
    env = {
        "ANGEL_ONE_API_KEY": "k1",
        "ANGEL_ONE_CLIENT_ID": "C1",
        "ANGEL_ONE_PASSWORD": "1234",
        "ANGEL_ONE_TOTP_SECRET": "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP",
    }
    creds = load_credentials(env=env)
    assert creds.client_code == "C1" and len(creds.totp()) == 6
    assert "1234" not in repr(creds) and "JBSW" not in repr(creds) and "k1" not in repr(creds)
    with pytest.raises(ConfigurationError, match="ANGEL_ONE_PASSWORD") as info:
        load_credentials(env={k: v for k, v in env.items() if k != "ANGEL_ONE_PASSWORD"})
    assert "1234" not in str(info.value)
    with pytest.raises(ConfigurationError, match="ALGOENGINE_ENV"):
        load_credentials(env={})
    assert credentials_secret_name("prod") == "algo-trading-prod-api-credentials"
    bad = AngelOneCredentials(api_key="k", client_code="c", mpin="1", totp_secret="!!")
    with pytest.raises(ConfigurationError, match="TOTP"):
        bad.totp()


def test_endpoints_default_to_production_and_follow_env() -> None:
    prod = AngelOneEndpoints.from_env({})
    assert prod.root_url == "https://apiconnect.angelone.in"
    assert prod.feed_url.startswith("wss://smartapisocket.angelone.in")
    e = AngelOneEndpoints.from_env(
        {"ANGEL_ONE_ROOT_URL": "http://127.0.0.1:9000/", "ANGEL_ONE_FEED_URL": "ws://127.0.0.1:1/x"}
    )
    assert e.root_url == "http://127.0.0.1:9000" and e.feed_url == "ws://127.0.0.1:1/x"
    with pytest.raises(ConfigurationError, match="ANGEL_ONE_ORDER_FEED_URL"):
        AngelOneEndpoints(order_feed_url="http://x")


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        ("AG8001", SessionExpiredError),
        ("AG8002", SessionExpiredError),
        ("AB8050", RefreshTokenError),
        ("AB1000", AuthenticationError),
        ("AB1050", AuthenticationError),
        ("AB1006", AuthenticationError),
        ("AB1004", AngelOneServerError),
        ("AB2001", AngelOneServerError),
        ("AB1009", RequestRefusedError),
        ("AB4008", RequestRefusedError),
        ("AB1013", NotFoundError),
    ],
)
def test_error_codes_map_to_types(code: str, cls: type[Exception]) -> None:
    err = error_for(code, "msg", route="placeOrder")
    assert type(err) is cls and err.code == code and "msg" in str(err)
    assert isinstance(err, TemporaryBrokerError) == (cls is AngelOneServerError)


def test_refused_codes_carry_reject_codes() -> None:
    err = error_for("AB4006", "Invalid symboltoken", route="placeOrder")
    assert isinstance(err, RequestRefusedError)
    assert err.reject_code is RejectCode.UNKNOWN_INSTRUMENT


def test_paise_to_rupees_is_exact() -> None:
    assert paise_to_rupees(12345) == "123.45"
    assert paise_to_rupees(5) == "0.05"
    assert paise_to_rupees(100) == "1.00"
