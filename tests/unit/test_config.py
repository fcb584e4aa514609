"""algoengine.config: build, load (TOML, YAML, environment), to_dict, mask_secrets, dumps_toml.

The config dataclasses live at module level: :func:`build` resolves annotations with
``typing.get_type_hints``.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, timezone
from enum import Enum, IntEnum, StrEnum
from pathlib import Path
from types import MappingProxyType
from typing import Any, ClassVar, Literal

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from algoengine.brokers.paper import PaperExchangeConfig, QueueModel
from algoengine.config import build, dumps_toml, load, mask_secrets, to_dict
from algoengine.errors import ConfigurationError, ValidationError

# ---------------------------------------------------------------------------------------------
# Config classes used by the tests


class Mode(StrEnum):
    BACKTEST = "backtest"
    PAPER = "paper"
    LIVE = "live"


class Level(IntEnum):
    LOW = 1
    HIGH = 2


class Colour(Enum):
    RED = "r"
    GREEN = "g"


@dataclass(frozen=True, kw_only=True)
class Leg:
    strike_offset: int
    ratio: int = 1


@dataclass(frozen=True, kw_only=True)
class StraddleConfig:
    type: ClassVar[str] = "straddle"
    underlying: str = "NIFTY"
    lots: int = 1
    stop_loss_pct: float = 0.25

    def __post_init__(self) -> None:
        if self.lots < 1:
            raise ValidationError("lots", self.lots, "must be >= 1")


@dataclass(frozen=True, kw_only=True)
class StrangleConfig:
    type: Literal["strangle"] = "strangle"
    underlying: str = "NIFTY"
    lots: int = 1
    delta: float = 0.16
    stop_loss_pct: float = 0.5


@dataclass(frozen=True, kw_only=True)
class IronCondorConfig:
    type: ClassVar[str] = "iron_condor"
    lots: int = 1
    legs: tuple[Leg, ...] = ()
    entry: time = time(9, 20)


StrategyConfig = StraddleConfig | StrangleConfig | IronCondorConfig


@dataclass(frozen=True, kw_only=True)
class Everything:
    an_int: int
    a_float: float = 0.0
    a_str: str = ""
    a_bool: bool = False
    a_date: date = date(2025, 1, 1)
    a_time: time = time(9, 15)
    a_datetime: datetime | None = None
    a_mode: Mode = Mode.BACKTEST
    a_level: Level = Level.LOW
    a_colour: Colour = Colour.RED
    a_literal: Literal["ltp", "mid"] = "mid"
    maybe_int: int | None = 5
    int_or_str: int | str = 0
    ints: tuple[int, ...] = ()
    names: list[str] = field(default_factory=list)
    weekdays: frozenset[int] = frozenset()
    pair: tuple[int, str] = (0, "")
    bands: Mapping[str, int | None] = field(default_factory=lambda: MappingProxyType({}))
    by_level: dict[int, str] = field(default_factory=dict)
    leg: Leg = Leg(strike_offset=0)
    maybe_leg: Leg | None = None
    path: Path = Path("data")
    seq: Sequence[float] = ()


@dataclass(frozen=True, kw_only=True)
class Broker:
    name: str = "angelone"
    client_code: str = ""
    api_key: str = ""
    password: str = ""


@dataclass(frozen=True, kw_only=True)
class App:
    mode: Mode = Mode.BACKTEST
    capital_paise: int = 10_000_000
    start: date = date(2025, 11, 3)
    broker: Broker = Broker()
    paper: PaperExchangeConfig = field(default_factory=PaperExchangeConfig)
    strategies: tuple[StrategyConfig, ...] = ()


@dataclass(frozen=True, kw_only=True)
class Required:
    a: int
    b: str
    c: float = 1.0


# ---------------------------------------------------------------------------------------------
# build: types


FULL: dict[str, Any] = {
    "an_int": 7,
    "a_float": 3,
    "a_str": "hello",
    "a_bool": True,
    "a_date": date(2025, 11, 3),
    "a_time": "09:30",
    "a_datetime": "2025-11-03T09:15:00+05:30",
    "a_mode": "paper",
    "a_level": 2,
    "a_colour": "GREEN",
    "a_literal": "ltp",
    "maybe_int": None,
    "int_or_str": "abc",
    "ints": [1, 2, 3],
    "names": ["a", "b"],
    "weekdays": [0, 1, 1, 4],
    "pair": [3, "x"],
    "bands": {"12345": 100, "99926000": None},
    "by_level": {"1": "one", "2": "two"},
    "leg": {"strike_offset": -2, "ratio": 3},
    "maybe_leg": {"strike_offset": 1},
    "path": "/tmp/x",
    "seq": [1, 2.5],
}


def test_build_every_type() -> None:
    e = build(Everything, FULL)
    assert e.an_int == 7 and type(e.an_int) is int
    assert e.a_float == 3.0 and type(e.a_float) is float
    assert e.a_str == "hello"
    assert e.a_bool is True
    assert e.a_date == date(2025, 11, 3)
    assert e.a_time == time(9, 30)
    assert e.a_datetime == datetime(2025, 11, 3, 9, 15, tzinfo=timezone(timedelta(hours=5.5)))
    assert e.a_mode is Mode.PAPER
    assert e.a_level is Level.HIGH
    assert e.a_colour is Colour.GREEN
    assert e.a_literal == "ltp"
    assert e.maybe_int is None
    assert e.int_or_str == "abc"
    assert e.ints == (1, 2, 3)
    assert e.names == ["a", "b"]
    assert e.weekdays == frozenset({0, 1, 4}) and isinstance(e.weekdays, frozenset)
    assert e.pair == (3, "x")
    assert isinstance(e.bands, MappingProxyType)
    assert dict(e.bands) == {"12345": 100, "99926000": None}
    assert e.by_level == {1: "one", 2: "two"} and type(e.by_level) is dict
    assert e.leg == Leg(strike_offset=-2, ratio=3)
    assert e.maybe_leg == Leg(strike_offset=1)
    assert e.path == Path("/tmp/x")
    assert e.seq == (1.0, 2.5)


def test_build_defaults_and_required() -> None:
    e = build(Everything, {"an_int": 1})
    assert e == Everything(an_int=1)
    with pytest.raises(ConfigurationError, match=r"missing required field\(s\) a, b of Required"):
        build(Required, {"c": 2.0})
    with pytest.raises(
        ConfigurationError, match=r"^leg: missing required field\(s\) strike_offset"
    ):
        build(Everything, {"an_int": 1, "leg": {"ratio": 2}})


def test_unknown_keys_are_listed_with_the_valid_ones_and_a_guess() -> None:
    with pytest.raises(ConfigurationError) as info:
        build(App, {"strategies": [{"type": "straddle", "stop_los_pct": 0.3}]})
    msg = str(info.value)
    assert msg.startswith("strategies[0]: unknown key(s) 'stop_los_pct'")
    assert "did you mean 'stop_loss_pct'?" in msg
    assert "valid keys: underlying, lots, stop_loss_pct" in msg
    with pytest.raises(ConfigurationError, match=r"^<root>: unknown key\(s\) 'nope'"):
        build(Required, {"a": 1, "b": "x", "nope": 1})


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"strategies": [{"type": "straddle"}, {"type": "strangle", "stop_loss_pct": "abc"}]},
            r"^strategies\[1\]\.stop_loss_pct: expected a number, got 'abc' \(str\)$",
        ),
        (
            {"strategies": [{"type": "iron_condor", "legs": [{"strike_offset": 1}, {}]}]},
            r"^strategies\[0\]\.legs\[1\]: missing required field\(s\) strike_offset",
        ),
        (
            {"strategies": [{"type": "iron_condor", "legs": [{"strike_offset": 1.5}]}]},
            r"^strategies\[0\]\.legs\[0\]\.strike_offset: expected an integer, got 1\.5",
        ),
        ({"capital_paise": True}, r"^capital_paise: expected an integer, got True \(bool\)"),
        ({"capital_paise": "12x"}, r"^capital_paise: expected an integer, got '12x'"),
        ({"mode": "real"}, r"^mode: expected a Mode: one of 'backtest', 'paper', 'live', got"),
        ({"start": "2025-13-01"}, r"^start: expected a date \(YYYY-MM-DD\), got '2025-13-01'"),
        ({"broker": "angelone"}, r"^broker: expected a table of Broker fields, got 'angelone'"),
        ({"paper": {"trading_weekdays": "0,1"}}, r"^paper\.trading_weekdays: expected an array"),
        (
            {"paper": {"price_band_bps_by_token": {"123": "wide"}}},
            r"^paper\.price_band_bps_by_token\['123'\]: expected an integer, got 'wide'",
        ),
        ({"strategies": {"type": "straddle"}}, r"^strategies: expected an array"),
        ({"broker": {"client_code": None}}, r"^broker\.client_code: expected str, got None"),
    ],
)
def test_wrong_types_name_the_full_path_and_value(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        build(App, data)


def test_post_init_validation_error_gets_the_path() -> None:
    with pytest.raises(ConfigurationError) as info:
        build(App, {"strategies": [{"type": "strangle"}, {"type": "straddle", "lots": 0}]})
    assert str(info.value) == "strategies[1].lots=0: must be >= 1"
    assert isinstance(info.value.__cause__, ValidationError)
    with pytest.raises(ConfigurationError, match=r"^paper\.market_close=.*must be after"):
        build(App, {"paper": {"market_open": "15:30", "market_close": "09:15"}})
    with pytest.raises(ConfigurationError, match=r"^paper\.depth_levels=0: must be an integer"):
        build(App, {"paper": {"depth_levels": 0}})


def test_tagged_union() -> None:
    app = build(
        App,
        {
            "strategies": [
                {"type": "straddle", "lots": 2},
                {"type": "strangle", "delta": 0.2},
                {"type": "iron_condor", "legs": [{"strike_offset": -2}, {"strike_offset": 2}]},
            ]
        },
    )
    a, b, c = app.strategies
    assert a == StraddleConfig(lots=2)
    assert b == StrangleConfig(delta=0.2) and b.type == "strangle"
    assert c == IronCondorConfig(legs=(Leg(strike_offset=-2), Leg(strike_offset=2)))
    # instances pass as they are
    assert build(App, {"strategies": [a]}).strategies == (a,)
    with pytest.raises(ConfigurationError) as info:
        build(App, {"strategies": [{"type": "strangel"}]})
    assert str(info.value) == (
        "strategies[0].type: unknown type 'strangel' (did you mean 'strangle'?); "
        "one of 'iron_condor', 'straddle', 'strangle'"
    )
    with pytest.raises(ConfigurationError, match=r"^strategies\[0\]\.type: missing; one of"):
        build(App, {"strategies": [{"lots": 1}]})
    # a ClassVar-tagged class built on its own accepts its own tag only
    assert build(StraddleConfig, {"type": "straddle"}) == StraddleConfig()
    with pytest.raises(ConfigurationError, match=r"^type: StraddleConfig has type 'straddle'"):
        build(StraddleConfig, {"type": "strangle"})


@dataclass(frozen=True, kw_only=True)
class Untagged:
    x: int = 0


@dataclass(frozen=True, kw_only=True)
class BadUnion:
    item: StraddleConfig | Untagged = StraddleConfig()


def test_union_of_dataclasses_without_tags_is_reported() -> None:
    with pytest.raises(ConfigurationError, match=r"Untagged is an arm of a union.*discriminator"):
        build(BadUnion, {"item": {"type": "straddle"}})


def test_bool_rules() -> None:
    for text, expected in [("true", True), ("FALSE", False), ("yes", True), ("No", False)]:
        assert build(Everything, {"an_int": 1, "a_bool": text}).a_bool is expected
    for text, expected in [("on", True), ("off", False), ("1", True), ("0", False)]:
        assert build(Everything, {"an_int": 1, "a_bool": text}).a_bool is expected
    # a file's bare 1 is not a boolean; the environment's 1 is
    with pytest.raises(ConfigurationError, match=r"^a_bool: expected a boolean"):
        build(Everything, {"an_int": 1, "a_bool": 1})
    env = {"ALGOENGINE__A_BOOL": "1", "ALGOENGINE__AN_INT": "1"}
    assert build(Everything, load(None, env)).a_bool is True
    with pytest.raises(ConfigurationError, match=r"^a_bool: expected a boolean"):
        build(Everything, {"an_int": 1, "a_bool": "maybe"})


def test_scalar_strictness() -> None:
    def one(**kw: Any) -> Everything:
        return build(Everything, {"an_int": 1, **kw})

    assert one(a_float="1e-3").a_float == 0.001  # YAML 1.1 reads 1e-3 as a string
    assert one(an_int="1_000").an_int == 1000
    with pytest.raises(ConfigurationError, match=r"^a_float: expected a number, got False"):
        one(a_float=False)
    with pytest.raises(ConfigurationError, match=r"^a_str: expected a string, got 12 \(int\)"):
        one(a_str=12)
    with pytest.raises(ConfigurationError, match=r"YAML reads yes/no/on/off as booleans"):
        one(a_str=True)
    with pytest.raises(ConfigurationError, match=r"^a_date: expected a date.*\(datetime\)"):
        one(a_date=datetime(2025, 1, 1, 9, 15))
    with pytest.raises(ConfigurationError, match=r"base-60 number 930: quote times in YAML"):
        one(a_time=930)
    with pytest.raises(ConfigurationError, match=r"^a_literal: expected one of 'ltp', 'mid'"):
        one(a_literal="last")
    with pytest.raises(ConfigurationError, match=r"^pair: expected an array of 2 items"):
        one(pair=[1, "a", 3])
    with pytest.raises(ConfigurationError, match=r"^a_level: expected a Level: one of 1, 2"):
        one(a_level=True)
    assert one(a_level="high").a_level is Level.HIGH
    assert one(a_mode="LIVE").a_mode is Mode.LIVE
    assert one(a_colour="g").a_colour is Colour.GREEN
    assert one(int_or_str=5).int_or_str == 5
    assert one(maybe_int="none").maybe_int is None
    assert one(maybe_int="7").maybe_int == 7


def test_non_dataclass_is_a_programming_error() -> None:
    with pytest.raises(ValidationError, match="cls"):
        build(int, {})
    with pytest.raises(ConfigurationError, match=r"^<root>: expected a table of Required"):
        build(Required, [1, 2])  # type: ignore[arg-type]


def test_path_argument_prefixes_errors() -> None:
    with pytest.raises(ConfigurationError, match=r"^risk\.limits\.a: expected an integer"):
        build(Required, {"a": "x", "b": ""}, path="risk.limits")


def test_secret_values_are_masked_in_error_messages() -> None:
    with pytest.raises(ConfigurationError) as info:
        build(App, {"broker": {"password": 98765432}})
    assert "98765432" not in str(info.value)
    assert "broker.password: expected a string, got '***'" in str(info.value)


# ---------------------------------------------------------------------------------------------
# round trip


def _everything() -> Everything:
    return build(Everything, FULL)


def test_round_trip_build_to_dict() -> None:
    e = _everything()
    plain = to_dict(e)
    assert (plain["a_mode"], plain["a_level"], plain["a_colour"]) == ("paper", "HIGH", "g")
    assert plain["a_date"] == "2025-11-03" and plain["a_time"] == "09:30:00"
    assert plain["weekdays"] == [0, 1, 4]
    assert build(Everything, plain) == e
    app = build(
        App,
        {
            "mode": "live",
            "paper": {"closed_dates": ["2025-11-05"], "price_band_bps_by_token": {"1": None}},
            "strategies": [{"type": "straddle"}, {"type": "strangle"}, {"type": "iron_condor"}],
        },
    )
    plain_app = to_dict(app)
    assert [s["type"] for s in plain_app["strategies"]] == ["straddle", "strangle", "iron_condor"]
    assert plain_app["paper"]["queue_model"] == "proportional"
    assert build(App, plain_app) == app
    with pytest.raises(ValidationError, match="obj"):
        to_dict({"a": 1})


def test_round_trip_through_toml_and_yaml_text(tmp_path: Path) -> None:
    app = build(
        App,
        {
            "paper": {
                "order_latency_ns": 5_000_000,
                "queue_model": "from_back",
                "closed_dates": ["2025-11-05", "2025-12-25"],
                "price_band_bps_by_token": {"99926000": 500},
            },
            "strategies": [
                {"type": "iron_condor", "legs": [{"strike_offset": -2}, {"strike_offset": 2}]},
                {"type": "straddle", "underlying": "BANKNIFTY"},
            ],
        },
    )
    toml_file = tmp_path / "app.toml"
    toml_file.write_text(dumps_toml(to_dict(app)), encoding="utf-8")
    yaml_file = tmp_path / "app.yaml"
    yaml_file.write_text(yaml.safe_dump(to_dict(app)), encoding="utf-8")
    assert build(App, load(toml_file, env={})) == app
    assert build(App, load(yaml_file, env={})) == app
    assert app.paper.queue_model is QueueModel.FROM_BACK


# ---------------------------------------------------------------------------------------------
# load: files

TOML_DOC = """
mode = "paper"
capital_paise = 50_000_000
start = 2025-11-03

[broker]
client_code = "A123"

[paper]
market_open = 09:15:00
trading_weekdays = [0, 1, 2, 3, 4]

[[strategies]]
type = "straddle"
lots = 2

[[strategies]]
type = "strangle"
delta = 0.2
"""

YAML_DOC = """
mode: paper
capital_paise: 50000000
start: 2025-11-03
broker:
  client_code: A123
paper:
  market_open: "09:15"
  trading_weekdays: [0, 1, 2, 3, 4]
strategies:
  - type: straddle
    lots: 2
  - {type: strangle, delta: 0.2}
"""


def test_toml_and_yaml_give_the_same_config(tmp_path: Path) -> None:
    (tmp_path / "a.toml").write_text(TOML_DOC, encoding="utf-8")
    (tmp_path / "a.yaml").write_text(YAML_DOC, encoding="utf-8")
    (tmp_path / "a.yml").write_text(YAML_DOC, encoding="utf-8")
    from_toml = build(App, load(tmp_path / "a.toml", env={}))
    from_yaml = build(App, load(str(tmp_path / "a.yaml"), env={}))
    assert from_toml == from_yaml == build(App, load(tmp_path / "a.yml", env={}))
    assert from_toml.capital_paise == 50_000_000
    assert from_toml.strategies == (StraddleConfig(lots=2), StrangleConfig(delta=0.2))
    assert from_toml.broker.client_code == "A123"


def test_empty_yaml_section_means_defaults(tmp_path: Path) -> None:
    doc = tmp_path / "a.yaml"
    doc.write_text("mode: live\npaper:\n  # depth_levels: 3\nbroker:\n", encoding="utf-8")
    assert build(App, load(doc, env={})) == App(mode=Mode.LIVE)
    data = load(doc, env={"ALGOENGINE__PAPER__DEPTH_LEVELS": "3"})
    assert build(App, data).paper.depth_levels == 3


@dataclass(frozen=True, kw_only=True)
class Bare:
    anything: Any = None
    seq: Sequence[int] = ()
    mapping: Mapping[str, Any] = field(default_factory=dict)
    plain_tuple: tuple = ()  # type: ignore[type-arg]
    plain_dict: dict = field(default_factory=dict)  # type: ignore[type-arg]


def test_bare_and_any_annotations() -> None:
    b = build(
        Bare,
        {
            "anything": {"x": [1]},
            "seq": [1, "2"],
            "mapping": {"k": object},
            "plain_tuple": [1, "a"],
            "plain_dict": {"a": 1},
        },
    )
    assert b.anything == {"x": [1]}
    assert b.seq == (1, 2)
    assert b.mapping["k"] is object and isinstance(b.mapping, MappingProxyType)
    assert b.plain_tuple == (1, "a") and b.plain_dict == {"a": 1}


def test_load_errors_name_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigurationError, match=r"nope\.toml: configuration file not found"):
        load(missing, env={})
    bad_toml = tmp_path / "bad.toml"
    bad_toml.write_text('a = 1\nb = "x\n', encoding="utf-8")
    with pytest.raises(ConfigurationError, match=r"bad\.toml: invalid TOML: .*line 2"):
        load(bad_toml, env={})
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("a: 1\nb: [1, 2\nc: 3\n", encoding="utf-8")
    with pytest.raises(ConfigurationError, match=r"bad\.yaml: invalid YAML at line \d+, column"):
        load(bad_yaml, env={})
    listing = tmp_path / "list.yaml"
    listing.write_text("- 1\n- 2\n", encoding="utf-8")
    with pytest.raises(ConfigurationError, match=r"list\.yaml: the top level must be a table"):
        load(listing, env={})
    other = tmp_path / "conf.json"
    other.write_text("{}", encoding="utf-8")
    with pytest.raises(ConfigurationError, match=r"unsupported configuration format '\.json'"):
        load(other, env={})
    (tmp_path / "dir.toml").mkdir()
    with pytest.raises(ConfigurationError, match=r"dir\.toml: cannot read configuration file"):
        load(tmp_path / "dir.toml", env={})
    empty = tmp_path / "empty.yaml"
    empty.write_text("", encoding="utf-8")
    assert load(empty, env={}) == {}


def test_load_none_and_config_env(tmp_path: Path) -> None:
    assert load(None, env={}) == {}
    (tmp_path / "a.toml").write_text(TOML_DOC, encoding="utf-8")
    data = load(None, env={"ALGOENGINE_CONFIG": str(tmp_path / "a.toml")})
    assert data["capital_paise"] == 50_000_000
    with pytest.raises(ConfigurationError, match=r"missing\.toml: configuration file not found"):
        load(None, env={"ALGOENGINE_CONFIG": str(tmp_path / "missing.toml")})
    # an explicit path wins over the variable
    assert load(tmp_path / "a.toml", env={"ALGOENGINE_CONFIG": "/nonexistent.toml"}) == data


# ---------------------------------------------------------------------------------------------
# load: environment overrides


def test_env_overrides_nested_keys_and_coercion(tmp_path: Path) -> None:
    (tmp_path / "a.toml").write_text(TOML_DOC, encoding="utf-8")
    env = {
        "ALGOENGINE__CAPITAL_PAISE": "75000000",
        "ALGOENGINE__PAPER__ORDER_LATENCY_NS": "2_000_000",
        "ALGOENGINE__PAPER__ENFORCE_MARKET_HOURS": "no",
        "ALGOENGINE__PAPER__TRADING_WEEKDAYS": "[0, 2, 4]",
        "ALGOENGINE__PAPER__MARKET_CLOSE": "15:00",
        "ALGOENGINE__PAPER__PRICE_BAND_BPS": "none",
        "ALGOENGINE__PAPER__PRICE_BAND_BPS_BY_TOKEN__99926000": "300",
        "ALGOENGINE__BROKER__API_KEY": "12e45",
        "ALGOENGINE__BROKER__PASSWORD": "0x1F",
        "ALGOENGINE__BROKER__CLIENT_CODE": "0123",
        "ALGOENGINE__STRATEGIES__1__DELTA": "0.25",
        "ALGOENGINE__START": "2025-12-01",
        "ALGOENGINE_OTHER": "ignored",
        "HOME": "/root",
    }
    data = load(tmp_path / "a.toml", env=env)
    assert data["capital_paise"] == 75_000_000
    assert data["paper"]["trading_weekdays"] == [0, 2, 4]
    assert data["paper"]["price_band_bps_by_token"] == {"99926000": 300}
    assert data["broker"]["api_key"] == 1.2e46  # parsed as TOML, the text kept for str fields
    app = build(App, data)
    assert app.capital_paise == 75_000_000
    assert app.paper.order_latency_ns == 2_000_000
    assert app.paper.enforce_market_hours is False
    assert app.paper.trading_weekdays == frozenset({0, 2, 4})
    assert app.paper.market_open == time(9, 15)  # from the file
    assert app.paper.market_close == time(15, 0)
    assert app.paper.price_band_bps is None
    assert dict(app.paper.price_band_bps_by_token) == {"99926000": 300}
    assert app.broker.api_key == "12e45"
    assert app.broker.password == "0x1F"
    assert app.broker.client_code == "0123"
    assert app.strategies[1] == StrangleConfig(delta=0.25)
    assert app.start == date(2025, 12, 1)


def test_env_value_parsing() -> None:
    env = {
        "ALGOENGINE__A__INT": "5",
        "ALGOENGINE__A__FLOAT": "1.5",
        "ALGOENGINE__A__BOOL": "true",
        "ALGOENGINE__A__TEXT": "hello world",
        "ALGOENGINE__A__QUOTED": '"5"',
        "ALGOENGINE__A__LIST": '["x", "y"]',
        "ALGOENGINE__A__TABLE": "{ k = 1 }",
        "ALGOENGINE__A__EMPTY": "",
        "ALGOENGINE__A__TRICK": "1\nb = 2",
    }
    assert load(None, env) == {
        "a": {
            "int": 5,
            "float": 1.5,
            "bool": True,
            "text": "hello world",
            "quoted": "5",
            "list": ["x", "y"],
            "table": {"k": 1},
            "empty": "",
            "trick": "1\nb = 2",
        }
    }


def test_env_override_order_and_errors() -> None:
    # a deeper override wins over a whole-table one, whatever the order of the variables
    env = {"ALGOENGINE__PAPER__DEPTH_LEVELS": "3", "ALGOENGINE__PAPER": "{ depth_levels = 9 }"}
    assert load(None, env)["paper"] == {"depth_levels": 3}
    with pytest.raises(ConfigurationError, match=r"ALGOENGINE__A__B: cannot set a\.b: a is a"):
        load(None, {"ALGOENGINE__A": "5", "ALGOENGINE__A__B": "1"})
    with pytest.raises(ConfigurationError, match=r"ALGOENGINE__A____B: empty path part"):
        load(None, {"ALGOENGINE__A____B": "1"})
    with pytest.raises(ConfigurationError, match=r"is an array of 1 items; '3' is not an index"):
        load(None, {"ALGOENGINE__S": "[{ a = 1 }]", "ALGOENGINE__S__3__A": "2"})


# ---------------------------------------------------------------------------------------------
# mask_secrets


def test_mask_secrets() -> None:
    data: dict[str, Any] = {
        "database": {"url": "postgresql+psycopg://algo:s3cr3t@db.internal:5432/algo"},
        "broker": {
            "client_code": "A123",
            "API_KEY": "abc",
            "api-key": "abc",
            "apikey": "abc",
            "password": "pw",
            "totp_seed": "JBSW",
            "jwt_token": "eyJ",
            "client_secret": "x",
            "pin": None,
            "refresh_token": "",
        },
        "secrets": {"nested": "value"},
        "urls": ["redis://:p%40ss@cache:6379/0", "https://example.com/a?b=c", "plain"],
        "odd": "see http://u:p@ss@h/ for details",
        "count": 3,
    }
    masked = mask_secrets(data)
    assert masked["database"]["url"] == "postgresql+psycopg://algo:***@db.internal:5432/algo"
    broker = masked["broker"]
    assert broker["client_code"] == "A123"
    for key in ("API_KEY", "api-key", "apikey", "password", "totp_seed", "jwt_token"):
        assert broker[key] == "***", key
    assert broker["client_secret"] == "***"
    assert broker["pin"] is None and broker["refresh_token"] == ""
    assert masked["secrets"] == "***"
    assert masked["urls"] == ["redis://:***@cache:6379/0", "https://example.com/a?b=c", "plain"]
    assert masked["odd"] == "see http://u:***@h/ for details"
    assert masked["count"] == 3
    assert data["broker"]["password"] == "pw"  # the input is not modified


def test_masked_config_shows_no_secret() -> None:
    env = {"ALGOENGINE__BROKER__PASSWORD": "hunter2", "ALGOENGINE__BROKER__API_KEY": "k3y"}
    text = dumps_toml(mask_secrets(to_dict(build(App, load(None, env)))))
    assert "hunter2" not in text and "k3y" not in text
    assert tomllib.loads(text)["broker"]["password"] == "***"


# ---------------------------------------------------------------------------------------------
# dumps_toml


def test_dumps_toml_reads_back() -> None:
    data: dict[str, Any] = {
        "title": 'quote " backslash \\ newline \n tab \t bell \x07 unicode é ₹',
        "n": -3,
        "x": 1.5e-7,
        "big": 1e300,
        "inf": math.inf,
        "ninf": -math.inf,
        "flag": False,
        "when": date(2025, 11, 3),
        "at": time(9, 15, 30),
        "stamp": datetime(2025, 11, 3, 9, 15, tzinfo=UTC),
        "unset": None,
        "list": [1, [2, 3], {"a": 1, "b": [{"c": 2}]}, []],
        "key with spaces": {"ü": 1},
        "empty": {},
        "outer": {"inner": {"deep": {"v": 1}}, "w": 2},
        "items": [{"name": "a", "sub": {"k": 1}, "rows": [{"r": 1}, {"r": 2}]}, {"name": "b"}],
    }
    text = dumps_toml(data)
    back = tomllib.loads(text)
    expected = {k: v for k, v in data.items() if k != "unset"}
    assert back == expected
    assert "# unset = null" in text
    assert dumps_toml({}) == ""


def test_dumps_toml_rejects_what_toml_cannot_hold() -> None:
    with pytest.raises(ValidationError, match=r"a\[1\]"):
        dumps_toml({"a": [1, None]})
    with pytest.raises(ValidationError, match=r"no TOML form for object"):
        dumps_toml({"a": {"b": object()}})


_toml_keys = st.text(min_size=1, max_size=8)
_toml_scalars = (
    st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=12)
    | st.dates()
    | st.times()
)
_toml_values = st.recursive(
    _toml_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(_toml_keys, children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(_toml_keys, _toml_values, max_size=6))
def test_dumps_toml_round_trips_any_plain_data(data: dict[str, Any]) -> None:
    assert tomllib.loads(dumps_toml(data)) == data
