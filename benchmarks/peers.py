"""Peer implementations that ``algoengine.greeks`` is benchmarked against.

Everything here is self-contained (numpy / scipy / numba / math) so the suite
can run, and the peers can be cross-checked, before the compiled kernel exists.

Conventions (identical to ``algoengine.greeks``):
    * ``phi`` is +1.0 for a call and -1.0 for a put (float64 array or scalar);
    * T in years, r and q continuously compounded, per year;
    * vega and rho per 1.0 (not per 1%), theta per year (not per day).

Contents
    numpy_greeks                   -- the plain numpy + scipy.special.ndtr baseline
    numba_greeks / numba_greeks_serial
                                   -- @njit(parallel=True / False, fastmath=False)
                                      with math.erfc and prange
    py_greeks                      -- scalar, pure Python (``math`` only)
    reference_price                -- accurate BSM prices down to ~1e-300
                                      (erfcx formulation + series near the money);
                                      used to build implied-vol inputs
    numpy_implied_vol              -- vectorised safeguarded Halley solver (iv baseline)
    numba_implied_vol              -- the same solver, per option, numba prange
    pvv_*                          -- adapters for py_vollib_vectorized (+ probe)
    quantlib_scalar_pricer         -- QuantLib analytic engine with a SimpleQuote spot
    py_vollib_* / lbr_*            -- scalar py_vollib / py_lets_be_rational calls
"""

from __future__ import annotations

import ctypes
import math
import warnings
from typing import NamedTuple

import numpy as np
from scipy import special as sc

SQRT_2PI = math.sqrt(2.0 * math.pi)
INV_SQRT_2PI = 1.0 / SQRT_2PI
SQRT2 = math.sqrt(2.0)
INV_SQRT2 = 1.0 / SQRT2
TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)
SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
LN_HALF = math.log(0.5)


class Greeks(NamedTuple):
    price: np.ndarray
    delta: np.ndarray
    gamma: np.ndarray
    vega: np.ndarray
    theta: np.ndarray
    rho: np.ndarray


GREEK_FIELDS = Greeks._fields


# ---------------------------------------------------------------------------
# numpy / scipy baseline
# ---------------------------------------------------------------------------
def numpy_greeks(phi, S, K, T, r, sigma, q=0.0) -> Greeks:
    """Price and five Greeks, plain numpy + ``scipy.special.ndtr``.

    Written to be the best plain-numpy version: d1/d2, the density, both
    discount factors and both ``N(phi*d)`` are computed once and every Greek
    is assembled from the shared pieces; intermediates are updated in place
    (``out=``) to keep the number of temporaries (memory traffic) down.
    """
    S = np.asarray(S, dtype=np.float64)
    K = np.asarray(K, dtype=np.float64)
    T = np.asarray(T, dtype=np.float64)
    sigma = np.asarray(sigma, dtype=np.float64)
    phi = np.asarray(phi, dtype=np.float64)

    sqrtT = np.sqrt(T)
    vs = sigma * sqrtT  # sigma*sqrt(T)
    d1 = np.divide(S, K)
    np.log(d1, out=d1)
    t = sigma * sigma
    t *= 0.5
    t += r - q
    t *= T
    d1 += t
    d1 /= vs
    d2 = np.subtract(d1, vs)

    pdf = np.multiply(d1, d1)  # n(d1)
    pdf *= -0.5
    np.exp(pdf, out=pdf)
    pdf *= INV_SQRT_2PI

    Nd1 = np.multiply(phi, d1, out=d1)  # N(phi*d1), reuses d1's buffer
    sc.ndtr(Nd1, out=Nd1)
    Nd2 = np.multiply(phi, d2, out=d2)  # N(phi*d2)
    sc.ndtr(Nd2, out=Nd2)

    dfq = np.multiply(T, -q, out=t)  # exp(-qT), reuses t
    np.exp(dfq, out=dfq)
    dfr = np.multiply(T, -r)  # exp(-rT)
    np.exp(dfr, out=dfr)

    delta = np.multiply(phi, dfq)
    delta *= Nd1  # phi e^{-qT} N(phi d1)
    gamma = np.multiply(dfq, pdf)
    gamma /= S
    gamma /= vs  # e^{-qT} n(d1) / (S sigma sqrt T)
    Sdf = np.multiply(S, dfq, out=dfq)  # S e^{-qT}
    vega = np.multiply(Sdf, pdf, out=pdf)
    vega *= sqrtT  # S e^{-qT} n(d1) sqrt T
    a = np.multiply(Sdf, Nd1, out=Nd1)  # S e^{-qT} N(phi d1)
    b = np.multiply(K, dfr, out=dfr)
    b *= Nd2  # K e^{-rT} N(phi d2)

    price = np.subtract(a, b)
    price *= phi
    theta = np.multiply(vega, sigma)
    theta /= T
    theta *= -0.5  # -S e^{-qT} n sigma / (2 sqrt T)
    c = np.multiply(a, q, out=Sdf)
    c -= r * b  # q a - r b
    c *= phi
    theta += c
    rho = np.multiply(b, T, out=b)
    rho *= phi  # phi K T e^{-rT} N(phi d2)
    return Greeks(price, delta, gamma, vega, theta, rho)


# ---------------------------------------------------------------------------
# pure-Python scalar peer
# ---------------------------------------------------------------------------
def py_greeks(flag, S, K, T, r, sigma, q=0.0):
    """Scalar price + Greeks with the ``math`` module only (a 'write it yourself' peer)."""
    phi = -1.0 if flag in ("p", "P", -1, -1.0) else 1.0
    sqrtT = math.sqrt(T)
    vs = sigma * sqrtT
    d1 = (math.log(S / K) + (r - q + 0.5 * sigma * sigma) * T) / vs
    d2 = d1 - vs
    dfq = math.exp(-q * T)
    dfr = math.exp(-r * T)
    pdf = math.exp(-0.5 * d1 * d1) * INV_SQRT_2PI
    Nd1 = 0.5 * math.erfc(-phi * d1 * INV_SQRT2)
    Nd2 = 0.5 * math.erfc(-phi * d2 * INV_SQRT2)
    a = S * dfq * Nd1
    b = K * dfr * Nd2
    vega = S * dfq * pdf * sqrtT
    return (
        phi * (a - b),  # price
        phi * dfq * Nd1,  # delta
        dfq * pdf / (S * vs),  # gamma
        vega,  # vega
        -0.5 * vega * sigma / T + phi * (q * a - r * b),  # theta
        phi * T * b,
    )  # rho


# ---------------------------------------------------------------------------
# numba peers
# ---------------------------------------------------------------------------
NUMBA_ERROR: str | None = None
try:
    import numba as nb
    from numba.extending import get_cython_function_address
except Exception as exc:  # pragma: no cover - numba is in the venv
    nb = None
    NUMBA_ERROR = f"numba import failed: {type(exc).__name__}: {exc}"


def _greeks_kernel(phi, S, K, T, r, sigma, q, price, delta, gamma, vega, theta, rho):
    n = S.shape[0]
    for i in nb.prange(n):  # plain range when compiled with parallel=False
        p = phi[i]
        s = S[i]
        k = K[i]
        t = T[i]
        v = sigma[i]
        sqrtT = math.sqrt(t)
        vs = v * sqrtT
        d1 = (math.log(s / k) + (r - q + 0.5 * v * v) * t) / vs
        d2 = d1 - vs
        dfq = math.exp(-q * t)
        dfr = math.exp(-r * t)
        pdf = math.exp(-0.5 * d1 * d1) * INV_SQRT_2PI
        Nd1 = 0.5 * math.erfc(-p * d1 * INV_SQRT2)
        Nd2 = 0.5 * math.erfc(-p * d2 * INV_SQRT2)
        a = s * dfq * Nd1
        b = k * dfr * Nd2
        vg = s * dfq * pdf * sqrtT
        price[i] = p * (a - b)
        delta[i] = p * dfq * Nd1
        gamma[i] = dfq * pdf / (s * vs)
        vega[i] = vg
        theta[i] = -0.5 * vg * v / t + p * (q * a - r * b)
        rho[i] = p * t * b


if nb is not None:
    _nb_greeks_par = nb.njit(parallel=True, fastmath=False, cache=True)(_greeks_kernel)
    _nb_greeks_ser = nb.njit(parallel=False, fastmath=False, cache=True)(_greeks_kernel)


def _numba_greeks(kernel, phi, S, K, T, r, sigma, q):
    n = S.shape[0]
    out = [np.empty(n) for _ in range(6)]
    kernel(phi, S, K, T, float(r), sigma, float(q), *out)
    return Greeks(*out)


def numba_greeks(phi, S, K, T, r, sigma, q=0.0) -> Greeks:
    """``@njit(parallel=True, fastmath=False)``, math.erfc, prange; outputs allocated per call."""
    return _numba_greeks(_nb_greeks_par, phi, S, K, T, r, sigma, q)


def numba_greeks_serial(phi, S, K, T, r, sigma, q=0.0) -> Greeks:
    """Same kernel compiled with parallel=False (single thread) -- for reading thread scaling."""
    return _numba_greeks(_nb_greeks_ser, phi, S, K, T, r, sigma, q)


def numba_threads() -> int:
    return nb.get_num_threads() if nb is not None else 0


# ---------------------------------------------------------------------------
# Normalised Black, accurate in the wings
# ---------------------------------------------------------------------------
# For an out-of-the-money call in normalised form (x = ln(F/K) <= 0, s = sigma*sqrt(T)):
#     b(x, s) = e^{x/2} N(d1) - e^{-x/2} N(d2),   d1,2 = x/s +- s/2
#             = 0.5 * E * (erfcx(u1) - erfcx(u2)),
#     E = exp(-(x^2/s^2 + s^2/4)/2),  u1 = -d1/sqrt2,  u2 = u1 + s/sqrt2.
# The erfcx difference has no under/overflow down to b ~ 1e-300 and its
# cancellation costs ~eps/(s*max(1,|d1|)) in implied sigma; where
# s*max(1,|d1|) is small (near the money, tiny s) the difference is instead
# summed as a Taylor series in h = s/sqrt2 using the erfcx ODE
#     y' = 2u y - 2/sqrt(pi),   y^(n+1) = 2u y^(n) + 2n y^(n-1).
# ln b = ln(0.5) + ln E + ln(delta) never underflows, which the solvers use.
_SERIES_LIMIT = 0.5  # use the series where s*max(1,|d1|) < this
_SERIES_TERMS = 40
_D1_DIRECT = 20.0  # beyond this d1, erfcx(u1) could overflow: use erfc directly


def _np_erfcx_diff(x, s):
    """erfcx(u1) - erfcx(u2) (vectorised); returns (delta, d1)."""
    d1 = x / s + 0.5 * s
    u1 = -d1 * INV_SQRT2
    h = s * INV_SQRT2
    delta = sc.erfcx(u1) - sc.erfcx(u1 + h)
    small = s * np.maximum(1.0, np.abs(d1)) < _SERIES_LIMIT
    if np.any(small):
        u = u1[small]
        hh = h[small]
        y_prev = sc.erfcx(u)
        y = 2.0 * u * y_prev - TWO_OVER_SQRT_PI
        coef = hh.copy()
        acc = y * coef
        for n in range(1, _SERIES_TERMS):
            y_prev, y = y, 2.0 * u * y + 2.0 * n * y_prev
            coef *= hh / (n + 1)
            acc += y * coef
        delta[small] = -acc
    return delta, d1


def normalised_otm_call(x, s):
    """b(x, s) for x <= 0 (vectorised, accurate to ~1e-300)."""
    x = np.asarray(x, dtype=np.float64)
    s = np.asarray(s, dtype=np.float64)
    x, s = np.broadcast_arrays(x, s)
    delta, d1 = _np_erfcx_diff(x, s)
    lnE = -0.5 * (x * x / (s * s) + 0.25 * s * s)
    b = 0.5 * np.exp(lnE) * delta
    big = d1 > _D1_DIRECT
    if np.any(big):
        xb, sb = x[big], s[big]
        b[big] = np.exp(0.5 * xb) * sc.ndtr(xb / sb + 0.5 * sb) - np.exp(-0.5 * xb) * sc.ndtr(
            xb / sb - 0.5 * sb
        )
    return b


def reference_price(phi, S, K, T, r, sigma, q=0.0):
    """Accurate BSM price (also for deep wings / tiny prices).

    price = e^{-rT} sqrt(F K) * (b_otm(-|x|, s) + intrinsic),  x = ln(F/K).
    """
    phi = np.asarray(phi, dtype=np.float64)
    S, K, T, sigma = (np.asarray(a, dtype=np.float64) for a in (S, K, T, sigma))
    x = np.log(S / K) + (r - q) * T
    s = sigma * np.sqrt(T)
    F = S * np.exp((r - q) * T)
    b = normalised_otm_call(-np.abs(x), s)
    itm = phi * x > 0
    intrinsic = np.where(itm, 2.0 * np.abs(np.sinh(0.5 * x)), 0.0)
    return np.exp(-r * T) * np.sqrt(F * K) * (b + intrinsic)


# ---------------------------------------------------------------------------
# Implied volatility: normalisation shared by the numpy and numba solvers
# ---------------------------------------------------------------------------
# Solve ln b(x, s) = ln beta for s with x <= 0 (OTM call), Halley's method on
# f(s) = ln b(s) - ln beta, which is increasing and concave in s:
#     f'  = b'/b = sqrt(2/pi) / delta          (b' = E / sqrt(2 pi))
#     f'' = f' (x^2/s^3 - s/4) - f'^2
# kept inside a bracket [lo, hi] (bisection when a step leaves it).  Start:
#     s0 = max(|x| / sqrt(-2 ln beta), sqrt(2 pi) beta)   (left of the root)
IV_MAX_ITER = 60
IV_REL_TOL = 1e-13


def _normalise_iv_inputs(price, phi, S, K, T, r, q):
    price, phi, S, K, T = (np.asarray(a, dtype=np.float64) for a in (price, phi, S, K, T))
    price, phi, S, K, T = np.broadcast_arrays(price, phi, S, K, T)
    x = np.log(S / K) + (r - q) * T
    F = S * np.exp((r - q) * T)
    beta = price / (np.exp(-r * T) * np.sqrt(F * K))
    itm = phi * x > 0
    beta = np.where(itm, beta - 2.0 * np.abs(np.sinh(0.5 * x)), beta)
    xo = -np.abs(x)
    return beta, xo, T


def numpy_implied_vol(price, phi, S, K, T, r, q=0.0):
    """Vectorised implied vol (numpy/scipy); NaN where unsolvable / not converged."""
    beta, x, T = _normalise_iv_inputs(price, phi, S, K, T, r, q)
    n = beta.shape[0]
    out = np.full(n, np.nan)
    ok = (beta > 0.0) & (beta < np.exp(0.5 * x)) & np.isfinite(beta)
    idx = np.flatnonzero(ok)
    x = x[idx]
    lnbeta = np.log(beta[idx])
    s = np.maximum(np.abs(x) / np.sqrt(np.maximum(-2.0 * lnbeta, 1e-300)), SQRT_2PI * beta[idx])
    lo = np.zeros_like(s)
    hi = np.full_like(s, np.inf)
    for _ in range(IV_MAX_ITER):
        if idx.size == 0:
            break
        delta, d1 = _np_erfcx_diff(x, s)
        lnb = LN_HALF - 0.5 * (x * x / (s * s) + 0.25 * s * s) + np.log(delta)
        fp = SQRT_2_OVER_PI / delta
        big = d1 > _D1_DIRECT
        if np.any(big):
            bb = normalised_otm_call(x[big], s[big])
            lnb[big] = np.log(bb)
            fp[big] = (
                np.exp(-0.5 * (x[big] ** 2 / s[big] ** 2 + 0.25 * s[big] ** 2)) * INV_SQRT_2PI / bb
            )
        f = lnb - lnbeta
        lo = np.where(f < 0, s, lo)
        hi = np.where(f > 0, s, hi)
        fpp = fp * (x * x / (s * s * s) - 0.25 * s) - fp * fp
        newton = -f / fp
        step = newton / (1.0 - 0.5 * newton * fpp / fp)
        s_new = s + step
        done = (np.abs(step) <= IV_REL_TOL * s) | (f == 0)
        bad = ~((s_new > lo) & (s_new < hi)) & ~done
        if np.any(bad):
            bis = np.where(np.isfinite(hi), 0.5 * (lo + hi), 2.0 * s)
            s_new = np.where(bad, bis, s_new)
        if np.any(done):
            out[idx[done]] = s_new[done]
            keep = ~done
            idx, x, lnbeta, s_new, lo, hi = (a[keep] for a in (idx, x, lnbeta, s_new, lo, hi))
        s = s_new
    return out / np.sqrt(T)


if nb is not None:
    _erfcx_addr = get_cython_function_address("scipy.special.cython_special", "__pyx_fuse_1erfcx")
    _c_erfcx = ctypes.CFUNCTYPE(ctypes.c_double, ctypes.c_double)(_erfcx_addr)

    @nb.njit(fastmath=False, inline="always")
    def _nb_lnb_fp(x, s):
        """(ln b, f' = b'/b) for x <= 0, scalar; same maths as _np_erfcx_diff."""
        d1 = x / s + 0.5 * s
        if d1 > _D1_DIRECT:
            b = math.exp(0.5 * x) * 0.5 * math.erfc(-d1 * INV_SQRT2) - math.exp(
                -0.5 * x
            ) * 0.5 * math.erfc(-(d1 - s) * INV_SQRT2)
            bp = math.exp(-0.5 * (x * x / (s * s) + 0.25 * s * s)) * INV_SQRT_2PI
            return math.log(b), bp / b
        u1 = -d1 * INV_SQRT2
        h = s * INV_SQRT2
        if s * max(1.0, abs(d1)) < _SERIES_LIMIT:
            y_prev = _c_erfcx(u1)
            y = 2.0 * u1 * y_prev - TWO_OVER_SQRT_PI
            coef = h
            acc = y * coef
            for n in range(1, _SERIES_TERMS):
                y_new = 2.0 * u1 * y + 2.0 * n * y_prev
                y_prev = y
                y = y_new
                coef *= h / (n + 1)
                acc += y * coef
            delta = -acc
        else:
            delta = _c_erfcx(u1) - _c_erfcx(u1 + h)
        lnb = LN_HALF - 0.5 * (x * x / (s * s) + 0.25 * s * s) + math.log(delta)
        return lnb, SQRT_2_OVER_PI / delta

    @nb.njit(parallel=True, fastmath=False)
    def _nb_iv_kernel(beta, x, sqrtT, out):
        n = beta.shape[0]
        for i in nb.prange(n):
            bt = beta[i]
            xi = x[i]
            res = np.nan
            if bt > 0.0 and bt < math.exp(0.5 * xi):
                lnbeta = math.log(bt)
                s = max(abs(xi) / math.sqrt(max(-2.0 * lnbeta, 1e-300)), SQRT_2PI * bt)
                lo = 0.0
                hi = np.inf
                for _ in range(IV_MAX_ITER):
                    lnb, fp = _nb_lnb_fp(xi, s)
                    f = lnb - lnbeta
                    if f < 0.0:
                        lo = s
                    elif f > 0.0:
                        hi = s
                    else:
                        res = s
                        break
                    fpp = fp * (xi * xi / (s * s * s) - 0.25 * s) - fp * fp
                    newton = -f / fp
                    step = newton / (1.0 - 0.5 * newton * fpp / fp)
                    s_new = s + step
                    if abs(step) <= IV_REL_TOL * s:
                        res = s_new
                        break
                    if not (s_new > lo and s_new < hi):
                        s_new = 0.5 * (lo + hi) if hi < np.inf else 2.0 * s
                    s = s_new
            out[i] = res / sqrtT[i]


def numba_implied_vol(price, phi, S, K, T, r, q=0.0):
    """Implied vol, numba prange over options (erfcx from scipy's cython_special)."""
    beta, x, T = _normalise_iv_inputs(price, phi, S, K, T, r, q)
    out = np.empty(beta.shape[0])
    _nb_iv_kernel(beta, x, np.sqrt(T), out)
    return out


def warm_up_numba():
    """Compile every numba peer (outside any timer)."""
    if nb is None:
        return
    phi = np.array([1.0, -1.0])
    S = np.array([100.0, 100.0])
    K = np.array([105.0, 95.0])
    T = np.array([0.5, 0.5])
    sig = np.array([0.2, 0.3])
    numba_greeks(phi, S, K, T, 0.03, sig, 0.01)
    numba_greeks_serial(phi, S, K, T, 0.03, sig, 0.01)
    p = reference_price(phi, S, K, T, 0.03, sig, 0.01)
    numba_implied_vol(p, phi, S, K, T, 0.03, 0.01)


# ---------------------------------------------------------------------------
# py_vollib_vectorized
# ---------------------------------------------------------------------------
def _pvv_module():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import py_vollib_vectorized
    return py_vollib_vectorized


def _pvv_flags(phi):
    return np.where(np.asarray(phi) > 0, "c", "p")


def pvv_greeks(phi, S, K, T, r, sigma, q=0.0) -> Greeks:
    """py_vollib_vectorized price + get_all_greeks (BSM), converted to our units.

    Its Greeks are finite differences in py_vollib units: vega and rho per
    1% (bumps of +-0.01), theta per calendar day (a 1/365 bump).
    """
    pvv = _pvv_module()
    flags = _pvv_flags(phi)
    n = np.shape(S)[0]
    rr = np.full(n, float(r))
    qq = np.full(n, float(q))
    price = pvv.vectorized_black_scholes_merton(flags, S, K, T, rr, sigma, qq, return_as="numpy")
    g = pvv.get_all_greeks(
        flags, S, K, T, rr, sigma, qq, model="black_scholes_merton", return_as="dict"
    )
    return Greeks(
        np.asarray(price),
        np.asarray(g["delta"]),
        np.asarray(g["gamma"]),
        100.0 * np.asarray(g["vega"]),
        365.0 * np.asarray(g["theta"]),
        100.0 * np.asarray(g["rho"]),
    )


def pvv_implied_vol(price, phi, S, K, T, r, q=0.0):
    pvv = _pvv_module()
    n = np.shape(S)[0]
    return np.asarray(
        pvv.vectorized_implied_volatility(
            price,
            S,
            K,
            T,
            np.full(n, float(r)),
            _pvv_flags(phi),
            q=np.full(n, float(q)),
            model="black_scholes_merton",
            on_error="ignore",
            return_as="numpy",
        )
    )


def _first_line(exc: BaseException) -> str:
    msg = str(exc)
    lines = [ln.strip() for ln in msg.splitlines() if ln.strip()]
    # numba typing errors: the informative line is the innermost one
    key = [
        ln
        for ln in lines
        if (
            "recursion" in ln
            or "Untyped global" in ln
            or "No implementation" in ln
            or "Unknown attribute" in ln
        )
    ]
    return f"{type(exc).__name__}: {(key or lines or [''])[0]}"


_PVV_STATUS: dict[str, str | None] = {}


def pvv_status() -> dict[str, str | None]:
    """Probe py_vollib_vectorized once: {'import'|'greeks'|'iv': None if it works else reason}."""
    if _PVV_STATUS:
        return _PVV_STATUS
    try:
        _pvv_module()
    except Exception as exc:
        reason = f"import failed: {_first_line(exc)}"
        _PVV_STATUS.update({"import": reason, "greeks": reason, "iv": reason})
        return _PVV_STATUS
    _PVV_STATUS["import"] = None
    phi = np.array([1.0, -1.0])
    S = np.array([100.0, 100.0])
    K = np.array([105.0, 95.0])
    T = np.array([0.25, 0.5])
    sig = np.array([0.2, 0.3])
    try:
        g = pvv_greeks(phi, S, K, T, 0.03, sig, 0.01)
        ref = numpy_greeks(phi, S, K, T, 0.03, sig, 0.01)
        if not np.allclose(g.price, ref.price, rtol=1e-10, atol=1e-12):
            raise AssertionError(f"prices disagree with numpy: {g.price} vs {ref.price}")
        _PVV_STATUS["greeks"] = None
    except Exception as exc:
        _PVV_STATUS["greeks"] = f"pricing/greeks call failed: {_first_line(exc)}"
    try:
        p = reference_price(phi, S, K, T, 0.03, sig, 0.01)
        iv = pvv_implied_vol(p, phi, S, K, T, 0.03, 0.01)
        if not np.allclose(iv, sig, rtol=1e-8):
            raise AssertionError(f"implied vols wrong: {iv} vs {sig}")
        _PVV_STATUS["iv"] = None
    except Exception as exc:
        _PVV_STATUS["iv"] = f"implied-vol call failed: {_first_line(exc)}"
    return _PVV_STATUS


# ---------------------------------------------------------------------------
# Scalar peers: py_vollib, py_lets_be_rational, QuantLib
# ---------------------------------------------------------------------------
def _import_py_vollib():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from py_vollib.black_scholes_merton import black_scholes_merton
        from py_vollib.black_scholes_merton.greeks import analytical
        from py_vollib.black_scholes_merton.implied_volatility import implied_volatility
    return (
        black_scholes_merton,
        analytical.delta,
        analytical.gamma,
        analytical.vega,
        analytical.theta,
        analytical.rho,
        implied_volatility,
    )


# Captured at import time, i.e. before anything imports py_vollib_vectorized:
# importing py_vollib_vectorized monkeypatches py_vollib's module attributes
# (black_scholes_merton, implied_volatility, numerical greeks) with its own
# vectorised versions -- which are broken in this environment (see pvv_status).
try:
    _PY_VOLLIB = _import_py_vollib()
    PY_VOLLIB_ERROR: str | None = None
except Exception as exc:  # pragma: no cover
    _PY_VOLLIB = None
    PY_VOLLIB_ERROR = f"{type(exc).__name__}: {exc}"


def _py_vollib():
    if _PY_VOLLIB is None:
        raise ImportError(f"py_vollib unavailable: {PY_VOLLIB_ERROR}")
    return _PY_VOLLIB


def py_vollib_scalar_greeks_fn():
    """Return f(flag,S,K,t,r,sigma,q) -> (price, delta, gamma, vega, theta, rho) as a user
    would write it with py_vollib (six calls); output in py_vollib units."""
    bsm, delta, gamma, vega, theta, rho, _ = _py_vollib()

    def f(flag, S, K, t, r, sigma, q):
        return (
            bsm(flag, S, K, t, r, sigma, q),
            delta(flag, S, K, t, r, sigma, q),
            gamma(flag, S, K, t, r, sigma, q),
            vega(flag, S, K, t, r, sigma, q),
            theta(flag, S, K, t, r, sigma, q),
            rho(flag, S, K, t, r, sigma, q),
        )

    return f


# py_vollib analytical: vega and rho per 1%, theta per day (/365)
PY_VOLLIB_UNIT_SCALE = (1.0, 1.0, 1.0, 100.0, 365.0, 100.0)


def py_vollib_scalar_iv_fn():
    """f(price, S, K, t, r, flag, q) -> sigma (py_vollib BSM implied vol)."""
    return _py_vollib()[6]


def lbr_scalar_iv_fn():
    """f(price, flag, S, K, T, r, q) -> sigma via py_lets_be_rational directly.

    What a user does with LBR: undiscount the price, pass the forward and q=+-1.
    """
    from py_lets_be_rational import implied_volatility_from_a_transformed_rational_guess as lbr

    exp = math.exp

    def f(price, flag, S, K, T, r, q=0.0):
        return lbr(price * exp(r * T), S * exp((r - q) * T), K, T, 1.0 if flag == "c" else -1.0)

    return f


class QuantLibScalar:
    """QuantLib analytic BSM engine built once; each call moves the spot quote.

    ``__call__`` alternates the spot between two values (SimpleQuote.setValue
    only notifies observers when the value changes, so re-setting the same
    value would just return cached results) and returns
    (NPV, delta, gamma, vega, theta, rho) -- theta per year, vega/rho per 1.0.
    T is represented exactly with Actual/360 and 36 days = 0.1 years.
    """

    def __init__(self, flag, S, K, T_days, r, sigma, q=0.0, bump=1e-9):
        import QuantLib as ql  # noqa: N813

        self.ql = ql
        dc = ql.Actual360()
        today = ql.Date(15, 1, 2025)
        ql.Settings.instance().evaluationDate = today
        self.T = T_days / 360.0
        self.spot = ql.SimpleQuote(S)
        self.spots = (S, S + bump)
        self._i = 0
        r_ts = ql.YieldTermStructureHandle(ql.FlatForward(today, r, dc))
        q_ts = ql.YieldTermStructureHandle(ql.FlatForward(today, q, dc))
        v_ts = ql.BlackVolTermStructureHandle(
            ql.BlackConstantVol(today, ql.NullCalendar(), sigma, dc)
        )
        process = ql.BlackScholesMertonProcess(ql.QuoteHandle(self.spot), q_ts, r_ts, v_ts)
        payoff = ql.PlainVanillaPayoff(ql.Option.Call if flag == "c" else ql.Option.Put, K)
        self.option = ql.EuropeanOption(payoff, ql.EuropeanExercise(today + int(T_days)))
        self.option.setPricingEngine(ql.AnalyticEuropeanEngine(process))

    def __call__(self):
        self._i ^= 1
        self.spot.setValue(self.spots[self._i])
        o = self.option
        return o.NPV(), o.delta(), o.gamma(), o.vega(), o.theta(), o.rho()

    def at(self, S):
        """Price at an explicit spot (for the correctness check)."""
        self.spot.setValue(S)
        o = self.option
        return o.NPV(), o.delta(), o.gamma(), o.vega(), o.theta(), o.rho()
