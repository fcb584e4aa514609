"""Black-Scholes-Merton and Black-76 prices, Greeks and implied volatility (compiled kernel).

The public face is :mod:`algoengine.greeks`, which documents units and behaviour. This module
holds the two doors of STYLE.md: Python-visible functions that validate once, and ``*_c``
kernels that trust their input and run without the GIL.

Array path: inputs are split into blocks of GREEKS_BLOCK elements; a broadcast scalar is read
from a block-sized buffer filled once, so every inner loop walks unit-stride memory and GCC
vectorizes it (with libmvec's exp/log, see _simd_math.h). Blocks are shared between threads
with OpenMP when the array is large enough to pay for the fork/join.
"""

cimport cython
cimport numpy as cnp
from cython.parallel cimport prange
from libc.float cimport DBL_EPSILON, DBL_MAX
from libc.math cimport INFINITY, NAN, exp, fabs, log, sqrt
from libc.stdlib cimport free, malloc
from libc.string cimport memset

from _lbr cimport lbr_implied_black_volatility
from _math cimport erfc_cody, norm_cdf, norm_pdf

import collections
import os

import numpy as np

cnp.import_array()

cdef extern from "<omp.h>":
    int omp_get_max_threads() noexcept nogil

# __restrict__ pointers: the block loops read 7 arrays and write 6; without restrict GCC would
# need more runtime alias checks than it is willing to emit and would leave the loop scalar.
cdef extern from *:
    ctypedef double* dptr_r "double * __restrict__"
    ctypedef const double* cdptr_r "const double * __restrict__"


# --------------------------------------------------------------------------------------------
# Scalar kernels (inline; the block loops below are built from the same code)
# --------------------------------------------------------------------------------------------

cdef inline bint _valid(double S, double K, double T, double r, double sigma,
                        double q) noexcept nogil:
    # Comparisons are false for NaN, so NaN anywhere is invalid.
    return ((S > 0.0) & (S < INFINITY) & (K > 0.0) & (K < INFINITY) & (T >= 0.0)
            & (T < INFINITY) & (sigma >= 0.0) & (sigma < INFINITY)
            & (fabs(r) < INFINITY) & (fabs(q) < INFINITY))


cdef inline void _bsm(double w, double S, double K, double T, double r, double sigma, double q,
                      bint black76, double* P, double* D, double* G, double* V, double* TH,
                      double* RH) noexcept nogil:
    """Price and Greeks of one option. w=+1 call, -1 put. Black-76: S is the forward, q == r.

    When sigma*sqrt(T) == 0 (expiry, or zero volatility) d1 and d2 are +-inf (0 exactly at the
    money), the density terms are dropped, and every output is the finite limit.
    """
    cdef double sqT = sqrt(T)
    cdef double sv = sigma * sqT
    cdef bint deg = not (sv > 0.0)
    cdef double inv_sv = 1.0 / (1.0 if deg else sv)
    cdef double dq = exp(-q * T)
    cdef double dr = exp(-r * T)
    cdef double Fq = S * dq                    # discounted forward
    cdef double Kr = K * dr                    # discounted strike
    cdef double x = log(S / K) + (r - q) * T   # log-moneyness of the forward
    cdef double dlim = INFINITY if x > 0.0 else (-INFINITY if x < 0.0 else 0.0)
    cdef double d1 = dlim if deg else x * inv_sv + 0.5 * sv
    cdef double d2 = dlim if deg else d1 - sv
    cdef double n1 = norm_cdf(w * d1)
    cdef double n2 = norm_cdf(w * d2)
    cdef double pdf = norm_pdf(d1)             # computed unconditionally: a call inside a
    pdf = 0.0 if deg else pdf                  # branch would keep GCC from vectorizing
    cdef double fpdf = Fq * pdf
    cdef double price = w * (Fq * n1 - Kr * n2)
    price = price if price > 0.0 else 0.0
    P[0] = price
    D[0] = w * dq * n1
    G[0] = fpdf * inv_sv / (S * S)             # dq pdf / (S sigma sqrt(T))
    V[0] = fpdf * sqT
    # -Fq pdf sigma / (2 sqrt(T)) written as -Fq pdf sigma^2 / (2 sv): no division by sqrt(T)
    TH[0] = -0.5 * fpdf * sigma * sigma * inv_sv - w * r * Kr * n2 + w * q * Fq * n1
    RH[0] = -T * price if black76 else w * T * Kr * n2


cdef double bsm_price_c(double w, double S, double K, double T, double r, double sigma,
                        double q, bint black76) noexcept nogil:
    cdef double p, d, g, v, th, rh
    _bsm(w, S, K, T, r, sigma, q, black76, &p, &d, &g, &v, &th, &rh)
    return p


cdef double implied_vol_c(double price, double w, double S, double K, double T, double r,
                          double q, bint black76) noexcept nogil:
    """Implied volatility by Let's Be Rational. Black-76: S is F (and q is ignored).

    Returns -DBL_MAX below the lower no-arbitrage bound, DBL_MAX above the upper one, and 0.0
    for an in-the-money price within rounding of the discounted intrinsic value (the
    intrinsic value Fq - Kr is itself only known to a few ulp of Fq + Kr): such a price carries
    no time value, and the two ways of rounding the bound (here, discounted as the price path
    does; in LBR, undiscounted) must not turn it into an error or a spurious volatility.
    Out of the money the bound is 0 and exact, so every positive price is solved.
    """
    cdef double Fq = S * exp(-r * T) if black76 else S * exp(-q * T)
    cdef double Kr = K * exp(-r * T)
    cdef double lo = w * (Fq - Kr)
    cdef double tol
    cdef double F = S if black76 else S * exp((r - q) * T)
    cdef double s
    tol = 8.0 * DBL_EPSILON * (Fq + Kr) if lo > 0.0 else 0.0
    lo = lo if lo > 0.0 else 0.0
    if price <= lo + tol:
        return 0.0 if price >= lo - tol else -DBL_MAX
    s = lbr_implied_black_volatility(price * exp(r * T), F, K, T, w)
    return 0.0 if s < 0.0 else s     # LBR's bound rounds differently: price >= lo here


# --------------------------------------------------------------------------------------------
# Block loops and the batch driver
# --------------------------------------------------------------------------------------------

cdef void _greeks_block(cdptr_r w, cdptr_r S, cdptr_r K, cdptr_r T, cdptr_r r, cdptr_r sg,
                        cdptr_r q, bint black76, dptr_r P, dptr_r D, dptr_r G, dptr_r V,
                        dptr_r TH, dptr_r RH, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    cdef double p, d, g, v, th, rh
    cdef bint ok
    for i in range(n):
        _bsm(w[i], S[i], K[i], T[i], r[i], sg[i], q[i], black76, &p, &d, &g, &v, &th, &rh)
        ok = _valid(S[i], K[i], T[i], r[i], sg[i], q[i])
        P[i] = p if ok else NAN
        D[i] = d if ok else NAN
        G[i] = g if ok else NAN
        V[i] = v if ok else NAN
        TH[i] = th if ok else NAN
        RH[i] = rh if ok else NAN


cdef void _price_block(cdptr_r w, cdptr_r S, cdptr_r K, cdptr_r T, cdptr_r r, cdptr_r sg,
                       cdptr_r q, bint black76, dptr_r P, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    cdef double p, d, g, v, th, rh
    for i in range(n):
        _bsm(w[i], S[i], K[i], T[i], r[i], sg[i], q[i], black76, &p, &d, &g, &v, &th, &rh)
        P[i] = p if _valid(S[i], K[i], T[i], r[i], sg[i], q[i]) else NAN


cdef void _iv_block(const double* pr, const double* w, const double* S, const double* K,
                    const double* T, const double* r, const double* q, bint black76,
                    double* out, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    cdef double s
    for i in range(n):
        if (_valid(S[i], K[i], T[i], r[i], 0.0, q[i]) and T[i] > 0.0 and pr[i] > 0.0
                and pr[i] < INFINITY):
            s = implied_vol_c(pr[i], w[i], S[i], K[i], T[i], r[i], q[i], black76)
            out[i] = s if fabs(s) < DBL_MAX else NAN
        else:
            out[i] = NAN


cdef void _run_block(const GreeksBatch* b, Py_ssize_t blk) noexcept nogil:
    cdef Py_ssize_t start = blk * GREEKS_BLOCK
    cdef Py_ssize_t m = b.n - start
    cdef const double* p[7]
    cdef int j
    if m > GREEKS_BLOCK:
        m = GREEKS_BLOCK
    for j in range(7):
        p[j] = b.sbuf + j * GREEKS_BLOCK if b.bcast[j] else b.inp[j] + start
    if b.kind == KIND_GREEKS:
        _greeks_block(p[0], p[1], p[2], p[3], p[4], p[5], p[6], b.black76,
                      b.out[0] + start, b.out[1] + start, b.out[2] + start,
                      b.out[3] + start, b.out[4] + start, b.out[5] + start, m)
    elif b.kind == KIND_PRICE:
        _price_block(p[0], p[1], p[2], p[3], p[4], p[5], p[6], b.black76, b.out[0] + start, m)
    else:
        _iv_block(p[0], p[1], p[2], p[3], p[4], p[5], p[6], b.black76, b.out[0] + start, m)


cdef void run_batch_c(GreeksBatch* b) noexcept nogil:
    cdef Py_ssize_t nblk = (b.n + GREEKS_BLOCK - 1) // GREEKS_BLOCK
    cdef Py_ssize_t blk
    cdef int nt = b.nthreads
    cdef Py_ssize_t par_min = IV_PARALLEL_MIN if b.kind == KIND_IV else GREEKS_PARALLEL_MIN
    if nt <= 1 or b.n < par_min:
        for blk in range(nblk):
            _run_block(b, blk)
    else:
        for blk in prange(nblk, schedule="static", num_threads=nt):
            _run_block(b, blk)


# --------------------------------------------------------------------------------------------
# Python-visible doors: validation, flags, broadcasting
# --------------------------------------------------------------------------------------------

cdef int _nthreads = max(1, omp_get_max_threads())


def set_num_threads(int n):
    """Set the number of threads the array paths may use (at least 1)."""
    global _nthreads
    if n < 1:
        raise ValueError(f"n: number of threads must be at least 1, got {n}")
    _nthreads = n


def get_num_threads():
    """Number of threads the array paths use for large arrays."""
    return _nthreads


_CALL_WORDS = ("c", "call", "ce")
_PUT_WORDS = ("p", "put", "pe")
cdef dict _FLAGS = {}
for _word in _CALL_WORDS:
    _FLAGS[_word] = 1.0
    _FLAGS[_word.upper()] = 1.0
    _FLAGS[_word.capitalize()] = 1.0
for _word in _PUT_WORDS:
    _FLAGS[_word] = -1.0
    _FLAGS[_word.upper()] = -1.0
    _FLAGS[_word.capitalize()] = -1.0


cdef double _scalar_flag(object flag) except 0.0:
    """+1.0 for a call, -1.0 for a put; ValueError naming 'flag' otherwise."""
    cdef object w
    if type(flag) is str:
        w = _FLAGS.get(flag)
        if w is None:
            w = _FLAGS.get(flag.strip().lower())
        if w is not None:
            return w
    elif (type(flag) is int or type(flag) is float) and (flag == 1 or flag == -1):
        return float(flag)
    raise ValueError(f"flag: expected 'c'/'p' (or 'call'/'put', 'CE'/'PE', +1/-1), got {flag!r}")


cdef object _array_flag(object flag):
    """flag as a float64 array (or float) of +1/-1; ValueError naming 'flag' for anything else."""
    if type(flag) is str or type(flag) is int or type(flag) is float:
        return _scalar_flag(flag)
    a = np.asarray(flag)
    if a.dtype.kind in "iuf":
        w = a.astype(np.float64)
        bad = ~((w == 1.0) | (w == -1.0))
    elif a.dtype.kind in "USO":
        words = np.char.lower(np.char.strip(a.astype(str)))
        is_call = np.isin(words, _CALL_WORDS)
        is_put = np.isin(words, _PUT_WORDS)
        w = np.where(is_call, 1.0, -1.0)
        bad = ~(is_call | is_put)
    else:
        raise ValueError(f"flag: expected 'c'/'p' or +1/-1 values, got dtype {a.dtype}")
    if bad.any():
        raise ValueError(f"flag: expected 'c'/'p' (or 'call'/'put', 'CE'/'PE', +1/-1), "
                         f"got {a[bad].ravel()[0]!r} at index {np.argwhere(bad)[0].tolist()}")
    return w


cdef inline bint _is_num(object x):
    # float and int, and their subclasses (numpy.float64 is a float): the scalar path.
    return isinstance(x, (float, int))


cdef int _check_scalars(double S, double K, double T, double r, double sigma,
                        double q, str sname) except -1:
    if not (S > 0.0 and S < INFINITY):
        raise ValueError(f"{sname}: must be a positive finite number, got {S!r}")
    if not (K > 0.0 and K < INFINITY):
        raise ValueError(f"K: must be a positive finite number, got {K!r}")
    if not (T >= 0.0 and T < INFINITY):
        raise ValueError(f"T: must be a non-negative finite number of years, got {T!r}")
    if not (fabs(r) < INFINITY):
        raise ValueError(f"r: must be a finite rate, got {r!r}")
    if not (sigma >= 0.0 and sigma < INFINITY):
        raise ValueError(f"sigma: must be a non-negative finite volatility, got {sigma!r}")
    if not (fabs(q) < INFINITY):
        raise ValueError(f"q: must be a finite dividend yield, got {q!r}")
    return 0


GreeksArrays = collections.namedtuple("GreeksArrays", "price delta gamma vega theta rho")
GreeksArrays.__doc__ = "Price and Greeks of many options: six float64 arrays of one shape."


@cython.final
cdef class Greeks:
    """Price and Greeks of one option (floats). Unpacks as (price, delta, gamma, vega, theta, rho)."""
    cdef readonly double price
    cdef readonly double delta
    cdef readonly double gamma
    cdef readonly double vega
    cdef readonly double theta
    cdef readonly double rho

    def __iter__(self):
        return iter((self.price, self.delta, self.gamma, self.vega, self.theta, self.rho))

    def __len__(self):
        return 6

    def __getitem__(self, i):
        return (self.price, self.delta, self.gamma, self.vega, self.theta, self.rho)[i]

    def __eq__(self, other):
        if isinstance(other, Greeks):
            return tuple(self) == tuple(other)
        return NotImplemented

    def __hash__(self):
        return hash(tuple(self))

    def __reduce__(self):
        return (_make_greeks, tuple(self))

    def _asdict(self):
        return dict(zip(("price", "delta", "gamma", "vega", "theta", "rho"), self))

    def __repr__(self):
        return ("Greeks(price={!r}, delta={!r}, gamma={!r}, vega={!r}, theta={!r}, rho={!r})"
                .format(*self))


def _make_greeks(double price, double delta, double gamma, double vega, double theta,
                 double rho):
    cdef Greeks g = Greeks.__new__(Greeks)
    g.price = price
    g.delta = delta
    g.gamma = gamma
    g.vega = vega
    g.theta = theta
    g.rho = rho
    return g


cdef object _batch(int kind, bint black76, object flag, tuple nums):
    """Array path: broadcast, fill a GreeksBatch, run it without the GIL, shape the outputs.

    nums: (S, K, T, r, sigma, q) for greeks/price; (price, S, K, T, r, q) for iv (the flag goes
    into slot 1 then).
    """
    cdef GreeksBatch b
    cdef int j, nin = 7
    cdef Py_ssize_t n, k
    cdef double v
    cdef cnp.ndarray a
    w = _array_flag(flag)
    if kind == KIND_IV:
        vals = [nums[0], w] + list(nums[1:])
    else:
        vals = [w] + list(nums)
    arrs = []
    for x in vals:
        try:
            arrs.append(np.asarray(x, dtype=np.float64))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"could not read {x!r} as float64 numbers: {exc}") from None
    try:
        shape = np.broadcast(*arrs).shape
    except ValueError:
        raise ValueError("inputs do not broadcast to one shape: shapes "
                         + ", ".join(str(x.shape) for x in arrs)) from None
    n = 1
    for k in shape:
        n *= k
    nout = 6 if kind == KIND_GREEKS else 1
    # One block for all outputs: one allocation (for big arrays one mapping, which numpy
    # advises for huge pages) costs a third of six separate ones in first-touch page faults.
    # The outputs are views of it, each contiguous.
    block = np.empty((nout,) + shape, dtype=np.float64)
    outs = [block[j, ...] for j in range(nout)]   # [j, ...]: a 0-d view, not a scalar
    if n > 0:
        keep = []
        memset(&b, 0, sizeof(b))
        b.n = n
        b.kind = kind
        b.black76 = black76
        b.nthreads = _nthreads
        b.sbuf = <double*>malloc(7 * GREEKS_BLOCK * sizeof(double))
        if b.sbuf == NULL:
            raise MemoryError()
        try:
            for j in range(nin):
                x = arrs[j]
                if x.size == 1:
                    v = x.reshape(-1)[0]
                    b.bcast[j] = 1
                    for k in range(GREEKS_BLOCK):
                        b.sbuf[j * GREEKS_BLOCK + k] = v
                    b.inp[j] = b.sbuf + j * GREEKS_BLOCK
                else:
                    if x.shape != shape:
                        x = np.broadcast_to(x, shape)
                    a = np.ascontiguousarray(x)
                    keep.append(a)
                    b.bcast[j] = 0
                    b.inp[j] = <const double*>cnp.PyArray_DATA(a)
            for j in range(nout):
                b.out[j] = <double*>cnp.PyArray_DATA(<cnp.ndarray>outs[j])
            with nogil:
                run_batch_c(&b)
        finally:
            free(b.sbuf)
    if len(shape) == 0:
        if kind == KIND_GREEKS:
            return _make_greeks(*[float(o) for o in outs])
        return float(outs[0])
    if kind == KIND_GREEKS:
        return GreeksArrays(*outs)
    return outs[0]


# ---- Black-Scholes-Merton on spot ------------------------------------------------------------

def price(flag, S, K, T, r, sigma, q=0.0):
    """Black-Scholes-Merton price of a European option on spot with a continuous yield q.

    Parameters
    ----------
    flag : str, int or array_like
        ``"c"``/``"p"`` (also ``"call"``/``"put"``, ``"CE"``/``"PE"``, any case) or +1/-1;
        or an array of those.
    S : float or array_like
        Spot price of the underlying (index points or rupees); positive.
    K : float or array_like
        Strike, same currency units as S; positive.
    T : float or array_like
        Time to expiry in years (calendar time, e.g. minutes / 525600); >= 0.
    r : float or array_like
        Continuously compounded risk-free rate per year (0.07 is 7%).
    sigma : float or array_like
        Volatility per sqrt(year) (0.2 is 20%); >= 0.
    q : float or array_like, default 0.0
        Continuous dividend (carry) yield per year.

    Returns
    -------
    float or numpy.ndarray
        A float when every input is a Python number, else a float64 array of the broadcast
        shape.

    Raises
    ------
    ValueError
        Scalar input: naming the argument, for S or K not positive and finite, T or sigma
        negative or NaN, r, q not finite, or an unknown flag. Array input: an unknown flag
        or shapes that do not broadcast; an invalid number in a row gives NaN in every output
        of that row instead (so one bad quote does not lose a whole option chain).

    Notes
    -----
    At sigma*sqrt(T) == 0 (expiry, or zero volatility) the price is the discounted intrinsic
    value of the forward, delta is 0 or +-exp(-qT) (half that exactly at the money), gamma and
    vega are 0, and theta and rho are the finite limits.
    """
    cdef double p, d, g, v, th, rh
    if (_is_num(S) and _is_num(K) and _is_num(T) and _is_num(r) and _is_num(sigma)
            and _is_num(q)):
        w = _scalar_flag(flag)
        _check_scalars(S, K, T, r, sigma, q, "S")
        _bsm(w, S, K, T, r, sigma, q, False, &p, &d, &g, &v, &th, &rh)
        return p
    return _batch(KIND_PRICE, False, flag, (S, K, T, r, sigma, q))


def greeks(flag, S, K, T, r, sigma, q=0.0):
    """Black-Scholes-Merton price and the five Greeks in one pass.

    Parameters
    ----------
    flag : str, int or array_like
        ``"c"``/``"p"`` (also ``"call"``/``"put"``, ``"CE"``/``"PE"``, any case) or +1/-1;
        or an array of those.
    S : float or array_like
        Spot price of the underlying (index points or rupees); positive.
    K : float or array_like
        Strike, same currency units as S; positive.
    T : float or array_like
        Time to expiry in years (calendar time, e.g. minutes / 525600); >= 0.
    r : float or array_like
        Continuously compounded risk-free rate per year (0.07 is 7%).
    sigma : float or array_like
        Volatility per sqrt(year) (0.2 is 20%); >= 0.
    q : float or array_like, default 0.0
        Continuous dividend (carry) yield per year.

    Returns
    -------
    Greeks or GreeksArrays
        ``price, delta, gamma, vega, theta, rho``: floats (:class:`Greeks`) when every input is
        a Python number, else float64 arrays of the broadcast shape (:class:`GreeksArrays`).
        Units: delta per 1.0 of S; gamma per 1.0 of S, squared; vega per 1.0 of
        sigma (divide by 100 for "per vol point"); theta = -dV/dT per year (divide by 365 for
        per calendar day); rho per 1.0 of r.

    Raises
    ------
    ValueError
        Scalar input: naming the argument, for S or K not positive and finite, T or sigma
        negative or NaN, r, q not finite, or an unknown flag. Array input: an unknown flag
        or shapes that do not broadcast; an invalid number in a row gives NaN in every output
        of that row instead (so one bad quote does not lose a whole option chain).

    Notes
    -----
    At sigma*sqrt(T) == 0 (expiry, or zero volatility) the price is the discounted intrinsic
    value of the forward, delta is 0 or +-exp(-qT) (half that exactly at the money), gamma and
    vega are 0, and theta and rho are the finite limits.
    """
    cdef Greeks res
    if (_is_num(S) and _is_num(K) and _is_num(T) and _is_num(r) and _is_num(sigma)
            and _is_num(q)):
        w = _scalar_flag(flag)
        _check_scalars(S, K, T, r, sigma, q, "S")
        res = Greeks.__new__(Greeks)
        _bsm(w, S, K, T, r, sigma, q, False, &res.price, &res.delta, &res.gamma, &res.vega,
             &res.theta, &res.rho)
        return res
    return _batch(KIND_GREEKS, False, flag, (S, K, T, r, sigma, q))


cdef double _scalar_iv(double option_price, double w, double S, double K, double T, double r,
                       double q, bint black76) except? -1.0:
    cdef str sname = "F" if black76 else "S"
    cdef double s, lo, hi, Fq, Kr
    if not (option_price > 0.0 and option_price < INFINITY):
        raise ValueError(f"option_price: must be a positive finite price, got {option_price!r}")
    _check_scalars(S, K, T, r, 0.0, q, sname)
    if not T > 0.0:
        raise ValueError(f"T: implied volatility needs time to expiry > 0, got {T!r}")
    s = implied_vol_c(option_price, w, S, K, T, r, q, black76)
    if fabs(s) < DBL_MAX:
        return s
    Fq = S * exp(-r * T) if black76 else S * exp(-q * T)
    Kr = K * exp(-r * T)
    lo = max(w * (Fq - Kr), 0.0)
    hi = Fq if w > 0 else Kr
    if s < 0:
        raise ValueError(f"option_price: {option_price!r} is below intrinsic value, the lower "
                         f"no-arbitrage bound ({lo!r}); no volatility gives this price")
    raise ValueError(f"option_price: {option_price!r} is above the upper no-arbitrage bound "
                     f"({hi!r}, the discounted {'forward' if w > 0 else 'strike'}); no "
                     f"volatility gives this price")


def implied_vol(option_price, flag, S, K, T, r, q=0.0):
    """Black-Scholes-Merton implied volatility of an option on spot.

    Let's Be Rational (P. Jaeckel, 2015): a rational initial guess and Householder steps give
    the volatility to close to machine precision in two iterations, for any strike and expiry
    where the price carries information (deep wings included).

    Parameters
    ----------
    option_price : float or array_like
        Market price of the option (discounted, as quoted); positive.
    flag : str, int or array_like
        ``"c"``/``"p"`` (also ``"call"``/``"put"``, ``"CE"``/``"PE"``) or +1/-1.
    S : float or array_like
        Spot price; positive.
    K : float or array_like
        Strike; positive.
    T : float or array_like
        Time to expiry in years; must be > 0.
    r : float or array_like
        Continuously compounded rate per year.
    q : float or array_like, default 0.0
        Continuous dividend (carry) yield per year.

    Returns
    -------
    float or numpy.ndarray
        Volatility per sqrt(year). 0.0 for a price exactly at the (discounted) intrinsic value.
        Array input: NaN where no volatility gives the price (outside the no-arbitrage bounds)
        or an input is invalid (T <= 0, non-positive price, ...).

    Raises
    ------
    ValueError
        Scalar input only: naming the argument for invalid input, and naming the bound when the
        price is below intrinsic value (lower bound) or above the discounted forward S*exp(-qT) (upper
        bound for calls) / discounted strike (puts).
    """
    if (_is_num(option_price) and _is_num(S) and _is_num(K) and _is_num(T) and _is_num(r)
            and _is_num(q)):
        return _scalar_iv(option_price, _scalar_flag(flag), S, K, T, r, q, False)
    return _batch(KIND_IV, False, flag, (option_price, S, K, T, r, q))


# ---- Black-76 on a forward -------------------------------------------------------------------
# Black-76 is BSM with the forward as spot and q = r; only rho differs (F is held fixed, so
# rho = -T * price), which the kernel's black76 switch handles.

def black76_price(flag, F, K, T, r, sigma):
    """Black-76 price of a European option on a forward (futures), discounted at r.

    Parameters
    ----------
    flag : str, int or array_like
        ``"c"``/``"p"`` (also ``"call"``/``"put"``, ``"CE"``/``"PE"``, any case) or +1/-1;
        or an array of those.
    F : float or array_like
        Forward (futures) price of the underlying; positive.
    K : float or array_like
        Strike, same currency units as F; positive.
    T : float or array_like
        Time to expiry in years (calendar time, e.g. minutes / 525600); >= 0.
    r : float or array_like
        Continuously compounded risk-free rate per year (0.07 is 7%).
    sigma : float or array_like
        Volatility per sqrt(year) (0.2 is 20%); >= 0.

    Returns
    -------
    float or numpy.ndarray
        A float when every input is a Python number, else a float64 array of the broadcast
        shape.

    Raises
    ------
    ValueError
        Scalar input: naming the argument, for F or K not positive and finite, T or sigma
        negative or NaN, r not finite, or an unknown flag. Array input: an unknown flag
        or shapes that do not broadcast; an invalid number in a row gives NaN in every output
        of that row instead (so one bad quote does not lose a whole option chain).

    Notes
    -----
    At sigma*sqrt(T) == 0 (expiry, or zero volatility) the price is the discounted intrinsic
    value of the forward, delta is 0 or +-exp(-qT) (half that exactly at the money), gamma and
    vega are 0, and theta and rho are the finite limits.
    """
    cdef double p, d, g, v, th, rh
    if _is_num(F) and _is_num(K) and _is_num(T) and _is_num(r) and _is_num(sigma):
        w = _scalar_flag(flag)
        _check_scalars(F, K, T, r, sigma, r, "F")
        _bsm(w, F, K, T, r, sigma, r, True, &p, &d, &g, &v, &th, &rh)
        return p
    return _batch(KIND_PRICE, True, flag, (F, K, T, r, sigma, r))


def black76_greeks(flag, F, K, T, r, sigma):
    """Black-76 price and the five Greeks, delta and gamma with respect to F.

    Parameters
    ----------
    flag : str, int or array_like
        ``"c"``/``"p"`` (also ``"call"``/``"put"``, ``"CE"``/``"PE"``, any case) or +1/-1;
        or an array of those.
    F : float or array_like
        Forward (futures) price of the underlying; positive.
    K : float or array_like
        Strike, same currency units as F; positive.
    T : float or array_like
        Time to expiry in years (calendar time, e.g. minutes / 525600); >= 0.
    r : float or array_like
        Continuously compounded risk-free rate per year (0.07 is 7%).
    sigma : float or array_like
        Volatility per sqrt(year) (0.2 is 20%); >= 0.

    Returns
    -------
    Greeks or GreeksArrays
        ``price, delta, gamma, vega, theta, rho``: floats (:class:`Greeks`) when every input is
        a Python number, else float64 arrays of the broadcast shape (:class:`GreeksArrays`).
        Units: delta per 1.0 of F; gamma per 1.0 of F, squared; vega per 1.0 of
        sigma (divide by 100 for "per vol point"); theta = -dV/dT per year (divide by 365 for
        per calendar day); rho per 1.0 of r.
        Rho holds F fixed, so it is -T * price; theta also holds F fixed.

    Raises
    ------
    ValueError
        Scalar input: naming the argument, for F or K not positive and finite, T or sigma
        negative or NaN, r not finite, or an unknown flag. Array input: an unknown flag
        or shapes that do not broadcast; an invalid number in a row gives NaN in every output
        of that row instead (so one bad quote does not lose a whole option chain).

    Notes
    -----
    At sigma*sqrt(T) == 0 (expiry, or zero volatility) the price is the discounted intrinsic
    value of the forward, delta is 0 or +-exp(-qT) (half that exactly at the money), gamma and
    vega are 0, and theta and rho are the finite limits.
    """
    cdef Greeks res
    if _is_num(F) and _is_num(K) and _is_num(T) and _is_num(r) and _is_num(sigma):
        w = _scalar_flag(flag)
        _check_scalars(F, K, T, r, sigma, r, "F")
        res = Greeks.__new__(Greeks)
        _bsm(w, F, K, T, r, sigma, r, True, &res.price, &res.delta, &res.gamma, &res.vega,
             &res.theta, &res.rho)
        return res
    return _batch(KIND_GREEKS, True, flag, (F, K, T, r, sigma, r))


def black76_implied_vol(option_price, flag, F, K, T, r):
    """Black-76 implied volatility of an option on a forward.

    Let's Be Rational (P. Jaeckel, 2015): a rational initial guess and Householder steps give
    the volatility to close to machine precision in two iterations, for any strike and expiry
    where the price carries information (deep wings included).

    Parameters
    ----------
    option_price : float or array_like
        Market price of the option (discounted, as quoted); positive.
    flag : str, int or array_like
        ``"c"``/``"p"`` (also ``"call"``/``"put"``, ``"CE"``/``"PE"``) or +1/-1.
    F : float or array_like
        Forward price; positive.
    K : float or array_like
        Strike; positive.
    T : float or array_like
        Time to expiry in years; must be > 0.
    r : float or array_like
        Continuously compounded rate per year.

    Returns
    -------
    float or numpy.ndarray
        Volatility per sqrt(year). 0.0 for a price exactly at the (discounted) intrinsic value.
        Array input: NaN where no volatility gives the price (outside the no-arbitrage bounds)
        or an input is invalid (T <= 0, non-positive price, ...).

    Raises
    ------
    ValueError
        Scalar input only: naming the argument for invalid input, and naming the bound when the
        price is below intrinsic value (lower bound) or above the discounted forward F*exp(-rT) (upper
        bound for calls) / discounted strike (puts).
    """
    if _is_num(option_price) and _is_num(F) and _is_num(K) and _is_num(T) and _is_num(r):
        return _scalar_iv(option_price, _scalar_flag(flag), F, K, T, r, r, True)
    return _batch(KIND_IV, True, flag, (option_price, F, K, T, r, r))


def _norm_cdf(double x):
    """The kernel's normal CDF (for tests against an arbitrary-precision oracle)."""
    return norm_cdf(x)


def _erfc(double x):
    """The kernel's erfc (for tests against an arbitrary-precision oracle)."""
    return erfc_cody(x)
