/* Let GCC vectorize loops that call exp() and log().
 *
 * glibc's libmvec has SIMD variants of exp and log (_ZGVdN4v_exp, _ZGVeN8v_exp, ...), but
 * <bits/math-vector.h> only declares them under -ffast-math, which we must not use (it breaks
 * NaN handling that the kernels rely on for invalid rows). Re-declaring the two functions with
 * the `simd` attribute gives the vectorizer the same permission without fast-math. The module
 * is linked with -lmvec. Off by default elsewhere (clang, non-x86_64, other libcs): the loops
 * then stay scalar but correct.
 */
#ifndef ALGOENGINE_SIMD_MATH_H
#define ALGOENGINE_SIMD_MATH_H
#include <math.h>
#include <stdint.h>
#include <string.h>
#if defined(ALGOENGINE_LIBMVEC) && defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
__attribute__((__simd__("notinbranch"))) extern double exp(double);
__attribute__((__simd__("notinbranch"))) extern double log(double);
#endif

/* min(y, c) for y >= 0 (or +inf, or NaN) and finite c > 0, as an integer min of the bit
 * patterns: non-negative doubles order like their bits, and NaN/inf patterns lie above every
 * finite one, so both map to c. Written this way (not as `y > c ? c : y`) because GCC
 * specialises exp(-clamped) on the two edges of a conditional and, after if-conversion for
 * vectorization, calls exp with the unclamped argument; an integer MIN_EXPR is not a branch. */
static inline double algoengine_clamp_nonneg(double y, double c) {
    uint64_t a, b;
    memcpy(&a, &y, sizeof a);
    memcpy(&b, &c, sizeof b);
    a = a < b ? a : b;
    memcpy(&y, &a, sizeof y);
    return y;
}
#endif
