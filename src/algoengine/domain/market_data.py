"""Market data as the engine sees it: a universe of instruments and slices of quotes over time.

A feed (synthetic, replayed or live) delivers :class:`MarketSlice` objects in time order. A
slice holds the quotes of every instrument that changed at one instant as parallel numpy arrays
indexed into a :class:`Universe`, so that a whole option chain moves in one event and the
Greeks of all its strikes are computed in one compiled call. Prices are integer paise (int64),
quantities integer units (int64), times UTC epoch nanoseconds.

A minute-bar feed delivers one slice per minute with ``bar_close=True`` carrying the bar's close
as ``ltp_paise`` and the bar's range in ``high_paise``/``low_paise``/``open_paise``; a tick feed
delivers slices as quotes change (``bar_close=False``); the engine builds minute bars from them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date

import numpy as np
import numpy.typing as npt

from algoengine.domain.errors import ValidationError
from algoengine.domain.instruments import Instrument, InstrumentKind, OptionType

__all__ = ["Bar", "MarketSlice", "Universe"]

I64 = npt.NDArray[np.int64]
I32 = npt.NDArray[np.int32]

_EPOCH = date(1970, 1, 1)


class Universe:
    """The instruments a feed can quote, in a fixed order (an instrument's index never changes).

    Besides lookups by token and symbol it keeps per-field arrays for vectorized work:
    ``strike_paise`` (0 for non-options), ``option_sign`` (+1 CE, -1 PE, 0 otherwise),
    ``expiry_ordinal`` (``date.toordinal()``, 0 without expiry), ``lot_size``, ``tick_paise``,
    ``is_option``, and ``underlying_code`` (an int per underlying name, see
    :meth:`underlying_codes`).
    """

    def __init__(self, instruments: Iterable[Instrument]) -> None:
        self._instruments: tuple[Instrument, ...] = tuple(instruments)
        self._by_token: dict[str, int] = {}
        self._by_symbol: dict[str, int] = {}
        for i, inst in enumerate(self._instruments):
            if not isinstance(inst, Instrument):
                raise ValidationError("instruments", inst, "must hold Instrument objects")
            if inst.token in self._by_token:
                raise ValidationError("instruments", inst.token, "duplicate token")
            self._by_token[inst.token] = i
            self._by_symbol[inst.symbol] = i
        names = sorted({inst.underlying for inst in self._instruments})
        self._codes = {name: k for k, name in enumerate(names)}
        n = len(self._instruments)
        self.strike_paise: I64 = np.zeros(n, dtype=np.int64)
        self.option_sign: npt.NDArray[np.int8] = np.zeros(n, dtype=np.int8)
        self.expiry_ordinal: I64 = np.zeros(n, dtype=np.int64)
        self.lot_size: I64 = np.zeros(n, dtype=np.int64)
        self.tick_paise: I64 = np.zeros(n, dtype=np.int64)
        self.is_option: npt.NDArray[np.bool_] = np.zeros(n, dtype=np.bool_)
        self.underlying_code: I32 = np.zeros(n, dtype=np.int32)
        for i, inst in enumerate(self._instruments):
            self.strike_paise[i] = inst.strike_paise or 0
            if inst.option_type is not None:
                self.option_sign[i] = 1 if inst.option_type is OptionType.CE else -1
            self.expiry_ordinal[i] = inst.expiry.toordinal() if inst.expiry else 0
            self.lot_size[i] = inst.lot_size
            self.tick_paise[i] = inst.tick_paise
            self.is_option[i] = inst.kind is InstrumentKind.OPTION
            self.underlying_code[i] = self._codes[inst.underlying]
        for arr in (
            self.strike_paise,
            self.option_sign,
            self.expiry_ordinal,
            self.lot_size,
            self.tick_paise,
            self.is_option,
            self.underlying_code,
        ):
            arr.setflags(write=False)

    def __len__(self) -> int:
        return len(self._instruments)

    def __iter__(self) -> Iterator[Instrument]:
        return iter(self._instruments)

    def __getitem__(self, index: int) -> Instrument:
        return self._instruments[index]

    def __contains__(self, token: object) -> bool:
        return token in self._by_token

    @property
    def instruments(self) -> tuple[Instrument, ...]:
        """All instruments, in index order."""
        return self._instruments

    def index_of(self, token: str) -> int:
        """The index of the instrument with ``token``; ValidationError if none."""
        try:
            return self._by_token[token]
        except KeyError:
            raise ValidationError("token", token, "not in the universe") from None

    def by_token(self, token: str) -> Instrument:
        """The instrument with ``token``; ValidationError if none."""
        return self._instruments[self.index_of(token)]

    def by_symbol(self, symbol: str) -> Instrument:
        """The instrument with trading symbol ``symbol``; ValidationError if none."""
        try:
            return self._instruments[self._by_symbol[symbol]]
        except KeyError:
            raise ValidationError("symbol", symbol, "not in the universe") from None

    def underlying_codes(self) -> dict[str, int]:
        """Underlying name -> the code used in ``underlying_code``."""
        return dict(self._codes)

    def options(self, underlying: str, expiry: date | None = None) -> I32:
        """Indices of the options on ``underlying`` (of one ``expiry`` if given), by strike then
        CE before PE."""
        code = self._codes.get(underlying)
        if code is None:
            return np.zeros(0, dtype=np.int32)
        mask = self.is_option & (self.underlying_code == code)
        if expiry is not None:
            mask &= self.expiry_ordinal == expiry.toordinal()
        idx = np.flatnonzero(mask).astype(np.int32)
        order = np.lexsort((-self.option_sign[idx], self.strike_paise[idx]))
        return idx[order]

    def expiries(self, underlying: str) -> list[date]:
        """The option expiries listed for ``underlying``, nearest first."""
        code = self._codes.get(underlying)
        if code is None:
            return []
        mask = self.is_option & (self.underlying_code == code)
        return [date.fromordinal(int(o)) for o in np.unique(self.expiry_ordinal[mask])]

    def spot(self, underlying: str) -> Instrument | None:
        """The index instrument of ``underlying`` (e.g. NIFTY's Nifty 50), if listed."""
        for inst in self._instruments:
            if inst.underlying == underlying and inst.kind is InstrumentKind.INDEX:
                return inst
        return None


@dataclass(frozen=True, slots=True, eq=False)
class MarketSlice:
    """The quotes that changed at ``ts_ns``, as parallel arrays over ``idx``.

    ``idx`` indexes the feed's :class:`Universe`. ``bid_paise``/``ask_paise`` are 0 where a side
    is empty (``bid_qty``/``ask_qty`` 0 too). ``volume`` is the day's cumulative traded volume,
    ``oi`` the open interest (0 where not applicable). For index instruments only ``ltp_paise``
    is meaningful. ``bar_close`` marks the close of a minute bar: ``open_paise``, ``high_paise``
    and ``low_paise`` are then that minute's (else they are ``None``, or equal ``ltp_paise``).
    A bar slice's ``ts_ns`` is the bar's CLOSE time (its open + 60 s), so acting on it acts
    after the minute.
    """

    ts_ns: int
    idx: I32
    ltp_paise: I64
    bid_paise: I64
    bid_qty: I64
    ask_paise: I64
    ask_qty: I64
    volume: I64
    oi: I64
    bar_close: bool = False
    open_paise: I64 | None = field(default=None)
    high_paise: I64 | None = field(default=None)
    low_paise: I64 | None = field(default=None)

    def __post_init__(self) -> None:
        n = len(self.idx)
        for name in ("ltp_paise", "bid_paise", "bid_qty", "ask_paise", "ask_qty", "volume", "oi"):
            if len(getattr(self, name)) != n:
                raise ValidationError(name, len(getattr(self, name)), f"length must be {n}")

    def __len__(self) -> int:
        return len(self.idx)

    @classmethod
    def from_rows(
        cls,
        ts_ns: int,
        rows: Sequence[tuple[int, int, int, int, int, int]],
        *,
        bar_close: bool = False,
    ) -> MarketSlice:
        """Build a slice from ``(idx, ltp, bid, bid_qty, ask, ask_qty)`` rows (tests, replays);
        volume and oi are 0."""
        a = np.asarray(rows, dtype=np.int64).reshape(-1, 6)
        zeros = np.zeros(len(a), dtype=np.int64)
        return cls(
            ts_ns=ts_ns,
            idx=a[:, 0].astype(np.int32),
            ltp_paise=a[:, 1].copy(),
            bid_paise=a[:, 2].copy(),
            bid_qty=a[:, 3].copy(),
            ask_paise=a[:, 4].copy(),
            ask_qty=a[:, 5].copy(),
            volume=zeros,
            oi=zeros.copy(),
            bar_close=bar_close,
        )


@dataclass(frozen=True, slots=True)
class Bar:
    """One minute (or longer) OHLCV bar of one instrument; ``ts_ns`` is the bar's open time."""

    token: str
    ts_ns: int
    interval_s: int
    open_paise: int
    high_paise: int
    low_paise: int
    close_paise: int
    volume: int
