"""Pre-trade risk checks over a limits struct (compiled kernel).

The public face is :mod:`algoengine.risk`, which documents every rule, its units and its
reason code. This module holds the two doors of STYLE.md: the Python methods of
:class:`RiskChecker` validate what the engine passes once (index, side, lot and tick sizes,
reference price, timestamps, finite Greeks) and delegate to ``*_c`` kernels that trust their
input, never raise and run without the GIL. Risk checks never raise for an order: a failing
order gets a reason code (STYLE.md item 9).

All arithmetic on order values is exact in int64: products that could overflow for a hostile
quantity or price are compared as divisions (``qty * px > limit`` <=> ``qty > limit // px``
for positive integers), and every other product is bounded by the validated limits and by
the MAX_* constants below.
"""

cimport cython
cimport numpy as cnp
from cpython.long cimport PyLong_CheckExact
from libc.math cimport fabs, isfinite, isnan
from libc.stdint cimport INT64_MAX, int8_t, int64_t, uint8_t
from libc.stdlib cimport calloc, free
from libc.string cimport memset

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


cdef inline int64_t _abs64(int64_t x) noexcept nogil:
    return -x if x < 0 else x


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
        self._open_count = 0
        self._delta = 0.0
        self._vega = 0.0
        self._pnl = 0
        self._kill = False
        self._session_open = 0
        self._session_close = 0
        self._ring_head = 0
        self._ring_n = 0

    def __dealloc__(self):
        free(self._pos)
        free(self._open)
        free(self._ring)

    # -- kernels ---------------------------------------------------------------------------------

    cdef int evaluate_c(self, const OrderIn* o) noexcept nogil:
        """The reason code of an order; changes nothing."""
        cdef const RiskLimitsC* L = &self._lim
        cdef int64_t qty = o.qty, px, pos, open_same, band, sq
        cdef double d, v
        cdef bint reducing
        if self._kill and not o.square_off:
            return R_KILL_SWITCH
        if L.enforce_market_hours and not (self._session_open <= o.ts < self._session_close):
            return R_MARKET_CLOSED
        if qty <= 0:
            return R_QTY_NOT_POSITIVE
        if qty % o.lot != 0:
            return R_QTY_NOT_LOT_MULTIPLE
        if o.price < 0 or o.price % o.tick != 0:
            return R_PRICE_OFF_TICK
        if qty > L.max_lots_per_order * o.lot:      # from here on qty <= 10**12
            return R_MAX_LOTS_PER_ORDER
        pos = self._pos[o.idx]
        open_same = self._open[2 * o.idx + (0 if o.side > 0 else 1)]
        # reducing: against the position, and with the working orders of the same side it
        # does not go past flat
        reducing = o.side * pos < 0 and open_same + qty <= _abs64(pos)
        if o.square_off and not reducing:
            return R_SQUARE_OFF_NOT_REDUCING
        if not reducing and self._pnl <= -L.max_daily_loss_paise:
            return R_DAILY_LOSS_LIMIT
        if o.price > 0 and o.ref > 0:
            band = (L.price_band_bps * o.ref) // 10000     # |p - ref| * 10000 > bps * ref
            if _abs64(o.price - o.ref) > band:
                return R_PRICE_BAND
        if self._open_count >= L.max_open_orders:
            return R_MAX_OPEN_ORDERS
        if not o.square_off:
            px = o.price if o.price > 0 else o.ref
            if px > 0 and qty > L.max_order_value_paise // px:
                return R_MAX_ORDER_VALUE
            if not reducing and (_abs64(pos + o.side * (open_same + qty))
                                 > L.max_lots_per_instrument * o.lot):
                return R_MAX_LOTS_PER_INSTRUMENT
            sq = o.side * qty
            d = self._delta + o.dpu * <double>sq
            if fabs(d) > L.max_abs_delta and fabs(d) > fabs(self._delta):
                return R_MAX_DELTA
            v = self._vega + o.vpu * <double>sq
            if fabs(v) > L.max_abs_vega and fabs(v) > fabs(self._vega):
                return R_MAX_VEGA
        if (self._ring_n == L.max_orders_per_second
                and o.ts - self._ring[self._ring_head] < NS_PER_S):
            return R_RATE_LIMIT
        return R_OK

    cdef void record_c(self, int64_t ts) noexcept nogil:
        """Count an accepted order at ts in the rate window."""
        cdef int64_t cap = self._lim.max_orders_per_second
        cdef int64_t j
        if self._ring_n < cap:
            j = self._ring_head + self._ring_n
            self._ring[j - cap if j >= cap else j] = ts
            self._ring_n += 1
        else:
            self._ring[self._ring_head] = ts
            self._ring_head = 0 if self._ring_head + 1 == cap else self._ring_head + 1

    cdef int check_c(self, const OrderIn* o) noexcept nogil:
        cdef int rc = self.evaluate_c(o)
        if rc == R_OK:
            self.record_c(o.ts)
        return rc

    cdef void check_batch_c(self, const BatchIn* b, int8_t* out) noexcept nogil:
        """Check b.n orders in sequence. An accepted order is recorded in the rate window and,
        for the rest of the batch only, counts as a working order (open count, open qty of its
        side) with its Greeks added to the portfolio; those tentative effects are undone at the
        end."""
        cdef Py_ssize_t i
        cdef OrderIn o
        cdef int rc
        cdef int64_t count0 = self._open_count
        cdef double delta0 = self._delta, vega0 = self._vega
        cdef int64_t j
        for i in range(b.n):
            o.idx = b.col[B_IDX][i * b.step[B_IDX]]
            o.side = b.col[B_SIDE][i * b.step[B_SIDE]]
            o.qty = b.col[B_QTY][i * b.step[B_QTY]]
            o.price = b.col[B_PRICE][i * b.step[B_PRICE]]
            o.ref = b.col[B_REF][i * b.step[B_REF]]
            o.lot = b.col[B_LOT][i * b.step[B_LOT]]
            o.tick = b.col[B_TICK][i * b.step[B_TICK]]
            o.ts = b.col[B_TS][i * b.step[B_TS]]
            o.dpu = b.fcol[0][i * b.fstep[0]]
            o.vpu = b.fcol[1][i * b.fstep[1]]
            o.square_off = b.sq != NULL and b.sq[i * b.sqstep] != 0
            rc = self.evaluate_c(&o)
            out[i] = <int8_t>rc
            if rc == R_OK:
                self.record_c(o.ts)
                self._open_count += 1
                self._open[2 * o.idx + (0 if o.side > 0 else 1)] += o.qty
                self._delta = self._delta + o.dpu * <double>(o.side * o.qty)
                self._vega = self._vega + o.vpu * <double>(o.side * o.qty)
        for i in range(b.n):
            if out[i] == R_OK:
                j = 2 * b.col[B_IDX][i * b.step[B_IDX]]
                j += 0 if b.col[B_SIDE][i * b.step[B_SIDE]] > 0 else 1
                self._open[j] -= b.col[B_QTY][i * b.step[B_QTY]]
        self._open_count = count0
        self._delta = delta0
        self._vega = vega0

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
        if not (0 <= o.idx < self.n_instruments and (o.side == 1 or o.side == -1)
                and 1 <= o.lot <= C_MAX_LOT_SIZE and 1 <= o.tick <= C_MAX_PRICE
                and 0 <= o.ref <= C_MAX_PRICE and isfinite(o.dpu) and isfinite(o.vpu)
                and o.ts >= 0):
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
        Bad engine-supplied values raise ValidationError naming the field and row before any
        order is checked; the state is then unchanged.
        """
        cdef Py_ssize_t n = -1
        cdef BatchIn b
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
        for k in range(8):
            a = cols[k]
            b.col[k] = <const int64_t*>cnp.PyArray_DATA(a)
            b.step[k] = 0 if a.shape[0] == 1 and n != 1 else 1
        for k in range(2):
            a = fcols[k]
            b.fcol[k] = <const double*>cnp.PyArray_DATA(a)
            b.fstep[k] = 0 if a.shape[0] == 1 and n != 1 else 1
        b.sq = NULL
        b.sqstep = 0
        if sqcol is not None:
            a = sqcol
            b.sq = <const uint8_t*>cnp.PyArray_DATA(a)
            b.sqstep = 0 if a.shape[0] == 1 and n != 1 else 1
        b.n = n
        r = self._first_bad_row(&b)
        if r >= 0:
            i = b.col[B_IDX][r * b.step[B_IDX]]
            if not 0 <= i < self.n_instruments:
                raise ValidationError(f"idx[{r}]", i, f"must be in [0, {self.n_instruments})")
            name, value = _bad_engine_value(
                b.col[B_SIDE][r * b.step[B_SIDE]], b.col[B_REF][r * b.step[B_REF]],
                b.col[B_LOT][r * b.step[B_LOT]], b.col[B_TICK][r * b.step[B_TICK]],
                b.fcol[0][r * b.fstep[0]], b.fcol[1][r * b.fstep[1]],
                b.col[B_TS][r * b.step[B_TS]])
            raise ValidationError(f"{name}[{r}]", value, _RULES[name])
        cdef cnp.ndarray codes = np.empty(n, dtype=np.int8)
        cdef int8_t* out = <int8_t*>cnp.PyArray_DATA(codes)
        with nogil:
            self.check_batch_c(&b, out)
        return codes

    cdef Py_ssize_t _first_bad_row(self, const BatchIn* b) noexcept nogil:
        cdef Py_ssize_t i
        cdef int64_t x, side, lot, tick, ref, ts
        cdef double dpu, vpu
        for i in range(b.n):
            x = b.col[B_IDX][i * b.step[B_IDX]]
            side = b.col[B_SIDE][i * b.step[B_SIDE]]
            ref = b.col[B_REF][i * b.step[B_REF]]
            lot = b.col[B_LOT][i * b.step[B_LOT]]
            tick = b.col[B_TICK][i * b.step[B_TICK]]
            ts = b.col[B_TS][i * b.step[B_TS]]
            dpu = b.fcol[0][i * b.fstep[0]]
            vpu = b.fcol[1][i * b.fstep[1]]
            if not (0 <= x < self.n_instruments and (side == 1 or side == -1)
                    and 1 <= lot <= C_MAX_LOT_SIZE and 1 <= tick <= C_MAX_PRICE
                    and 0 <= ref <= C_MAX_PRICE and isfinite(dpu) and isfinite(vpu)
                    and ts >= 0):
                return i
        return -1

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
        self._open_count += 1

    def on_order_done(self, idx, side, remaining_qty):
        """A working order ended (filled, cancelled, rejected or expired) with remaining_qty
        units unfilled; its fills were reported with on_fill."""
        cdef Py_ssize_t i = _check_idx(self, idx)
        cdef int s = _side_of(side)
        cdef int64_t q = _int_arg("remaining_qty", remaining_qty, 0, C_MAX_QTY)
        cdef int64_t k = 2 * i + (0 if s > 0 else 1)
        if self._open_count == 0:
            raise ValidationError("idx", idx, "no working order is open (on_order_open first)")
        if q > self._open[k]:
            raise ValidationError("remaining_qty", remaining_qty,
                                  f"exceeds the open {'buy' if s > 0 else 'sell'} qty "
                                  f"({self._open[k]}) of instrument {idx}")
        self._open[k] -= q
        self._open_count -= 1

    def set_portfolio_greeks(self, double delta, double vega):
        """The portfolio's total delta and vega (the units of the per-unit Greeks times units)."""
        if not isfinite(delta):
            raise ValidationError("delta", delta, "must be finite")
        if not isfinite(vega):
            raise ValidationError("vega", vega, "must be finite")
        self._delta = delta
        self._vega = vega

    def set_daily_pnl(self, paise):
        """Today's mark-to-market P&L, realised + unrealised, in paise."""
        self._pnl = _int_arg("paise", paise, -C_MAX_PAISE, C_MAX_PAISE)

    def set_kill_switch(self, on):
        """Engage (True) or release (False) the kill switch."""
        if not isinstance(on, bool):
            raise ValidationError("on", on, "must be a bool")
        self._kill = on

    def set_session(self, open_ns, close_ns):
        """Today's continuous session: orders are accepted for open_ns <= ts_ns < close_ns."""
        cdef int64_t o = _int_arg("open_ns", open_ns, 0, INT64_MAX)
        cdef int64_t c = _int_arg("close_ns", close_ns, 0, INT64_MAX)
        if c <= o:
            raise ValidationError("close_ns", close_ns, f"must be after open_ns ({o})")
        self._session_open = o
        self._session_close = c

    def reset_day(self):
        """Start a new trading day: daily P&L to 0 and the orders-per-second window emptied.
        Positions, working orders, Greeks, the kill switch and the session are kept."""
        self._pnl = 0
        self._ring_head = 0
        self._ring_n = 0
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
        for i in range(self._ring_n):
            j = self._ring_head + i
            if ts - self._ring[j - cap if j >= cap else j] < NS_PER_S:
                c += 1
        return c

    @property
    def open_orders(self):
        """Number of working orders."""
        return self._open_count

    @property
    def portfolio_delta(self):
        return self._delta

    @property
    def portfolio_vega(self):
        return self._vega

    @property
    def daily_pnl_paise(self):
        return self._pnl

    @property
    def kill_switch(self):
        return bool(self._kill)

    @property
    def session(self):
        """(open_ns, close_ns); (0, 0) until set_session is called."""
        return (self._session_open, self._session_close)

    def __repr__(self):
        return (f"RiskChecker(n_instruments={self.n_instruments}, open_orders="
                f"{self._open_count}, kill_switch={bool(self._kill)}, "
                f"daily_pnl_paise={self._pnl})")
