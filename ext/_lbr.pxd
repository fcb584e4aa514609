# cython: language_level=3
#
# _lbr.pxd -- "Let's Be Rational" implied Black volatility, as self-contained
#             Cython inline code (cdef inline ... noexcept nogil only).
#
# Usage (from another .pyx compiled with include_path=["ext"]):
#
#     from _lbr cimport lbr_implied_black_volatility, lbr_black, lbr_normalised_black_call
#
# Public entry points
# -------------------
#   double lbr_normalised_black_call(double x, double s)
#       b(x,s) = Phi(x/s+s/2)*exp(x/2) - Phi(x/s-s/2)*exp(-x/2),   x = ln(F/K), s = sigma*sqrt(T) >= 0
#   double lbr_black(double F, double K, double sigma, double T, double q)
#       UNDISCOUNTED Black price, q=+1 call, q=-1 put.
#   double lbr_implied_black_volatility(double price, double F, double K, double T, double q)
#       Implied Black volatility of the UNDISCOUNTED price (2 Householder(3) iterations, Jaeckel's default).
#       Returns
#         -DBL_MAX  if price <  intrinsic (max(q*(F-K),0)),
#          DBL_MAX  if price >= maximum   (F for a call, K for a put) -- also when the price is within an ulp
#                   or so of the maximum, such that the normalised price rounds to it,
#          0.0      if price == intrinsic (no time value).
#       PRECONDITIONS (NOT checked here -- the caller must validate):
#         F > 0, K > 0, T > 0, all finite; price finite (may be any sign); q = +1.0 or -1.0.
#       Accuracy: the result is the implied volatility of the given double inputs to within a few ulps
#       (measured <= 5 eps against mpmath).  Note that for deep in-the-money options the *price* itself carries
#       little information about sigma (time value << price), so sigma -> price -> sigma round trips lose
#       about log10(price/(vega*sigma)) digits; that is the conditioning of the input, not solver error.
#   Further helpers: lbr_implied_black_volatility_with_limited_iterations(price, F, K, T, q, N),
#   lbr_normalised_implied_volatility(beta, x, q), lbr_normalised_black(x, s, q), lbr_normalised_vega(x, s),
#   lbr_normalised_intrinsic(x, q), lbr_log_moneyness(F, K), lbr_norm_cdf, lbr_norm_pdf, lbr_inverse_norm_cdf,
#   lbr_erf_cody, lbr_erfc_cody, lbr_erfcx_cody.  Everything else is prefixed _lbr_ and is internal.
#
# Numerical notes for callers
# ---------------------------
#  * Requires IEEE-754 double semantics: inf/NaN propagation, gradual underflow and exact rounding of the
#    error-free transformations are relied upon.  Do NOT compile with -ffast-math / -Ofast /
#    -ffinite-math-only / -fassociative-math / -funsafe-math-optimizations / -freciprocal-math (and do not
#    link with crtfastmath / enable FTZ/DAZ).  -O2/-O3, -march=native (incl. FMA contraction,
#    -ffp-contract=fast), -fno-math-errno, -fno-trapping-math and -fopenmp are fine (all tested).
#  * Uses fma() from libm.  With -march=native / -mfma it is a single instruction; on a generic x86-64 build it
#    is a (correct, slower) libm call -- accuracy is identical either way.
#  * All functions are pure (no global/static state), reentrant and thread safe; safe inside prange/OpenMP.
#  * Every function carries @cython.cdivision(True) so that the IEEE division semantics (no ZeroDivisionError
#    checks, no GIL) do not depend on the directives of the cimporting module.
#  * C macros (override with -D...): LBR_EXTRA_PRECISION (default 1, see below);
#    LBR_IMPLIED_VOLATILITY_MAXIMUM_ITERATIONS (default 2).
#
# Credits / licence
# -----------------
# This is a port of Peter Jaeckel's "Let's Be Rational" (LetsBeRational.7z from www.jaeckel.org, 2013-2016)
# via the pure Python port py_lets_be_rational 1.1.2 (vollib, (c) 2017 Gammon Capital LLC, MIT licence),
# cross-checked against Jaeckel's C++ (lets_be_rational.cpp, normaldistribution.cpp, rationalcubic.cpp,
# erf_cody.cpp).  With -DLBR_EXTRA_PRECISION=0 -ffp-contract=off it reproduces py_lets_be_rational bit for bit
# (normalised_black_call, black).  Deviations from the Python port, all following the C++ or fixing flags:
#   (a) the upper-segment Householder loop of the Python port resets ds/direction_reversal_count on every
#       iteration (mis-indented block); the C++ logic is used;
#   (b) the Python port's "d2 > -SQRT_DBL_MAX < SQRT_DBL_MAX" (chained comparison) is the C++
#       "d2 > -SQRT_DBL_MAX && d2 < SQRT_DBL_MAX";
#   (c) the "above maximum" signal of the normalised solver (DBL_MAX) is propagated as DBL_MAX instead of being
#       divided by sqrt(T) (which gives +inf for T<1 and a meaningless finite number for T>1);
#   (d) with LBR_EXTRA_PRECISION=1 (default): compensated exponent in the normalised Black function and
#       x = log1p((F-K)/K) near the money -- accuracy refinements, same algorithm and branches.
#
# ======================================================================================
# Copyright (c) 2013-2016 Peter Jaeckel.
#
# Permission to use, copy, modify, and distribute this software is freely granted,
# provided that this notice is preserved.
#
# WARRANTY DISCLAIMER
# The Software is provided "as is" without warranty of any kind, either express or implied,
# including without limitation any implied warranties of condition, uninterrupted use,
# merchantability, fitness for a particular purpose, or non-infringement.
# ======================================================================================
#
# The Cody erf/erfc/erfcx code is W. J. Cody, "Rational Chebyshev approximations for the
# error function", Math. Comp., 1969, pp. 631-638 (netlib specfun/erf, via Jaeckel's f2c
# translation).  The inverse normal CDF is Wichura's ALGORITHM AS241, Appl. Statist. (1988)
# Vol. 37, No. 3.  The rational cubic interpolation follows R. Delbourgo, J.A. Gregory,
# "Shape preserving piecewise rational interpolation", SIAM J. Sci. Stat. Comput., 1985.

cimport cython
from libc.math cimport fabs, sqrt, exp, log, log1p, floor, pow, fma
from libc.float cimport DBL_MAX, DBL_EPSILON, DBL_MIN

cdef extern from *:
    """
    #ifndef ALGOENGINE_LBR_CONSTANTS_DEFINED
    #define ALGOENGINE_LBR_CONSTANTS_DEFINED
    #define LBR_ONE_OVER_SQRT_TWO              0.7071067811865475244008443621048490392848359376887
    #define LBR_ONE_OVER_SQRT_TWO_PI           0.3989422804014326779399460599343818684758586311649
    #define LBR_SQRT_TWO_PI                    2.506628274631000502415765284811045253006986740610
    #define LBR_TWO_PI                         6.283185307179586476925286766559005768394338798750
    #define LBR_SQRT_PI_OVER_TWO               1.253314137315500251207882642405522626503493370305
    #define LBR_SQRT_THREE                     1.732050807568877293527446341505872366942805253810
    #define LBR_SQRT_ONE_OVER_THREE            0.577350269189625764509148780501957455647601751270
    #define LBR_TWO_PI_OVER_SQRT_TWENTY_SEVEN  1.209199576156145233729385505094770488189377498728
    #define LBR_PI_OVER_SIX                    0.523598775598298873077107230546583814032861566563
    /* sqrt(DBL_EPSILON) and its iterated square roots, sqrt(DBL_MIN), sqrt(DBL_MAX), IEEE double */
    #define LBR_SQRT_DBL_EPSILON               1.4901161193847656e-08
    #define LBR_FOURTH_ROOT_DBL_EPSILON        0.0001220703125
    #define LBR_EIGHTH_ROOT_DBL_EPSILON        0.011048543456039806
    #define LBR_SIXTEENTH_ROOT_DBL_EPSILON     0.10511205190671433
    #define LBR_SQRT_DBL_MIN                   1.4916681462400413e-154
    #define LBR_SQRT_DBL_MAX                   1.3407807929942596e+154
    /* Set to 0 for positive results from (positive) denormalized inputs, else DBL_MIN (Jaeckel default: 0). */
    #define LBR_DENORMALIZATION_CUTOFF         0.0
    /* eta, tau in normalised_black_call */
    #define LBR_ASYMPTOTIC_EXPANSION_ACCURACY_THRESHOLD (-10.0)
    #define LBR_SMALL_T_EXPANSION_THRESHOLD    0.21022410381342865  /* 2*DBL_EPSILON^(1/16) */
    /* norm_cdf: -10 and -1/sqrt(DBL_EPSILON) */
    #define LBR_NORM_CDF_ASYMPTOTIC_FIRST_THRESHOLD  (-10.0)
    #define LBR_NORM_CDF_ASYMPTOTIC_SECOND_THRESHOLD (-67108864.0)
    /* rational cubic control parameter bounds: -(1-sqrt(DBL_EPSILON)), 2/DBL_EPSILON^2 */
    #define LBR_MINIMUM_RATIONAL_CUBIC_CONTROL_PARAMETER_VALUE (-0.9999999850988388)
    #define LBR_MAXIMUM_RATIONAL_CUBIC_CONTROL_PARAMETER_VALUE 4.056481920730334e+31
    #endif
    /* Jaeckel's default number of Householder(3) iterations (2 suffices for full double precision). */
    #ifndef LBR_IMPLIED_VOLATILITY_MAXIMUM_ITERATIONS
    #define LBR_IMPLIED_VOLATILITY_MAXIMUM_ITERATIONS 2
    #endif
    /* LBR_EXTRA_PRECISION = 1 (default) enables two accuracy refinements that do not change the algorithm:
         (i)  the common factor exp(-(h^2+t^2)/2), h=x/s, t=s/2, of the normalised Black function is evaluated with
              an error-free (fma-based) correction of its argument, removing the ~(h^2/2)*eps relative error of the
              plain formula (up to ~2e-13 for b ~ 1e-300);
         (ii) x = ln(F/K) is computed as log1p((F-K)/K) when K/2 <= F <= 2K (F-K is then exact), so that x has
              ~eps RELATIVE accuracy near the money (plain log(F/K) has ~eps ABSOLUTE accuracy, which costs up to
              ~1e-12 relative in implied vols of short-dated near-the-money options).
       Compile with -DLBR_EXTRA_PRECISION=0 (and -ffp-contract=off) for bit-for-bit parity with
       py_lets_be_rational 1.1.2 / Jaeckel's 2014 C++. */
    #ifndef LBR_EXTRA_PRECISION
    #define LBR_EXTRA_PRECISION 1
    #endif
    """
    const double LBR_ONE_OVER_SQRT_TWO
    const double LBR_ONE_OVER_SQRT_TWO_PI
    const double LBR_SQRT_TWO_PI
    const double LBR_TWO_PI
    const double LBR_SQRT_PI_OVER_TWO
    const double LBR_SQRT_THREE
    const double LBR_SQRT_ONE_OVER_THREE
    const double LBR_TWO_PI_OVER_SQRT_TWENTY_SEVEN
    const double LBR_PI_OVER_SIX
    const double LBR_SQRT_DBL_EPSILON
    const double LBR_FOURTH_ROOT_DBL_EPSILON
    const double LBR_EIGHTH_ROOT_DBL_EPSILON
    const double LBR_SIXTEENTH_ROOT_DBL_EPSILON
    const double LBR_SQRT_DBL_MIN
    const double LBR_SQRT_DBL_MAX
    const double LBR_DENORMALIZATION_CUTOFF
    const double LBR_ASYMPTOTIC_EXPANSION_ACCURACY_THRESHOLD
    const double LBR_SMALL_T_EXPANSION_THRESHOLD
    const double LBR_NORM_CDF_ASYMPTOTIC_FIRST_THRESHOLD
    const double LBR_NORM_CDF_ASYMPTOTIC_SECOND_THRESHOLD
    const double LBR_MINIMUM_RATIONAL_CUBIC_CONTROL_PARAMETER_VALUE
    const double LBR_MAXIMUM_RATIONAL_CUBIC_CONTROL_PARAMETER_VALUE
    const int LBR_IMPLIED_VOLATILITY_MAXIMUM_ITERATIONS
    const int LBR_EXTRA_PRECISION


# ------------------------------------------------------------------------------------------
# Small helpers
# ------------------------------------------------------------------------------------------

cdef inline double _lbr_max(double a, double b) noexcept nogil:
    # std::max semantics: returns a unless a < b (so max(NaN, y) = NaN, max(y, NaN) = y).
    return b if a < b else a

cdef inline double _lbr_square(double x) noexcept nogil:
    return x * x

cdef inline bint _lbr_is_below_horizon(double x) noexcept nogil:
    # This weeds out denormalized (a.k.a. 'subnormal') numbers when LBR_DENORMALIZATION_CUTOFF > 0.
    return fabs(x) < LBR_DENORMALIZATION_CUTOFF

cdef inline double _lbr_d_int(double x) noexcept nogil:
    return floor(x) if x > 0 else -floor(-x)


# ------------------------------------------------------------------------------------------
# W. J. Cody's erf / erfc / erfcx (CALERF), netlib specfun, IEEE double constants.
# ------------------------------------------------------------------------------------------

@cython.cdivision(True)
cdef inline double _lbr_calerf(double x, int jint) noexcept nogil:
    # jint = 0: erf(x);  1: erfc(x);  2: erfcx(x) = exp(x*x)*erfc(x)
    cdef double y, ysq, xnum, xden, result, d_del
    y = fabs(x)
    if y <= 0.46875:
        # erf for |x| <= 0.46875
        ysq = 0.0
        if y > 1.11e-16:                       # XSMALL
            ysq = y * y
        xnum = 0.185777706184603153 * ysq      # A(5)
        xden = ysq
        xnum = (xnum + 3.1611237438705656) * ysq
        xden = (xden + 23.6012909523441209) * ysq
        xnum = (xnum + 113.864154151050156) * ysq
        xden = (xden + 244.024637934444173) * ysq
        xnum = (xnum + 377.485237685302021) * ysq
        xden = (xden + 1282.61652607737228) * ysq
        result = x * (xnum + 3209.37758913846947) / (xden + 2844.23683343917062)
        if jint != 0:
            result = 1.0 - result
        if jint == 2:
            result = exp(ysq) * result
        return result
    elif y <= 4.0:
        # erfc for 0.46875 <= |x| <= 4
        xnum = 2.15311535474403846e-8 * y      # C(9)
        xden = y
        xnum = (xnum + 0.564188496988670089) * y
        xden = (xden + 15.7449261107098347) * y
        xnum = (xnum + 8.88314979438837594) * y
        xden = (xden + 117.693950891312499) * y
        xnum = (xnum + 66.1191906371416295) * y
        xden = (xden + 537.181101862009858) * y
        xnum = (xnum + 298.635138197400131) * y
        xden = (xden + 1621.38957456669019) * y
        xnum = (xnum + 881.95222124176909) * y
        xden = (xden + 3290.79923573345963) * y
        xnum = (xnum + 1712.04761263407058) * y
        xden = (xden + 4362.61909014324716) * y
        xnum = (xnum + 2051.07837782607147) * y
        xden = (xden + 3439.36767414372164) * y
        result = (xnum + 1230.33935479799725) / (xden + 1230.33935480374942)
        if jint != 2:
            ysq = _lbr_d_int(y * 16.0) / 16.0
            d_del = (y - ysq) * (y + ysq)
            result = exp(-ysq * ysq) * exp(-d_del) * result
    else:
        # erfc for |x| > 4
        result = 0.0
        if y >= 26.543:                        # XBIG
            if jint != 2 or y >= 2.53e307:     # XMAX
                return _lbr_calerf_fixup(x, jint, result)
            if y >= 6.71e7:                    # XHUGE
                result = 0.56418958354775628695 / y
                return _lbr_calerf_fixup(x, jint, result)
        ysq = 1.0 / (y * y)
        xnum = 0.0163153871373020978 * ysq     # P(6)
        xden = ysq
        xnum = (xnum + 0.305326634961232344) * ysq
        xden = (xden + 2.56852019228982242) * ysq
        xnum = (xnum + 0.360344899949804439) * ysq
        xden = (xden + 1.87295284992346047) * ysq
        xnum = (xnum + 0.125781726111229246) * ysq
        xden = (xden + 0.527905102951428412) * ysq
        xnum = (xnum + 0.0160837851487422766) * ysq
        xden = (xden + 0.0605183413124413191) * ysq
        result = ysq * (xnum + 6.58749161529837803e-4) / (xden + 0.00233520497626869185)
        result = (0.56418958354775628695 - result) / y     # SQRPI = 1/sqrt(pi)
        if jint != 2:
            ysq = _lbr_d_int(y * 16.0) / 16.0
            d_del = (y - ysq) * (y + ysq)
            result = exp(-ysq * ysq) * exp(-d_del) * result
    return _lbr_calerf_fixup(x, jint, result)

@cython.cdivision(True)
cdef inline double _lbr_calerf_fixup(double x, int jint, double result) noexcept nogil:
    # Fix up for negative argument, erf, etc.
    cdef double ysq, d_del, y
    if jint == 0:
        result = (0.5 - result) + 0.5
        if x < 0.0:
            result = -result
    elif jint == 1:
        if x < 0.0:
            result = 2.0 - result
    else:
        if x < 0.0:
            if x < -26.628:                    # XNEG
                result = 1.79e308              # XINF
            else:
                ysq = _lbr_d_int(x * 16.0) / 16.0
                d_del = (x - ysq) * (x + ysq)
                y = exp(ysq * ysq) * exp(d_del)
                result = y + y - result
    return result

cdef inline double lbr_erf_cody(double x) noexcept nogil:
    return _lbr_calerf(x, 0)

cdef inline double lbr_erfc_cody(double x) noexcept nogil:
    return _lbr_calerf(x, 1)

cdef inline double lbr_erfcx_cody(double x) noexcept nogil:
    return _lbr_calerf(x, 2)


# ------------------------------------------------------------------------------------------
# Normal distribution
# ------------------------------------------------------------------------------------------

cdef inline double lbr_norm_pdf(double x) noexcept nogil:
    return LBR_ONE_OVER_SQRT_TWO_PI * exp(-0.5 * x * x)

@cython.cdivision(True)
cdef inline double lbr_norm_cdf(double z) noexcept nogil:
    # The asymptotic expansion Phi(z) = phi(z)/|z|*[1-1/z^2+...], Abramowitz & Stegun (26.2.12), suffices for
    # Phi(z) to have relative accuracy of 1.64E-16 for z<=-10 with 17 terms inside the square brackets.
    cdef double sum_, zsqr, i, g, xx, yy, a, lasta
    if z <= LBR_NORM_CDF_ASYMPTOTIC_FIRST_THRESHOLD:
        sum_ = 1.0
        if z >= LBR_NORM_CDF_ASYMPTOTIC_SECOND_THRESHOLD:
            zsqr = z * z
            i = 1.0
            g = 1.0
            a = DBL_MAX
            while True:
                lasta = a
                xx = (4.0 * i - 3.0) / zsqr
                yy = xx * ((4.0 * i - 1.0) / zsqr)
                a = g * (xx - yy)
                sum_ -= a
                g *= yy
                i += 1.0
                a = fabs(a)
                if not (lasta > a and a >= fabs(sum_ * DBL_EPSILON)):
                    break
        return -lbr_norm_pdf(z) * sum_ / z
    return 0.5 * lbr_erfc_cody(-z * LBR_ONE_OVER_SQRT_TWO)

@cython.cdivision(True)
cdef inline double lbr_inverse_norm_cdf(double u) noexcept nogil:
    # ALGORITHM AS241  APPL. STATIST. (1988) VOL. 37, NO. 3
    # Produces the normal deviate Z corresponding to a given lower tail area of u;
    # Z is accurate to about 1 part in 10**16.  See http://lib.stat.cmu.edu/apstat/241
    cdef double q, r, ret
    if u <= 0:
        return log(u)
    if u >= 1:
        return log(1 - u)
    q = u - 0.5
    if fabs(q) <= 0.425:                       # split1
        r = 0.180625 - q * q                   # const1
        return q * (((((((2.5090809287301226727E+3 * r + 3.3430575583588128105E+4) * r
                         + 6.7265770927008700853E+4) * r + 4.5921953931549871457E+4) * r
                       + 1.3731693765509461125E+4) * r + 1.9715909503065514427E+3) * r
                     + 1.3314166789178437745E+2) * r + 3.3871328727963666080E0) / \
            (((((((5.2264952788528545610E+3 * r + 2.8729085735721942674E+4) * r
                  + 3.9307895800092710610E+4) * r + 2.1213794301586595867E+4) * r
                + 5.3941960214247511077E+3) * r + 6.8718700749205790830E+2) * r
              + 4.2313330701600911252E+1) * r + 1.0)
    r = u if q < 0.0 else 1.0 - u
    r = sqrt(-log(r))
    if r < 5.0:                                # split2
        r = r - 1.6                            # const2
        ret = (((((((7.74545014278341407640E-4 * r + 2.27238449892691845833E-2) * r
                    + 2.41780725177450611770E-1) * r + 1.27045825245236838258E0) * r
                  + 3.64784832476320460504E0) * r + 5.76949722146069140550E0) * r
                + 4.63033784615654529590E0) * r + 1.42343711074968357734E0) / \
            (((((((1.05075007164441684324E-9 * r + 5.47593808499534494600E-4) * r
                  + 1.51986665636164571966E-2) * r + 1.48103976427480074590E-1) * r
                + 6.89767334985100004550E-1) * r + 1.67638483018380384940E0) * r
              + 2.05319162663775882187E0) * r + 1.0)
    else:
        r = r - 5.0                            # split2
        ret = (((((((2.01033439929228813265E-7 * r + 2.71155556874348757815E-5) * r
                    + 1.24266094738807843860E-3) * r + 2.65321895265761230930E-2) * r
                  + 2.96560571828504891230E-1) * r + 1.78482653991729133580E0) * r
                + 5.46378491116411436990E0) * r + 6.65790464350110377720E0) / \
            (((((((2.04426310338993978564E-15 * r + 1.42151175831644588870E-7) * r
                  + 1.84631831751005468180E-5) * r + 7.86869131145613259100E-4) * r
                + 1.48753612908506148525E-2) * r + 1.36929880922735805310E-1) * r
              + 5.99832206555887937690E-1) * r + 1.0)
    return -ret if q < 0.0 else ret


# ------------------------------------------------------------------------------------------
# Rational cubic interpolation (Delbourgo & Gregory), as in Jaeckel's rationalcubic.cpp
# ------------------------------------------------------------------------------------------

cdef inline bint _lbr_is_zero(double x) noexcept nogil:
    return fabs(x) < DBL_MIN

@cython.cdivision(True)
cdef inline double _lbr_rational_cubic_interpolation(double x, double x_l, double x_r, double y_l, double y_r,
                                                     double d_l, double d_r, double r) noexcept nogil:
    cdef double h = x_r - x_l
    cdef double t, omt, t2, omt2
    if fabs(h) <= 0:
        return 0.5 * (y_l + y_r)
    # r should be greater than -1. We do not assert(r > -1) in order to let NaN propagate.
    t = (x - x_l) / h
    if not (r >= LBR_MAXIMUM_RATIONAL_CUBIC_CONTROL_PARAMETER_VALUE):
        omt = 1 - t
        t2 = t * t
        omt2 = omt * omt
        # Formula (2.4) divided by formula (2.5)
        return (y_r * t2 * t + (r * y_r - h * d_r) * t2 * omt + (r * y_l + h * d_l) * t * omt2
                + y_l * omt2 * omt) / (1 + (r - 3) * t * omt)
    # Linear interpolation without over-or underflow.
    return y_r * t + y_l * (1 - t)

@cython.cdivision(True)
cdef inline double _lbr_rational_cubic_control_parameter_to_fit_second_derivative_at_left_side(
        double x_l, double x_r, double y_l, double y_r, double d_l, double d_r,
        double second_derivative_l) noexcept nogil:
    cdef double h = x_r - x_l
    cdef double numerator = 0.5 * h * second_derivative_l + (d_r - d_l)
    cdef double denominator
    if _lbr_is_zero(numerator):
        return 0
    denominator = (y_r - y_l) / h - d_l
    if _lbr_is_zero(denominator):
        return (LBR_MAXIMUM_RATIONAL_CUBIC_CONTROL_PARAMETER_VALUE if numerator > 0
                else LBR_MINIMUM_RATIONAL_CUBIC_CONTROL_PARAMETER_VALUE)
    return numerator / denominator

@cython.cdivision(True)
cdef inline double _lbr_rational_cubic_control_parameter_to_fit_second_derivative_at_right_side(
        double x_l, double x_r, double y_l, double y_r, double d_l, double d_r,
        double second_derivative_r) noexcept nogil:
    cdef double h = x_r - x_l
    cdef double numerator = 0.5 * h * second_derivative_r + (d_r - d_l)
    cdef double denominator
    if _lbr_is_zero(numerator):
        return 0
    denominator = d_r - (y_r - y_l) / h
    if _lbr_is_zero(denominator):
        return (LBR_MAXIMUM_RATIONAL_CUBIC_CONTROL_PARAMETER_VALUE if numerator > 0
                else LBR_MINIMUM_RATIONAL_CUBIC_CONTROL_PARAMETER_VALUE)
    return numerator / denominator

@cython.cdivision(True)
cdef inline double _lbr_minimum_rational_cubic_control_parameter(double d_l, double d_r, double s,
                                                                 bint prefer_shape_preservation_over_smoothness) noexcept nogil:
    cdef bint monotonic = d_l * s >= 0 and d_r * s >= 0
    cdef bint convex = d_l <= s and s <= d_r
    cdef bint concave = d_l >= s and s >= d_r
    cdef double d_r_m_d_l, d_r_m_s, s_m_d_l, r1, r2
    if not monotonic and not convex and not concave:
        return LBR_MINIMUM_RATIONAL_CUBIC_CONTROL_PARAMETER_VALUE
    d_r_m_d_l = d_r - d_l
    d_r_m_s = d_r - s
    s_m_d_l = s - d_l
    r1 = -DBL_MAX
    r2 = r1
    # If monotonicity on this interval is possible, set r1 to satisfy the monotonicity condition (3.8).
    if monotonic:
        if not _lbr_is_zero(s):               # (3.8), avoiding division by zero.
            r1 = (d_r + d_l) / s              # (3.8)
        elif prefer_shape_preservation_over_smoothness:
            r1 = LBR_MAXIMUM_RATIONAL_CUBIC_CONTROL_PARAMETER_VALUE   # enforces linear interpolation
    if convex or concave:
        if not (_lbr_is_zero(s_m_d_l) or _lbr_is_zero(d_r_m_s)):    # (3.18), avoiding division by zero.
            r2 = _lbr_max(fabs(d_r_m_d_l / d_r_m_s), fabs(d_r_m_d_l / s_m_d_l))
        elif prefer_shape_preservation_over_smoothness:
            r2 = LBR_MAXIMUM_RATIONAL_CUBIC_CONTROL_PARAMETER_VALUE
    elif monotonic and prefer_shape_preservation_over_smoothness:
        r2 = LBR_MAXIMUM_RATIONAL_CUBIC_CONTROL_PARAMETER_VALUE
    return _lbr_max(LBR_MINIMUM_RATIONAL_CUBIC_CONTROL_PARAMETER_VALUE, _lbr_max(r1, r2))

@cython.cdivision(True)
cdef inline double _lbr_convex_rational_cubic_control_parameter_to_fit_second_derivative_at_left_side(
        double x_l, double x_r, double y_l, double y_r, double d_l, double d_r,
        double second_derivative_l, bint prefer_shape_preservation_over_smoothness) noexcept nogil:
    cdef double r = _lbr_rational_cubic_control_parameter_to_fit_second_derivative_at_left_side(
        x_l, x_r, y_l, y_r, d_l, d_r, second_derivative_l)
    cdef double r_min = _lbr_minimum_rational_cubic_control_parameter(
        d_l, d_r, (y_r - y_l) / (x_r - x_l), prefer_shape_preservation_over_smoothness)
    return _lbr_max(r, r_min)

@cython.cdivision(True)
cdef inline double _lbr_convex_rational_cubic_control_parameter_to_fit_second_derivative_at_right_side(
        double x_l, double x_r, double y_l, double y_r, double d_l, double d_r,
        double second_derivative_r, bint prefer_shape_preservation_over_smoothness) noexcept nogil:
    cdef double r = _lbr_rational_cubic_control_parameter_to_fit_second_derivative_at_right_side(
        x_l, x_r, y_l, y_r, d_l, d_r, second_derivative_r)
    cdef double r_min = _lbr_minimum_rational_cubic_control_parameter(
        d_l, d_r, (y_r - y_l) / (x_r - x_l), prefer_shape_preservation_over_smoothness)
    return _lbr_max(r, r_min)


# ------------------------------------------------------------------------------------------
# Normalised Black function
# ------------------------------------------------------------------------------------------

@cython.cdivision(True)
cdef inline double lbr_normalised_intrinsic(double x, double q) noexcept nogil:
    cdef double x2, b_max, one_over_b_max
    if q * x <= 0:
        return 0
    x2 = x * x
    if x2 < 98 * LBR_FOURTH_ROOT_DBL_EPSILON:   # The factor 98 is computed from last coefficient: sqrt(sqrt(92897280)) = 98.1749
        return fabs(_lbr_max((-1.0 if q < 0 else 1.0) * x * (1 + x2 * ((1.0 / 24.0) + x2 * ((1.0 / 1920.0) + x2 * (
            (1.0 / 322560.0) + (1.0 / 92897280.0) * x2)))), 0.0))
    b_max = exp(0.5 * x)
    one_over_b_max = 1 / b_max
    return fabs(_lbr_max((-1.0 if q < 0 else 1.0) * (b_max - one_over_b_max), 0.))

cdef inline double lbr_normalised_intrinsic_call(double x) noexcept nogil:
    return lbr_normalised_intrinsic(x, 1.0)

@cython.cdivision(True)
cdef inline double _lbr_exp_minus_half_h2_plus_t2(double x, double s, double h, double t) noexcept nogil:
    # exp(-(h^2+t^2)/2) for h := x/s (passed in as the rounded quotient fl(x/s)) and t := s/2.
    # Jaeckel's formula exp(-0.5*(h*h+t*t)) has a relative error of about (h^2+t^2)/2 * DBL_EPSILON (up to ~1e-13
    # for b ~ 1e-300) because of the roundings in the exponent's argument.  Here the argument is corrected to
    # first order with error-free transformations:  x/s = h + (x - h*s)/s  with  x - h*s = fma(-h,s,x)  exact,
    # h^2 = hh + fma(h,h,-hh), t^2 = tt + fma(t,t,-tt), and Knuth's TwoSum for hh+tt.  The correction is of order
    # DBL_EPSILON*(h^2+t^2) in the exponent, so even a sloppy evaluation (e.g. an unexpected contraction) could
    # not make the result materially worse than the plain formula.  LBR_EXTRA_PRECISION=0 selects the plain formula.
    cdef double hh, tt, ssum, bb, err, e
    if not LBR_EXTRA_PRECISION:
        return exp(-0.5 * (h * h + t * t))
    hh = h * h
    tt = t * t
    ssum = hh + tt
    e = exp(-0.5 * ssum)
    if not (e > 0.0):
        return e                           # underflow (also catches hh = inf): nothing to correct
    bb = ssum - hh
    err = (((hh - (ssum - bb)) + (tt - bb))           # TwoSum error of hh + tt
           + fma(h, h, -hh) + fma(t, t, -tt)          # rounding errors of h*h and t*t
           + 2.0 * h * (fma(-h, s, x) / s))           # rounding error of h = x/s
    return e - (0.5 * err) * e


@cython.cdivision(True)
cdef inline double _lbr_asymptotic_expansion_of_normalised_black_call(double x, double s) noexcept nogil:
    # Asymptotic expansion of
    #              b  =  Phi(h+t)*exp(x/2) - Phi(h-t)*exp(-x/2)  with  h = x/s  and  t = s/2
    #                 =  exp(-(h^2+t^2)/2)/sqrt(2pi) * [ Y(h+t) - Y(h-t) ],   Y(z) := Phi(z)/phi(z)
    # for large negative (t-|h|) by the aid of Abramowitz & Stegun (26.2.12).  We define
    #         A(h,t) :=  r/t * [ Y(h+t) - Y(h-t) ]
    # with r := (h+t)*(h-t) and give an expansion for A(h,t) in q:=(h/r)^2 expressed in terms of e:=(t/h)^2 .
    cdef double h = x / s
    cdef double t = 0.5 * s
    cdef double e = (t / h) * (t / h)
    cdef double r = (h + t) * (h - t)
    cdef double q = (h / r) * (h / r)
    cdef double asymptotic_expansion_sum, b
    # 17th order asymptotic expansion of A(h,t) in q, sufficient for Phi(h) [and thus y(h)] to have relative
    # accuracy of 1.64E-16 for h <= eta  with  eta:=-10.
    asymptotic_expansion_sum = (2.0+q*(-6.0E0-2.0*e+3.0*q*(1.0E1+e*(2.0E1+2.0*e)+5.0*q*(-1.4E1+e*(-7.0E1+e*(-4.2E1-2.0*e))+7.0*q*(1.8E1+e*(1.68E2+e*(2.52E2+e*(7.2E1+2.0*e)))+9.0*q*(-2.2E1+e*(-3.3E2+e*(-9.24E2+e*(-6.6E2+e*(-1.1E2-2.0*e))))+1.1E1*q*(2.6E1+e*(5.72E2+e*(2.574E3+e*(3.432E3+e*(1.43E3+e*(1.56E2+2.0*e)))))+1.3E1*q*(-3.0E1+e*(-9.1E2+e*(-6.006E3+e*(-1.287E4+e*(-1.001E4+e*(-2.73E3+e*(-2.1E2-2.0*e))))))+1.5E1*q*(3.4E1+e*(1.36E3+e*(1.2376E4+e*(3.8896E4+e*(4.862E4+e*(2.4752E4+e*(4.76E3+e*(2.72E2+2.0*e)))))))+1.7E1*q*(-3.8E1+e*(-1.938E3+e*(-2.3256E4+e*(-1.00776E5+e*(-1.84756E5+e*(-1.51164E5+e*(-5.4264E4+e*(-7.752E3+e*(-3.42E2-2.0*e))))))))+1.9E1*q*(4.2E1+e*(2.66E3+e*(4.0698E4+e*(2.3256E5+e*(5.8786E5+e*(7.05432E5+e*(4.0698E5+e*(1.08528E5+e*(1.197E4+e*(4.2E2+2.0*e)))))))))+2.1E1*q*(-4.6E1+e*(-3.542E3+e*(-6.7298E4+e*(-4.90314E5+e*(-1.63438E6+e*(-2.704156E6+e*(-2.288132E6+e*(-9.80628E5+e*(-2.01894E5+e*(-1.771E4+e*(-5.06E2-2.0*e))))))))))+2.3E1*q*(5.0E1+e*(4.6E3+e*(1.0626E5+e*(9.614E5+e*(4.08595E6+e*(8.9148E6+e*(1.04006E7+e*(6.53752E6+e*(2.16315E6+e*(3.542E5+e*(2.53E4+e*(6.0E2+2.0*e)))))))))))+2.5E1*q*(-5.4E1+e*(-5.85E3+e*(-1.6146E5+e*(-1.77606E6+e*(-9.37365E6+e*(-2.607579E7+e*(-4.01166E7+e*(-3.476772E7+e*(-1.687257E7+e*(-4.44015E6+e*(-5.9202E5+e*(-3.51E4+e*(-7.02E2-2.0*e))))))))))))+2.7E1*q*(5.8E1+e*(7.308E3+e*(2.3751E5+e*(3.12156E6+e*(2.003001E7+e*(6.919458E7+e*(1.3572783E8+e*(1.5511752E8+e*(1.0379187E8+e*(4.006002E7+e*(8.58429E6+e*(9.5004E5+e*(4.7502E4+e*(8.12E2+2.0*e)))))))))))))+2.9E1*q*(-6.2E1+e*(-8.99E3+e*(-3.39822E5+e*(-5.25915E6+e*(-4.032015E7+e*(-1.6934463E8+e*(-4.1250615E8+e*(-6.0108039E8+e*(-5.3036505E8+e*(-2.8224105E8+e*(-8.870433E7+e*(-1.577745E7+e*(-1.472562E6+e*(-6.293E4+e*(-9.3E2-2.0*e))))))))))))))+3.1E1*q*(6.6E1+e*(1.0912E4+e*(4.74672E5+e*(8.544096E6+e*(7.71342E7+e*(3.8707344E8+e*(1.14633288E9+e*(2.07431664E9+e*(2.33360622E9+e*(1.6376184E9+e*(7.0963464E8+e*(1.8512208E8+e*(2.7768312E7+e*(2.215136E6+e*(8.184E4+e*(1.056E3+2.0*e)))))))))))))))+3.3E1*(-7.0E1+e*(-1.309E4+e*(-6.49264E5+e*(-1.344904E7+e*(-1.4121492E8+e*(-8.344518E8+e*(-2.9526756E9+e*(-6.49588632E9+e*(-9.0751353E9+e*(-8.1198579E9+e*(-4.6399188E9+e*(-1.6689036E9+e*(-3.67158792E8+e*(-4.707164E7+e*(-3.24632E6+e*(-1.0472E5+e*(-1.19E3-2.0*e)))))))))))))))))*q)))))))))))))))))
    b = LBR_ONE_OVER_SQRT_TWO_PI * _lbr_exp_minus_half_h2_plus_t2(x, s, h, t) * (t / r) * asymptotic_expansion_sum
    return fabs(_lbr_max(b, 0.))

@cython.cdivision(True)
cdef inline double _lbr_small_t_expansion_of_normalised_black_call(double x, double s) noexcept nogil:
    # b = exp(-(h^2+t^2)/2)/sqrt(2pi) * [ Y(h+t) - Y(h-t) ] using an expansion of Y(h+t)-Y(h-t) for small t to
    # twelfth order in t.  Theoretically accurate to (better than) precision eps = 2.23E-16 when h<=0 and
    # t < tau with tau := 2*eps^(1/16) ~ 0.21.  The main bottleneck for precision is a:=1+h*Y(h) when |h|>1.
    # Y(h) := Phi(h)/phi(h) = sqrt(pi/2)*erfcx(-h/sqrt(2)); a := 1+h*Y(h) (a>0, a->0 as h->-inf); w := t^2, h2 := h^2
    cdef double h = x / s
    cdef double t = 0.5 * s
    cdef double a = 1 + h * (0.5 * LBR_SQRT_TWO_PI) * lbr_erfcx_cody(-LBR_ONE_OVER_SQRT_TWO * h)
    cdef double w = t * t
    cdef double h2 = h * h
    cdef double expansion, b
    expansion = 2*t*(a+w*((-1+3*a+a*h2)/6+w*((-7+15*a+h2*(-1+10*a+a*h2))/120+w*((-57+105*a+h2*(-18+105*a+h2*(-1+21*a+a*h2)))/5040+w*((-561+945*a+h2*(-285+1260*a+h2*(-33+378*a+h2*(-1+36*a+a*h2))))/362880+w*((-6555+10395*a+h2*(-4680+17325*a+h2*(-840+6930*a+h2*(-52+990*a+h2*(-1+55*a+a*h2)))))/39916800+((-89055+135135*a+h2*(-82845+270270*a+h2*(-20370+135135*a+h2*(-1926+25740*a+h2*(-75+2145*a+h2*(-1+78*a+a*h2))))))*w)/6227020800.0))))))
    b = LBR_ONE_OVER_SQRT_TWO_PI * _lbr_exp_minus_half_h2_plus_t2(x, s, h, t) * expansion
    return fabs(_lbr_max(b, 0.0))

@cython.cdivision(True)
cdef inline double _lbr_normalised_black_call_using_norm_cdf(double x, double s) noexcept nogil:
    #     b(x,s)  =  Phi(x/s+s/2)*exp(x/2)  -   Phi(x/s-s/2)*exp(-x/2),   h = x/s,  t = s/2
    cdef double h = x / s
    cdef double t = 0.5 * s
    cdef double b_max = exp(0.5 * x)
    cdef double b = lbr_norm_cdf(h + t) * b_max - lbr_norm_cdf(h - t) / b_max
    return fabs(_lbr_max(b, 0.0))

@cython.cdivision(True)
cdef inline double _lbr_normalised_black_call_using_erfcx(double x, double s) noexcept nogil:
    #   b   =  1/2 * exp(-(h^2+t^2)/2) * [ erfcx(-(h+t)/sqrt(2)) -  erfcx(-(h-t)/sqrt(2)) ]
    # i.e. only one exponential, and the difference of two rational functions (see Jaeckel's comments).
    cdef double h = x / s
    cdef double t = 0.5 * s
    cdef double b = 0.5 * _lbr_exp_minus_half_h2_plus_t2(x, s, h, t) * (lbr_erfcx_cody(-LBR_ONE_OVER_SQRT_TWO * (h + t))
                                                                       - lbr_erfcx_cody(-LBR_ONE_OVER_SQRT_TWO * (h - t)))
    return fabs(_lbr_max(b, 0.0))

@cython.cdivision(True)
cdef inline double _lbr_normalised_black_call_otm(double x, double s) noexcept nogil:
    # normalised_black_call for x <= 0 (out-of-the-money call).
    if s <= fabs(x) * LBR_DENORMALIZATION_CUTOFF:
        return lbr_normalised_intrinsic_call(x)
    # Denote h := x/s and t := s/2.  We evaluate the condition |h|>|eta|, i.e., h<eta && t < tau+|h|-|eta|
    # avoiding any divisions by s, where eta = -10 and tau = 2*DBL_EPSILON^(1/16).
    if (x < s * LBR_ASYMPTOTIC_EXPANSION_ACCURACY_THRESHOLD
            and 0.5 * s * s + x < s * (LBR_SMALL_T_EXPANSION_THRESHOLD + LBR_ASYMPTOTIC_EXPANSION_ACCURACY_THRESHOLD)):
        # Region 1.
        return _lbr_asymptotic_expansion_of_normalised_black_call(x, s)
    if 0.5 * s < LBR_SMALL_T_EXPANSION_THRESHOLD:
        # Region 2.
        return _lbr_small_t_expansion_of_normalised_black_call(x, s)
    # When b is more than, say, about 85% of b_max=exp(x/2), then b is dominated by the first of the two terms in
    # the Black formula, and we retain more accuracy by not attempting to combine the two terms in any way.
    # We evaluate the condition h+t>0.85 avoiding any divisions by s.
    if x + 0.5 * s * s > s * 0.85:
        # Region 3.
        return _lbr_normalised_black_call_using_norm_cdf(x, s)
    # Region 4.
    return _lbr_normalised_black_call_using_erfcx(x, s)

cdef inline double lbr_normalised_black_call(double x, double s) noexcept nogil:
    # b(x,s) = Phi(x/s+s/2)*exp(x/2) - Phi(x/s-s/2)*exp(-x/2),  x = ln(F/K),  s = sigma*sqrt(T) >= 0.
    if x > 0:
        # In-the-money: intrinsic + out-of-the-money value (put-call parity in normalised form).
        return lbr_normalised_intrinsic_call(x) + _lbr_normalised_black_call_otm(-x, s)
    return _lbr_normalised_black_call_otm(x, s)

@cython.cdivision(True)
cdef inline double lbr_normalised_vega(double x, double s) noexcept nogil:
    cdef double ax = fabs(x)
    if ax <= 0:
        return LBR_ONE_OVER_SQRT_TWO_PI * exp(-0.125 * s * s)
    if s <= 0 or s <= ax * LBR_SQRT_DBL_MIN:
        return 0
    return LBR_ONE_OVER_SQRT_TWO_PI * exp(-0.5 * (_lbr_square(x / s) + _lbr_square(0.5 * s)))

cdef inline double lbr_normalised_black(double x, double s, double q) noexcept nogil:
    # Reciprocal-strike call-put equivalence.
    return lbr_normalised_black_call(-x if q < 0 else x, s)

@cython.cdivision(True)
cdef inline double lbr_log_moneyness(double F, double K) noexcept nogil:
    # x = ln(F/K).  With LBR_EXTRA_PRECISION, for K/2 <= F <= 2K the difference F-K is exact (Sterbenz) and
    # log1p((F-K)/K) has a relative error of about 1.5 eps, whereas log(F/K) has an absolute error of about eps/2
    # (i.e. a relative error of eps/(2|x|), large near the money).
    if LBR_EXTRA_PRECISION and F <= 2 * K and K <= 2 * F:
        return log1p((F - K) / K)
    return log(F / K)

cdef inline double lbr_black(double F, double K, double sigma, double T, double q) noexcept nogil:
    # Undiscounted Black price; q=+1 call, q=-1 put.  Caller guarantees F>0, K>0, T>=0, sigma>=0.
    cdef double intrinsic = fabs(_lbr_max((K - F if q < 0 else F - K), 0.0))
    # Map in-the-money to out-of-the-money
    if q * (F - K) > 0:
        q = -q
    return intrinsic + _lbr_max(0.0, (sqrt(F) * sqrt(K)) * lbr_normalised_black(lbr_log_moneyness(F, K), sigma * sqrt(T), q))


# ------------------------------------------------------------------------------------------
# Initial-guess transformation maps
# ------------------------------------------------------------------------------------------

@cython.cdivision(True)
cdef inline void _lbr_compute_f_lower_map_and_first_two_derivatives(double x, double s, double* f, double* fp,
                                                                    double* fpp) noexcept nogil:
    cdef double ax = fabs(x)
    cdef double z = LBR_SQRT_ONE_OVER_THREE * ax / s
    cdef double y = z * z
    cdef double s2 = s * s
    cdef double Phi = lbr_norm_cdf(-z)
    cdef double phi = lbr_norm_pdf(z)
    cdef double Phi2
    fpp[0] = (LBR_PI_OVER_SIX * y / (s2 * s) * Phi * (8 * LBR_SQRT_THREE * s * ax + (3 * s2 * (s2 - 8) - 8 * x * x) * Phi / phi)
              * exp(2 * y + 0.25 * s2))
    if _lbr_is_below_horizon(s):
        fp[0] = 1
        f[0] = 0
    else:
        Phi2 = Phi * Phi
        fp[0] = LBR_TWO_PI * y * Phi2 * exp(y + 0.125 * s * s)
        if _lbr_is_below_horizon(x):
            f[0] = 0
        else:
            f[0] = LBR_TWO_PI_OVER_SQRT_TWENTY_SEVEN * ax * (Phi2 * Phi)

@cython.cdivision(True)
cdef inline double _lbr_inverse_f_lower_map(double x, double f) noexcept nogil:
    if _lbr_is_below_horizon(f):
        return 0
    return fabs(x / (LBR_SQRT_THREE * lbr_inverse_norm_cdf(pow(f / (LBR_TWO_PI_OVER_SQRT_TWENTY_SEVEN * fabs(x)), 1. / 3.))))

@cython.cdivision(True)
cdef inline void _lbr_compute_f_upper_map_and_first_two_derivatives(double x, double s, double* f, double* fp,
                                                                    double* fpp) noexcept nogil:
    cdef double w
    f[0] = lbr_norm_cdf(-0.5 * s)
    if _lbr_is_below_horizon(x):
        fp[0] = -0.5
        fpp[0] = 0
    else:
        w = _lbr_square(x / s)
        fp[0] = -0.5 * exp(0.5 * w)
        fpp[0] = LBR_SQRT_PI_OVER_TWO * exp(w + 0.125 * s * s) * w / s

cdef inline double _lbr_inverse_f_upper_map(double f) noexcept nogil:
    return -2. * lbr_inverse_norm_cdf(f)

@cython.cdivision(True)
cdef inline double _lbr_householder_factor(double newton, double halley, double hh3) noexcept nogil:
    return (1 + 0.5 * halley * newton) / (1 + newton * (halley + hh3 * newton / 6))


# ------------------------------------------------------------------------------------------
# Implied volatility
# ------------------------------------------------------------------------------------------

@cython.cdivision(True)
cdef inline double _lbr_unchecked_normalised_implied_volatility(double beta, double x, double q, int N) noexcept nogil:
    # Householder(3) iteration (see http://en.wikipedia.org/wiki/Householder%27s_method):
    #     s_n+1  =  s_n  +  newton * [ 1 + halley*newton/2 ] / [ 1 + newton*( halley + hh3*newton/6 ) ]
    # with newton:=-(g/g'), halley:=(g''/g'), hh3:=(g'''/g') for the segment-specific objective g(s).
    # NOTE that this function returns 0 when beta<intrinsic without any safety checks.
    cdef int iterations = 0, direction_reversal_count = 0
    cdef double f = -DBL_MAX, s = -DBL_MAX, ds, ds_previous = 0.0, s_left = DBL_MIN, s_right = DBL_MAX
    cdef double b_max, s_c, b_c, v_c, s_l, b_l, v_l, s_h, b_h, v_h, r
    cdef double f_lower_map_l, d_f_lower_map_l_d_beta, d2_f_lower_map_l_d_beta2
    cdef double f_upper_map_h, d_f_upper_map_h_d_beta, d2_f_upper_map_h_d_beta2
    cdef double t, hh, b, bp, ln_b, ln_beta, bpob, h, b_halley, newton, halley, b_hh3, hh3
    cdef double b_max_minus_b, g, gp
    ds = s
    # Subtract intrinsic.
    if q * x > 0:
        beta = fabs(_lbr_max(beta - lbr_normalised_intrinsic(x, q), 0.))
        q = -q
    # Map puts to calls
    if q < 0:
        x = -x
        q = -q
    if beta <= 0:                          # For negative or zero prices we return 0.
        return 0
    if beta < LBR_DENORMALIZATION_CUTOFF:  # For positive but denormalized prices (only if cutoff > 0).
        return 0
    b_max = exp(0.5 * x)
    if beta >= b_max:
        return DBL_MAX
    # The temptation is great to use the optimised form b_c = exp(x/2)/2-exp(-x/2)*Phi(sqrt(-2*x)) but that
    # would require implementing all of the round-off and over/underflow handling for this expression, too.
    s_c = sqrt(fabs(2 * x))
    b_c = lbr_normalised_black_call(x, s_c)
    v_c = lbr_normalised_vega(x, s_c)
    # Four branches.
    if beta < b_c:
        s_l = s_c - b_c / v_c
        b_l = lbr_normalised_black_call(x, s_l)
        if beta < b_l:
            _lbr_compute_f_lower_map_and_first_two_derivatives(x, s_l, &f_lower_map_l, &d_f_lower_map_l_d_beta,
                                                               &d2_f_lower_map_l_d_beta2)
            r = _lbr_convex_rational_cubic_control_parameter_to_fit_second_derivative_at_right_side(
                0., b_l, 0., f_lower_map_l, 1., d_f_lower_map_l_d_beta, d2_f_lower_map_l_d_beta2, True)
            f = _lbr_rational_cubic_interpolation(beta, 0., b_l, 0., f_lower_map_l, 1., d_f_lower_map_l_d_beta, r)
            if not (f > 0):
                # This can happen due to roundoff truncation for extreme values such as |x|>500.
                # We switch to quadratic interpolation using f(0)=0, f(b_l), and f'(0)=1 to specify the quadratic.
                t = beta / b_l
                f = (f_lower_map_l * t + b_l * (1 - t)) * t
            s = _lbr_inverse_f_lower_map(x, f)
            s_right = s_l
            #
            # In this branch, which comprises the lowest segment, the objective function is
            #     g(s) = 1/ln(b(x,s)) - 1/ln(beta)
            # This makes
            #              g'               =   -b'/(b*ln(b)^2)
            #              newton = -g/g'   =   (ln(beta)-ln(b))*ln(b)/ln(beta)*b/b'
            #              halley = g''/g'  =   b''/b'  -  b'/b*(1+2/ln(b))
            #              hh3    = g'''/g' =   b'''/b' +  2(b'/b)^2*(1+3/ln(b)*(1+1/ln(b)))  -  3(b''/b)*(1+2/ln(b))
            #
            while iterations < N and fabs(ds) > DBL_EPSILON * s:
                if ds * ds_previous < 0:
                    direction_reversal_count += 1
                if iterations > 0 and (3 == direction_reversal_count or not (s > s_left and s < s_right)):
                    # If looping inefficiently, or the forecast step takes us outside the bracket, or onto its
                    # edges, switch to binary nesting.  This can only really happen for very extreme |x|.
                    s = 0.5 * (s_left + s_right)
                    if s_right - s_left <= DBL_EPSILON * s:
                        break
                    direction_reversal_count = 0
                    ds = 0
                ds_previous = ds
                b = lbr_normalised_black_call(x, s)
                bp = lbr_normalised_vega(x, s)
                if b > beta and s < s_right:
                    s_right = s
                elif b < beta and s > s_left:
                    s_left = s                 # Tighten the bracket if applicable.
                if b <= 0 or bp <= 0:          # Numerical underflow. Switch to binary nesting for this iteration.
                    ds = 0.5 * (s_left + s_right) - s
                else:
                    ln_b = log(b)
                    ln_beta = log(beta)
                    bpob = bp / b
                    h = x / s
                    b_halley = h * h / s - s / 4
                    newton = (ln_beta - ln_b) * ln_b / ln_beta / bpob
                    halley = b_halley - bpob * (1 + 2 / ln_b)
                    b_hh3 = b_halley * b_halley - 3 * _lbr_square(h / s) - 0.25
                    hh3 = (b_hh3 + 2 * _lbr_square(bpob) * (1 + 3 / ln_b * (1 + 1 / ln_b))
                           - 3 * b_halley * bpob * (1 + 2 / ln_b))
                    ds = newton * _lbr_householder_factor(newton, halley, hh3)
                ds = _lbr_max(-0.5 * s, ds)
                s += ds
                iterations += 1
            return s
        else:
            v_l = lbr_normalised_vega(x, s_l)
            r = _lbr_convex_rational_cubic_control_parameter_to_fit_second_derivative_at_right_side(
                b_l, b_c, s_l, s_c, 1 / v_l, 1 / v_c, 0.0, False)
            s = _lbr_rational_cubic_interpolation(beta, b_l, b_c, s_l, s_c, 1 / v_l, 1 / v_c, r)
            s_left = s_l
            s_right = s_c
    else:
        s_h = s_c + (b_max - b_c) / v_c if v_c > DBL_MIN else s_c
        b_h = lbr_normalised_black_call(x, s_h)
        if beta <= b_h:
            v_h = lbr_normalised_vega(x, s_h)
            r = _lbr_convex_rational_cubic_control_parameter_to_fit_second_derivative_at_left_side(
                b_c, b_h, s_c, s_h, 1 / v_c, 1 / v_h, 0.0, False)
            s = _lbr_rational_cubic_interpolation(beta, b_c, b_h, s_c, s_h, 1 / v_c, 1 / v_h, r)
            s_left = s_c
            s_right = s_h
        else:
            _lbr_compute_f_upper_map_and_first_two_derivatives(x, s_h, &f_upper_map_h, &d_f_upper_map_h_d_beta,
                                                               &d2_f_upper_map_h_d_beta2)
            if d2_f_upper_map_h_d_beta2 > -LBR_SQRT_DBL_MAX and d2_f_upper_map_h_d_beta2 < LBR_SQRT_DBL_MAX:
                r = _lbr_convex_rational_cubic_control_parameter_to_fit_second_derivative_at_left_side(
                    b_h, b_max, f_upper_map_h, 0., d_f_upper_map_h_d_beta, -0.5, d2_f_upper_map_h_d_beta2, True)
                f = _lbr_rational_cubic_interpolation(beta, b_h, b_max, f_upper_map_h, 0., d_f_upper_map_h_d_beta,
                                                      -0.5, r)
            if f <= 0:
                # Quadratic interpolation using f(b_h), f(b_max)=0, and f'(b_max)=-1/2 to specify the quadratic.
                hh = b_max - b_h
                t = (beta - b_h) / hh
                f = (f_upper_map_h * (1 - t) + 0.5 * hh * t) * (1 - t)
            s = _lbr_inverse_f_upper_map(f)
            s_left = s_h
            if beta > 0.5 * b_max:  # Else we better drop through and let the objective function be g(s) = b(x,s)-beta.
                #
                # In this branch, which comprises the upper segment, the objective function is
                #     g(s) = ln(b_max-beta)-ln(b_max-b(x,s))
                # This makes
                #              g'               =   b'/(b_max-b)
                #              newton = -g/g'   =   ln((b_max-b)/(b_max-beta))*(b_max-b)/b'
                #              halley = g''/g'  =   b''/b'  +  b'/(b_max-b)
                #              hh3    = g'''/g' =   b'''/b' +  g'*(2g'+3b''/b')
                #
                while iterations < N and fabs(ds) > DBL_EPSILON * s:
                    if ds * ds_previous < 0:
                        direction_reversal_count += 1
                    if iterations > 0 and (3 == direction_reversal_count or not (s > s_left and s < s_right)):
                        s = 0.5 * (s_left + s_right)
                        if s_right - s_left <= DBL_EPSILON * s:
                            break
                        direction_reversal_count = 0
                        ds = 0
                    ds_previous = ds
                    b = lbr_normalised_black_call(x, s)
                    bp = lbr_normalised_vega(x, s)
                    if b > beta and s < s_right:
                        s_right = s
                    elif b < beta and s > s_left:
                        s_left = s
                    if b >= b_max or bp <= DBL_MIN:   # Numerical underflow. Switch to binary nesting for this iteration.
                        ds = 0.5 * (s_left + s_right) - s
                    else:
                        b_max_minus_b = b_max - b
                        g = log((b_max - beta) / b_max_minus_b)
                        gp = bp / b_max_minus_b
                        b_halley = _lbr_square(x / s) / s - s / 4
                        b_hh3 = b_halley * b_halley - 3 * _lbr_square(x / (s * s)) - 0.25
                        newton = -g / gp
                        halley = b_halley + gp
                        hh3 = b_hh3 + gp * (2 * gp + 3 * b_halley)
                        ds = newton * _lbr_householder_factor(newton, halley, hh3)
                    ds = _lbr_max(-0.5 * s, ds)
                    s += ds
                    iterations += 1
                return s
    # In this branch, which comprises the two middle segments, the objective function is g(s) = b(x,s)-beta.
    # This makes
    #              newton = -g/g'   =  -(b-beta)/b'
    #              halley = g''/g'  =    b''/b'    =  x^2/s^3-s/4
    #              hh3    = g'''/g' =    b'''/b'   =  halley^2 - 3*(x/s^2)^2 - 1/4
    while iterations < N and fabs(ds) > DBL_EPSILON * s:
        if ds * ds_previous < 0:
            direction_reversal_count += 1
        if iterations > 0 and (3 == direction_reversal_count or not (s > s_left and s < s_right)):
            s = 0.5 * (s_left + s_right)
            if s_right - s_left <= DBL_EPSILON * s:
                break
            direction_reversal_count = 0
            ds = 0
        ds_previous = ds
        b = lbr_normalised_black_call(x, s)
        bp = lbr_normalised_vega(x, s)
        if b > beta and s < s_right:
            s_right = s
        elif b < beta and s > s_left:
            s_left = s
        newton = (beta - b) / bp
        halley = _lbr_square(x / s) / s - s / 4
        hh3 = halley * halley - 3 * _lbr_square(x / (s * s)) - 0.25
        ds = _lbr_max(-0.5 * s, newton * _lbr_householder_factor(newton, halley, hh3))
        s += ds
        iterations += 1
    return s

@cython.cdivision(True)
cdef inline double lbr_normalised_implied_volatility(double beta, double x, double q) noexcept nogil:
    # Normalised interface: beta = price/sqrt(F*K), x = ln(F/K); returns s = sigma*sqrt(T).
    # Returns -DBL_MAX if beta < normalised intrinsic, DBL_MAX if the out-of-the-money part of beta is >= its
    # maximum exp(-|x|/2) (as in Jaeckel), 0 if beta equals the normalised intrinsic value.
    if q * x > 0:
        beta -= lbr_normalised_intrinsic(x, q)
        q = -q
    if beta < 0:
        return -DBL_MAX
    return _lbr_unchecked_normalised_implied_volatility(beta, x, q, LBR_IMPLIED_VOLATILITY_MAXIMUM_ITERATIONS)

@cython.cdivision(True)
cdef inline double lbr_implied_black_volatility_with_limited_iterations(double price, double F, double K, double T,
                                                                       double q, int N) noexcept nogil:
    # See lbr_implied_black_volatility; N = maximum number of Householder(3) iterations.
    cdef double intrinsic = fabs(_lbr_max((K - F if q < 0 else F - K), 0.0))
    cdef double max_price, x, s
    if price < intrinsic:
        return -DBL_MAX                       # VOLATILITY_VALUE_TO_SIGNAL_PRICE_IS_BELOW_INTRINSIC
    max_price = K if q < 0 else F
    if price >= max_price:
        return DBL_MAX                        # VOLATILITY_VALUE_TO_SIGNAL_PRICE_IS_ABOVE_MAXIMUM
    x = lbr_log_moneyness(F, K)
    # Map in-the-money to out-of-the-money
    if q * x > 0:
        price = fabs(_lbr_max(price - intrinsic, 0.0))
        q = -q
    s = _lbr_unchecked_normalised_implied_volatility(price / (sqrt(F) * sqrt(K)), x, q, N)
    # The normalised solver signals "above maximum" with DBL_MAX when, after normalisation, beta >= b_max by
    # round-off (price within an ulp or so of its maximum).  Jaeckel's C++ divides that by sqrt(T), which gives
    # +inf for T<1 and a finite (wrong) number for T>1; we propagate the flag instead.
    if s >= DBL_MAX:
        return DBL_MAX
    s = s / sqrt(T)
    return DBL_MAX if s > DBL_MAX else s

cdef inline double lbr_implied_black_volatility(double price, double F, double K, double T, double q) noexcept nogil:
    # Implied Black volatility from an UNDISCOUNTED option price (q=+1 call, q=-1 put).
    # PRECONDITIONS (caller-validated): F>0, K>0, T>0 finite; price finite.
    # Returns -DBL_MAX below intrinsic, DBL_MAX at/above the maximum (F call, K put), 0.0 at exactly intrinsic.
    return lbr_implied_black_volatility_with_limited_iterations(price, F, K, T, q,
                                                                LBR_IMPLIED_VOLATILITY_MAXIMUM_ITERATIONS)
