"""Accuracy tests for ``algoengine.greeks``: BSM and Black-76 prices and Greeks.

Layout
------
1. The oracle (``tests/reference/greeks.py``, pure Python) is validated against
   QuantLib's AnalyticEuropeanEngine, against mpmath at 50 digits, against
   central finite differences and against the Black-76 <-> BSM identity.
2. The compiled module is compared with the oracle on a grid and on
   hypothesis-generated inputs (scalar path, array path, array == scalar),
   on large / 2-D / non-contiguous arrays.
3. Compiled prices vs py_vollib.
4. Put-call parity.
5. Expiry day (T = 0, minutes, sigma = 0).
6. Bad input, flag forms, result types.
Implied volatility lives in ``test_greeks_iv.py``.

Tolerances
----------
``|got - expected| <= rtol*|expected| + max(floor, NOISE_MULT*noise)`` where

* ``rtol`` is 1e-9 (compiled vs oracle / QuantLib / py_vollib) or 1e-13
  (array path vs scalar path);
* ``floor`` is an absolute floor in each Greek's natural unit, scaled by S
  (1e-12*S for price, vega, theta, rho; 1e-12 for delta; 1e-12/S for gamma);
* ``noise`` (``ref.bsm_noise``) is how much each output moves when every input
  is perturbed by 1e-15 relative (~4.5 ulp).  It is ~0 for well-conditioned
  points and only matters where double precision itself cannot do better,
  e.g. the delta of an at-the-money option one minute before expiry with 1%
  vol moves by ~3e-12 per ulp of log(S/K), or theta crossing zero.
"""

from __future__ import annotations

import functools
import math
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.reference import greeks as ref

try:  # the compiled module may not be built yet: every test using `g` then fails (not skips)
    from algoengine import greeks as _greeks_mod

    _IMPORT_ERROR = None
except Exception as exc:  # pragma: no cover - only when the build is missing
    _greeks_mod, _IMPORT_ERROR = None, exc

FIELDS = ("price", "delta", "gamma", "vega", "theta", "rho")
MINUTE = 1.0 / (365.0 * 24.0 * 60.0)
DAY = 1.0 / 365.0
NOISE_MULT = 10.0
EPS = np.finfo(float).eps

HYP = settings(
    max_examples=200,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@pytest.fixture(scope="module")
def g():
    if _greeks_mod is None:
        pytest.fail(f"cannot import algoengine.greeks: {_IMPORT_ERROR!r}")
    return _greeks_mod


# ============================================================================
# helpers
# ============================================================================
def flag_str(w) -> str:
    return "c" if w > 0 else "p"


def floors(S, scale=1e-12):
    """Absolute floors (6, n) in each Greek's natural unit."""
    S = np.asarray(S, dtype=float)
    one = np.ones_like(S)
    return np.stack([scale * S, scale * one, scale / S, scale * S, scale * S, scale * S])


def bsm_table(w, S, K, T, r, sigma, q, with_noise=True):
    """Oracle values and noise as (6, n) arrays; NaN where the oracle rejects the input."""
    n = len(w)
    exp = np.full((6, n), np.nan)
    noise = np.zeros((6, n))
    for i in range(n):
        args = (
            flag_str(w[i]),
            float(S[i]),
            float(K[i]),
            float(T[i]),
            float(r[i]),
            float(sigma[i]),
            float(q[i]),
        )
        try:
            exp[:, i] = ref.bsm_greeks(*args)
        except ValueError:
            continue
        if with_noise:
            noise[:, i] = ref.bsm_noise(*args)
    return exp, noise


def b76_table(w, F, K, T, r, sigma, with_noise=True):
    n = len(w)
    exp = np.full((6, n), np.nan)
    noise = np.zeros((6, n))
    for i in range(n):
        args = (flag_str(w[i]), float(F[i]), float(K[i]), float(T[i]), float(r[i]), float(sigma[i]))
        try:
            exp[:, i] = ref.black76_greeks(*args)
        except ValueError:
            continue
        if with_noise:
            noise[:, i] = ref.black76_noise(*args)
    return exp, noise


def as_table(res) -> np.ndarray:
    """Result object of greeks()/black76_greeks() -> (6, n) float array."""
    return np.stack([np.asarray(getattr(res, f), dtype=float).ravel() for f in FIELDS])


def assert_table_close(got, exp, noise, *, rtol, floor, inputs, what, fields=FIELDS, max_report=8):
    """Element-wise check with a readable report of the first failing cases.

    got/exp/noise/floor: (len(fields), n); inputs: dict name -> length-n array.
    NaN expected requires NaN got.
    """
    got = np.asarray(got, dtype=float)
    exp = np.asarray(exp, dtype=float)
    tol = rtol * np.abs(exp) + np.maximum(floor, NOISE_MULT * np.asarray(noise))
    with np.errstate(invalid="ignore"):
        ok = np.abs(got - exp) <= tol
    ok |= np.isnan(got) & np.isnan(exp)
    if ok.all():
        return
    bad = np.argwhere(~ok)
    lines = [f"{what}: {len(bad)} mismatches out of {ok.size} values"]
    for k, i in bad[:max_report]:
        inp = ", ".join(f"{name}={np.asarray(v).ravel()[i]!r}" for name, v in inputs.items())
        rel = abs(got[k, i] - exp[k, i]) / abs(exp[k, i]) if exp[k, i] else float("inf")
        lines.append(
            f"  {fields[k]}: ({inp}) got={got[k, i]!r} expected={exp[k, i]!r} "
            f"tol={tol[k, i]:.3g} rel_err={rel:.3g}"
        )
    raise AssertionError("\n".join(lines))


def scalar_bsm_table(g, w, S, K, T, r, sigma, q):
    out = np.empty((6, len(w)))
    for i in range(len(w)):
        res = g.greeks(
            flag_str(w[i]),
            float(S[i]),
            float(K[i]),
            float(T[i]),
            float(r[i]),
            float(sigma[i]),
            float(q[i]),
        )
        out[:, i] = [float(getattr(res, f)) for f in FIELDS]
    return out


def scalar_b76_table(g, w, F, K, T, r, sigma):
    out = np.empty((6, len(w)))
    for i in range(len(w)):
        res = g.black76_greeks(
            flag_str(w[i]), float(F[i]), float(K[i]), float(T[i]), float(r[i]), float(sigma[i])
        )
        out[:, i] = [float(getattr(res, f)) for f in FIELDS]
    return out


def flags_array(w):
    return np.where(np.asarray(w) > 0, "c", "p")


# ----------------------------------------------------------------------------
# grids
# ----------------------------------------------------------------------------
MONEYNESS = (0.5, 0.6, 0.8, 0.95, 0.99, 1.0, 1.01, 1.05, 1.25, 1.6, 2.0)  # K/S
EXPIRIES = (
    MINUTE,
    5 * MINUTE,
    30 * MINUTE,
    4 * 60 * MINUTE,
    DAY,
    7 * DAY,
    30 * DAY,
    0.25,
    0.5,
    1.0,
    2.0,
)
VOLS = (0.01, 0.05, 0.15, 0.4, 1.0, 3.0)
RATE_DIV = ((-0.01, 0.0), (0.0, 0.0), (0.03, 0.01), (0.1, 0.0), (0.02, 0.05), (0.05, 0.05))
SPOTS = (1.0, 100.0, 25000.0)


@functools.cache
def bsm_grid():
    rows = []
    i = 0
    for m in MONEYNESS:
        for T in EXPIRIES:
            for sigma in VOLS:
                for r, q in RATE_DIV:
                    for w in (1, -1):
                        S = SPOTS[i % len(SPOTS)]
                        i += 1
                        rows.append((w, S, m * S, T, r, sigma, q))
    cols = [np.array(c) for c in zip(*rows, strict=True)]
    w, S, K, T, r, sigma, q = cols
    exp, noise = bsm_table(w, S, K, T, r, sigma, q)
    return dict(w=w, S=S, K=K, T=T, r=r, sigma=sigma, q=q), exp, noise


@functools.cache
def b76_grid():
    rows = []
    i = 0
    for m in MONEYNESS:
        for T in EXPIRIES:
            for sigma in VOLS:
                for r in (-0.01, 0.0, 0.05, 0.1):
                    for w in (1, -1):
                        F = SPOTS[i % len(SPOTS)]
                        i += 1
                        rows.append((w, F, m * F, T, r, sigma))
    w, F, K, T, r, sigma = [np.array(c) for c in zip(*rows, strict=True)]
    exp, noise = b76_table(w, F, K, T, r, sigma)
    return dict(w=w, F=F, K=K, T=T, r=r, sigma=sigma), exp, noise


# ----------------------------------------------------------------------------
# hypothesis strategies
# ----------------------------------------------------------------------------
def log_uniform(lo, hi):
    return st.floats(math.log(lo), math.log(hi)).map(lambda u: min(max(math.exp(u), lo), hi))


bsm_points = st.tuples(
    st.sampled_from([1, -1]),
    log_uniform(0.01, 1e5),  # S
    log_uniform(0.5, 2.0),  # K/S
    log_uniform(MINUTE, 2.0),  # T
    st.floats(-0.01, 0.1),  # r
    log_uniform(0.01, 3.0),  # sigma
    st.floats(0.0, 0.05),  # q
).map(lambda t: (t[0], t[1], t[1] * t[2], t[3], t[4], t[5], t[6]))

b76_points = st.tuples(
    st.sampled_from([1, -1]),
    log_uniform(0.01, 1e5),  # F
    log_uniform(0.5, 2.0),  # K/F
    log_uniform(MINUTE, 2.0),  # T
    st.floats(-0.01, 0.1),  # r
    log_uniform(0.01, 3.0),  # sigma
).map(lambda t: (t[0], t[1], t[1] * t[2], t[3], t[4], t[5]))


def columns(points):
    return [np.array(c, dtype=float) for c in zip(*points, strict=True)]


# ============================================================================
# 1. the oracle itself
# ============================================================================
@pytest.fixture(scope="module")
def quantlib_pricer():
    ql = pytest.importorskip("QuantLib")
    today = ql.Date(15, ql.January, 2025)
    saved = ql.Settings.instance().evaluationDate
    ql.Settings.instance().evaluationDate = today
    dc = ql.Actual365Fixed()
    spot, rq, qq, vq = (ql.SimpleQuote(x) for x in (100.0, 0.0, 0.0, 0.2))
    r_ts = ql.YieldTermStructureHandle(ql.FlatForward(today, ql.QuoteHandle(rq), dc))
    q_ts = ql.YieldTermStructureHandle(ql.FlatForward(today, ql.QuoteHandle(qq), dc))
    vol = ql.BlackVolTermStructureHandle(
        ql.BlackConstantVol(today, ql.NullCalendar(), ql.QuoteHandle(vq), dc)
    )
    engine = ql.AnalyticEuropeanEngine(
        ql.BlackScholesMertonProcess(ql.QuoteHandle(spot), q_ts, r_ts, vol)
    )

    def price(w, S, K, days, r, sigma, q):
        spot.setValue(S)
        rq.setValue(r)
        qq.setValue(q)
        vq.setValue(sigma)
        opt = ql.EuropeanOption(
            ql.PlainVanillaPayoff(ql.Option.Call if w > 0 else ql.Option.Put, K),
            ql.EuropeanExercise(today + days),
        )
        opt.setPricingEngine(engine)
        # QuantLib: theta per year (dV/dt, time passing), vega and rho per 1.0 -- same units as ours
        return (opt.NPV(), opt.delta(), opt.gamma(), opt.vega(), opt.theta(), opt.rho())

    yield price
    ql.Settings.instance().evaluationDate = saved


def test_reference_matches_quantlib(quantlib_pricer):
    """Oracle vs QuantLib AnalyticEuropeanEngine + BlackScholesMertonProcess.

    Flat continuous curves, Actual365Fixed and an integer number of days, so T =
    days/365 exactly.  1e-9 relative wherever |value| > 1e-8.  QuantLib gets
    theta from log(discount)/T (BlackCalculator::theta), which costs it ~eps/T
    absolute per unit of V and S*delta, and prices puts through N(d1) - 1,
    which costs ~eps*(S + K) absolute: that much slack is added (see floor).
    """
    rows = []
    for days in (1, 7, 30, 91, 182, 365, 730):
        for m in (0.5, 0.8, 0.95, 1.0, 1.05, 1.25, 2.0):
            for sigma in (0.01, 0.05, 0.2, 0.5, 1.0, 3.0):
                for r, q in ((0.0, 0.0), (0.05, 0.02), (-0.01, 0.0), (0.1, 0.05)):
                    for w in (1, -1):
                        rows.append((w, 100.0, 100.0 * m, days, r, sigma, q))
    w, S, K, days, r, sigma, q = [np.array(c) for c in zip(*rows, strict=True)]
    T = days / 365.0
    got = np.array([quantlib_pricer(*row) for row in rows]).T
    exp, noise = bsm_table(w, S, K, T, r, sigma, q)
    # QuantLib-side rounding, absolute: puts via N(d1) - 1 (price, delta, rho lose
    # ~eps*(S + K) absolute; e.g. a 1-day 5%-OTM put at 9.3e-8 is off by 7e-8
    # relative in QuantLib, the oracle agrees with mpmath), theta via log(discount)/T.
    floor = np.zeros_like(exp)
    floor[0] = 1e-15 * (S + K)
    floor[1] = 1e-15
    floor[4] = 1e-15 * (np.abs(exp[0]) + S * np.abs(exp[1])) / T + 1e-15 * (S + K)
    floor[5] = 1e-15 * K * T
    tiny = np.abs(got) <= 1e-8  # brief: only where |value| > 1e-8
    got = np.where(tiny, exp, got)
    assert_table_close(
        got,
        exp,
        noise,
        rtol=1e-9,
        floor=floor,
        what="reference vs QuantLib",
        inputs=dict(flag=w, S=S, K=K, T=T, r=r, sigma=sigma, q=q),
    )
    assert (~tiny).sum() > 0.7 * tiny.size


def _mp_bsm(mp, w, S, K, T, r, sigma, q):
    S, K, T, r, sigma, q = (mp.mpf(float(v)) for v in (S, K, T, r, sigma, q))
    sq = mp.sqrt(T)
    s = sigma * sq
    x = mp.log(S / K) + (r - q) * T
    d1, d2 = x / s + s / 2, x / s - s / 2
    dfq, dfr = mp.exp(-q * T), mp.exp(-r * T)
    n1, n2, pdf1 = mp.ncdf(w * d1), mp.ncdf(w * d2), mp.npdf(d1)
    return [
        float(v)
        for v in (
            w * (S * dfq * n1 - K * dfr * n2),
            w * dfq * n1,
            dfq * pdf1 / (S * s),
            S * dfq * pdf1 * sq,
            -S * dfq * pdf1 * sigma / (2 * sq) + w * (q * S * dfq * n1 - r * K * dfr * n2),
            w * K * T * dfr * n2,
        )
    ]


def test_reference_matches_mpmath():
    """Oracle vs 50-digit mpmath on the exact double inputs, including minutes to
    expiry and tiny sigma*sqrt(T) where the textbook formula cancels: 1e-12
    relative beyond the conditioning noise, at every magnitude (no S floor)."""
    mp = pytest.importorskip("mpmath")
    mp.mp.dps = 50
    rows = []
    i = 0
    for m in (0.5, 0.9, 0.99, 0.999, 1.0, 1.001, 1.01, 1.1, 2.0):
        for T in (MINUTE, 5 * MINUTE, 2 * 60 * MINUTE, DAY, 30 * DAY, 1.0, 2.0):
            for sigma in (0.01, 0.04, 0.2, 1.0, 3.0):
                for r, q in ((0.0, 0.0), (0.1, 0.05), (-0.01, 0.02)):
                    for w in (1, -1):
                        S = SPOTS[i % 3]
                        i += 1
                        rows.append((w, S, m * S, T, r, sigma, q))
    w, S, K, T, r, sigma, q = [np.array(c) for c in zip(*rows, strict=True)]
    exp = np.array([_mp_bsm(mp, *row) for row in rows]).T
    got, noise = bsm_table(w, S, K, T, r, sigma, q)
    assert_table_close(
        got,
        exp,
        noise,
        rtol=1e-12,
        floor=floors(S, 1e-300),
        what="reference vs mpmath",
        inputs=dict(flag=w, S=S, K=K, T=T, r=r, sigma=sigma, q=q),
    )


def _d1(f, x, h):
    """5-point first derivative, O(h^4)."""
    return (8.0 * (f(x + h) - f(x - h)) - (f(x + 2 * h) - f(x - 2 * h))) / (12.0 * h)


@pytest.mark.parametrize("kind", ["bsm", "black76"])
def test_reference_finite_differences(kind):
    """Greek definitions/units: delta, gamma (dS or dF), vega (per 1.0 sigma),
    theta = -dV/dT per year, rho = dV/dr per 1.0 (Black-76: F held fixed)."""
    fails = []
    for m in (0.7, 0.95, 1.0, 1.1, 1.6):
        for T in (7 * DAY, 0.25, 1.5):
            for sigma in (0.1, 0.3, 1.0):
                for r, q in ((0.03, 0.01), (-0.01, 0.04)):
                    for w in (1, -1):
                        S, K = 100.0, 100.0 * m
                        if kind == "bsm":

                            def greeks_at(S=S, T=T, r=r, sigma=sigma, w=w, K=K, q=q):
                                return ref.bsm_greeks(w, S, K, T, r, sigma, q)
                        else:

                            def greeks_at(S=S, T=T, r=r, sigma=sigma, w=w, K=K):
                                return ref.black76_greeks(w, S, K, T, r, sigma)

                        def value(greeks_at=greeks_at, **kw):
                            return greeks_at(**kw).price

                        gr = greeks_at()
                        s = sigma * math.sqrt(T)  # natural scale of log-moneyness moves
                        hS, hv, hT, hr = 3e-3 * S * s, 3e-3 * sigma, 3e-3 * T, 3e-3 * s / T
                        checks = (
                            ("delta", _d1(lambda x: value(S=x), S, hS), gr.delta),
                            ("gamma", _d1(lambda x: greeks_at(S=x).delta, S, hS), gr.gamma),
                            ("vega", _d1(lambda x: value(sigma=x), sigma, hv), gr.vega),
                            ("theta", -_d1(lambda x: value(T=x), T, hT), gr.theta),
                            ("rho", _d1(lambda x: value(r=x), r, hr), gr.rho),
                        )
                        for name, fd, an in checks:
                            if not abs(fd - an) <= 1e-6 * abs(an) + 1e-9:
                                fails.append((name, w, S, K, T, r, sigma, q, fd, an))
    assert not fails, "\n".join(map(repr, fails[:10]))


def test_reference_black76_equals_bsm_with_q_equal_r():
    """Black-76 on F == BSM on S=F with q=r for price, delta, gamma, vega, theta;
    Black-76 rho (F fixed) == -T*V."""
    for m in (0.5, 0.9, 1.0, 1.2, 2.0):
        for T in (MINUTE, DAY, 0.5, 2.0):
            for sigma in (0.01, 0.2, 3.0):
                for r in (-0.01, 0.0, 0.07):
                    for w in (1, -1):
                        b = ref.black76_greeks(w, 100.0, 100.0 * m, T, r, sigma)
                        s = ref.bsm_greeks(w, 100.0, 100.0 * m, T, r, sigma, r)
                        for k in range(5):
                            assert b[k] == pytest.approx(s[k], rel=1e-12, abs=1e-13), (
                                FIELDS[k],
                                w,
                                m,
                                T,
                                r,
                                sigma,
                            )
                        assert b.rho == pytest.approx(-T * b.price, rel=1e-14, abs=1e-300)


def test_reference_black76_price_matches_quantlib_black_formula():
    ql = pytest.importorskip("QuantLib")
    for m in (0.5, 0.9, 1.0, 1.2, 2.0):
        for T in (DAY, 0.5, 2.0):
            for sigma in (0.05, 0.2, 1.0):
                for r in (-0.01, 0.05):
                    for w in (1, -1):
                        F, K = 100.0, 100.0 * m
                        exp = ql.blackFormula(
                            ql.Option.Call if w > 0 else ql.Option.Put,
                            K,
                            F,
                            sigma * math.sqrt(T),
                            math.exp(-r * T),
                        )
                        got = ref.black76_price(w, F, K, T, r, sigma)
                        if abs(exp) > 1e-8:
                            assert got == pytest.approx(exp, rel=1e-9, abs=1e-12), (
                                w,
                                F,
                                K,
                                T,
                                r,
                                sigma,
                            )


def test_reference_rejects_bad_input():
    with pytest.raises(ValueError, match=r"\bS\b"):
        ref.bsm_price("c", 0.0, 100.0, 1.0, 0.0, 0.2)
    with pytest.raises(ValueError, match=r"\bflag\b"):
        ref.bsm_price("x", 100.0, 100.0, 1.0, 0.0, 0.2)
    with pytest.raises(ValueError, match=r"\bsigma\b"):
        ref.black76_price("p", 100.0, 100.0, 1.0, 0.0, float("nan"))


# ============================================================================
# 2. compiled vs oracle
# ============================================================================
def test_compiled_extension_is_built():
    """The Greeks must come from the compiled kernel, not a fallback."""
    try:
        import algoengine._ext.greeks as ext
    except ImportError as exc:
        pytest.fail(f"compiled extension algoengine._ext.greeks is not built/importable: {exc!r}")
    assert ext.__file__.endswith((".so", ".pyd")), ext.__file__


def test_bsm_scalar_matches_reference_grid(g):
    inp, exp, noise = bsm_grid()
    got = scalar_bsm_table(
        g, inp["w"], inp["S"], inp["K"], inp["T"], inp["r"], inp["sigma"], inp["q"]
    )
    assert_table_close(
        got,
        exp,
        noise,
        rtol=1e-9,
        floor=floors(inp["S"]),
        inputs=inp,
        what="BSM scalar vs reference",
    )
    # price() agrees with greeks().price
    prices = np.array(
        [
            g.price(flag_str(w), S, K, T, r, s, q)
            for w, S, K, T, r, s, q in zip(
                *(inp[k].tolist() for k in ("w", "S", "K", "T", "r", "sigma", "q")), strict=True
            )
        ]
    )
    assert_table_close(
        prices[None],
        got[:1],
        noise[:1],
        rtol=1e-13,
        floor=floors(inp["S"], 1e-15)[:1],
        inputs=inp,
        what="price() vs greeks().price",
        fields=("price",),
    )


def test_bsm_array_matches_reference_and_scalar_grid(g):
    inp, exp, noise = bsm_grid()
    args = (inp["S"], inp["K"], inp["T"], inp["r"], inp["sigma"], inp["q"])
    res = g.greeks(flags_array(inp["w"]), *args)
    got = as_table(res)
    assert_table_close(
        got,
        exp,
        noise,
        rtol=1e-9,
        floor=floors(inp["S"]),
        inputs=inp,
        what="BSM array vs reference",
    )
    scal = scalar_bsm_table(g, inp["w"], *args)
    assert_table_close(
        got,
        scal,
        noise,
        rtol=1e-13,
        floor=floors(inp["S"], 1e-15),
        inputs=inp,
        what="BSM array vs scalar path",
    )
    price = np.asarray(g.price(flags_array(inp["w"]), *args), dtype=float)
    assert_table_close(
        price[None],
        got[:1],
        noise[:1],
        rtol=1e-13,
        floor=floors(inp["S"], 1e-15)[:1],
        inputs=inp,
        what="array price() vs greeks().price",
        fields=("price",),
    )


def test_black76_scalar_and_array_match_reference_grid(g):
    inp, exp, noise = b76_grid()
    w, F, K, T, r, sigma = (inp[k] for k in ("w", "F", "K", "T", "r", "sigma"))
    scal = scalar_b76_table(g, w, F, K, T, r, sigma)
    assert_table_close(
        scal,
        exp,
        noise,
        rtol=1e-9,
        floor=floors(F),
        inputs=inp,
        what="Black-76 scalar vs reference",
    )
    arr = as_table(g.black76_greeks(flags_array(w), F, K, T, r, sigma))
    assert_table_close(
        arr, exp, noise, rtol=1e-9, floor=floors(F), inputs=inp, what="Black-76 array vs reference"
    )
    assert_table_close(
        arr,
        scal,
        noise,
        rtol=1e-13,
        floor=floors(F, 1e-15),
        inputs=inp,
        what="Black-76 array vs scalar",
    )
    price = np.asarray(g.black76_price(flags_array(w), F, K, T, r, sigma), dtype=float)
    assert_table_close(
        price[None],
        arr[:1],
        noise[:1],
        rtol=1e-13,
        floor=floors(F, 1e-15)[:1],
        inputs=inp,
        what="black76_price() vs black76_greeks().price",
        fields=("price",),
    )


@HYP
@given(pt=bsm_points)
def test_bsm_scalar_matches_reference_hypothesis(g, pt):
    w, S, K, T, r, sigma, q = pt
    res = g.greeks(flag_str(w), S, K, T, r, sigma, q)
    got = np.array([[float(getattr(res, f))] for f in FIELDS])
    exp = np.array(ref.bsm_greeks(w, S, K, T, r, sigma, q))[:, None]
    noise = np.array(ref.bsm_noise(w, S, K, T, r, sigma, q))[:, None]
    assert_table_close(
        got,
        exp,
        noise,
        rtol=1e-9,
        floor=floors([S]),
        what="BSM scalar vs reference",
        inputs=dict(flag=[w], S=[S], K=[K], T=[T], r=[r], sigma=[sigma], q=[q]),
    )
    assert float(g.price(flag_str(w), S, K, T, r, sigma, q)) == pytest.approx(
        got[0, 0], rel=1e-13, abs=1e-15 * S
    )


@HYP
@given(pts=st.lists(bsm_points, min_size=1, max_size=40))
def test_bsm_array_matches_reference_and_scalar_hypothesis(g, pts):
    w, S, K, T, r, sigma, q = columns(pts)
    inp = dict(flag=w, S=S, K=K, T=T, r=r, sigma=sigma, q=q)
    exp, noise = bsm_table(w, S, K, T, r, sigma, q)
    got = as_table(g.greeks(flags_array(w), S, K, T, r, sigma, q))
    assert_table_close(
        got, exp, noise, rtol=1e-9, floor=floors(S), inputs=inp, what="BSM array vs reference"
    )
    scal = scalar_bsm_table(g, w, S, K, T, r, sigma, q)
    assert_table_close(
        got, scal, noise, rtol=1e-13, floor=floors(S, 1e-15), inputs=inp, what="BSM array vs scalar"
    )


@HYP
@given(pt=b76_points)
def test_black76_scalar_matches_reference_hypothesis(g, pt):
    w, F, K, T, r, sigma = pt
    res = g.black76_greeks(flag_str(w), F, K, T, r, sigma)
    got = np.array([[float(getattr(res, f))] for f in FIELDS])
    exp = np.array(ref.black76_greeks(w, F, K, T, r, sigma))[:, None]
    noise = np.array(ref.black76_noise(w, F, K, T, r, sigma))[:, None]
    assert_table_close(
        got,
        exp,
        noise,
        rtol=1e-9,
        floor=floors([F]),
        what="Black-76 scalar vs reference",
        inputs=dict(flag=[w], F=[F], K=[K], T=[T], r=[r], sigma=[sigma]),
    )


@HYP
@given(pts=st.lists(b76_points, min_size=1, max_size=40))
def test_black76_array_matches_scalar_hypothesis(g, pts):
    w, F, K, T, r, sigma = columns(pts)
    inp = dict(flag=w, F=F, K=K, T=T, r=r, sigma=sigma)
    exp, noise = b76_table(w, F, K, T, r, sigma)
    got = as_table(g.black76_greeks(flags_array(w), F, K, T, r, sigma))
    assert_table_close(
        got, exp, noise, rtol=1e-9, floor=floors(F), inputs=inp, what="Black-76 array vs reference"
    )
    scal = scalar_b76_table(g, w, F, K, T, r, sigma)
    assert_table_close(
        got,
        scal,
        noise,
        rtol=1e-13,
        floor=floors(F, 1e-15),
        inputs=inp,
        what="Black-76 array vs scalar",
    )


N_LARGE = 100_003  # prime: not a multiple of any SIMD/block size


def _check_large(g, flag, S, K, T, r, sigma, q, what):
    """Full array vs the oracle (well-conditioned inputs: T >= 1 day), plus
    head, tail and a stride of the array vs the scalar path with noise."""
    shape = np.broadcast_shapes(*(np.shape(a) for a in (flag, S, K, T, r, sigma, q)))
    res = g.greeks(flag, S, K, T, r, sigma, q)
    for f in FIELDS:
        arr = getattr(res, f)
        assert isinstance(arr, np.ndarray) and arr.shape == shape, (f, type(arr), np.shape(arr))
    got = as_table(res)
    b = [np.broadcast_to(a, shape).ravel() for a in (flag, S, K, T, r, sigma, q)]
    w = (
        np.where(np.char.lower(b[0].astype(str)) == "c", 1, -1)
        if b[0].dtype.kind in "US"
        else b[0].astype(int)
    )
    vals = [w] + [x.astype(float) for x in b[1:]]
    exp, _ = bsm_table(*vals, with_noise=False)
    inp = dict(zip(("flag", "S", "K", "T", "r", "sigma", "q"), vals, strict=True))
    assert_table_close(
        got,
        exp,
        0.0,
        rtol=1e-9,
        floor=floors(vals[1]),
        inputs=inp,
        what=f"{what}: array vs reference",
    )
    n = got.shape[1]
    idx = np.unique(
        np.r_[np.arange(min(n, 70)), np.arange(max(0, n - 70), n), np.arange(0, n, 997)]
    )
    sub = [v[idx] for v in vals]
    scal = scalar_bsm_table(g, *sub)
    _, noise = bsm_table(*sub)
    assert_table_close(
        got[:, idx],
        scal,
        noise,
        rtol=1e-13,
        floor=floors(sub[1], 1e-15),
        inputs=dict(zip(inp, sub, strict=True)),
        what=f"{what}: array vs scalar (head/tail/stride)",
    )


def test_large_array_with_broadcast_scalars(g):
    K = 100.0 * np.linspace(0.5, 2.0, N_LARGE)
    _check_large(g, "c", 100.0, K, 0.3, 0.03, 0.25, 0.01, "large K array, scalar rest, calls")
    T = np.linspace(DAY, 2.0, N_LARGE)
    _check_large(g, -1, 100.0, 105.0, T, 0.05, 0.4, 0.0, "large T array, scalar rest, puts")


def test_large_array_all_arrays_mixed_flags(g):
    rng = np.random.default_rng(20240607)
    n = N_LARGE
    flag = rng.choice(np.array(["c", "p", "call", "PE"]), size=n)
    S = np.exp(rng.uniform(np.log(1.0), np.log(1e4), n))
    K = S * np.exp(rng.uniform(np.log(0.5), np.log(2.0), n))
    T = np.exp(rng.uniform(np.log(DAY), np.log(2.0), n))
    r = rng.uniform(-0.01, 0.1, n)
    sigma = np.exp(rng.uniform(np.log(0.05), np.log(3.0), n))
    q = rng.uniform(0.0, 0.05, n)
    wflag = np.where(np.isin(flag, ["c", "call"]), "c", "p")
    _check_large(g, wflag, S, K, T, r, sigma, q, "large random arrays")
    # the raw spellings give the same results
    a = as_table(g.greeks(flag, S, K, T, r, sigma, q))
    b = as_table(g.greeks(wflag, S, K, T, r, sigma, q))
    np.testing.assert_array_equal(a, b)


def test_2d_broadcasting(g):
    S = 100.0
    K = (S * np.linspace(0.5, 2.0, 31))[:, None]  # (n, 1)
    T = np.array([MINUTE, 10 * MINUTE, DAY, 7 * DAY, 0.1, 0.5, 1.0, 2.0])[None, :]  # (1, m)
    sigma = np.array([0.05, 0.3, 1.0, 0.2, 0.6, 0.15, 2.0, 0.01])  # (m,)
    flag = np.where(np.arange(31) % 2 == 0, "c", "p")[:, None]  # (n, 1)
    res = g.greeks(flag, S, K, T, 0.02, sigma, 0.01)
    for f in FIELDS:
        assert np.shape(getattr(res, f)) == (31, 8), f
    assert np.shape(g.price(flag, S, K, T, 0.02, sigma, 0.01)) == (31, 8)
    Kb, Tb, sb, fb = np.broadcast_arrays(K, T, sigma, flag)
    w = np.where(fb.ravel() == "c", 1, -1)
    n = w.size
    vals = (
        w,
        np.full(n, S),
        Kb.ravel(),
        Tb.ravel(),
        np.full(n, 0.02),
        sb.ravel(),
        np.full(n, 0.01),
    )
    exp, noise = bsm_table(*vals)
    inp = dict(zip(("flag", "S", "K", "T", "r", "sigma", "q"), vals, strict=True))
    assert_table_close(
        as_table(res),
        exp,
        noise,
        rtol=1e-9,
        floor=floors(vals[1]),
        inputs=inp,
        what="2-D broadcast",
    )


def test_noncontiguous_and_fortran_order_inputs(g):
    base = 100.0 * np.linspace(0.5, 2.0, 3 * 257)
    K = base[::3]  # strided view
    T = np.linspace(MINUTE, 2.0, 2 * 257)[1::2]
    assert not K.flags.c_contiguous and not T.flags.c_contiguous
    got = as_table(g.greeks("p", 100.0, K, T, 0.03, 0.3, 0.01))
    want = as_table(g.greeks("p", 100.0, K.copy(), T.copy(), 0.03, 0.3, 0.01))
    np.testing.assert_array_equal(got, want)
    K2 = np.asfortranarray((100.0 * np.linspace(0.6, 1.8, 35)).reshape(5, 7))
    T2 = np.asfortranarray(np.linspace(DAY, 1.5, 35).reshape(5, 7))
    resF = g.greeks("c", 100.0, K2, T2, 0.02, 0.25)
    resC = g.greeks("c", 100.0, np.ascontiguousarray(K2), np.ascontiguousarray(T2), 0.02, 0.25)
    for f in FIELDS:
        np.testing.assert_array_equal(getattr(resF, f), getattr(resC, f), err_msg=f)
    # against the oracle, element by element, in the right positions
    for i in range(5):
        for j in range(7):
            want = ref.bsm_greeks("c", 100.0, K2[i, j], T2[i, j], 0.02, 0.25, 0.0)
            for k, f in enumerate(FIELDS):
                assert getattr(resF, f)[i, j] == pytest.approx(want[k], rel=1e-9, abs=1e-10), (
                    f,
                    i,
                    j,
                )


# ============================================================================
# 3. compiled vs py_vollib
# ============================================================================
@pytest.fixture(scope="module")
def vollib():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        bsm = pytest.importorskip("py_vollib.black_scholes_merton")
        black = pytest.importorskip("py_vollib.black")
    return bsm.black_scholes_merton, black.black


def test_bsm_price_matches_py_vollib(g, vollib):
    bsm_vollib, _ = vollib
    inp, _, noise = bsm_grid()
    w, S, K, T, r, sigma, q = (inp[k] for k in ("w", "S", "K", "T", "r", "sigma", "q"))
    exp = np.array(
        [bsm_vollib(flag_str(w[i]), S[i], K[i], T[i], r[i], sigma[i], q[i]) for i in range(len(w))],
        dtype=float,
    )
    scal = np.array(
        [g.price(flag_str(w[i]), S[i], K[i], T[i], r[i], sigma[i], q[i]) for i in range(len(w))]
    )
    arr = np.asarray(g.price(flags_array(w), S, K, T, r, sigma, q), dtype=float)
    for got, what in ((scal, "scalar"), (arr, "array")):
        assert_table_close(
            got[None],
            exp[None],
            noise[:1],
            rtol=1e-9,
            floor=floors(S)[:1],
            inputs=inp,
            what=f"BSM {what} price vs py_vollib",
            fields=("price",),
        )


def test_black76_price_matches_py_vollib(g, vollib):
    _, black_vollib = vollib
    inp, _, noise = b76_grid()
    w, F, K, T, r, sigma = (inp[k] for k in ("w", "F", "K", "T", "r", "sigma"))
    exp = np.array(
        [black_vollib(flag_str(w[i]), F[i], K[i], T[i], r[i], sigma[i]) for i in range(len(w))],
        dtype=float,
    )
    got = np.asarray(g.black76_price(flags_array(w), F, K, T, r, sigma), dtype=float)
    assert_table_close(
        got[None],
        exp[None],
        noise[:1],
        rtol=1e-9,
        floor=floors(F)[:1],
        inputs=inp,
        what="Black-76 price vs py_vollib",
        fields=("price",),
    )


# ============================================================================
# 4. put-call parity
# ============================================================================
def _assert_within(got, want, atol, rtol, what, inputs):
    got, want = np.broadcast_arrays(np.asarray(got, float), np.asarray(want, float))
    tol = np.broadcast_to(rtol * np.abs(want) + atol, got.shape)
    bad = ~(np.abs(got - want) <= tol)
    if bad.any():
        lines = [f"{what}: {bad.sum()} of {bad.size} violate the identity"]
        for i in np.flatnonzero(bad.ravel())[:8]:
            inp = ", ".join(
                f"{k}={np.broadcast_to(v, got.shape).ravel()[i]!r}" for k, v in inputs.items()
            )
            lines.append(
                f"  ({inp}) lhs={got.ravel()[i]!r} rhs={want.ravel()[i]!r} tol={tol.ravel()[i]:.3g}"
            )
        raise AssertionError("\n".join(lines))


def _parity_check_bsm(g, S, K, T, r, sigma, q):
    """C - P = S e^{-qT} - K e^{-rT} to 1e-12*S, and the derived Greek identities."""
    c = as_table(g.greeks("c", S, K, T, r, sigma, q))
    p = as_table(g.greeks("p", S, K, T, r, sigma, q))
    S, K, T, r, sigma, q = (
        np.broadcast_to(np.asarray(a, float), c.shape[1:]) for a in (S, K, T, r, sigma, q)
    )
    inp = dict(S=S, K=K, T=T, r=r, sigma=sigma, q=q)
    dfq, dfr = np.exp(-q * T), np.exp(-r * T)
    tol = 1e-12 * S
    _assert_within(c[0] - p[0], S * dfq - K * dfr, tol, 0.0, "C - P", inp)
    _assert_within(c[1] - p[1], dfq, 1e-12, 0.0, "delta_c - delta_p", inp)
    _assert_within(c[2], p[2], 0.0, 1e-12, "gamma_c == gamma_p", inp)
    _assert_within(c[3], p[3], 0.0, 1e-12, "vega_c == vega_p", inp)
    _assert_within(c[4] - p[4], q * S * dfq - r * K * dfr, tol, 0.0, "theta_c - theta_p", inp)
    _assert_within(c[5] - p[5], K * T * dfr, 0.0, 1e-12, "rho_c - rho_p", inp)


def test_put_call_parity_bsm_grid(g):
    S = 100.0
    K, T, sigma = (
        a.ravel()
        for a in np.meshgrid(
            S * np.array(MONEYNESS), np.array(EXPIRIES), np.array(VOLS), indexing="ij"
        )
    )
    for r, q in RATE_DIV:
        _parity_check_bsm(g, S, K, T, r, sigma, q)


@HYP
@given(pts=st.lists(bsm_points, min_size=1, max_size=30))
def test_put_call_parity_bsm_hypothesis(g, pts):
    _, S, K, T, r, sigma, q = columns(pts)
    _parity_check_bsm(g, S, K, T, r, sigma, q)


@HYP
@given(pts=st.lists(b76_points, min_size=1, max_size=30))
def test_put_call_parity_black76(g, pts):
    _, F, K, T, r, sigma = columns(pts)
    c = as_table(g.black76_greeks("c", F, K, T, r, sigma))
    p = as_table(g.black76_greeks("p", F, K, T, r, sigma))
    inp = dict(F=F, K=K, T=T, r=r, sigma=sigma)
    df = np.exp(-r * T)
    _assert_within(c[0] - p[0], df * (F - K), 1e-12 * F, 0.0, "Black-76 C - P", inp)
    _assert_within(c[1] - p[1], df, 1e-12, 0.0, "Black-76 delta_c - delta_p", inp)
    _assert_within(c[2], p[2], 0.0, 1e-12, "Black-76 gamma", inp)
    _assert_within(c[3], p[3], 0.0, 1e-12, "Black-76 vega", inp)
    _assert_within(c[4] - p[4], r * df * (F - K), 1e-12 * F, 0.0, "Black-76 theta_c - theta_p", inp)
    _assert_within(c[5] - p[5], -T * df * (F - K), 1e-12 * F, 0.0, "Black-76 rho_c - rho_p", inp)


# ============================================================================
# 5. expiry day
# ============================================================================
@pytest.mark.parametrize("sigma", [0.0, 0.2])
@pytest.mark.parametrize("K", [80.0, 100.0, 120.0])
@pytest.mark.parametrize("w", [1, -1])
def test_at_expiry_t0_exact(g, w, K, sigma):
    S, r, q = 100.0, 0.05, 0.02
    res = g.greeks(flag_str(w), S, K, 0.0, r, sigma, q)
    mny = w * (S - K)
    n = 1.0 if mny > 0 else (0.0 if mny < 0 else 0.5)
    assert res.price == max(mny, 0.0)
    assert res.delta == w * n
    assert res.gamma == 0.0 and res.vega == 0.0
    assert res.theta == pytest.approx(w * (q * S * n - r * K * n), rel=1e-14, abs=1e-14)
    assert res.rho == 0.0
    assert g.price(flag_str(w), S, K, 0.0, r, sigma, q) == max(mny, 0.0)
    # array path, same values
    arr = g.greeks(
        np.array([flag_str(w)] * 3), S, np.array([K] * 3), np.array([0.0, 0.0, 0.0]), r, sigma, q
    )
    for f in FIELDS:
        np.testing.assert_allclose(getattr(arr, f), getattr(res, f), rtol=1e-15, atol=0, err_msg=f)
    # Black-76
    b = g.black76_greeks(flag_str(w), S, K, 0.0, r, sigma)
    assert b.price == max(mny, 0.0)
    assert b.delta == w * n
    assert b.gamma == 0.0 and b.vega == 0.0
    assert b.theta == pytest.approx(r * max(mny, 0.0), rel=1e-14, abs=1e-14)
    assert b.rho == 0.0


@pytest.mark.parametrize("w", [1, -1])
def test_zero_vol_gives_discounted_forward_intrinsic(g, w):
    S, T = 100.0, 0.25
    cases = [(80.0, 0.05, 0.02), (120.0, 0.05, 0.02), (100.0, 0.03, 0.03), (100.5, 0.1, 0.0)]
    for K, r, q in cases:
        res = g.greeks(flag_str(w), S, K, T, r, 0.0, q)
        want = ref.bsm_greeks(w, S, K, T, r, 0.0, q)
        assert res.price == pytest.approx(
            max(w * (S * math.exp(-q * T) - K * math.exp(-r * T)), 0.0), rel=1e-14, abs=1e-14 * S
        )
        for k, f in enumerate(FIELDS):
            v = getattr(res, f)
            assert math.isfinite(v), (f, K, r, q)
            assert v == pytest.approx(want[k], rel=1e-12, abs=1e-13 * S), (f, K, r, q, v, want[k])
        assert res.gamma == 0.0 and res.vega == 0.0
        b = g.black76_greeks(flag_str(w), S, K, T, r, 0.0)
        bw = ref.black76_greeks(w, S, K, T, r, 0.0)
        for k, f in enumerate(FIELDS):
            assert getattr(b, f) == pytest.approx(bw[k], rel=1e-12, abs=1e-13 * S), (f, K, r)
    # exactly at the money (F == K because r == q): delta is half the ITM delta
    res = g.greeks(flag_str(w), S, 100.0, T, 0.03, 0.0, 0.03)
    assert res.delta == pytest.approx(0.5 * w * math.exp(-0.03 * T), rel=1e-15)


def test_expiry_day_minutes(g):
    """T = 1..30 minutes: everything finite; all match the oracle (noise-aware
    1e-9); the 5-minute case is also checked on its own with plain tolerances."""
    rows = []
    for minutes in range(1, 31):
        for m in (0.9, 0.99, 0.999, 1.0, 1.001, 1.01, 1.1):
            for sigma in (0.01, 0.2, 1.0):
                for w in (1, -1):
                    rows.append((w, 100.0, 100.0 * m, minutes * MINUTE, 0.05, sigma, 0.01))
    w, S, K, T, r, sigma, q = [np.array(c) for c in zip(*rows, strict=True)]
    inp = dict(flag=w, S=S, K=K, T=T, r=r, sigma=sigma, q=q)
    arr = as_table(g.greeks(flags_array(w), S, K, T, r, sigma, q))
    scal = scalar_bsm_table(g, w, S, K, T, r, sigma, q)
    assert np.isfinite(arr).all() and np.isfinite(scal).all()
    exp, noise = bsm_table(w, S, K, T, r, sigma, q)
    assert_table_close(
        scal,
        exp,
        noise,
        rtol=1e-9,
        floor=floors(S),
        inputs=inp,
        what="minutes: scalar vs reference",
    )
    assert_table_close(
        arr, exp, noise, rtol=1e-9, floor=floors(S), inputs=inp, what="minutes: array vs reference"
    )
    five = T == 5 * MINUTE
    five &= np.isin(K, [90.0, 100.0, 110.0])  # well-conditioned points: plain tolerances
    for i in np.flatnonzero(five):
        for k, f in enumerate(FIELDS):
            assert scal[k, i] == pytest.approx(exp[k, i], rel=1e-9, abs=1e-10), (
                f,
                w[i],
                K[i],
                sigma[i],
            )
    # seconds and below: still finite
    for T in (1.0 / (365 * 86400), 1e-12, 1e-300):
        for K in (99.0, 100.0, 101.0):
            for w in (1, -1):
                vals = [
                    getattr(g.greeks(flag_str(w), 100.0, K, T, 0.05, 0.2, 0.01), f) for f in FIELDS
                ]
                assert all(math.isfinite(v) for v in vals), (T, K, w, vals)


# ============================================================================
# 6. bad input
# ============================================================================
NAN, INF = float("nan"), float("inf")
BSM_BASE = dict(flag="c", S=100.0, K=100.0, T=0.5, r=0.03, sigma=0.2, q=0.01)
B76_BASE = dict(flag="c", F=100.0, K=100.0, T=0.5, r=0.03, sigma=0.2)
BSM_BAD = [
    ("S", 0.0),
    ("S", -1.0),
    ("S", NAN),
    ("K", 0.0),
    ("K", -5.0),
    ("K", NAN),
    ("T", -1e-3),
    ("T", NAN),
    ("sigma", -0.1),
    ("sigma", NAN),
    ("r", INF),
    ("r", -INF),
    ("r", NAN),
    ("q", INF),
    ("q", NAN),
    ("flag", "x"),
    ("flag", ""),
    ("flag", "cp"),
    ("flag", 0),
    ("flag", 2),
    ("flag", 0.5),
]
B76_BAD = [
    ("F", 0.0),
    ("F", -1.0),
    ("F", NAN),
    ("K", 0.0),
    ("K", NAN),
    ("T", -1.0),
    ("T", NAN),
    ("sigma", -0.2),
    ("sigma", NAN),
    ("r", INF),
    ("r", NAN),
    ("flag", "z"),
    ("flag", 3),
]


def _call(func, base, **over):
    kw = {**base, **over}
    return func(*kw.values())


@pytest.mark.parametrize("name,value", BSM_BAD, ids=[f"{n}={v!r}" for n, v in BSM_BAD])
@pytest.mark.parametrize("func", ["price", "greeks"])
def test_bsm_scalar_bad_input_names_argument(g, func, name, value):
    with pytest.raises(ValueError, match=rf"\b{name}\b"):
        _call(getattr(g, func), BSM_BASE, **{name: value})


@pytest.mark.parametrize("name,value", B76_BAD, ids=[f"{n}={v!r}" for n, v in B76_BAD])
@pytest.mark.parametrize("func", ["black76_price", "black76_greeks"])
def test_black76_scalar_bad_input_names_argument(g, func, name, value):
    with pytest.raises(ValueError, match=rf"\b{name}\b"):
        _call(getattr(g, func), B76_BASE, **{name: value})


@pytest.mark.parametrize(
    "name,bad",
    [
        ("S", [0.0, -1.0, NAN]),
        ("K", [0.0, -5.0, NAN]),
        ("T", [-1e-3, NAN]),
        ("sigma", [-0.1, NAN]),
        ("r", [INF, -INF, NAN]),
        ("q", [INF, NAN]),
    ],
)
def test_bsm_array_bad_elements_give_nan_rows(g, name, bad):
    good = BSM_BASE[name]
    col = np.array([good, *bad, good])
    kw = dict(BSM_BASE, flag=np.array(["c"] * len(col)))
    kw[name] = col
    res = g.greeks(*kw.values())
    price = np.asarray(g.price(*kw.values()))
    want = g.greeks(*BSM_BASE.values())
    for f in FIELDS:
        v = np.asarray(getattr(res, f))
        assert v.shape == col.shape, f
        assert np.isnan(v[1:-1]).all(), (f, v)
        for j in (0, -1):
            assert v[j] == pytest.approx(getattr(want, f), rel=1e-13), f
    assert np.isnan(price[1:-1]).all() and np.isfinite(price[[0, -1]]).all()


@pytest.mark.parametrize(
    "name,bad",
    [
        ("F", [0.0, -1.0, NAN]),
        ("K", [0.0, NAN]),
        ("T", [-1.0, NAN]),
        ("sigma", [-0.2, NAN]),
        ("r", [INF, NAN]),
    ],
)
def test_black76_array_bad_elements_give_nan_rows(g, name, bad):
    good = B76_BASE[name]
    col = np.array([good, *bad, good])
    kw = dict(B76_BASE)
    kw[name] = col
    res = g.black76_greeks(*kw.values())
    for f in FIELDS:
        v = np.asarray(getattr(res, f))
        assert np.isnan(v[1:-1]).all() and np.isfinite(v[[0, -1]]).all(), (f, v)
    assert np.isnan(np.asarray(g.black76_price(*kw.values()))[1:-1]).all()


@pytest.mark.parametrize(
    "flags",
    [
        np.array(["c", "p", "x"]),
        np.array(["call", "put", "cal"]),
        np.array([1, -1, 0]),
        np.array([1.0, -1.0, 2.0]),
        np.array(["c", "", "p"]),
    ],
)
def test_array_unknown_flag_raises(g, flags):
    K = np.array([90.0, 100.0, 110.0])
    for call in (
        lambda: g.price(flags, 100.0, K, 0.5, 0.03, 0.2),
        lambda: g.greeks(flags, 100.0, K, 0.5, 0.03, 0.2, 0.01),
        lambda: g.black76_price(flags, 100.0, K, 0.5, 0.03, 0.2),
        lambda: g.black76_greeks(flags, 100.0, K, 0.5, 0.03, 0.2),
    ):
        with pytest.raises(ValueError, match=r"\bflag\b"):
            call()


def test_non_broadcastable_shapes_raise(g):
    S, K = np.full(3, 100.0), np.full(4, 100.0)
    with pytest.raises(ValueError):
        g.price("c", S, K, 0.5, 0.03, 0.2)
    with pytest.raises(ValueError):
        g.greeks("c", S, K, 0.5, 0.03, 0.2)
    with pytest.raises(ValueError):
        g.greeks(np.array(["c", "p"]), S, 100.0, 0.5, 0.03, 0.2)
    with pytest.raises(ValueError):
        g.black76_greeks("p", S, 100.0, np.full(2, 0.5), 0.03, 0.2)


# ============================================================================
# 7. flag forms and result types
# ============================================================================
CALL_FORMS = ["c", "C", "call", "CALL", "Call", "CE", "ce", 1, 1.0]
PUT_FORMS = ["p", "P", "put", "PUT", "PE", "pe", -1, -1.0]


@pytest.mark.parametrize("forms,canon", [(CALL_FORMS, "c"), (PUT_FORMS, "p")])
def test_scalar_flag_forms_identical(g, forms, canon):
    args = (100.0, 95.0, 0.4, 0.03, 0.25, 0.01)
    want = tuple(g.greeks(canon, *args))
    wb = tuple(g.black76_greeks(canon, *args[:5]))
    for form in forms:
        assert tuple(g.greeks(form, *args)) == want, form
        assert g.price(form, *args) == want[0], form
        assert tuple(g.black76_greeks(form, *args[:5])) == wb, form
        assert g.black76_price(form, *args[:5]) == wb[0], form


def test_array_flag_forms_identical(g):
    K = np.array([95.0, 105.0])
    forms = [
        np.array(["c", "p"]),
        np.array([1, -1]),
        np.array([1.0, -1.0]),
        np.array(["CALL", "pe"]),
        np.array(["CE", "PE"]),
        np.array(["C", "Put"], dtype=object),
    ]
    base = as_table(g.greeks(forms[0], 100.0, K, 0.4, 0.03, 0.25, 0.01))
    for f in forms[1:]:
        np.testing.assert_array_equal(
            as_table(g.greeks(f, 100.0, K, 0.4, 0.03, 0.25, 0.01)), base, err_msg=repr(f)
        )
        np.testing.assert_array_equal(
            np.asarray(g.price(f, 100.0, K, 0.4, 0.03, 0.25, 0.01)), base[0], err_msg=repr(f)
        )
    # equal to the scalar path element-wise
    for j, flag in enumerate(("c", "p")):
        s = g.greeks(flag, 100.0, float(K[j]), 0.4, 0.03, 0.25, 0.01)
        np.testing.assert_allclose(base[:, j], tuple(s), rtol=1e-13, atol=1e-15 * 100)


def test_result_types_and_unpacking(g):
    res = g.greeks("c", 100.0, 100.0, 0.5, 0.03, 0.2, 0.01)
    price, delta, gamma, vega, theta, rho = res
    assert (price, delta, gamma, vega, theta, rho) == tuple(getattr(res, f) for f in FIELDS)
    for f in FIELDS:
        assert isinstance(getattr(res, f), float) and not isinstance(getattr(res, f), np.ndarray), f
    assert isinstance(g.price("c", 100, 100, 1, 0, 0.2), float)  # ints accepted at the scalar face
    assert isinstance(g.black76_price("p", 100.0, 90.0, 0.5, 0.0, 0.2), float)
    b = g.black76_greeks("p", 100.0, 90.0, 0.5, 0.0, 0.2)
    assert len(tuple(b)) == 6 and all(isinstance(getattr(b, f), float) for f in FIELDS)

    arr = g.greeks("p", 100.0, np.array([90.0, 100.0, 110.0]), 0.5, 0.03, 0.2)
    p2, *_ = arr
    np.testing.assert_array_equal(p2, arr.price)
    for f in FIELDS:
        v = getattr(arr, f)
        assert isinstance(v, np.ndarray) and v.shape == (3,) and v.dtype == np.float64, f
    assert isinstance(g.price("p", 100.0, np.array([90.0]), 0.5, 0.03, 0.2), np.ndarray)
