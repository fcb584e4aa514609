# C-facing declarations of the pre-trade risk kernel algoengine._ext.risk (ext/risk.pyx).
#
# Named with the module's full dotted name so that Cython finds it for a module built as
# algoengine._ext.risk (see ext/algoengine._ext.greeks.pxd).
#
# Layout: the limits in one plain struct (read once from a RiskLimits at construction); per
# instrument (universe index i) the signed position in units and the open buy / sell quantity
# of working orders, interleaved as open[2*i] (buy), open[2*i + 1] (sell) so that one check
# touches one cache line; the timestamps of the last max_orders_per_second accepted orders in
# a ring buffer. Everything is plain C memory owned by the checker.
#
# Kernels trust their input (the Python methods of RiskChecker validate once): indices in
# range, side +1/-1, lot and tick >= 1, reference price and timestamps within the documented
# bounds, finite Greeks.

cimport cython
from libc.stdint cimport int8_t, int64_t, uint8_t

cdef enum:
    # reason codes, in the order the checks run (the first failing check is reported)
    R_OK = 0
    R_KILL_SWITCH = 1
    R_MARKET_CLOSED = 2
    R_QTY_NOT_POSITIVE = 3
    R_QTY_NOT_LOT_MULTIPLE = 4
    R_PRICE_OFF_TICK = 5
    R_MAX_LOTS_PER_ORDER = 6
    R_SQUARE_OFF_NOT_REDUCING = 7
    R_DAILY_LOSS_LIMIT = 8
    R_PRICE_BAND = 9
    R_MAX_OPEN_ORDERS = 10
    R_MAX_ORDER_VALUE = 11
    R_MAX_LOTS_PER_INSTRUMENT = 12
    R_MAX_DELTA = 13
    R_MAX_VEGA = 14
    R_RATE_LIMIT = 15
    R_COUNT = 16

ctypedef struct RiskLimitsC:
    int64_t max_lots_per_order
    int64_t max_lots_per_instrument
    int64_t max_order_value_paise
    int64_t price_band_bps
    int64_t max_open_orders
    double max_abs_delta
    double max_abs_vega
    int64_t max_orders_per_second
    int64_t max_daily_loss_paise
    bint enforce_market_hours

ctypedef struct RiskState:          # the checker's scalar state (a struct, so that the batch
    int64_t open_count              # loop can keep a private copy in registers)
    double delta
    double vega
    int64_t pnl                     # daily mark-to-market P&L, paise
    bint kill
    int64_t session_open            # ns, inclusive
    int64_t session_close           # ns, exclusive
    int64_t ring_head               # oldest entry of the rate window when it is full
    int64_t ring_n                  # entries in the rate window

ctypedef struct OrderIn:            # one order as the kernel reads it
    int64_t idx
    int64_t side                    # +1 buy, -1 sell
    int64_t qty                     # units
    int64_t price                   # paise; 0 = market order
    int64_t ref                     # reference / last price, paise; 0 = none yet
    int64_t lot                     # lot size, units
    int64_t tick                    # tick size, paise
    double dpu                      # delta per unit
    double vpu                      # vega per unit
    int64_t ts                      # UTC epoch ns
    bint square_off

ctypedef struct BatchIn:            # the columns of check_batch, n rows each
    const int64_t* col[8]           # idx side qty price ref lot tick ts
    const double* fcol[2]           # dpu vpu
    const uint8_t* sq               # square_off (numpy bool), or NULL for all False
    Py_ssize_t n


@cython.final
cdef class RiskChecker:
    cdef readonly object limits
    cdef readonly Py_ssize_t n_instruments
    cdef RiskLimitsC _lim
    cdef int64_t* _pos              # n: signed position, units
    cdef int64_t* _open             # 2n: open buy qty, open sell qty (units), interleaved
    cdef RiskState _st              # the scalar state
    cdef int64_t* _ring             # accepted-order timestamps, capacity max_orders_per_second
    cdef int64_t* _undo             # check_batch's undo log: (open index, qty) per accepted order
    cdef Py_ssize_t _undo_cap       # int64 slots

    # kernel doors: trust their input, never raise (the rules themselves are the inline
    # functions evaluate_rules / record_accepted in risk.pyx, shared by both doors)
    cdef int check_c(self, const OrderIn* o) noexcept nogil
    # -1, or the first row whose engine-supplied values are out of range (checked in the loop)
    cdef Py_ssize_t check_batch_c(self, const BatchIn* b, int8_t* out) noexcept nogil
