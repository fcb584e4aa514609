"""Pure-Python reference implementation (test oracle) of option prices and Greeks.

Only the ``math`` module is used (``math.erfc`` for the normal CDF); no numpy.
Everything here is scalar and written for clarity, not speed.  The compiled
kernel (``algoengine.greeks``) is checked against these functions, and these
functions are themselves checked against QuantLib, mpmath and finite
differences in ``tests/unit/test_greeks.py``.

Conventions (identical to the public API of ``algoengine.greeks``):

* ``flag``: "c"/"p", "call"/"put", "CE"/"PE" (case-insensitive) or +1/-1.
* ``T`` in years; ``sigma``, ``r``, ``q`` as decimals per year.
* vega  = dV/dsigma per 1.0 of sigma.
* rho   = dV/dr per 1.0 of r (Black-76: holding the forward F fixed, = -T*V).
* theta = -dV/dT per year (calendar time passing; Black-76 holds F fixed).
* Degenerate case ``sigma*sqrt(T) == 0``: price is the discounted intrinsic
  value of the forward; N(d1), N(d2) are replaced by their limits (1 in the
  money, 0 out of the money, 1/2 exactly at the money) and every phi-term by 0.

Accuracy: the textbook F*N(d1) - K*N(d2) loses up to ~eps*|d|^3/s relative for
out-of-the-money options with small s = sigma*sqrt(T) (~1e-8 a few minutes
before expiry).  For s < 0.1 the price is therefore computed from an exact,
cancellation-free integral of the Mills ratio (see ``_integral_lower_limit``);
the oracle then agrees with 50-digit mpmath to 1e-12 relative beyond the
conditioning of the inputs (``test_reference_matches_mpmath``).
"""

from __future__ import annotations

import math
from typing import NamedTuple

__all__ = [
    "Greeks",
    "black76_greeks",
    "black76_implied_vol",
    "black76_intrinsic",
    "black76_noise",
    "black76_price",
    "black76_upper_bound",
    "bsm_greeks",
    "bsm_implied_vol",
    "bsm_intrinsic",
    "bsm_noise",
    "bsm_price",
    "bsm_upper_bound",
    "norm_cdf",
    "norm_pdf",
    "parse_flag",
]

_SQRT2 = math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)

_CALL_NAMES = frozenset({"c", "call", "ce"})
_PUT_NAMES = frozenset({"p", "put", "pe"})


class Greeks(NamedTuple):
    price: float
    delta: float
    gamma: float
    vega: float
    theta: float
    rho: float


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------
def norm_cdf(x: float) -> float:
    """Standard normal CDF via erfc (accurate in relative terms in the lower tail)."""
    return 0.5 * math.erfc(-x / _SQRT2)


def norm_pdf(x: float) -> float:
    return _INV_SQRT_2PI * math.exp(-0.5 * x * x)


def parse_flag(flag) -> int:
    """Return +1 for a call, -1 for a put; ValueError naming 'flag' otherwise."""
    if isinstance(flag, str):
        f = flag.strip().lower()
        if f in _CALL_NAMES:
            return 1
        if f in _PUT_NAMES:
            return -1
    elif isinstance(flag, (int, float)) and not isinstance(flag, bool):
        if flag == 1:
            return 1
        if flag == -1:
            return -1
    raise ValueError(f"flag: unknown option flag {flag!r}")


def _check_positive(name: str, x: float) -> float:
    x = float(x)
    if not x > 0.0:  # catches NaN too
        raise ValueError(f"{name} must be > 0, got {x!r}")
    if math.isinf(x):
        raise ValueError(f"{name} must be finite, got {x!r}")
    return x


def _check_nonneg(name: str, x: float) -> float:
    x = float(x)
    if not x >= 0.0 or math.isinf(x):
        raise ValueError(f"{name} must be finite and >= 0, got {x!r}")
    return x


def _check_finite(name: str, x: float) -> float:
    x = float(x)
    if not math.isfinite(x):
        raise ValueError(f"{name} must be finite, got {x!r}")
    return x


# Gauss-Legendre rule on [-1, 1], computed once with Newton's method on P_n.
def _gauss_legendre(n: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    nodes, weights = [], []
    for i in range(1, n + 1):
        x = math.cos(math.pi * (i - 0.25) / (n + 0.5))
        for _ in range(100):
            p0, p1 = 1.0, x
            for k in range(2, n + 1):
                p0, p1 = p1, ((2 * k - 1) * x * p1 - (k - 1) * p0) / k
            dp = n * (x * p1 - p0) / (x * x - 1.0)
            dx = p1 / dp
            x -= dx
            if abs(dx) < 1e-17:
                break
        p0, p1 = 1.0, x
        for k in range(2, n + 1):
            p0, p1 = p1, ((2 * k - 1) * x * p1 - (k - 1) * p0) / k
        dp = n * (x * p1 - p0) / (x * x - 1.0)
        nodes.append(x)
        weights.append(2.0 / ((1.0 - x * x) * dp * dp))
    return tuple(nodes), tuple(weights)


_GL_NODES, _GL_WEIGHTS = _gauss_legendre(12)

# Below this total standard deviation s = sigma*sqrt(T) the textbook formula
# F*N(d1) - K*N(d2) cancels badly for out-of-the-money options: its relative
# error grows like eps*|d|**3/s (the rounding of d1 and d2 is independent and
# is amplified by the cancellation), e.g. ~1e-9 for K/F = 1.01 five minutes
# before expiry.  There the price is computed from a cancellation-free integral.
_S_INTEGRAL = 0.1


def _mills_complement(t: float) -> float:
    """g(t) = 1 - t*R(t), R(t) = N(-t)/phi(t) the Mills ratio; g = -R' > 0, no cancellation."""
    if t < 2.0:  # 1 - t*R >= 1/6 here: at most ~3 bits lost
        return 1.0 - t * (0.5 * math.erfc(t / _SQRT2) / norm_pdf(t))
    # Laplace continued fraction R(t) = 1/(t+ 1/(t+ 2/(t+ 3/(t+ ...)))), evaluated
    # backwards (depth chosen so that it has converged to rounding for t >= 2);
    # with c = 1/(t + 2/(t + ...)) we get 1 - t*R = c/(t + c): all terms positive.
    v = t
    for k in range(30 + int(800.0 / (t * t)), 1, -1):
        v = t + k / v
    c = 1.0 / v
    return c / (t + c)


def _integral_lower_limit(w: int, x: float, s: float):
    """Return a = -w*x/s - s/2 if the cancellation-free integral should be used, else None.

    With N(u) = phi(u)*R(-u) and F*phi(d1) = K*phi(d2), the undiscounted price is
        w*(F*N(w*d1) - K*N(w*d2)) = F*phi(d1) * (R(a) - R(a + s))
                                  = F*phi(d1) * integral_a^{a+s} g(t) dt,
    g = -R' > 0 (see _mills_complement).  Used where the textbook formula
    cancels: small s and out of (or at most ~s inside) the money.
    """
    if s < _S_INTEGRAL:
        a = -w * x / s - 0.5 * s
        if a >= -1.0:
            return a
    return None


def _mills_integral(a: float, s: float) -> float:
    """integral_a^{a+s} g(t) dt by 12-point Gauss-Legendre (positive smooth integrand, s < 0.1)."""
    h = 0.5 * s
    mid = a + h
    return h * math.fsum(
        wt * _mills_complement(mid + h * nd) for nd, wt in zip(_GL_NODES, _GL_WEIGHTS, strict=True)
    )


def _limit_cdfs(w: int, diff: float) -> tuple[float, float]:
    """Limits of N(w*d1), N(w*d2) as sigma*sqrt(T) -> 0; ``diff`` ~ F - K (any positive scaling)."""
    m = w * diff
    if m > 0.0:
        return 1.0, 1.0
    if m < 0.0:
        return 0.0, 0.0
    return 0.5, 0.5


# --------------------------------------------------------------------------
# Black-Scholes-Merton on spot S with continuous dividend yield q
# --------------------------------------------------------------------------
def _bsm_checked(flag, S, K, T, r, sigma, q):
    w = parse_flag(flag)
    S = _check_positive("S", S)
    K = _check_positive("K", K)
    T = _check_nonneg("T", T)
    sigma = _check_nonneg("sigma", sigma)
    r = _check_finite("r", r)
    q = _check_finite("q", q)
    return w, S, K, T, r, sigma, q


def bsm_intrinsic(flag, S, K, T, r, q=0.0) -> float:
    """Discounted intrinsic value of the forward: max(w*(S e^{-qT} - K e^{-rT}), 0)."""
    w, S, K, T, r, _, q = _bsm_checked(flag, S, K, T, r, 0.0, q)
    return max(w * (S * math.exp(-q * T) - K * math.exp(-r * T)), 0.0)


def bsm_upper_bound(flag, S, K, T, r, q=0.0) -> float:
    """No-arbitrage upper bound: S e^{-qT} for a call, K e^{-rT} for a put."""
    w, S, K, T, r, _, q = _bsm_checked(flag, S, K, T, r, 0.0, q)
    return S * math.exp(-q * T) if w > 0 else K * math.exp(-r * T)


def _bsm(w, S, K, T, r, sigma, q) -> Greeks:
    df_r = math.exp(-r * T)
    df_q = math.exp(-q * T)
    sqrt_t = math.sqrt(T)
    s = sigma * sqrt_t
    if s == 0.0:
        diff = S * df_q - K * df_r
        n1, n2 = _limit_cdfs(w, diff)
        price = max(w * diff, 0.0)
        delta = w * df_q * n1
        gamma = 0.0
        vega = 0.0
        theta = w * (q * S * df_q * n1 - r * K * df_r * n2)
        rho = w * K * T * df_r * n2
        return Greeks(price, delta, gamma, vega, theta, rho)

    x = math.log(S / K) + (r - q) * T  # log-moneyness of the forward
    d1 = x / s + 0.5 * s
    d2 = x / s - 0.5 * s
    n1 = norm_cdf(w * d1)
    n2 = norm_cdf(w * d2)
    pdf1 = norm_pdf(d1)
    s_df_q = S * df_q
    k_df_r = K * df_r

    # textbook formula, or the cancellation-free one (F e^{-rT} phi(d1) = S e^{-qT} phi(d1))
    a = _integral_lower_limit(w, x, s)
    price = w * (s_df_q * n1 - k_df_r * n2) if a is None else s_df_q * pdf1 * _mills_integral(a, s)
    delta = w * df_q * n1
    gamma = df_q * pdf1 / (S * s)
    vega = s_df_q * pdf1 * sqrt_t
    theta = -s_df_q * pdf1 * sigma / (2.0 * sqrt_t) + w * (q * s_df_q * n1 - r * k_df_r * n2)
    rho = w * K * T * df_r * n2
    return Greeks(price, delta, gamma, vega, theta, rho)


def bsm_greeks(flag, S, K, T, r, sigma, q=0.0) -> Greeks:
    """BSM price and Greeks (price, delta, gamma, vega, theta, rho) as a namedtuple."""
    return _bsm(*_bsm_checked(flag, S, K, T, r, sigma, q))


def bsm_price(flag, S, K, T, r, sigma, q=0.0) -> float:
    return bsm_greeks(flag, S, K, T, r, sigma, q).price


# --------------------------------------------------------------------------
# Black-76 on forward F, discounted at r
# --------------------------------------------------------------------------
def _b76_checked(flag, F, K, T, r, sigma):
    w = parse_flag(flag)
    F = _check_positive("F", F)
    K = _check_positive("K", K)
    T = _check_nonneg("T", T)
    sigma = _check_nonneg("sigma", sigma)
    r = _check_finite("r", r)
    return w, F, K, T, r, sigma


def black76_intrinsic(flag, F, K, T, r) -> float:
    w, F, K, T, r, _ = _b76_checked(flag, F, K, T, r, 0.0)
    return math.exp(-r * T) * max(w * (F - K), 0.0)


def black76_upper_bound(flag, F, K, T, r) -> float:
    w, F, K, T, r, _ = _b76_checked(flag, F, K, T, r, 0.0)
    return math.exp(-r * T) * (F if w > 0 else K)


def _b76(w, F, K, T, r, sigma) -> Greeks:
    df = math.exp(-r * T)
    sqrt_t = math.sqrt(T)
    s = sigma * sqrt_t
    if s == 0.0:
        n1, n2 = _limit_cdfs(w, F - K)
        price = df * max(w * (F - K), 0.0)
        delta = w * df * n1
        return Greeks(price, delta, 0.0, 0.0, r * price, -T * price)

    x = math.log(F / K)
    d1 = x / s + 0.5 * s
    d2 = x / s - 0.5 * s
    n1 = norm_cdf(w * d1)
    n2 = norm_cdf(w * d2)
    pdf1 = norm_pdf(d1)

    # textbook formula, or the cancellation-free one
    a = _integral_lower_limit(w, x, s)
    price = df * w * (F * n1 - K * n2) if a is None else df * F * pdf1 * _mills_integral(a, s)
    delta = w * df * n1
    gamma = df * pdf1 / (F * s)
    vega = df * F * pdf1 * sqrt_t
    theta = r * price - df * F * pdf1 * sigma / (2.0 * sqrt_t)
    rho = -T * price
    return Greeks(price, delta, gamma, vega, theta, rho)


def black76_greeks(flag, F, K, T, r, sigma) -> Greeks:
    return _b76(*_b76_checked(flag, F, K, T, r, sigma))


def black76_price(flag, F, K, T, r, sigma) -> float:
    return black76_greeks(flag, F, K, T, r, sigma).price


# --------------------------------------------------------------------------
# implied volatility: plain bisection on sigma (robust, slow, exact to the ulp)
# --------------------------------------------------------------------------
def _bisect_vol(pricer, target: float, lower: float, upper: float) -> float:
    if math.isnan(target) or not target > 0.0:
        raise ValueError(f"option_price must be > 0, got {target!r}")
    if target < lower:
        raise ValueError(f"option_price {target!r} is below intrinsic value {lower!r}")
    if target >= upper:
        raise ValueError(f"option_price {target!r} is above the upper bound {upper!r}")
    if target == lower:
        return 0.0
    lo, hi = 0.0, 10.0
    while pricer(hi) < target:  # very large vols: widen the bracket
        lo, hi = hi, 2.0 * hi
        if hi > 1e6:
            raise ValueError("option_price is too close to the upper bound to invert")
    while True:
        mid = 0.5 * (lo + hi)
        if mid <= lo or mid >= hi:
            break
        if pricer(mid) < target:
            lo = mid
        else:
            hi = mid
    # lo and hi are adjacent doubles: pick the one whose price is closer
    return lo if abs(pricer(lo) - target) <= abs(pricer(hi) - target) else hi


def bsm_implied_vol(option_price, flag, S, K, T, r, q=0.0) -> float:
    w, S, K, T, r, _, q = _bsm_checked(flag, S, K, T, r, 0.0, q)
    if not T > 0.0:
        raise ValueError(f"T must be > 0 for implied volatility, got {T!r}")
    target = float(option_price)
    lower = max(w * (S * math.exp(-q * T) - K * math.exp(-r * T)), 0.0)
    upper = S * math.exp(-q * T) if w > 0 else K * math.exp(-r * T)
    return _bisect_vol(lambda v: _bsm(w, S, K, T, r, v, q).price, target, lower, upper)


def black76_implied_vol(option_price, flag, F, K, T, r) -> float:
    w, F, K, T, r, _ = _b76_checked(flag, F, K, T, r, 0.0)
    if not T > 0.0:
        raise ValueError(f"T must be > 0 for implied volatility, got {T!r}")
    target = float(option_price)
    df = math.exp(-r * T)
    lower = df * max(w * (F - K), 0.0)
    upper = df * (F if w > 0 else K)
    return _bisect_vol(lambda v: _b76(w, F, K, T, r, v).price, target, lower, upper)


# --------------------------------------------------------------------------
# conditioning helpers used to set tolerances in the tests
# --------------------------------------------------------------------------
def _perturbation_noise(fn, args: tuple, rel: float) -> Greeks:
    """Sum over the inputs of max_{+-} |out(x_i * (1 +- rel)) - out(x)|.

    This is the amount by which each output moves when every input is
    perturbed by ``rel`` (1e-15 is ~4.5 ulp): it measures how ill-conditioned
    the problem is at this point in double precision.  Two correct
    double-precision implementations can legitimately differ by about this
    much (e.g. delta of an at-the-money option one minute before expiry with
    1% vol moves by ~1e-11 per ulp of log(S/K)), so tolerances add a multiple
    of it to their relative part.
    """
    base = fn(*args)
    total = [0.0] * 6
    for i, x in enumerate(args):
        if x == 0.0:
            continue
        worst = [0.0] * 6
        for sgn in (1.0, -1.0):
            pert = list(args)
            pert[i] = x * (1.0 + sgn * rel)
            out = fn(*pert)
            for k in range(6):
                worst[k] = max(worst[k], abs(out[k] - base[k]))
        for k in range(6):
            total[k] += worst[k]
    return Greeks(*total)


def bsm_noise(flag, S, K, T, r, sigma, q=0.0, rel: float = 1e-15) -> Greeks:
    """Per-output sensitivity to a relative perturbation ``rel`` of S, K, T, r, sigma, q."""
    w, S, K, T, r, sigma, q = _bsm_checked(flag, S, K, T, r, sigma, q)
    return _perturbation_noise(lambda *a: _bsm(w, *a), (S, K, T, r, sigma, q), rel)


def black76_noise(flag, F, K, T, r, sigma, rel: float = 1e-15) -> Greeks:
    """Per-output sensitivity to a relative perturbation ``rel`` of F, K, T, r, sigma."""
    w, F, K, T, r, sigma = _b76_checked(flag, F, K, T, r, sigma)
    return _perturbation_noise(lambda *a: _b76(w, *a), (F, K, T, r, sigma), rel)
