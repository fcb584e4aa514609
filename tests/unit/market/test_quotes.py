"""QuoteBoard: vectorized application of slices and per-instrument reads."""

from __future__ import annotations

import math
import timeit
from datetime import date

import numpy as np
import pytest

from algoengine.domain import OptionType
from algoengine.domain.market_data import MarketSlice, Universe
from algoengine.errors import ValidationError
from algoengine.market import DEFAULT_CONTRACTS, Quote, QuoteBoard, SyntheticMarket


def universe() -> Universe:
    spec = DEFAULT_CONTRACTS["NIFTY"]
    e = date(2025, 10, 7)
    opts = [
        spec.option_instrument(str(100 + k), e, 2_400_000 + 5_000 * (k // 2), ot)
        for k, ot in enumerate([OptionType.CE, OptionType.PE] * 3)
    ]
    return Universe([spec.spot_instrument(), *opts])


def test_apply_sets_only_the_slice_rows() -> None:
    board = QuoteBoard(universe())
    assert board.ltp_paise(1) == 0 and math.isnan(board.mid_paise(1))
    board.apply(
        MarketSlice.from_rows(10, [(0, 2_450_000, 0, 0, 0, 0), (1, 5000, 4990, 65, 5010, 130)])
    )
    assert board.ltp_paise(0) == 2_450_000 and board.ltp_paise(1) == 5000
    assert board.mid_paise(1) == 5000.0 and math.isnan(board.mid_paise(0))
    board.apply(MarketSlice.from_rows(20, [(2, 3000, 0, 0, 5, 65), (1, 5005, 5000, 65, 5005, 65)]))
    assert board.quote(1) == Quote(5005, 5000, 65, 5005, 65, 0, 0, 20)
    assert board.quote(0).ts_ns == 10 and board.ts_ns == 20
    q = board.quote(2)
    assert not q.two_sided and math.isnan(q.mid_paise) and board.mid_paise(2) != board.mid_paise(2)
    assert board.quote(1).mid_paise == 5002.5
    mids = board.mids_paise(np.array([0, 1, 2, 3]))
    assert mids[1] == 5002.5 and np.isnan(mids[[0, 2, 3]]).all()
    assert board.quote(3) == Quote(0, 0, 0, 0, 0, 0, 0, 0)


def test_bad_indices_are_validation_errors_and_change_nothing() -> None:
    board = QuoteBoard(universe())
    with pytest.raises(ValidationError) as err:
        board.apply(MarketSlice.from_rows(5, [(0, 1, 0, 0, 0, 0), (7, 1, 0, 0, 0, 0)]))
    assert err.value.field == "idx"
    with pytest.raises(ValidationError):
        board.apply(MarketSlice.from_rows(5, [(-1, 1, 0, 0, 0, 0)]))
    assert board.ltp_paise(0) == 0 and board.ts_ns == 0
    for bad in (7, -1):
        with pytest.raises(ValidationError) as err:
            board.ltp_paise(bad)
        assert err.value.field == "index"
    with pytest.raises(ValidationError):
        QuoteBoard([])  # type: ignore[arg-type]


def test_a_synthetic_day_leaves_the_board_at_the_last_quotes(
    bars_market: SyntheticMarket, bars_slices: list[MarketSlice]
) -> None:
    board = QuoteBoard(bars_market.universe)
    for s in bars_slices[:375]:
        board.apply(s)
    last = bars_slices[374]
    ix = last.idx
    assert np.array_equal(board.ltp[ix], last.ltp_paise)
    assert np.array_equal(board.ask_qty[ix], last.ask_qty)
    assert (board.last_ts_ns[ix] == last.ts_ns).all()
    # apply is fast: a few microseconds for a slice of ~400 rows (loose bound for shared CI)
    per_call = min(timeit.repeat(lambda: board.apply(last), number=200, repeat=3)) / 200
    assert per_call < 100e-6
