"""Benchmarks: algoengine.greeks against numpy/scipy, numba, py_vollib(_vectorized), QuantLib, LBR.

Groups (ratios are printed per group at the end of the run, see conftest.py):
    greeks-1e6         price + 5 Greeks, 10^6 options            baseline: numpy/scipy
    greeks-chain-1000  price + 5 Greeks, one 1,000-option chain  baseline: numpy/scipy
    iv-1e6             implied vol, 10^6 options incl. wings     baseline: numpy/scipy solver
    scalar             one option, price + 5 Greeks from Python  baseline: py_vollib
    scalar-iv          one option, implied vol from Python       baseline: py_vollib

Every test also checks its output (against the numpy baseline or the known
sigmas), so ``--benchmark-disable`` is a meaningful smoke run.
"""

from __future__ import annotations

import math

import numpy as np
import peers
import pytest

# (rtol, atol) per output vs the numpy baseline. Observed worst cases on the
# 10^6 set (ours and numba vs numpy): abs 1.4e-13 price, 1.5e-11 theta
# (|theta| up to 4.5e4 at T = 1 minute), <2e-13 elsewhere.
TOL = {
    "price": (1e-9, 1e-11),
    "delta": (1e-9, 1e-12),
    "gamma": (1e-9, 1e-12),
    "vega": (1e-9, 1e-11),
    "theta": (1e-9, 1e-9),
    "rho": (1e-9, 1e-11),
}
# py_vollib_vectorized computes Greeks by finite differences (+-0.01 vol,
# +-0.01 rate, a one-day theta), so only loose agreement is possible.
TOL_FINITE_DIFF = {
    "price": (1e-9, 1e-11),
    "delta": (1e-2, 1e-4),
    "gamma": (5e-2, 1e-4),
    "vega": (5e-2, 1e-2),
    "theta": (2e-1, 1e-1),
    "rho": (5e-2, 1e-2),
}

IV_MAX_REL_ERR = 1e-10  # any option of the iv set
IV_MAX_REL_ERR_WELL = 1e-12  # options whose sigma double precision can resolve (kappa < 100)


def _check_greeks(out, ref, tol=TOL):
    for name in peers.GREEK_FIELDS:
        got = np.asarray(getattr(out, name), dtype=np.float64)
        exp = getattr(ref, name)
        assert got.shape == exp.shape, (name, got.shape, exp.shape)
        rtol, atol = tol[name]
        np.testing.assert_allclose(
            got, exp, rtol=rtol, atol=atol, err_msg=f"{name} disagrees with numpy"
        )


def _args(d):
    return (d["phi"], d["S"], d["K"], d["T"], d["r"], d["sigma"], d["q"])


# ---------------------------------------------------------------------------
# price + Greeks over arrays: 10^6 options and a 1,000-option chain
# ---------------------------------------------------------------------------
ARRAY_IMPLS = ["ours", "numpy", "numba", "numba_serial", "py_vollib_vectorized"]
# + ours pinned to one thread on the 10^6 sets (the chain is single-threaded anyway)
BIG_IMPLS = ["ours", "ours_1thread", "numpy", "numba", "numba_serial", "py_vollib_vectorized"]


@pytest.fixture
def ours_one_thread(ours):
    """ours with set_num_threads(1) for the duration of one test."""
    before = ours.get_num_threads()
    ours.set_num_threads(1)
    try:
        yield ours
    finally:
        ours.set_num_threads(before)


def _greeks_impl(impl, request):
    """-> (callable(phi,S,K,T,r,sigma,q), label, baseline?, extra_info, tol)."""
    if impl == "ours":
        g = request.getfixturevalue("ours")
        return g.greeks, "ours (algoengine)", False, {"threads": g.get_num_threads()}, TOL
    if impl == "ours_1thread":
        g = request.getfixturevalue("ours_one_thread")
        return g.greeks, "ours, 1 thread", False, {"threads": 1}, TOL
    if impl == "numpy":
        return peers.numpy_greeks, "numpy/scipy", True, {}, TOL
    if impl in ("numba", "numba_serial"):
        threads = request.getfixturevalue("numba_ready")
        if impl == "numba":
            return peers.numba_greeks, "numba parallel", False, {"threads": threads}, TOL
        return peers.numba_greeks_serial, "numba serial", False, {"threads": 1}, TOL
    if impl == "py_vollib_vectorized":
        reason = request.getfixturevalue("pvv_status")["greeks"]
        if reason:
            pytest.skip(f"py_vollib_vectorized unusable here: {reason}")
        return peers.pvv_greeks, "py_vollib_vectorized", False, {}, TOL_FINITE_DIFF
    raise AssertionError(impl)


@pytest.mark.benchmark(group="greeks-1e6")
@pytest.mark.parametrize("impl", BIG_IMPLS)
def test_greeks_1e6(impl, request, bench, big, big_ref):
    fn, label, baseline, extra, tol = _greeks_impl(impl, request)
    out = bench.pedantic(
        fn,
        *_args(big),
        impl=label,
        n_options=big["n"],
        rounds=20,
        # five untimed calls first: right after the fixtures have built and freed their
        # arrays, the kernel is still compacting memory for huge pages, and the first calls
        # of whichever implementation runs first pay for it (seen: 30-50 ms, then 9 ms)
        warmup_rounds=5,
        baseline=baseline,
        **extra,
    )
    _check_greeks(out, big_ref, tol)


@pytest.mark.benchmark(group="greeks-chain-1000")
@pytest.mark.parametrize("impl", ARRAY_IMPLS)
def test_greeks_chain(impl, request, bench, chain, chain_ref):
    fn, label, baseline, extra, tol = _greeks_impl(impl, request)
    if impl == "ours":
        extra = {"threads": 1}  # below ours' threading threshold (32,768 options)
    out = bench.auto(
        fn, *_args(chain), impl=label, n_options=chain["n"], baseline=baseline, **extra
    )
    _check_greeks(out, chain_ref, tol)


# ---------------------------------------------------------------------------
# implied volatility over 10^6 options (deep wings included)
# ---------------------------------------------------------------------------
def _iv_accuracy(ivset, sigma_out) -> dict:
    """Accuracy of an implied-vol result against the sigmas the prices came from.

    kappa = 1 / (s * max(1, |d1|)) (s = sigma sqrt T, d1 of the out-of-the-money
    side) bounds how well double precision can resolve sigma from these
    inputs: rounding the forward moves ln(F/K) by ~1e-16, which moves sigma
    by ~1e-16 * kappa relative, in any double-precision solver.
    """
    sig = ivset["sigma"]
    sigma_out = np.asarray(sigma_out, dtype=np.float64)
    failures = int(np.count_nonzero(~np.isfinite(sigma_out)))
    err = np.abs(sigma_out - sig) / sig
    err = np.where(np.isfinite(err), err, np.inf)
    x = np.log(ivset["S"] / ivset["K"]) + (ivset["r"] - ivset["q"]) * ivset["T"]
    s = sig * np.sqrt(ivset["T"])
    d1 = -np.abs(x) / s + 0.5 * s
    kappa = 1.0 / (s * np.maximum(1.0, np.abs(d1)))
    well = kappa < 100.0
    finite = np.isfinite(err)
    return {
        "failures": failures,
        "max_rel_sigma_err": float(err[finite].max()) if finite.any() else math.inf,
        "rel_sigma_err_p9999": float(np.quantile(err[finite], 0.9999))
        if finite.any()
        else math.inf,
        "max_rel_sigma_err_well_conditioned": float(err[well & finite].max()),
        "well_conditioned_fraction": float(well.mean()),
        "frac_price_below_1e-10": float(np.mean(ivset["price"] < 1e-10)),
        "frac_price_below_1e-100": float(np.mean(ivset["price"] < 1e-100)),
        "min_price": float(ivset["price"].min()),
    }


IV_IMPLS = ["ours", "ours_1thread", "numpy", "numba", "py_vollib_vectorized"]


@pytest.mark.benchmark(group="iv-1e6")
@pytest.mark.parametrize("impl", IV_IMPLS)
def test_implied_vol_1e6(impl, request, bench, ivset):
    extra, baseline, rounds = {}, False, 5
    if impl == "ours":
        g = request.getfixturevalue("ours")
        fn, label, extra = g.implied_vol, "ours (algoengine)", {"threads": g.get_num_threads()}
    elif impl == "ours_1thread":
        g = request.getfixturevalue("ours_one_thread")
        fn, label, extra = g.implied_vol, "ours, 1 thread", {"threads": 1}
    elif impl == "numpy":
        fn, label, baseline, rounds = peers.numpy_implied_vol, "numpy/scipy solver", True, 3
    elif impl == "numba":
        extra = {"threads": request.getfixturevalue("numba_ready")}
        fn, label = peers.numba_implied_vol, "numba parallel solver"
    else:
        reason = request.getfixturevalue("pvv_status")["iv"]
        if reason:
            pytest.skip(f"py_vollib_vectorized unusable here: {reason}")
        fn, label = peers.pvv_implied_vol, "py_vollib_vectorized"
    d = ivset
    out = bench.pedantic(
        fn,
        d["price"],
        d["phi"],
        d["S"],
        d["K"],
        d["T"],
        d["r"],
        d["q"],
        impl=label,
        n_options=d["n"],
        rounds=rounds,
        warmup_rounds=1,
        baseline=baseline,
        **extra,
    )
    acc = _iv_accuracy(d, out)  # once, outside the timer
    bench.extra_info.update(acc)
    print(
        f"\n[iv-1e6] {label}: failures={acc['failures']} "
        f"max rel sigma err={acc['max_rel_sigma_err']:.2e} "
        f"(well-conditioned {acc['well_conditioned_fraction']:.1%}: "
        f"{acc['max_rel_sigma_err_well_conditioned']:.2e}) "
        f"options/s={bench.extra_info.get('options_per_sec') or float('nan'):.3g}"
    )
    assert acc["failures"] == 0
    assert acc["max_rel_sigma_err"] <= IV_MAX_REL_ERR
    assert acc["max_rel_sigma_err_well_conditioned"] <= IV_MAX_REL_ERR_WELL


# ---------------------------------------------------------------------------
# scalar: one option from Python
# ---------------------------------------------------------------------------
SC = {"flag": "c", "S": 100.0, "K": 105.0, "T": 0.1, "r": 0.07, "sigma": 0.2}
SC_REF = peers.py_greeks("c", 100.0, 105.0, 0.1, 0.07, 0.2)


def _check_scalar(vals, rtol=1e-12):
    np.testing.assert_allclose(
        np.asarray(vals, dtype=np.float64), np.asarray(SC_REF), rtol=rtol, atol=1e-14
    )


@pytest.mark.benchmark(group="scalar")
def test_scalar_ours(bench, ours):
    res = bench.auto(
        ours.greeks, "c", 100.0, 105.0, 0.1, 0.07, 0.2, impl="ours (algoengine)", n_options=1
    )
    _check_scalar([res.price, res.delta, res.gamma, res.vega, res.theta, res.rho])


@pytest.mark.benchmark(group="scalar")
def test_scalar_py_vollib(bench):
    f = peers.py_vollib_scalar_greeks_fn()
    res = bench.auto(
        f,
        "c",
        100.0,
        105.0,
        0.1,
        0.07,
        0.2,
        0.0,
        impl="py_vollib (6 calls)",
        n_options=1,
        baseline=True,
    )
    _check_scalar([v * k for v, k in zip(res, peers.PY_VOLLIB_UNIT_SCALE, strict=True)])


@pytest.mark.benchmark(group="scalar")
def test_scalar_quantlib(bench):
    ql = peers.QuantLibScalar("c", 100.0, 105.0, 36, 0.07, 0.2)  # Actual/360: 36 days = 0.1y
    bench.auto(ql, impl="QuantLib (setValue+NPV+5)", n_options=1)
    _check_scalar(ql.at(100.0), rtol=1e-10)


@pytest.mark.benchmark(group="scalar")
def test_scalar_pure_python(bench):
    res = bench.auto(
        peers.py_greeks, "c", 100.0, 105.0, 0.1, 0.07, 0.2, impl="pure Python (math)", n_options=1
    )
    _check_scalar(res)


# scalar implied vol: the price of the same option, back to sigma = 0.2
SC_PRICE = SC_REF[0]


@pytest.mark.benchmark(group="scalar-iv")
def test_scalar_iv_ours(bench, ours):
    s = bench.auto(
        ours.implied_vol,
        SC_PRICE,
        "c",
        100.0,
        105.0,
        0.1,
        0.07,
        impl="ours (algoengine)",
        n_options=1,
    )
    assert abs(s - 0.2) <= 1e-13


@pytest.mark.benchmark(group="scalar-iv")
def test_scalar_iv_lets_be_rational(bench):
    f = peers.lbr_scalar_iv_fn()
    s = bench.auto(
        f, SC_PRICE, "c", 100.0, 105.0, 0.1, 0.07, impl="py_lets_be_rational", n_options=1
    )
    assert abs(s - 0.2) <= 1e-13


@pytest.mark.benchmark(group="scalar-iv")
def test_scalar_iv_py_vollib(bench):
    f = peers.py_vollib_scalar_iv_fn()
    s = bench.auto(
        f, SC_PRICE, 100.0, 105.0, 0.1, 0.07, 0.0, "c", impl="py_vollib", n_options=1, baseline=True
    )
    assert abs(s - 0.2) <= 1e-13


# ---------------------------------------------------------------------------
# the peers agree with each other (runs even before the kernel is built)
# ---------------------------------------------------------------------------
def test_peers_agree(big, big_ref, numba_ready):
    """numba (parallel and serial) and the scalar pure-Python peer reproduce numpy."""
    _check_greeks(peers.numba_greeks(*_args(big)), big_ref)
    _check_greeks(peers.numba_greeks_serial(*_args(big)), big_ref)
    for i in range(0, big["n"], big["n"] // 50):
        flag = "c" if big["phi"][i] > 0 else "p"
        vals = peers.py_greeks(
            flag, big["S"][i], big["K"][i], big["T"][i], big["r"], big["sigma"][i], big["q"]
        )
        ref = [getattr(big_ref, f)[i] for f in peers.GREEK_FIELDS]
        np.testing.assert_allclose(vals, ref, rtol=1e-9, atol=1e-9)


def test_reference_price_matches_lets_be_rational():
    """peers.reference_price (builds the iv set) vs Jaeckel's LBR, deep wings included."""
    from py_lets_be_rational import black

    rng = np.random.default_rng(7)
    n = 2000
    phi = np.where(rng.random(n) < 0.5, 1.0, -1.0)
    S = rng.uniform(50.0, 150.0, n)
    K = S * np.exp(rng.uniform(math.log(0.5), math.log(2.0), n))
    T = np.exp(rng.uniform(math.log(1e-4), math.log(2.0), n))
    sig = np.exp(rng.uniform(math.log(0.01), math.log(3.0), n))
    r, q = 0.07, 0.012
    got = peers.reference_price(phi, S, K, T, r, sig, q)
    F = S * np.exp((r - q) * T)
    exp = np.array(
        [
            math.exp(-r * t) * black(f, k, v, t, p)
            for f, k, v, t, p in zip(F, K, sig, T, phi, strict=True)
        ]
    )
    ok = exp > 1e-290
    assert ok.sum() > n // 3
    # Both sides are limited by the rounding of ln(F/K) (~1e-16 absolute), which
    # moves an out-of-the-money price by ~1e-16 * max(1, |d1|) / s relative
    # (s = sigma sqrt T): allow a few of those (measured: reference_price is the
    # closer of the two to a 80-digit Decimal evaluation on the worst points).
    x = np.log(F / K)
    s = sig * np.sqrt(T)
    d1 = -np.abs(x) / s + 0.5 * s
    bound = 1e-14 + 8 * np.finfo(float).eps * np.maximum(1.0, np.abs(d1)) / s
    rel = np.abs(got[ok] - exp[ok]) / exp[ok]
    assert np.all(rel <= bound[ok]), float((rel / bound[ok]).max())
