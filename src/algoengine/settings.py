"""The application's configuration: every section, its defaults, and how it is loaded.

One file (TOML or YAML; ``--config PATH`` or ``ALGOENGINE_CONFIG``) plus environment overrides
(``ALGOENGINE__SECTION__KEY=value``, see :mod:`algoengine.config`) build one
:class:`Settings`. Every section has defaults, so that ``algoengine run`` and ``algoengine
backtest`` work with no file at all: the paper broker, the synthetic market, SQLite, and one
short straddle on NIFTY. Validation happens at start, with errors naming the field's dotted
path and the bad value.

Sections (TOML tables): ``engine`` (:class:`EngineConfig`), ``exchange``
(:class:`PaperExchangeConfig`), ``risk`` (:class:`RiskLimits`), ``charges`` (a list of dated
:class:`ChargeRates`), ``market`` (:class:`MarketSettings`: the synthetic model or a replay
file), ``strategies`` (a list of :class:`PremiumSellingConfig`), ``backtest``
(:class:`BacktestSettings`), ``paper`` (:class:`PaperSettings`), ``journal``
(:class:`JournalSettings`), ``database_url`` or ``database_secret`` (the name of the Secrets
Manager secret holding the database credentials; see :mod:`algoengine.secrets`).

Contract facts (lot sizes, freeze quantities, expiry weekdays) live in
``market.synthetic.contracts``; exchange holidays in ``market.synthetic.holidays``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Any

from algoengine.backtest.charges import DEFAULT_RATES, ChargeRates
from algoengine.brokers.paper.config import PaperExchangeConfig
from algoengine.config import build, load
from algoengine.engine.engine import EngineConfig
from algoengine.errors import ConfigurationError
from algoengine.market.synthetic import SyntheticMarketConfig
from algoengine.risk import RiskLimits
from algoengine.strategies.premium import PremiumSellingConfig

__all__ = [
    "BacktestSettings",
    "JournalSettings",
    "MarketSettings",
    "MarketSource",
    "PaperSettings",
    "Settings",
    "load_settings",
]


class MarketSource(StrEnum):
    SYNTHETIC = "synthetic"
    REPLAY = "replay"


@dataclass(frozen=True, kw_only=True, slots=True)
class MarketSettings:
    """Where market data comes from.

    Parameters
    ----------
    source
        ``synthetic`` (the embedded default: a deterministic model market) or ``replay``
        (recorded slices from ``replay_path``, CSV or Parquet; see
        :mod:`algoengine.market.replay`).
    replay_path
        The recording for ``replay``.
    instrument_master
        An instrument master in Angel One's scrip-master format (``OpenAPIScripMaster.json``)
        that the recording's tokens refer to; ``None``: the synthetic market's own master
        over the run's dates (what ``algoengine market record`` recordings use).
    synthetic
        The synthetic market's model (contracts, holidays, volatility, smile, spreads).
    """

    source: MarketSource = MarketSource.SYNTHETIC
    replay_path: str | None = None
    instrument_master: str | None = None
    synthetic: SyntheticMarketConfig = field(default_factory=SyntheticMarketConfig)

    def __post_init__(self) -> None:
        if self.source is MarketSource.REPLAY and not self.replay_path:
            raise ConfigurationError("market.replay_path: required when market.source is replay")


@dataclass(frozen=True, kw_only=True, slots=True)
class BacktestSettings:
    """Defaults of ``algoengine backtest`` (each can be given on the command line).

    Parameters
    ----------
    start, end
        The date range, IST, inclusive (default: November 2026).
    capital_paise
        Starting capital for returns and drawdowns (default Rs 5,00,000).
    out_dir
        Where the report goes.
    output_format
        ``csv`` or ``parquet`` for the tables.
    """

    start: date = date(2026, 11, 2)
    end: date = date(2026, 11, 27)
    capital_paise: int = 50_000_000
    out_dir: str = "backtest-output"
    output_format: str = "csv"

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ConfigurationError(f"backtest.end: {self.end} is before backtest.start")
        if self.capital_paise <= 0:
            raise ConfigurationError(f"backtest.capital_paise: {self.capital_paise} must be > 0")
        if self.output_format not in ("csv", "parquet"):
            raise ConfigurationError(
                f"backtest.output_format: {self.output_format!r} must be 'csv' or 'parquet'"
            )


@dataclass(frozen=True, kw_only=True, slots=True)
class PaperSettings:
    """Defaults of ``algoengine run`` in paper mode.

    Parameters
    ----------
    speed
        Simulated seconds per real second (1.0: real time; 60: a session in 6 1/4 minutes).
    day
        The session to trade (IST date; default: today if it is a trading day, else the next
        one). The simulated clock starts at that session's open.
    out_dir
        Where the run's report goes.
    """

    speed: float = 1.0
    day: date | None = None
    out_dir: str = "paper-output"

    def __post_init__(self) -> None:
        if not self.speed > 0:
            raise ConfigurationError(f"paper.speed: {self.speed} must be > 0")


@dataclass(frozen=True, kw_only=True, slots=True)
class JournalSettings:
    """The engine's journal (paper and live runs; see :mod:`algoengine.persistence.journal`).

    Parameters
    ----------
    spool_dir
        Where records wait while the database is unreachable (replayed when it returns, or
        at the next start).
    on_outage
        ``keep_trading`` (default) or ``stop_opening``: while the database is unreachable,
        refuse orders that open or add to a position (exits still pass).
    batch_max, flush_interval_s
        Records per transaction, and how long the writer waits to fill a batch.
    """

    spool_dir: str = ".algoengine-spool"
    on_outage: str = "keep_trading"
    batch_max: int = 500
    flush_interval_s: float = 0.05

    def __post_init__(self) -> None:
        if self.on_outage not in ("keep_trading", "stop_opening"):
            raise ConfigurationError(
                f"journal.on_outage: {self.on_outage!r} must be 'keep_trading' or 'stop_opening'"
            )
        if self.batch_max < 1:
            raise ConfigurationError(f"journal.batch_max: {self.batch_max} must be >= 1")
        if not self.flush_interval_s > 0:
            raise ConfigurationError(
                f"journal.flush_interval_s: {self.flush_interval_s} must be > 0"
            )


def _default_strategies() -> tuple[PremiumSellingConfig, ...]:
    return (PremiumSellingConfig(),)


def _default_risk() -> RiskLimits:
    # the paper exchange's default band is 50 %: a 30 % stop-loss with its limit 5 % above
    # must pass the same band here
    return RiskLimits(price_band_bps=5_000)


@dataclass(frozen=True, kw_only=True, slots=True)
class Settings:
    """Everything the engine needs to start (see the module docstring)."""

    engine: EngineConfig = field(default_factory=EngineConfig)
    exchange: PaperExchangeConfig = field(default_factory=PaperExchangeConfig)
    risk: RiskLimits = field(default_factory=_default_risk)
    charges: tuple[ChargeRates, ...] = DEFAULT_RATES
    market: MarketSettings = field(default_factory=MarketSettings)
    strategies: tuple[PremiumSellingConfig, ...] = field(default_factory=_default_strategies)
    backtest: BacktestSettings = field(default_factory=BacktestSettings)
    paper: PaperSettings = field(default_factory=PaperSettings)
    journal: JournalSettings = field(default_factory=JournalSettings)
    database_url: str = "sqlite:///algoengine.sqlite"
    database_secret: str | None = None  # e.g. "algo-trading-prod-db-password" (see secrets)

    def __post_init__(self) -> None:
        ids = [s.strategy_id for s in self.strategies]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise ConfigurationError(f"strategies: duplicate strategy_id {dup[0]!r}")

    def strategy(self, strategy_id: str) -> PremiumSellingConfig:
        for s in self.strategies:
            if s.strategy_id == strategy_id:
                return s
        names = ", ".join(s.strategy_id for s in self.strategies)
        raise ConfigurationError(f"--strategy: no strategy {strategy_id!r} (configured: {names})")

    def with_seed(self, seed: int) -> Settings:
        return replace(
            self, market=replace(self.market, synthetic=replace(self.market.synthetic, seed=seed))
        )


def load_settings(path: str | Path | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Read the configuration file (if any) and the environment; validate; return Settings.

    Raises
    ------
    ConfigurationError
        naming the file, or the field's dotted path and the bad value.
    """
    data: dict[str, Any] = load(path, os.environ if env is None else env)
    return build(Settings, data)


def settings_database_url(settings: Settings) -> str:
    """The database URL of these settings: the environment, the secret, or the file
    (:func:`algoengine.secrets.resolve_database_url`)."""
    from algoengine.secrets import resolve_database_url

    return resolve_database_url(settings.database_url, settings.database_secret)
