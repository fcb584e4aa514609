"""Pre-trade risk checks over a limits struct (compiled kernel).

The public face is :mod:`algoengine.risk`, which documents every rule, its units and its
reason code. This module holds the two doors of STYLE.md: the Python methods of
:class:`RiskChecker` validate what the engine passes once (index, side, lot and tick sizes,
reference price, timestamps, finite Greeks) and delegate to ``*_c`` kernels that trust their
input, never raise and run without the GIL. Risk checks never raise for an order: a failing
order gets a reason code (STYLE.md item 9).

All arithmetic on order values is exact in int64: the order value ``qty * px`` is computed
with overflow detection (an overflowing product is above every limit), the price band is
compared as ``|p - ref| > (bps * ref) // 10000`` (equivalent for integers), and every other
product is bounded by the validated limits, by the MAX_* constants below and by the order in
which the rules run (from the lots-per-order rule on, ``qty <= 10**12``).
"""

cimport cython
cimport numpy as cnp
from cpython.long cimport PyLong_CheckExact
from libc.math cimport INFINITY, fabs, isfinite, isnan
from libc.stdint cimport INT64_MAX, int8_t, int64_t, uint8_t, uint32_t, uint64_t
from libc.stdlib cimport calloc, free, malloc, realloc
from libc.string cimport memcpy, memset

import operator

import numpy as np

from algoengine.errors import ValidationError

cnp.import_array()

# ---- reason codes (public; the face wraps them in the IntEnum RiskReason) ----------------------

OK = R_OK
KILL_SWITCH = R_KILL_SWITCH
MARKET_CLOSED = R_MARKET_CLOSED
QTY_NOT_POSITIVE = R_QTY_NOT_POSITIVE
QTY_NOT_LOT_MULTIPLE = R_QTY_NOT_LOT_MULTIPLE
PRICE_OFF_TICK = R_PRICE_OFF_TICK
MAX_LOTS_PER_ORDER = R_MAX_LOTS_PER_ORDER
SQUARE_OFF_NOT_REDUCING = R_SQUARE_OFF_NOT_REDUCING
DAILY_LOSS_LIMIT = R_DAILY_LOSS_LIMIT
PRICE_BAND = R_PRICE_BAND
MAX_OPEN_ORDERS = R_MAX_OPEN_ORDERS
MAX_ORDER_VALUE = R_MAX_ORDER_VALUE
MAX_LOTS_PER_INSTRUMENT = R_MAX_LOTS_PER_INSTRUMENT
MAX_DELTA = R_MAX_DELTA
MAX_VEGA = R_MAX_VEGA
RATE_LIMIT = R_RATE_LIMIT

# ---- bounds of the values the checker accepts (they keep every product inside int64) -----------

cdef enum:
    C_MAX_INSTRUMENTS = 10000000
    C_MAX_LOT_SIZE = 1000000
    C_MAX_LOTS = 1000000
    C_MAX_BAND_BPS = 100000
    C_MAX_OPEN_ORDERS = 1000000
    C_MAX_ORDERS_PER_SECOND = 100000

cdef int64_t C_MAX_QTY = 1000000000000                  # 10**12 units per event
cdef int64_t C_MAX_POSITION = 1000000000000000          # 10**15 units per position / open side
cdef int64_t C_MAX_PRICE = 1000000000000                # 10**12 paise (Rs 10**10)
cdef int64_t C_MAX_PAISE = 1000000000000000000          # 10**18 paise: value and loss limits
cdef int64_t NS_PER_S = 1000000000

MAX_INSTRUMENTS = C_MAX_INSTRUMENTS
MAX_LOT_SIZE = C_MAX_LOT_SIZE
MAX_LOTS = C_MAX_LOTS
MAX_BAND_BPS = C_MAX_BAND_BPS
MAX_OPEN_ORDERS_LIMIT = C_MAX_OPEN_ORDERS
MAX_ORDERS_PER_SECOND_LIMIT = C_MAX_ORDERS_PER_SECOND
MAX_QTY = C_MAX_QTY
MAX_POSITION = C_MAX_POSITION
MAX_PRICE_PAISE = C_MAX_PRICE
MAX_PAISE = C_MAX_PAISE

# column order of BatchIn.col
cdef enum:
    BATCH_BLOCK = 512       # rows validated per vectorised pass (~40 KB of columns)
    B_IDX = 0
    B_SIDE = 1
    B_QTY = 2
    B_PRICE = 3
    B_REF = 4
    B_LOT = 5
    B_TICK = 6
    B_TS = 7

_INT_COLUMNS = ("idx", "side", "qty", "price_paise", "ref_price_paise", "lot_size",
                "tick_paise", "ts_ns")
_FLOAT_COLUMNS = ("delta_per_unit", "vega_per_unit")


cdef extern from *:
    ctypedef const int64_t* ci64p_r "const int64_t * __restrict__"
    ctypedef const double* cf64p_r "const double * __restrict__"
    # GCC / Clang: a * b, and whether it overflowed int64 (one imul + jo)
    bint __builtin_mul_overflow(int64_t a, int64_t b, int64_t* res) noexcept nogil


cdef inline int64_t _abs64(int64_t x) noexcept nogil:
    return -x if x < 0 else x


cdef inline int64_t _mod(int64_t a, int64_t b) noexcept nogil:
    """a % b for a >= 0, b >= 1: a 32-bit division when both fit (the usual case), which
    costs a fraction of a 64-bit one."""
    if ((<uint64_t>a) | (<uint64_t>b)) >> 32 == 0:
        return <int64_t>(<uint32_t>a % <uint32_t>b)
    return a % b


cdef inline bint _block_ok(ci64p_r idx, ci64p_r side, ci64p_r ref, ci64p_r lot, ci64p_r tick,
                           ci64p_r ts, cf64p_r dpu, cf64p_r vpu, Py_ssize_t i0, Py_ssize_t i1,
                           int64_t n) noexcept nogil:
    """_engine_ok for rows [i0, i1), as one OR-reduction that the compiler vectorises
    (unsigned compares fold the two ends of each range into one)."""
    cdef uint64_t bad = 0
    cdef Py_ssize_t i
    for i in range(i0, i1):
        bad |= ((<uint64_t>idx[i] >= <uint64_t>n)
                | (((<uint64_t>side[i] + 1) & ~(<uint64_t>2)) != 0)
                | ((<uint64_t>lot[i] - 1) >= <uint64_t>C_MAX_LOT_SIZE)
                | ((<uint64_t>tick[i] - 1) >= <uint64_t>C_MAX_PRICE)
                | (<uint64_t>ref[i] > <uint64_t>C_MAX_PRICE)
                | (ts[i] < 0)
                | (not (fabs(dpu[i]) < INFINITY))
                | (not (fabs(vpu[i]) < INFINITY)))
    return bad == 0


cdef inline bint _engine_ok(const OrderIn* o, int64_t n) noexcept nogil:
    """The engine-supplied values of an order are in range (branch-free)."""
    return ((0 <= o.idx) & (o.idx < n) & ((o.side == 1) | (o.side == -1))
            & (1 <= o.lot) & (o.lot <= C_MAX_LOT_SIZE) & (1 <= o.tick) & (o.tick <= C_MAX_PRICE)
            & (0 <= o.ref) & (o.ref <= C_MAX_PRICE) & (fabs(o.dpu) < INFINITY)
            & (fabs(o.vpu) < INFINITY) & (o.ts >= 0))


# ---- validation helpers (Python level; the face's only raising paths) --------------------------

cdef int64_t _limit_int(object limits, str name, int64_t lo, int64_t hi) except? -1:
    try:
        value = getattr(limits, name)
    except AttributeError:
        raise ValidationError("limits", limits, f"has no field {name!r} (expected a RiskLimits)")
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValidationError(name, value, "must be an integer")
    if not lo <= value <= hi:
        raise ValidationError(name, value, f"must be in [{lo}, {hi}]")
    return value


cdef double _limit_float(object limits, str name) except? -1.0:
    try:
        value = getattr(limits, name)
    except AttributeError:
        raise ValidationError("limits", limits, f"has no field {name!r} (expected a RiskLimits)")
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise ValidationError(name, value, "must be a number")
    cdef double v = value
    if isnan(v) or v < 0.0:
        raise ValidationError(name, value, "must be >= 0 (math.inf: no limit)")
    return v


cdef object _index(str name, object x):
    """x as a Python int: ints and numpy integers pass; bools, floats and the rest raise (a
    float qty is never silently truncated)."""
    if isinstance(x, (bool, np.bool_)):
        raise ValidationError(name, x, "must be an integer, not a bool")
    try:
        return operator.index(x)
    except TypeError:
        raise ValidationError(name, x, "must be an integer") from None


cdef inline int64_t _i64(str name, object x) except? -1:
    """x as an int64; the fast path is a plain Python int (Cython's inline conversion)."""
    if PyLong_CheckExact(x):
        return x            # OverflowError beyond int64: the caller names the field
    return _i64_slow(name, x)


cdef int64_t _i64_slow(str name, object x) except? -1:
    cdef object v = _index(name, x)
    if not -9223372036854775808 <= v <= 9223372036854775807:
        raise ValidationError(name, x, "must fit int64")
    return v


cdef int64_t _int_arg(str name, object value, int64_t lo, int64_t hi) except? -1:
    cdef object v = _index(name, value)
    if not lo <= v <= hi:
        raise ValidationError(name, value, f"must be in [{lo}, {hi}]")
    return v


cdef Py_ssize_t _check_idx(RiskChecker self, object idx) except -1:
    return _int_arg("idx", idx, 0, self.n_instruments - 1)


cdef int _side_of(object side) except 0:
    cdef object s = _index("side", side)
    if s == 1 or s == -1:
        return s
    raise ValidationError("side", side, "must be +1 (buy) or -1 (sell)")


cdef tuple _bad_engine_value(int64_t side, int64_t ref, int64_t lot, int64_t tick, double dpu,
                             double vpu, int64_t ts):
    """(name, value) of the first invalid engine-supplied field of an order, or None."""
    if side != 1 and side != -1:
        return ("side", side)
    if not 1 <= lot <= C_MAX_LOT_SIZE:
        return ("lot_size", lot)
    if not 1 <= tick <= C_MAX_PRICE:
        return ("tick_paise", tick)
    if not 0 <= ref <= C_MAX_PRICE:
        return ("ref_price_paise", ref)
    if not isfinite(dpu):
        return ("delta_per_unit", dpu)
    if not isfinite(vpu):
        return ("vega_per_unit", vpu)
    if ts < 0:
        return ("ts_ns", ts)
    return None


_RULES = {
    "idx": "must be in [0, n_instruments)",
    "side": "must be +1 (buy) or -1 (sell)",
    "lot_size": f"must be in [1, {C_MAX_LOT_SIZE}]",
    "tick_paise": f"must be in [1, {C_MAX_PRICE}]",
    "ref_price_paise": f"must be in [0, {C_MAX_PRICE}] (0: no reference price yet)",
    "delta_per_unit": "must be finite",
    "vega_per_unit": "must be finite",
    "ts_ns": "must be >= 0 (UTC epoch ns)",
}


cdef cnp.ndarray _column(str name, object x, object dtype, Py_ssize_t* n):
    """x as a C-contiguous 1-d array of dtype (a scalar becomes one element; n is set from the
    first 1-d column and every other 1-d column must match it)."""
    cdef cnp.ndarray arr
    cdef int typenum = (cnp.NPY_INT64 if dtype is np.int64 else
                        cnp.NPY_FLOAT64 if dtype is np.float64 else cnp.NPY_BOOL)
    if type(x) is np.ndarray:              # fast path: already the right array, used in place
        arr = <cnp.ndarray>x
        if (arr.ndim == 1 and cnp.PyArray_TYPE(arr) == typenum and cnp.PyArray_ISCARRAY_RO(arr)
                and (n[0] < 0 or arr.shape[0] == n[0])):
            if n[0] < 0:
                n[0] = arr.shape[0]
            return arr
    try:
        a = np.asarray(x)
    except (TypeError, ValueError) as exc:
        raise ValidationError(name, x, f"not an array: {exc}") from None
    kind = a.dtype.kind
    if a.size == 0 and a.ndim == 1:
        kind = "b" if dtype is np.bool_ else "i"      # an empty list: no values to judge
    if dtype is np.int64:
        if kind not in "iu":
            raise ValidationError(name, x, f"must hold integers (got dtype {a.dtype})")
        if kind == "u" and a.dtype.itemsize == 8 and a.size and a.max() > INT64_MAX:
            raise ValidationError(name, x, "values must fit int64")
    elif dtype is np.float64:
        if kind not in "fiu":
            raise ValidationError(name, x, f"must hold numbers (got dtype {a.dtype})")
    elif kind != "b":
        raise ValidationError(name, x, f"must hold booleans (got dtype {a.dtype})")
    if a.ndim > 1:
        raise ValidationError(name, x, f"must be 1-d or a scalar (got shape {a.shape})")
    if a.ndim == 1:
        if n[0] < 0:
            n[0] = a.shape[0]
        elif a.shape[0] != n[0]:
            raise ValidationError(name, x, f"has length {a.shape[0]}, expected {n[0]}")
    return np.ascontiguousarray(a.reshape(-1), dtype=dtype)


# ---- the rules (shared by check and check_batch) --------------------------------------------

cdef inline int evaluate_rules(const RiskLimitsC* L, const RiskState* S, const int64_t* ring,
                               const OrderIn* o, int64_t pos, int64_t open_same) noexcept nogil:
    """The reason code of an order (the first failing check, in the documented order), given
    the state S, the instrument's position and its open qty on the order's side. Pure: it
    changes nothing. Inline, so that the batch loop keeps its copy of S in registers.

    One branch per rule ("does it fail?": rarely taken in a normal flow, so well predicted);
    each rule's condition is combined with ``&`` / ``|``, not ``and`` / ``or``, so that a
    coin-flip sub-condition (is the order against the position?) is not a branch of its own.
    Measured here on 10^5 orders with a random mix of outcomes (check_batch, default limits):
    12.5 -> 9.3 ns per order. A rejection still costs one mispredicted branch, but the
    branch-free versions tried (every rule into a bit mask, the lowest set bit being the
    reason) were slower: 14.5 ns, and 12-14 ns with only the malformed-order rules branchy.
    """
    cdef int64_t qty = o.qty, price = o.price, ref = o.ref, side = o.side
    cdef int64_t px, sq, value = 0
    cdef double d, v
    cdef bint sqoff = o.square_off
    cdef bint exposure = not sqoff
    cdef bint reducing, value_over
    if S.kill & exposure:
        return R_KILL_SWITCH
    if L.enforce_market_hours & ((o.ts < S.session_open) | (o.ts >= S.session_close)):
        return R_MARKET_CLOSED
    if qty <= 0:
        return R_QTY_NOT_POSITIVE
    if _mod(qty, o.lot) != 0:
        return R_QTY_NOT_LOT_MULTIPLE
    if price < 0:
        return R_PRICE_OFF_TICK
    if _mod(price, o.tick) != 0:
        return R_PRICE_OFF_TICK
    if qty > L.max_lots_per_order * o.lot:      # from here on qty <= 10**12
        return R_MAX_LOTS_PER_ORDER
    # reducing: against the position, and with the working orders of the same side it does
    # not go past flat
    reducing = (side * pos < 0) & (open_same + qty <= _abs64(pos))
    if sqoff & (not reducing):
        return R_SQUARE_OFF_NOT_REDUCING
    if (not reducing) & (S.pnl <= -L.max_daily_loss_paise):
        return R_DAILY_LOSS_LIMIT
    # |p - ref| * 10000 > bps * ref  <=>  |p - ref| > (bps * ref) // 10000 (integers)
    if (price > 0) & (ref > 0) & (_abs64(price - ref) > (L.price_band_bps * ref) // 10000):
        return R_PRICE_BAND
    if S.open_count >= L.max_open_orders:
        return R_MAX_OPEN_ORDERS
    px = price if price > 0 else ref
    value_over = __builtin_mul_overflow(qty, px, &value)
    if exposure & (px > 0) & (value_over | (value > L.max_order_value_paise)):
        return R_MAX_ORDER_VALUE
    if (exposure & (not reducing)
            & (_abs64(pos + side * (open_same + qty)) > L.max_lots_per_instrument * o.lot)):
        return R_MAX_LOTS_PER_INSTRUMENT
    sq = side * qty
    d = S.delta + o.dpu * <double>sq
    if exposure & (fabs(d) > L.max_abs_delta) & (fabs(d) > fabs(S.delta)):
        return R_MAX_DELTA
    v = S.vega + o.vpu * <double>sq
    if exposure & (fabs(v) > L.max_abs_vega) & (fabs(v) > fabs(S.vega)):
        return R_MAX_VEGA
    if (S.ring_n == L.max_orders_per_second) & (o.ts - ring[S.ring_head] < NS_PER_S):
        return R_RATE_LIMIT
    return R_OK


cdef inline void record_accepted(const RiskLimitsC* L, RiskState* S, int64_t* ring,
                                 int64_t ts) noexcept nogil:
    """Count an accepted order at ts in the rate window (a ring of the last
    max_orders_per_second accepted timestamps)."""
    cdef int64_t cap = L.max_orders_per_second
    cdef int64_t j
    if S.ring_n < cap:
        j = S.ring_head + S.ring_n
        ring[j - cap if j >= cap else j] = ts
        S.ring_n += 1
    else:
        ring[S.ring_head] = ts
        S.ring_head = 0 if S.ring_head + 1 == cap else S.ring_head + 1


# ---- the checker -----------------------------------------------------------------------------

@cython.final
cdef class RiskChecker:
    """Pre-trade risk state and checks of one engine (see :mod:`algoengine.risk`).

    Parameters
    ----------
    limits : RiskLimits
        The limits (read once; validated again here).
    n_instruments : int
        Size of the universe; instruments are addressed by their index ``0 <= idx <
        n_instruments``.
    """

    def __cinit__(self, limits, n_instruments):
        cdef int64_t n = _int_arg("n_instruments", n_instruments, 1, C_MAX_INSTRUMENTS)
        cdef RiskLimitsC* L = &self._lim
        L.max_lots_per_order = _limit_int(limits, "max_lots_per_order", 1, C_MAX_LOTS)
        L.max_lots_per_instrument = _limit_int(limits, "max_lots_per_instrument", 1, C_MAX_LOTS)
        L.max_order_value_paise = _limit_int(limits, "max_order_value_paise", 1, C_MAX_PAISE)
        L.price_band_bps = _limit_int(limits, "price_band_bps", 0, C_MAX_BAND_BPS)
        L.max_open_orders = _limit_int(limits, "max_open_orders", 1, C_MAX_OPEN_ORDERS)
        L.max_abs_delta = _limit_float(limits, "max_abs_delta")
        L.max_abs_vega = _limit_float(limits, "max_abs_vega")
        L.max_orders_per_second = _limit_int(limits, "max_orders_per_second", 1,
                                             C_MAX_ORDERS_PER_SECOND)
        L.max_daily_loss_paise = _limit_int(limits, "max_daily_loss_paise", 1, C_MAX_PAISE)
        hours = getattr(limits, "enforce_market_hours", None)
        if not isinstance(hours, bool):
            raise ValidationError("enforce_market_hours", hours, "must be a bool")
        L.enforce_market_hours = hours
        self.limits = limits
        self.n_instruments = n
        self._pos = <int64_t*>calloc(n, sizeof(int64_t))
        self._open = <int64_t*>calloc(2 * n, sizeof(int64_t))
        self._ring = <int64_t*>calloc(L.max_orders_per_second, sizeof(int64_t))
        if self._pos == NULL or self._open == NULL or self._ring == NULL:
            raise MemoryError()
        self._st.open_count = 0
        self._st.delta = 0.0
        self._st.vega = 0.0
        self._st.pnl = 0
        self._st.kill = False
        self._st.session_open = 0
        self._st.session_close = 0
        self._st.ring_head = 0
        self._st.ring_n = 0
        self._undo = NULL
        self._undo_cap = 0

    def __dealloc__(self):
        free(self._pos)
        free(self._open)
        free(self._ring)
        free(self._undo)

    # -- kernels ---------------------------------------------------------------------------------

    cdef int check_c(self, const OrderIn* o) noexcept nogil:
        """The reason code of one order; a passed order is recorded in the rate window."""
        cdef int rc = evaluate_rules(&self._lim, &self._st, self._ring, o,
                                     self._pos[o.idx], self._open[2 * o.idx + (o.side < 0)])
        if rc == R_OK:
            record_accepted(&self._lim, &self._st, self._ring, o.ts)
        return rc

    cdef Py_ssize_t check_batch_c(self, const BatchIn* b, int8_t* out) noexcept nogil:
        """Check b.n orders in sequence. An accepted order is recorded in the rate window and,
        for the rest of the batch only, counts as a working order (open count, open qty of its
        side) with its Greeks added to the portfolio; those tentative effects are undone at the
        end. Returns -1, or the first row whose engine-supplied values are out of range (then
        every effect but the rate window's is undone; the caller restores that)."""
        cdef Py_ssize_t i, m = 0, bad = -1, n = b.n
        cdef OrderIn o
        cdef int rc
        cdef int64_t k
        # everything the loop reads lives in locals: the compiler may not assume that the
        # stores to the open quantities and the codes leave a struct field unchanged
        cdef RiskState st = self._st            # private copy: kept in registers
        cdef RiskLimitsC lim = self._lim
        cdef int64_t n_inst = self.n_instruments
        cdef int64_t* pos = self._pos
        cdef int64_t* opn = self._open
        cdef int64_t* ring = self._ring
        cdef int64_t* undo = self._undo         # (open index, qty) per accepted order
        cdef ci64p_r c_idx = b.col[B_IDX]
        cdef ci64p_r c_side = b.col[B_SIDE]
        cdef ci64p_r c_qty = b.col[B_QTY]
        cdef ci64p_r c_price = b.col[B_PRICE]
        cdef ci64p_r c_ref = b.col[B_REF]
        cdef ci64p_r c_lot = b.col[B_LOT]
        cdef ci64p_r c_tick = b.col[B_TICK]
        cdef ci64p_r c_ts = b.col[B_TS]
        cdef cf64p_r c_dpu = b.fcol[0]
        cdef cf64p_r c_vpu = b.fcol[1]
        cdef const uint8_t* c_sq = b.sq
        cdef Py_ssize_t i0 = 0, i1
        while i0 < n and bad < 0:
            # validate a block in one vectorised pass (it then stays in cache for the checks;
            # validating row by row inside the loop below cost ~1.5 ns per order)
            i1 = i0 + BATCH_BLOCK if n - i0 > BATCH_BLOCK else n
            if not _block_ok(c_idx, c_side, c_ref, c_lot, c_tick, c_ts, c_dpu, c_vpu, i0, i1,
                             n_inst):
                for i in range(i0, i1):
                    o.idx = c_idx[i]
                    o.side = c_side[i]
                    o.ref = c_ref[i]
                    o.lot = c_lot[i]
                    o.tick = c_tick[i]
                    o.ts = c_ts[i]
                    o.dpu = c_dpu[i]
                    o.vpu = c_vpu[i]
                    if not _engine_ok(&o, n_inst):
                        bad = i
                        break
                if bad < 0:                     # the block changed under us (another thread)
                    bad = i0
                i1 = bad
            for i in range(i0, i1):
                o.idx = c_idx[i]
                o.side = c_side[i]
                o.qty = c_qty[i]
                o.price = c_price[i]
                o.ref = c_ref[i]
                o.lot = c_lot[i]
                o.tick = c_tick[i]
                o.ts = c_ts[i]
                o.dpu = c_dpu[i]
                o.vpu = c_vpu[i]
                o.square_off = c_sq[i] != 0 if c_sq != NULL else False
                # memory safety does not rest on the block pass alone: the columns are the
                # caller's arrays and the GIL is released (another thread could write to them)
                if (<uint64_t>o.idx >= <uint64_t>n_inst) | (o.lot < 1) | (o.tick < 1):
                    bad = i
                    break
                k = 2 * o.idx + (o.side < 0)
                rc = evaluate_rules(&lim, &st, ring, &o, pos[o.idx], opn[k])
                out[i] = <int8_t>rc
                if rc == R_OK:
                    record_accepted(&lim, &st, ring, o.ts)
                    opn[k] += o.qty
                    undo[2 * m] = k
                    undo[2 * m + 1] = o.qty
                    m += 1
                    st.open_count += 1
                    st.delta = st.delta + o.dpu * <double>(o.side * o.qty)
                    st.vega = st.vega + o.vpu * <double>(o.side * o.qty)
            i0 = i1
        # undo the tentative effects from the log (no second pass over the columns); the rate
        # window is kept
        for i in range(m):
            opn[undo[2 * i]] -= undo[2 * i + 1]
        self._st.ring_head = st.ring_head
        self._st.ring_n = st.ring_n
        return bad

    # -- checks (Python face) --------------------------------------------------------------------

    def check(self, idx, side, qty, price_paise, ref_price_paise, lot_size, tick_paise,
              double delta_per_unit, double vega_per_unit, ts_ns, bint square_off=False):
        """Check one order; return its reason code (0: OK). A passed check counts as sent: the
        order is recorded in the orders-per-second window. See :mod:`algoengine.risk`."""
        cdef OrderIn o
        try:
            o.idx = _i64("idx", idx)
            o.side = _i64("side", side)
            o.qty = _i64("qty", qty)
            o.price = _i64("price_paise", price_paise)
            o.ref = _i64("ref_price_paise", ref_price_paise)
            o.lot = _i64("lot_size", lot_size)
            o.tick = _i64("tick_paise", tick_paise)
            o.ts = _i64("ts_ns", ts_ns)
        except OverflowError:           # one try for all eight: a try per field costs 2 ns
            for name, x in (("idx", idx), ("side", side), ("qty", qty),
                            ("price_paise", price_paise), ("ref_price_paise", ref_price_paise),
                            ("lot_size", lot_size), ("tick_paise", tick_paise),
                            ("ts_ns", ts_ns)):
                _i64_slow(name, x)
            raise
        o.dpu = delta_per_unit
        o.vpu = vega_per_unit
        o.square_off = square_off
        if not _engine_ok(&o, self.n_instruments):
            if not 0 <= o.idx < self.n_instruments:
                raise ValidationError("idx", idx, f"must be in [0, {self.n_instruments})")
            name, value = _bad_engine_value(o.side, o.ref, o.lot, o.tick, o.dpu, o.vpu, o.ts)
            raise ValidationError(name, value, _RULES[name])
        return self.check_c(&o)

    def check_batch(self, idx, side, qty, price_paise, ref_price_paise, lot_size, tick_paise,
                    delta_per_unit, vega_per_unit, ts_ns, square_off=None):
        """Check an array of orders in one call (nogil loop); return int8 reason codes.

        Every argument is a 1-d array (all of one length) or a scalar that applies to every
        order. Orders are checked in sequence and see each other's effects (see the face).
        A bad engine-supplied value raises ValidationError naming the field and row; the
        state is then as before the call.
        """
        cdef Py_ssize_t n = -1
        cdef BatchIn b
        cdef int64_t* undo
        cdef int k
        cdef Py_ssize_t i, r
        cdef cnp.ndarray a
        cols = []
        for k, (name, x) in enumerate(zip(_INT_COLUMNS, (idx, side, qty, price_paise,
                                                         ref_price_paise, lot_size,
                                                         tick_paise, ts_ns))):
            cols.append(_column(name, x, np.int64, &n))
        fcols = [_column("delta_per_unit", delta_per_unit, np.float64, &n),
                 _column("vega_per_unit", vega_per_unit, np.float64, &n)]
        sqcol = None if square_off is None else _column("square_off", square_off, np.bool_, &n)
        if n < 0:
            n = 1
        # scalars become full columns: the kernel then walks 11 unit-stride arrays with one
        # index (per-column strides cost a load and a multiply per column and row)
        for k in range(8):
            a = cols[k] if cols[k].shape[0] == n else np.full(n, cols[k][0], np.int64)
            cols[k] = a
            b.col[k] = <const int64_t*>cnp.PyArray_DATA(a)
        for k in range(2):
            a = fcols[k] if fcols[k].shape[0] == n else np.full(n, fcols[k][0], np.float64)
            fcols[k] = a
            b.fcol[k] = <const double*>cnp.PyArray_DATA(a)
        b.sq = NULL
        if sqcol is not None:
            a = sqcol if sqcol.shape[0] == n else np.full(n, sqcol[0], np.bool_)
            sqcol = a
            b.sq = <const uint8_t*>cnp.PyArray_DATA(a)
        b.n = n
        if 2 * n > self._undo_cap:
            undo = <int64_t*>realloc(self._undo, 2 * n * sizeof(int64_t))
            if undo == NULL:
                raise MemoryError()
            self._undo = undo
            self._undo_cap = 2 * n
        cdef cnp.ndarray codes = np.empty(n, dtype=np.int8)
        cdef int8_t* out = <int8_t*>cnp.PyArray_DATA(codes)
        # the rate window as it was, in case a row turns out bad half-way
        cdef int64_t cap = self._lim.max_orders_per_second
        cdef int64_t head0 = self._st.ring_head, n0 = self._st.ring_n
        cdef int64_t* ring0 = <int64_t*>malloc(cap * sizeof(int64_t))
        if ring0 == NULL:
            raise MemoryError()
        memcpy(ring0, self._ring, cap * sizeof(int64_t))
        with nogil:
            r = self.check_batch_c(&b, out)
            if r >= 0:
                memcpy(self._ring, ring0, cap * sizeof(int64_t))
                self._st.ring_head = head0
                self._st.ring_n = n0
            free(ring0)
        if r >= 0:
            i = b.col[B_IDX][r]
            if not 0 <= i < self.n_instruments:
                raise ValidationError(f"idx[{r}]", i, f"must be in [0, {self.n_instruments})")
            bad_field = _bad_engine_value(b.col[B_SIDE][r], b.col[B_REF][r], b.col[B_LOT][r],
                                          b.col[B_TICK][r], b.fcol[0][r], b.fcol[1][r],
                                          b.col[B_TS][r])
            if bad_field is None:
                raise ValidationError("columns", r, "changed while check_batch was running")
            name, value = bad_field
            raise ValidationError(f"{name}[{r}]", value, _RULES[name])
        return codes

    # -- state updates the engine calls ----------------------------------------------------------

    def on_fill(self, idx, signed_qty):
        """A working order filled ``|signed_qty|`` units (> 0 bought, < 0 sold): the position
        moves by signed_qty and the open qty of that side shrinks by the fill."""
        cdef Py_ssize_t i = _check_idx(self, idx)
        cdef int64_t q = _int_arg("signed_qty", signed_qty, -C_MAX_QTY, C_MAX_QTY)
        cdef int64_t k = 2 * i + (0 if q > 0 else 1)
        if q == 0:
            raise ValidationError("signed_qty", signed_qty, "must not be 0")
        if _abs64(q) > self._open[k]:
            raise ValidationError(
                "signed_qty", signed_qty,
                f"exceeds the open {'buy' if q > 0 else 'sell'} qty ({self._open[k]}) of "
                f"instrument {i}: announce the order with on_order_open, or use set_position "
                "for a position change that no working order explains")
        if _abs64(self._pos[i] + q) > C_MAX_POSITION:
            raise ValidationError("signed_qty", signed_qty,
                                  f"the position would exceed {C_MAX_POSITION} units")
        self._pos[i] += q
        self._open[k] -= _abs64(q)

    def set_position(self, idx, qty):
        """Set an instrument's signed position (units) outright: start-of-day positions,
        reconciliation with the broker, exercise and assignment at expiry."""
        cdef Py_ssize_t i = _check_idx(self, idx)
        self._pos[i] = _int_arg("qty", qty, -C_MAX_POSITION, C_MAX_POSITION)

    def on_order_open(self, idx, side, qty):
        """An order of qty units on side (+1/-1) is working at the exchange."""
        cdef Py_ssize_t i = _check_idx(self, idx)
        cdef int s = _side_of(side)
        cdef int64_t q = _int_arg("qty", qty, 1, C_MAX_QTY)
        cdef int64_t k = 2 * i + (0 if s > 0 else 1)
        if self._open[k] + q > C_MAX_POSITION:
            raise ValidationError("qty", qty, f"the open qty would exceed {C_MAX_POSITION}")
        self._open[k] += q
        self._st.open_count += 1

    def on_order_done(self, idx, side, remaining_qty):
        """A working order ended (filled, cancelled, rejected or expired) with remaining_qty
        units unfilled; its fills were reported with on_fill."""
        cdef Py_ssize_t i = _check_idx(self, idx)
        cdef int s = _side_of(side)
        cdef int64_t q = _int_arg("remaining_qty", remaining_qty, 0, C_MAX_QTY)
        cdef int64_t k = 2 * i + (0 if s > 0 else 1)
        if self._st.open_count == 0:
            raise ValidationError("idx", idx, "no working order is open (on_order_open first)")
        if q > self._open[k]:
            raise ValidationError("remaining_qty", remaining_qty,
                                  f"exceeds the open {'buy' if s > 0 else 'sell'} qty "
                                  f"({self._open[k]}) of instrument {idx}")
        self._open[k] -= q
        self._st.open_count -= 1

    def set_portfolio_greeks(self, double delta, double vega):
        """The portfolio's total delta and vega (the units of the per-unit Greeks times units)."""
        if not isfinite(delta):
            raise ValidationError("delta", delta, "must be finite")
        if not isfinite(vega):
            raise ValidationError("vega", vega, "must be finite")
        self._st.delta = delta
        self._st.vega = vega

    def set_daily_pnl(self, paise):
        """Today's mark-to-market P&L, realised + unrealised, in paise."""
        self._st.pnl = _int_arg("paise", paise, -C_MAX_PAISE, C_MAX_PAISE)

    def set_kill_switch(self, on):
        """Engage (True) or release (False) the kill switch."""
        if not isinstance(on, bool):
            raise ValidationError("on", on, "must be a bool")
        self._st.kill = on

    def set_session(self, open_ns, close_ns):
        """Today's continuous session: orders are accepted for open_ns <= ts_ns < close_ns."""
        cdef int64_t o = _int_arg("open_ns", open_ns, 0, INT64_MAX)
        cdef int64_t c = _int_arg("close_ns", close_ns, 0, INT64_MAX)
        if c <= o:
            raise ValidationError("close_ns", close_ns, f"must be after open_ns ({o})")
        self._st.session_open = o
        self._st.session_close = c

    def reset_day(self):
        """Start a new trading day: daily P&L to 0 and the orders-per-second window emptied.
        Positions, working orders, Greeks, the kill switch and the session are kept."""
        self._st.pnl = 0
        self._st.ring_head = 0
        self._st.ring_n = 0
        memset(self._ring, 0, self._lim.max_orders_per_second * sizeof(int64_t))

    # -- queries ---------------------------------------------------------------------------------

    def position(self, idx):
        """Signed position of an instrument, units."""
        return self._pos[_check_idx(self, idx)]

    def open_qty(self, idx, side):
        """Open (working) qty of an instrument on a side (+1 buy, -1 sell), units."""
        cdef Py_ssize_t i = _check_idx(self, idx)
        return self._open[2 * i + (0 if _side_of(side) > 0 else 1)]

    def positions(self):
        """Every instrument's signed position (int64 array, a copy)."""
        cdef cnp.ndarray a = np.empty(self.n_instruments, dtype=np.int64)
        cdef int64_t* p = <int64_t*>cnp.PyArray_DATA(a)
        cdef Py_ssize_t i
        for i in range(self.n_instruments):
            p[i] = self._pos[i]
        return a

    def orders_in_window(self, ts_ns):
        """Accepted orders in the rate window ending at ts_ns: those accepted at t with
        ts_ns - t < 1 s, among the last max_orders_per_second."""
        cdef int64_t ts = _int_arg("ts_ns", ts_ns, 0, INT64_MAX)
        cdef int64_t cap = self._lim.max_orders_per_second
        cdef int64_t i, j, c = 0
        for i in range(self._st.ring_n):
            j = self._st.ring_head + i
            if ts - self._ring[j - cap if j >= cap else j] < NS_PER_S:
                c += 1
        return c

    @property
    def open_orders(self):
        """Number of working orders."""
        return self._st.open_count

    @property
    def portfolio_delta(self):
        return self._st.delta

    @property
    def portfolio_vega(self):
        return self._st.vega

    @property
    def daily_pnl_paise(self):
        return self._st.pnl

    @property
    def kill_switch(self):
        return bool(self._st.kill)

    @property
    def session(self):
        """(open_ns, close_ns); (0, 0) until set_session is called."""
        return (self._st.session_open, self._st.session_close)

    def __repr__(self):
        return (f"RiskChecker(n_instruments={self.n_instruments}, open_orders="
                f"{self._st.open_count}, kill_switch={bool(self._st.kill)}, "
                f"daily_pnl_paise={self._st.pnl})")
