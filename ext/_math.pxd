# Inline math shared by the kernels: compiled into each module that cimports it (STYLE.md).
#
# The normal CDF is W. J. Cody's rational Chebyshev approximation of erfc ("Rational Chebyshev
# approximation for the error function", Math. Comp. 1969; CALERF in SPECFUN, 1990), accurate to
# double precision. glibc's libmvec has SIMD exp and log but no erfc, so this version is written
# branch-free: every region is evaluated and the result selected, so that GCC can vectorize a
# loop that calls it (the selects become blend instructions). The scalar path uses the same
# function, so scalar and array results differ only by libmvec's exp (a few ulp).

from libc.math cimport exp, fabs, fma

cdef extern from "_simd_math.h":
    double clamp_nonneg "algoengine_clamp_nonneg"(double y, double c) noexcept nogil

cdef extern from *:
    """
    #define ALGOENGINE_SQRT1_2 0.70710678118654752440084436210485
    #define ALGOENGINE_1_SQRTPI 0.56418958354775628694807945156077
    #define ALGOENGINE_1_SQRT2PI 0.39894228040143267793994605993438
    #define ALGOENGINE_ERFC_ZERO_Y 26.0
    #define ALGOENGINE_PDF_ZERO_H 676.0
    """
    const double M_SQRT1_2_ "ALGOENGINE_SQRT1_2"     # 1/sqrt(2)
    const double M_1_SQRTPI_ "ALGOENGINE_1_SQRTPI"   # 1/sqrt(pi)
    const double M_1_SQRT2PI_ "ALGOENGINE_1_SQRT2PI" # 1/sqrt(2 pi)
    # cut-offs beyond which the tails are returned as exact zeros (see erfc_cody)
    const double ERFC_ZERO_Y "ALGOENGINE_ERFC_ZERO_Y"  # erfc(26) = 1.3e-295
    const double PDF_ZERO_H "ALGOENGINE_PDF_ZERO_H"    # exp(-676) = 5.6e-294


cdef inline double erfc_cody(double x) noexcept nogil:
    """Complementary error function, branch-free form of Cody's CALERF (relative error ~1e-16).

    Each region's rational function is kept as numerator/denominator and the pair is selected
    before the one division (divisions dominate a vectorized loop's cost). For y > 4 Cody's
    P(1/y^2)/Q(1/y^2) is rewritten as polynomials in y^2 (numerator and denominator scaled by
    y^12): positive coefficients, Horner, no cancellation, no extra division.
    """
    cdef double y = fabs(x)
    cdef double yc, ysq, xnum, xden, n1, d1, n2, d2, n3, d3, hi, lo, e, num, den
    # Beyond y = 26, erfc(y) < 1.3e-295 is returned as 0: clamping keeps every exp argument
    # inside libmvec's fast range (its vector exp falls back to scalar code for a whole vector
    # when one lane underflows) and keeps subnormals, which cost microcode assists, out of the
    # products the callers form. NaN stays NaN.
    # (not a conditional: see clamp_nonneg in _simd_math.h; NaN and inf also map to 26.)
    yc = clamp_nonneg(y, ERFC_ZERO_Y)
    ysq = yc * yc
    # y <= 0.46875: erfc(y) = 1 - y * P(y^2) / Q(y^2)
    xnum = 1.85777706184603153e-1 * ysq
    xden = ysq
    xnum = (xnum + 3.16112374387056560e00) * ysq
    xden = (xden + 2.36012909523441209e01) * ysq
    xnum = (xnum + 1.13864154151050156e02) * ysq
    xden = (xden + 2.44024637934444173e02) * ysq
    xnum = (xnum + 3.77485237685302021e02) * ysq
    xden = (xden + 1.28261652607737228e03) * ysq
    d1 = xden + 2.84423683343917062e03
    n1 = d1 - yc * (xnum + 3.20937758913846947e03)
    # 0.46875 < y <= 4: erfc(y) = exp(-y^2) * P(y) / Q(y)
    xnum = 2.15311535474403846e-8 * yc
    xden = yc
    xnum = (xnum + 5.64188496988670089e-1) * yc
    xden = (xden + 1.57449261107098347e01) * yc
    xnum = (xnum + 8.88314979438837594e00) * yc
    xden = (xden + 1.17693950891312499e02) * yc
    xnum = (xnum + 6.61191906371416295e01) * yc
    xden = (xden + 5.37181101862009858e02) * yc
    xnum = (xnum + 2.98635138197400131e02) * yc
    xden = (xden + 1.62138957456669019e03) * yc
    xnum = (xnum + 8.81952221241769090e02) * yc
    xden = (xden + 3.29079923573345963e03) * yc
    xnum = (xnum + 1.71204761263407058e03) * yc
    xden = (xden + 4.36261909014324716e03) * yc
    xnum = (xnum + 2.05107837782607147e03) * yc
    xden = (xden + 3.43936767414372164e03) * yc
    n2 = xnum + 1.23033935479799725e03
    d2 = xden + 1.23033935480374942e03
    # y > 4: erfc(y) = exp(-y^2) / y * (1/sqrt(pi) - z P(z) / Q(z)), z = 1/y^2. With N and M
    # the polynomials P and Q with their coefficients reversed, z P(z) / Q(z) equals
    # N(y^2) / (y^2 M(y^2)).
    xnum = 6.58749161529837803e-4 * ysq     # N(y^2) by Horner
    xnum = (xnum + 1.60837851487422766e-2) * ysq
    xnum = (xnum + 1.25781726111229246e-1) * ysq
    xnum = (xnum + 3.60344899949804439e-1) * ysq
    xnum = (xnum + 3.05326634961232344e-1) * ysq
    xnum = xnum + 1.63153871373020978e-2                 # N(y^2)
    xden = 2.33520497626869185e-3 * ysq
    xden = (xden + 6.05183413124413191e-2) * ysq
    xden = (xden + 5.27905102951428412e-1) * ysq
    xden = (xden + 1.87295284992346725e00) * ysq
    xden = (xden + 2.56852019228982242e00) * ysq
    xden = (xden + 1.0) * ysq                             # y^2 * M(y^2)
    n3 = M_1_SQRTPI_ * xden - xnum
    d3 = xden * yc
    # exp(-y^2) to full relative precision: y^2 = hi + lo exactly (fma), exp(-hi) * (1 - lo)
    hi = ysq
    lo = fma(yc, yc, -hi)
    e = exp(-hi) * (1.0 - lo)
    num = n2 if yc <= 4.0 else n3
    den = d2 if yc <= 4.0 else d3
    num = n1 if y <= 0.46875 else e * num
    den = d1 if y <= 0.46875 else den
    num = num / den
    num = 0.0 if y > ERFC_ZERO_Y else num
    num = y if y != y else num              # the clamp dropped a NaN: give it back
    return 2.0 - num if x < 0.0 else num


cdef inline double norm_cdf(double x) noexcept nogil:
    """Standard normal CDF; exact 0 and 1 at -inf and +inf."""
    return 0.5 * erfc_cody(-x * M_SQRT1_2_)


cdef inline double norm_pdf(double x) noexcept nogil:
    """Standard normal density; 0 where it is below ~1e-294 (|x| > 36.77: see erfc_cody)."""
    cdef double h = 0.5 * x * x
    cdef double e = exp(-clamp_nonneg(h, PDF_ZERO_H))    # NaN -> 676, then the select
    e = h if h != h else e
    return 0.0 if h > PDF_ZERO_H else M_1_SQRT2PI_ * e
