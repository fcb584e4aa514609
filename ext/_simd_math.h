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
#if defined(ALGOENGINE_LIBMVEC) && defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
__attribute__((__simd__("notinbranch"))) extern double exp(double);
__attribute__((__simd__("notinbranch"))) extern double log(double);
#endif
#endif
