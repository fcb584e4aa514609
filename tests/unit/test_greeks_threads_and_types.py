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


def test_tails_below_1e_295_are_exact_zeros_and_specials_survive() -> None:
    """erfc is returned as 0 beyond y = 26 (erfc(26) = 1.3e-295) and the density beyond
    |x| = 36.77, so that no exp() argument leaves libmvec's fast range; NaN stays NaN and
    the infinities give their limits."""
    from algoengine._ext import greeks as ext

    assert ext._erfc(25.9) > 1e-293
    assert ext._erfc(26.01) == 0.0 and ext._erfc(1e6) == 0.0 and ext._erfc(np.inf) == 0.0
    assert ext._erfc(-26.01) == 2.0 and ext._erfc(-np.inf) == 2.0
    assert np.isnan(ext._erfc(np.nan))
    assert ext._norm_cdf(-40.0) == 0.0 and ext._norm_cdf(40.0) == 1.0
    assert np.isnan(ext._norm_cdf(np.nan))


def test_extreme_rows_match_the_scalar_path_in_an_array() -> None:
    """Deep wings, one-minute expiries and T = 0 mixed with ordinary rows in one vector: the
    vectorized loop gives what the scalar path gives for each row."""
    rng = np.random.default_rng(5)
    n = 64
    S = np.full(n, 100.0)
    K = np.where(rng.random(n) < 0.5, 55.0, 101.0)
    T = np.where(rng.random(n) < 0.3, 1.0 / 525_600, 0.08)
    T[::7] = 0.0
    sigma = np.where(rng.random(n) < 0.5, 0.01, 0.3)
    w = np.where(rng.random(n) < 0.5, 1.0, -1.0)
    arr = gk.greeks(w, S, K, T, 0.07, sigma, 0.01)
    for i in range(n):
        one = gk.greeks("c" if w[i] > 0 else "p", S[i], K[i], T[i], 0.07, sigma[i], 0.01)
        for name in ("price", "delta", "gamma", "vega", "theta", "rho"):
            a, b = getattr(arr, name)[i], getattr(one, name)
            assert np.isfinite(a), (i, name)
            # vector and scalar exp/log differ by an ulp or two; an out-of-the-money price is a
            # difference of two terms of size S, so the absolute scale is 1e-14 * S
            assert a == pytest.approx(b, rel=1e-13, abs=1e-14 * S[i]), (i, name)
