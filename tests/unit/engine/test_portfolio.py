"""Portfolio accounting: the identity holds exactly on any sequence of fills and marks."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from algoengine.domain.orders import Side
from algoengine.engine.portfolio import Portfolio, Position

fills = st.lists(
    st.tuples(
        st.sampled_from(["s1", "s2"]),
        st.integers(0, 2),
        st.sampled_from([Side.BUY, Side.SELL]),
        st.integers(1, 40).map(lambda k: 65 * k),
        st.integers(5, 200_000).map(lambda p: p // 5 * 5),
        st.integers(0, 5_000),
    ),
    max_size=40,
)


@given(fills, st.lists(st.integers(0, 300_000), min_size=3, max_size=3))
@settings(max_examples=300, deadline=None)
def test_cash_flows_minus_charges_plus_open_value_is_net_pnl(fs, marks) -> None:
    pf = Portfolio()
    cash = charges = 0
    for sid, idx, side, qty, price, ch in fs:
        pf.add_fill(sid, idx, str(idx), side, qty, price, ch)
        cash += price * qty if side is Side.SELL else -price * qty
        charges += ch
    for idx, m in enumerate(marks):
        pf.mark(idx, m)
    open_value = sum(p.qty * p.mark_paise for p in pf.of())
    total = pf.pnl()
    assert total.net == cash - charges + open_value
    assert total.realised + total.unrealised == total.gross
    assert total.gross - total.charges == total.net
    assert sum(pf.pnl(s).net for s in ("s1", "s2")) == total.net


def test_average_price_and_realised_pnl_of_a_short_bought_back_in_parts() -> None:
    p = Position(strategy_id="s", idx=0, token="t")
    p.apply_fill(Side.SELL, 130, 10_000)  # short 2 lots at 100.00
    p.apply_fill(Side.SELL, 65, 11_000)  # one more at 110.00: average 103.33
    assert p.qty == -195 and round(p.avg_price_paise, 4) == round((20_000 + 11_000) / 3, 4)
    p.apply_fill(Side.BUY, 65, 9_000)  # buy back one lot at 90
    assert p.qty == -130
    # realised: 65 * (103.333 - 90) = 866.67 rupees, to the paisa
    assert p.realised_paise == 86_667
    p.mark_paise = 9_500
    assert p.unrealised_paise == 130 * 9_500 * -1 - p.open_cost_paise
    assert p.open_cost_paise == -round(31_000 * 65 * 130 / 195)  # basis of the 130 still short
    assert p.gross_paise == p.cash_paise + p.qty * 9_500
    p.apply_fill(Side.BUY, 195, 8_000)  # through zero: now long 65 at 80
    assert p.qty == 65 and p.open_cost_paise == 65 * 8_000
    assert p.realised_paise == p.cash_paise + 65 * 8_000


def test_daily_pnl_counts_from_the_start_of_the_day() -> None:
    pf = Portfolio()
    pf.add_fill("s", 0, "t", Side.SELL, 65, 10_000, 2_000)
    pf.mark(0, 9_000)
    pf.start_day()
    assert pf.day_pnl("s") == 0
    pf.mark(0, 12_000)
    assert pf.day_pnl("s") == -65 * 3_000 and pf.day_pnl() == -65 * 3_000
