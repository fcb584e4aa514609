"""Scalar-path dispatch for numpy scalars, and thread-count independence of the array path."""

from __future__ import annotations

import numpy as np
import pytest

from algoengine import greeks as gk


def test_numpy_scalars_take_the_scalar_path() -> None:
    g = gk.greeks("c", np.float64(100.0), np.float64(105.0), np.float64(0.1), 0.07, np.float64(0.2))
    assert isinstance(g, gk.Greeks)
    assert g == gk.greeks("c", 100.0, 105.0, 0.1, 0.07, 0.2)
    assert type(gk.price("p", np.float64(100.0), 105.0, 0.1, 0.07, 0.2)) is float
    with pytest.raises(ValueError, match=r"^S:"):
        gk.price("c", np.float64(-1.0), 105.0, 0.1, 0.07, 0.2)
    with pytest.raises(ValueError, match="below intrinsic"):
        gk.implied_vol(np.float64(0.5), "c", 100.0, 50.0, 0.1, 0.07)


def test_zero_dimensional_arrays_return_scalars() -> None:
    g = gk.greeks(np.array("c"), np.array(100.0), 105.0, 0.1, 0.07, 0.2)
    assert isinstance(g, gk.Greeks)
    assert g.price == pytest.approx(gk.price("c", 100.0, 105.0, 0.1, 0.07, 0.2), rel=1e-13)


@pytest.mark.parametrize("n", [1, 511, 512, 513, 40_000, 100_003])
def test_results_do_not_depend_on_thread_count(n: int) -> None:
    rng = np.random.default_rng(n)
    K = rng.uniform(50.0, 200.0, n)
    T = rng.uniform(0.0, 2.0, n)
    sig = rng.uniform(0.0, 3.0, n)
    w = np.where(rng.random(n) < 0.5, 1.0, -1.0)
    before = gk.get_num_threads()
    try:
        gk.set_num_threads(1)
        one = gk.greeks(w, 100.0, K, T, 0.07, sig, 0.01)
        iv_one = gk.implied_vol(one.price, w, 100.0, K, T, 0.07, 0.01)
        gk.set_num_threads(2)
        two = gk.greeks(w, 100.0, K, T, 0.07, sig, 0.01)
        iv_two = gk.implied_vol(two.price, w, 100.0, K, T, 0.07, 0.01)
    finally:
        gk.set_num_threads(before)
    for a, b in zip(one, two, strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(iv_one, iv_two)


def test_set_num_threads_rejects_zero() -> None:
    with pytest.raises(ValueError, match=r"^n:"):
        gk.set_num_threads(0)
    assert gk.get_num_threads() >= 1
