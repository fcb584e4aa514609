"""Implied volatility: ``algoengine.greeks.implied_vol`` and ``black76_implied_vol``.

Where sigma is recoverable (the criterion)
------------------------------------------
Any double-precision price carries an error of a few ulp of the terms it is
made of, ``price_scale = S e^{-qT} N(w d1) + K e^{-rT} N(w d2)`` (Black-76:
``e^{-rT} (F N(w d1) + K N(w d2))``).  A price error dp moves sigma by
dp/vega, so the relative sigma error that rounding alone can cause is

    cond = 4*eps*price_scale / (vega*sigma).

The round trips assert ``|iv - sigma| / sigma < 1e-10`` wherever

    price > 1e-12*S   and   cond <= 1e-11          ("well-conditioned")

i.e. wherever the price is not negligible and rounding alone cannot cost more
than a tenth of the tolerance.  This keeps deep wings (far OTM with enough
total variance) and excludes deep ITM options whose time value is lost in the
rounding of the intrinsic value, and near-the-money options minutes before
expiry at low vol (price ~ 0.4*S*sigma*sqrt(T) is then a difference of two
~S/2 terms).  Points with 1e-11 < cond <= 1e-6 are still checked, to
``10*cond`` (the error rounding can explain).  A separate test covers far-OTM
prices below 1e-12*S.

Bounds (asserted below)
-----------------------
* price < discounted intrinsic: scalar ValueError mentioning "below intrinsic";
  array NaN.
* price > upper bound (S e^{-qT} call, K e^{-rT} put; Black-76 e^{-rT} F / K):
  scalar ValueError mentioning "above"; array NaN.
* price exactly the discounted intrinsic (> 0): 0.0.
* price <= 0 or NaN, including exactly 0 for an OTM option (which equals its
  intrinsic value 0): scalar ValueError naming 'option_price'; array NaN.
* T == 0: scalar ValueError naming 'T'; array NaN.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from tests.reference import greeks as ref
from tests.unit.test_greeks import (
    _IMPORT_ERROR,
    DAY,
    HYP,
    MINUTE,
    N_LARGE,
    _greeks_mod,
    flag_str,
    flags_array,
    log_uniform,
)

EPS = float(np.finfo(float).eps)
IV_RTOL = 1e-10
COND_MAX = 1e-11  # well-conditioned: asserted to IV_RTOL
COND_LOOSE = 1e-6  # checked to 10*cond
NAN, INF = float("nan"), float("inf")


@pytest.fixture(scope="module")
def g():
    if _greeks_mod is None:
        pytest.fail(f"cannot import algoengine.greeks: {_IMPORT_ERROR!r}")
    return _greeks_mod


# ============================================================================
# criterion
# ============================================================================
def bsm_cond(w, S, K, T, r, sigma, q):
    """(price, cond) from the oracle; cond as in the module docstring."""
    gr = ref.bsm_greeks(w, S, K, T, r, sigma, q)
    scale = S * abs(gr.delta) + abs(gr.rho) / T  # = S e^{-qT} N(w d1) + K e^{-rT} N(w d2)
    cond = 4 * EPS * scale / (gr.vega * sigma) if gr.vega > 0 else INF
    return gr.price, cond


def b76_cond(w, F, K, T, r, sigma):
    gr = ref.black76_greeks(w, F, K, T, r, sigma)
    s = sigma * math.sqrt(T)
    d2 = math.log(F / K) / s - 0.5 * s
    scale = F * abs(gr.delta) + math.exp(-r * T) * K * ref.norm_cdf(
        w * d2
    )  # e^{-rT}(F N(w d1) + K N(w d2))
    cond = 4 * EPS * scale / (gr.vega * sigma) if gr.vega > 0 else INF
    return gr.price, cond


def recoverable(price, cond, S, cond_max=COND_MAX):
    return price > 1e-12 * S and cond <= cond_max


def iv_tol(cond):
    """1e-10 where well-conditioned, else what rounding can explain (10*cond)."""
    return np.maximum(IV_RTOL, 10.0 * np.minimum(np.asarray(cond, float), 1.0))


def assert_iv_close(iv, sigma, inputs, what, rtol=IV_RTOL, max_report=8):
    iv = np.asarray(iv, float)
    sigma = np.asarray(sigma, float)
    with np.errstate(invalid="ignore"):
        rel = np.abs(iv - sigma) / sigma
        rtol = np.broadcast_to(rtol, rel.shape)
        bad = ~(rel < rtol)
    if bad.any():
        lines = [f"{what}: {bad.sum()} of {bad.size} implied vols off by more than the tolerance"]
        for i in np.flatnonzero(bad)[:max_report]:
            inp = ", ".join(f"{k}={np.asarray(v).ravel()[i]!r}" for k, v in inputs.items())
            lines.append(
                f"  ({inp}) iv={iv[i]!r} expected={sigma[i]!r} "
                f"rel_err={rel[i]:.3g} tol={rtol[i]:.3g}"
            )
        raise AssertionError("\n".join(lines))


# ============================================================================
# grids
# ============================================================================
IV_MONEYNESS = (0.5, 0.7, 0.9, 0.97, 1.0, 1.03, 1.1, 1.4, 2.0)
IV_EXPIRIES = (MINUTE, 5 * MINUTE, 60 * MINUTE, DAY, 7 * DAY, 30 * DAY, 0.25, 1.0, 2.0)
IV_VOLS = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0)
IV_RATE_DIV = ((0.0, 0.0), (0.05, 0.02), (-0.01, 0.0), (0.1, 0.05))
SPOTS = (1.0, 100.0, 25000.0)


@functools.cache
def iv_grid():
    rows = []
    i = 0
    for m in IV_MONEYNESS:
        for T in IV_EXPIRIES:
            for sigma in IV_VOLS:
                for r, q in IV_RATE_DIV:
                    for w in (1, -1):
                        S = SPOTS[i % 3]
                        i += 1
                        rows.append((w, S, m * S, T, r, sigma, q))
    w, S, K, T, r, sigma, q = (np.array(c) for c in zip(*rows, strict=True))
    price_ref, cond = np.array([bsm_cond(*row) for row in rows]).T
    return dict(w=w, S=S, K=K, T=T, r=r, sigma=sigma, q=q), price_ref, cond


def _iv_inputs(inp, mask):
    return {("flag" if k == "w" else k): v[mask] for k, v in inp.items()}


# ============================================================================
# round trips
# ============================================================================
def test_iv_round_trip_grid(g):
    """price(sigma) -> implied_vol -> sigma, scalar and array, on the compiled
    price and on the oracle price."""
    inp, price_ref, cond = iv_grid()
    w, S, K, T, r, sigma, q = (inp[k] for k in ("w", "S", "K", "T", "r", "sigma", "q"))
    price = np.asarray(g.price(flags_array(w), S, K, T, r, sigma, q), float)
    strict = np.array([recoverable(p, c, s) for p, c, s in zip(price_ref, cond, S, strict=True)])
    ok = np.array(
        [recoverable(p, c, s, COND_LOOSE) for p, c, s in zip(price_ref, cond, S, strict=True)]
    )
    assert strict.sum() > 0.4 * ok.size, (
        strict.sum()
    )  # the criterion must not make the test vacuous
    idx = np.flatnonzero(ok)
    sub = dict(_iv_inputs(inp, ok), cond=cond[ok])
    tol = iv_tol(cond[ok])

    iv_arr = np.asarray(g.implied_vol(price, flags_array(w), S, K, T, r, q), float)
    assert_iv_close(iv_arr[idx], sigma[idx], sub, "array IV of compiled price", rtol=tol)
    iv_scal = np.array(
        [
            g.implied_vol(
                float(price[i]),
                flag_str(w[i]),
                float(S[i]),
                float(K[i]),
                float(T[i]),
                float(r[i]),
                float(q[i]),
            )
            for i in idx
        ]
    )
    assert_iv_close(iv_scal, sigma[idx], sub, "scalar IV of compiled price", rtol=tol)
    iv_ref_price = np.asarray(g.implied_vol(price_ref, flags_array(w), S, K, T, r, q), float)
    assert_iv_close(iv_ref_price[idx], sigma[idx], sub, "array IV of oracle price", rtol=tol)


def _spec_bounds(w, S, K, T, r, q):
    """max(w*(S e^{-qT} - K e^{-rT}), 0) and the upper bound, evaluated in doubles with math.exp."""
    dq, dr = math.exp(-q * T), math.exp(-r * T)
    return max(w * (S * dq - K * dr), 0.0), (S * dq if w > 0 else K * dr)


def test_iv_defined_everywhere_inside_bounds(g):
    """Every price p with  intrinsic <= p < upper bound  (intrinsic per the spec:
    max(w*(S e^{-qT} - K e^{-rT}), 0) in doubles) has an implied vol: finite
    and >= 0 (0.0 at intrinsic), recoverable or not -- including the compiled
    price of deep ITM options whose time value is below rounding, which equals
    that intrinsic.  No NaN in arrays, no 'below intrinsic' at the scalar face."""
    inp, _, _ = iv_grid()
    w, S, K, T, r, sigma, q = (inp[k] for k in ("w", "S", "K", "T", "r", "sigma", "q"))
    price = np.asarray(g.price(flags_array(w), S, K, T, r, sigma, q), float)
    bounds = np.array(
        [_spec_bounds(*(float(a[i]) for a in (w, S, K, T, r, q))) for i in range(len(w))]
    )
    inside = (price > 0) & (price >= bounds[:, 0]) & (price < bounds[:, 1])
    iv = np.asarray(g.implied_vol(price, flags_array(w), S, K, T, r, q), float)
    bad = inside & ~(np.isfinite(iv) & (iv >= 0))
    lines = []
    for i in np.flatnonzero(bad)[:6]:
        args = (float(price[i]), flag_str(w[i]), *(float(a[i]) for a in (S, K, T, r, q)))
        try:
            scalar = repr(g.implied_vol(*args))
        except ValueError as exc:
            scalar = f"ValueError({exc})"
        ulps = (price[i] - bounds[i, 0]) / np.spacing(price[i])
        lines.append(
            f"  implied_vol{args}: array={iv[i]!r}, scalar={scalar}; "
            f"price - intrinsic = {ulps:.0f} ulp (sigma used: {sigma[i]})"
        )
    assert not bad.any(), (
        f"{bad.sum()} of {inside.sum()} in-bounds prices have no IV:\n" + "\n".join(lines)
    )


bsm_iv_points = st.tuples(
    st.sampled_from([1, -1]),
    log_uniform(0.01, 1e5),
    log_uniform(0.5, 2.0),
    log_uniform(MINUTE, 2.0),
    st.floats(-0.01, 0.1),
    log_uniform(0.01, 3.0),
    st.floats(0.0, 0.05),
).map(lambda t: (t[0], t[1], t[1] * t[2], t[3], t[4], t[5], t[6]))


@HYP
@given(pt=bsm_iv_points)
def test_iv_round_trip_scalar_hypothesis(g, pt):
    w, S, K, T, r, sigma, q = pt
    price_ref, cond = bsm_cond(*pt)
    assume(recoverable(price_ref, cond, S, COND_LOOSE))
    price = g.price(flag_str(w), S, K, T, r, sigma, q)
    iv = g.implied_vol(price, flag_str(w), S, K, T, r, q)
    assert abs(iv - sigma) / sigma < iv_tol(cond), dict(
        flag=w, S=S, K=K, T=T, r=r, sigma=sigma, q=q, price=price, iv=iv, cond=cond
    )


@HYP
@given(pts=st.lists(bsm_iv_points, min_size=1, max_size=40))
def test_iv_round_trip_array_hypothesis(g, pts):
    w, S, K, T, r, sigma, q = (np.array(c, dtype=float) for c in zip(*pts, strict=True))
    price = np.asarray(g.price(flags_array(w), S, K, T, r, sigma, q), float)
    iv = np.asarray(g.implied_vol(price, flags_array(w), S, K, T, r, q), float)
    assert iv.shape == w.shape
    pc = np.array([bsm_cond(*pt) for pt in pts])
    ok = np.array([recoverable(p, c, s, COND_LOOSE) for (p, c), s in zip(pc, S, strict=True)])
    tol = iv_tol(pc[ok, 1])
    inp = dict(flag=w, S=S, K=K, T=T, r=r, sigma=sigma, q=q, price=price, cond=pc[:, 1])
    assert_iv_close(
        iv[ok], sigma[ok], {k: v[ok] for k, v in inp.items()}, "array IV round trip", rtol=tol
    )
    # array results agree with the scalar path
    for j, i in enumerate(np.flatnonzero(ok)):
        s = g.implied_vol(float(price[i]), flag_str(w[i]), *(float(a[i]) for a in (S, K, T, r, q)))
        assert abs(s - iv[i]) <= 2 * tol[j] * sigma[i], (i, s, iv[i])


def test_iv_deep_otm_wings_below_price_floor(g):
    """Far-OTM options priced between 1e-250*S and 1e-12*S: sigma is still
    well determined (cond << 1e-11 there), so the 1e-10 round trip must hold."""
    rows = []
    for m, w in ((0.5, -1), (0.6, -1), (0.75, -1), (1.3, 1), (1.6, 1), (2.0, 1)):
        for T in (30 * MINUTE, DAY, 7 * DAY, 30 * DAY, 0.25, 1.0):
            for sigma in (0.02, 0.05, 0.1, 0.2, 0.4):
                p, c = bsm_cond(w, 100.0, 100.0 * m, T, 0.03, sigma, 0.01)
                if 1e-250 * 100.0 < p < 1e-12 * 100.0 and c <= COND_MAX:
                    rows.append((w, 100.0, 100.0 * m, T, 0.03, sigma, 0.01))
    assert len(rows) >= 30, len(rows)
    w, S, K, T, r, sigma, q = (np.array(c) for c in zip(*rows, strict=True))
    price = np.asarray(g.price(flags_array(w), S, K, T, r, sigma, q), float)
    inp = dict(flag=w, S=S, K=K, T=T, r=r, sigma=sigma, q=q, price=price)
    iv = np.asarray(g.implied_vol(price, flags_array(w), S, K, T, r, q), float)
    assert_iv_close(iv, sigma, inp, "deep-wing array IV")
    iv_s = np.array(
        [
            g.implied_vol(float(p), flag_str(a), *map(float, rest))
            for p, a, *rest in zip(price, w, S, K, T, r, q, strict=True)
        ]
    )
    assert_iv_close(iv_s, sigma, inp, "deep-wing scalar IV")


def test_iv_large_array_round_trip(g):
    """100,003 options (threaded, not a multiple of any block size)."""
    rng = np.random.default_rng(7)
    n = N_LARGE
    w = rng.choice(np.array([1.0, -1.0]), n)
    S = 100.0
    K = S * np.exp(rng.uniform(np.log(0.5), np.log(2.0), n))
    T = np.exp(rng.uniform(np.log(MINUTE), np.log(2.0), n))
    sigma = np.exp(rng.uniform(np.log(0.01), np.log(3.0), n))
    r, q = 0.04, 0.01
    res = g.greeks(w, S, K, T, r, sigma, q)
    scale = S * np.abs(res.delta) + np.abs(res.rho) / T
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        cond = 4 * EPS * scale / (res.vega * sigma)
    ok = (res.price > 1e-12 * S) & (cond <= COND_LOOSE)
    assert ((res.price > 1e-12 * S) & (cond <= COND_MAX)).sum() > 0.2 * n
    tol = iv_tol(cond)
    iv = np.asarray(g.implied_vol(res.price, w, S, K, T, r, q), float)
    assert iv.shape == (n,)
    inp = dict(flag=w, K=K, T=T, sigma=sigma, price=res.price, cond=cond)
    assert_iv_close(
        iv[ok],
        sigma[ok],
        {k: v[ok] for k, v in inp.items()},
        "large-array IV round trip",
        rtol=tol[ok],
    )
    # the tail block against the scalar path
    for i in range(n - 40, n):
        if ok[i]:
            s = g.implied_vol(float(res.price[i]), float(w[i]), S, float(K[i]), float(T[i]), r, q)
            assert abs(s - iv[i]) <= 2 * tol[i] * sigma[i], (i, s, iv[i])


def test_iv_2d_broadcasting(g):
    K = (100.0 * np.linspace(0.6, 1.6, 21))[:, None]
    T = np.array([10 * MINUTE, DAY, 30 * DAY, 0.5, 2.0])[None, :]
    sigma = 0.35
    price = g.price("c", 100.0, K, T, 0.03, sigma, 0.0)
    iv = np.asarray(g.implied_vol(price, "c", 100.0, K, T, 0.03, 0.0))
    assert iv.shape == (21, 5)
    Kb, Tb = np.broadcast_arrays(K, T)
    ok = np.array(
        [
            recoverable(*bsm_cond(1, 100.0, k, t, 0.03, sigma, 0.0), 100.0)
            for k, t in zip(Kb.ravel(), Tb.ravel(), strict=True)
        ]
    )
    assert_iv_close(
        iv.ravel()[ok], np.full(ok.sum(), sigma), dict(K=Kb.ravel()[ok], T=Tb.ravel()[ok]), "2-D IV"
    )


# ============================================================================
# py_lets_be_rational
# ============================================================================
@pytest.fixture(scope="module")
def lbr():
    return pytest.importorskip("py_lets_be_rational")


def test_iv_matches_lets_be_rational(g, lbr):
    """Compiled IV vs Jaeckel's 'Let's Be Rational' on the same (compiled) price;
    LBR takes the undiscounted price and the forward."""
    inp, price_ref, cond = iv_grid()
    w, S, K, T, r, sigma, q = (inp[k] for k in ("w", "S", "K", "T", "r", "sigma", "q"))
    ok = np.array([recoverable(p, c, s) for p, c, s in zip(price_ref, cond, S, strict=True)])
    idx = np.flatnonzero(ok)[::3]
    price = np.asarray(
        g.price(flags_array(w[idx]), S[idx], K[idx], T[idx], r[idx], sigma[idx], q[idx]), float
    )
    ours = np.asarray(
        g.implied_vol(price, flags_array(w[idx]), S[idx], K[idx], T[idx], r[idx], q[idx]), float
    )
    theirs = np.array(
        [
            lbr.implied_volatility_from_a_transformed_rational_guess(
                p * math.exp(rr * t), s * math.exp((rr - qq) * t), k, t, float(ww)
            )
            for p, ww, s, k, t, rr, qq in zip(
                price, w[idx], S[idx], K[idx], T[idx], r[idx], q[idx], strict=True
            )
        ]
    )
    sub = _iv_inputs(inp, idx)
    assert_iv_close(ours, theirs, dict(sub, price=price), "compiled IV vs lets_be_rational")
    assert_iv_close(
        theirs,
        sigma[idx],
        dict(sub, price=price),
        "lets_be_rational round trip (sanity)",
        rtol=1e-9,
    )


def test_reference_iv_round_trip_and_vs_lets_be_rational(lbr):
    """The oracle's bisection IV is itself right."""
    for m in (0.6, 0.95, 1.0, 1.05, 1.8):
        for T in (5 * MINUTE, DAY, 0.5, 2.0):
            for sigma in (0.02, 0.25, 1.5):
                for w in (1, -1):
                    S, K, r, q = 100.0, 100.0 * m, 0.03, 0.01
                    p, c = bsm_cond(w, S, K, T, r, sigma, q)
                    if not recoverable(p, c, S):
                        continue
                    iv = ref.bsm_implied_vol(p, w, S, K, T, r, q)
                    assert abs(iv - sigma) / sigma < IV_RTOL, (w, m, T, sigma, iv)
                    lb = lbr.implied_volatility_from_a_transformed_rational_guess(
                        p * math.exp(r * T), S * math.exp((r - q) * T), K, T, float(w)
                    )
                    assert abs(iv - lb) / lb < 1e-9, (w, m, T, sigma, iv, lb)
                    pb, cb = b76_cond(w, S, K, T, r, sigma)
                    if recoverable(pb, cb, S):
                        ivb = ref.black76_implied_vol(pb, w, S, K, T, r)
                        assert abs(ivb - sigma) / sigma < IV_RTOL, (w, m, T, sigma, ivb)


# ============================================================================
# Black-76
# ============================================================================
def test_black76_iv_round_trip_grid(g):
    rows = []
    i = 0
    for m in IV_MONEYNESS:
        for T in IV_EXPIRIES:
            for sigma in IV_VOLS:
                for r in (-0.01, 0.0, 0.06):
                    for w in (1, -1):
                        F = SPOTS[i % 3]
                        i += 1
                        rows.append((w, F, m * F, T, r, sigma))
    w, F, K, T, r, sigma = (np.array(c) for c in zip(*rows, strict=True))
    pc = np.array([b76_cond(*row) for row in rows])
    strict = np.array([recoverable(p, c, f) for (p, c), f in zip(pc, F, strict=True)])
    ok = np.array([recoverable(p, c, f, COND_LOOSE) for (p, c), f in zip(pc, F, strict=True)])
    assert strict.sum() > 0.4 * ok.size
    tol = iv_tol(pc[ok, 1])
    price = np.asarray(g.black76_price(flags_array(w), F, K, T, r, sigma), float)
    inp = dict(flag=w, F=F, K=K, T=T, r=r, sigma=sigma, price=price, cond=pc[:, 1])
    sub = {k: v[ok] for k, v in inp.items()}
    iv = np.asarray(g.black76_implied_vol(price, flags_array(w), F, K, T, r), float)
    assert_iv_close(iv[ok], sigma[ok], sub, "Black-76 array IV", rtol=tol)
    iv_s = np.array(
        [
            g.black76_implied_vol(
                float(price[j]), flag_str(w[j]), float(F[j]), float(K[j]), float(T[j]), float(r[j])
            )
            for j in np.flatnonzero(ok)
        ]
    )
    assert_iv_close(iv_s, sigma[ok], sub, "Black-76 scalar IV", rtol=tol)


b76_iv_points = st.tuples(
    st.sampled_from([1, -1]),
    log_uniform(0.01, 1e5),
    log_uniform(0.5, 2.0),
    log_uniform(MINUTE, 2.0),
    st.floats(-0.01, 0.1),
    log_uniform(0.01, 3.0),
).map(lambda t: (t[0], t[1], t[1] * t[2], t[3], t[4], t[5]))


@HYP
@given(pt=b76_iv_points)
def test_black76_iv_round_trip_hypothesis(g, pt):
    w, F, K, T, r, sigma = pt
    p_ref, cond = b76_cond(*pt)
    assume(recoverable(p_ref, cond, F, COND_LOOSE))
    price = g.black76_price(flag_str(w), F, K, T, r, sigma)
    iv = g.black76_implied_vol(price, flag_str(w), F, K, T, r)
    assert abs(iv - sigma) / sigma < iv_tol(cond), dict(
        flag=w, F=F, K=K, T=T, r=r, sigma=sigma, price=price, iv=iv, cond=cond
    )


# ============================================================================
# bounds
# ============================================================================
BOUND_CASES = [  # flag, S, K, T, r, q
    ("c", 100.0, 80.0, 0.5, 0.05, 0.01),
    ("p", 100.0, 125.0, 0.5, 0.05, 0.01),
    ("c", 100.0, 120.0, 1.0, -0.01, 0.03),
    ("p", 100.0, 90.0, 2.0, 0.08, 0.0),
]


def _bsm_bounds(flag, S, K, T, r, q):
    w = 1 if flag == "c" else -1
    lower = max(w * (S * math.exp(-q * T) - K * math.exp(-r * T)), 0.0)
    upper = S * math.exp(-q * T) if w > 0 else K * math.exp(-r * T)
    return lower, upper


@pytest.mark.parametrize("case", BOUND_CASES)
def test_iv_scalar_bounds_raise_naming_the_bound(g, case):
    flag, S, K, T, r, q = case
    lower, upper = _bsm_bounds(*case)
    if lower > 0:
        with pytest.raises(ValueError, match="below intrinsic"):
            g.implied_vol(lower * (1 - 1e-6), flag, S, K, T, r, q)
    with pytest.raises(ValueError, match="above"):
        g.implied_vol(upper * (1 + 1e-6), flag, S, K, T, r, q)
    with pytest.raises(ValueError, match="above"):
        g.implied_vol(upper * 2.0, flag, S, K, T, r, q)


@pytest.mark.parametrize("case", BOUND_CASES)
def test_iv_array_out_of_bounds_is_nan(g, case):
    flag, S, K, T, r, q = case
    lower, upper = _bsm_bounds(*case)
    good = g.price(flag, S, K, T, r, 0.3, q)
    prices = np.array(
        [good, lower * (1 - 1e-6) if lower > 0 else -1.0, upper * (1 + 1e-6), 2 * upper, good]
    )
    iv = np.asarray(g.implied_vol(prices, flag, S, K, T, r, q))
    assert iv.shape == (5,)
    assert np.isnan(iv[1:4]).all(), iv
    np.testing.assert_allclose(iv[[0, 4]], 0.3, rtol=IV_RTOL)


def test_iv_exactly_intrinsic_is_zero(g):
    # r = q = 0: the discounted intrinsic is exactly S - K or K - S in any formulation
    assert g.implied_vol(20.0, "c", 100.0, 80.0, 0.5, 0.0, 0.0) == 0.0
    assert g.implied_vol(20.0, "p", 100.0, 120.0, 0.5, 0.0, 0.0) == 0.0
    assert g.black76_implied_vol(20.0, "c", 100.0, 80.0, 0.5, 0.0) == 0.0
    iv = np.asarray(
        g.implied_vol(
            np.array([20.0, 20.0]),
            np.array(["c", "p"]),
            100.0,
            np.array([80.0, 120.0]),
            0.5,
            0.0,
            0.0,
        )
    )
    np.testing.assert_array_equal(iv, [0.0, 0.0])


@pytest.mark.parametrize("flag,K", [("c", 80.0), ("p", 125.0), ("CE", 99.0), ("PE", 104.0)])
def test_iv_of_own_zero_vol_price_is_zero(g, flag, K):
    """With carry, "exactly intrinsic" is taken to mean the library's own
    discounted intrinsic, i.e. its sigma = 0 price (which the spec defines as
    max(w*(S e^{-qT} - K e^{-rT}), 0)): feeding it back must give 0.0, not a
    small positive vol and not a 'below intrinsic' error."""
    S, T, r, q = 100.0, 0.5, 0.05, 0.01
    w = 1 if flag.lower().startswith("c") else -1
    p0 = g.price(flag, S, K, T, r, 0.0, q)
    assert (
        p0 == max(w * (S * math.exp(-q * T) - K * math.exp(-r * T)), 0.0) > 0
    )  # the spec's formula, in doubles
    b0 = g.black76_price(flag, S, K, T, r, 0.0)
    for what, fn, price, args in (
        ("implied_vol", g.implied_vol, p0, (flag, S, K, T, r, q)),
        ("black76_implied_vol", g.black76_implied_vol, b0, (flag, S, K, T, r)),
    ):
        try:
            iv = fn(price, *args)
        except ValueError as exc:
            pytest.fail(f"{what}({price!r}, {args}) raised {exc}")
        assert iv == 0.0, f"{what}({price!r}, {args}) = {iv!r}, expected 0.0"


def test_iv_zero_or_negative_price_is_invalid(g):
    """Price 0 of an OTM option equals its intrinsic value 0 but carries no
    volatility information: asserted to be invalid ('option_price' ValueError
    at the scalar face, NaN in arrays), like negative and NaN prices."""
    for bad in (0.0, -1.0, NAN, -0.0):
        with pytest.raises(ValueError, match=r"\boption_price\b"):
            g.implied_vol(bad, "c", 100.0, 120.0, 0.5, 0.03, 0.0)
        with pytest.raises(ValueError, match=r"\boption_price\b"):
            g.black76_implied_vol(bad, "p", 100.0, 80.0, 0.5, 0.03)
    iv = np.asarray(
        g.implied_vol(np.array([0.0, -1.0, NAN, 1.0]), "c", 100.0, 120.0, 0.5, 0.03, 0.0)
    )
    assert np.isnan(iv[:3]).all() and np.isfinite(iv[3]), iv
    ivb = np.asarray(
        g.black76_implied_vol(np.array([0.0, -1.0, NAN, 1.0]), "c", 100.0, 120.0, 0.5, 0.03)
    )
    assert np.isnan(ivb[:3]).all() and np.isfinite(ivb[3]), ivb


def test_black76_iv_bounds(g):
    F, K, T, r = 100.0, 80.0, 0.5, 0.05
    df = math.exp(-r * T)
    with pytest.raises(ValueError, match="below intrinsic"):
        g.black76_implied_vol(df * 20.0 * (1 - 1e-6), "c", F, K, T, r)
    with pytest.raises(ValueError, match="above"):
        g.black76_implied_vol(df * F * (1 + 1e-6), "c", F, K, T, r)
    with pytest.raises(ValueError, match="above"):
        g.black76_implied_vol(df * K * (1 + 1e-6), "p", F, K, T, r)
    iv = np.asarray(
        g.black76_implied_vol(
            np.array([df * 20.0 * (1 - 1e-6), df * F * 1.1, 21.0]), "c", F, K, T, r
        )
    )
    assert np.isnan(iv[:2]).all() and np.isfinite(iv[2]), iv


# ============================================================================
# bad input
# ============================================================================
IV_BASE = dict(option_price=5.0, flag="c", S=100.0, K=100.0, T=0.5, r=0.03, q=0.01)
IV_BAD = [
    ("option_price", 0.0),
    ("option_price", -2.0),
    ("option_price", NAN),
    ("option_price", INF),
    ("S", 0.0),
    ("S", -1.0),
    ("S", NAN),
    ("K", 0.0),
    ("K", NAN),
    ("T", 0.0),
    ("T", -1.0),
    ("T", NAN),
    ("r", INF),
    ("r", NAN),
    ("q", -INF),
    ("q", NAN),
    ("flag", "x"),
    ("flag", 0),
    ("flag", "puts"),
]
B76_IV_BASE = dict(option_price=5.0, flag="p", F=100.0, K=100.0, T=0.5, r=0.03)
B76_IV_BAD = [
    ("option_price", 0.0),
    ("option_price", NAN),
    ("F", 0.0),
    ("F", NAN),
    ("K", -1.0),
    ("T", 0.0),
    ("T", NAN),
    ("r", NAN),
    ("flag", "q"),
]


@pytest.mark.parametrize("name,value", IV_BAD, ids=[f"{n}={v!r}" for n, v in IV_BAD])
def test_iv_scalar_bad_input_names_argument(g, name, value):
    kw = dict(IV_BASE, **{name: value})
    with pytest.raises(ValueError, match=rf"\b{name}\b"):
        g.implied_vol(*kw.values())


@pytest.mark.parametrize("name,value", B76_IV_BAD, ids=[f"{n}={v!r}" for n, v in B76_IV_BAD])
def test_black76_iv_scalar_bad_input_names_argument(g, name, value):
    kw = dict(B76_IV_BASE, **{name: value})
    with pytest.raises(ValueError, match=rf"\b{name}\b"):
        g.black76_implied_vol(*kw.values())


@pytest.mark.parametrize(
    "name,bad",
    [
        ("option_price", [0.0, -2.0, NAN]),
        ("S", [0.0, NAN]),
        ("K", [-1.0, NAN]),
        ("T", [0.0, -1.0, NAN]),
        ("r", [INF, NAN]),
        ("q", [INF, NAN]),
    ],
)
def test_iv_array_bad_elements_give_nan(g, name, bad):
    good = IV_BASE[name]
    col = np.array([good, *bad, good])
    kw = dict(IV_BASE)
    kw[name] = col
    iv = np.asarray(g.implied_vol(*kw.values()))
    want = g.implied_vol(*IV_BASE.values())
    assert iv.shape == col.shape
    assert np.isnan(iv[1:-1]).all(), iv
    np.testing.assert_allclose(iv[[0, -1]], want, rtol=1e-13)


def test_iv_array_unknown_flag_raises(g):
    with pytest.raises(ValueError, match=r"\bflag\b"):
        g.implied_vol(np.array([5.0, 5.0]), np.array(["c", "k"]), 100.0, 100.0, 0.5, 0.03)
    with pytest.raises(ValueError, match=r"\bflag\b"):
        g.black76_implied_vol(np.array([5.0, 5.0]), np.array([1, 3]), 100.0, 100.0, 0.5, 0.03)
    with pytest.raises(ValueError):
        g.implied_vol(np.array([5.0, 5.0, 5.0]), "c", 100.0, np.array([100.0, 101.0]), 0.5, 0.03)


def test_iv_flag_forms_identical(g):
    p = g.price("c", 100.0, 95.0, 0.4, 0.03, 0.25, 0.01)
    want = g.implied_vol(p, "c", 100.0, 95.0, 0.4, 0.03, 0.01)
    for form in ("C", "call", "CALL", "CE", "ce", 1, 1.0):
        assert g.implied_vol(p, form, 100.0, 95.0, 0.4, 0.03, 0.01) == want, form
    K = np.array([95.0, 105.0])
    prices = np.asarray(g.price(np.array(["c", "p"]), 100.0, K, 0.4, 0.03, 0.25, 0.01))
    base = np.asarray(g.implied_vol(prices, np.array(["c", "p"]), 100.0, K, 0.4, 0.03, 0.01))
    for f in (
        np.array([1, -1]),
        np.array([1.0, -1.0]),
        np.array(["CE", "PE"]),
        np.array(["Call", "put"]),
    ):
        np.testing.assert_array_equal(
            np.asarray(g.implied_vol(prices, f, 100.0, K, 0.4, 0.03, 0.01)), base
        )
    assert isinstance(want, float) and isinstance(
        g.implied_vol(np.array([p]), "c", 100.0, 95.0, 0.4, 0.03, 0.01), np.ndarray
    )
