# C-facing declarations of the Greeks kernel algoengine._ext.greeks (ext/greeks.pyx).
#
# The file carries the module's full dotted name because Cython looks a module's own .pxd up by
# that name ("dotted filename" in Cython.Compiler.Main.find_pxd_file); a plain ext/greeks.pxd is
# not found for a module built as algoengine._ext.greeks. The same naming lets a later kernel
# `cimport algoengine._ext.greeks` and get the right runtime module name.
#
# Kernels trust their input: the Python-visible functions in greeks.pyx validate once and
# delegate here (STYLE.md, "two doors"). Other kernels must not cimport these (a cimport of a
# non-inline cdef function across root-level ext/ modules fails at import); they are declared
# for documentation, for the `_c` naming contract and for Cython's own cross-checking.

cdef enum:
    GREEKS_BLOCK = 512          # elements per vectorized block
    GREEKS_PARALLEL_MIN = 32768 # below this many elements, one thread (fork/join costs more)
    IV_PARALLEL_MIN = 1024      # implied vol costs ~10x more per element: threads pay sooner

cdef enum BatchKind:
    KIND_GREEKS = 0
    KIND_PRICE = 1
    KIND_IV = 2

ctypedef struct GreeksBatch:
    const double* inp[7]    # greeks/price: w S K T r sigma q ; iv: price w S K T r q
    int bcast[7]            # 1 = a broadcast scalar, read from sbuf row j
    double* sbuf            # 7 * GREEKS_BLOCK doubles, scalar rows
    double* out[6]          # price delta gamma vega theta rho (price/iv: out[0] only)
    Py_ssize_t n
    int kind                # BatchKind
    bint black76            # Black-76 on a forward instead of BSM on spot
    int nthreads


cdef double bsm_price_c(double w, double S, double K, double T, double r, double sigma,
                        double q, bint black76) noexcept nogil
cdef double implied_vol_c(double price, double w, double S, double K, double T, double r,
                          double q, bint black76) noexcept nogil
cdef void run_batch_c(GreeksBatch* b) noexcept nogil
