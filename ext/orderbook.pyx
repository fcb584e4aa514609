"""Price-time-priority limit order book (L3) and an aggregated depth book (L2), compiled.

The public face is :mod:`algoengine.orderbook`. Prices are integer ticks inside; the Python
methods convert float prices with the book's tick size and validate once, then call the ``*_c``
methods, which trust their input and never touch a Python object (STYLE.md, "two doors").
The batch entry point ``apply`` runs a whole array of operations without the GIL.
"""

cimport cython
cimport numpy as cnp
from libc.float cimport DBL_EPSILON
from libc.math cimport fabs, floor, fmax, isfinite
from libc.stdint cimport INT64_MAX, int8_t, int32_t, int64_t, uint8_t, uint64_t
from libc.stdlib cimport calloc, free, malloc, realloc
from libc.string cimport memcpy, memset

import numpy as np

cnp.import_array()

cdef extern from *:
    int __builtin_ctzll(unsigned long long) nogil
    int __builtin_clzll(unsigned long long) nogil

# ---- result codes and op codes (public) ------------------------------------------------------

OK = 0
ERR_DUPLICATE_ID = -1
ERR_UNKNOWN_ID = -2
ERR_BAD_QTY = -3
ERR_BAD_PRICE = -4
ERR_BAD_SIDE = -5
ERR_NO_LIQUIDITY = -6
ERR_BAD_OP = -7
ERR_NO_MEMORY = -8

cdef enum:
    C_OK = 0
    C_DUPLICATE_ID = -1
    C_UNKNOWN_ID = -2
    C_BAD_QTY = -3
    C_BAD_PRICE = -4
    C_BAD_SIDE = -5
    C_NO_LIQUIDITY = -6
    C_BAD_OP = -7
    C_NO_MEMORY = -8

OP_ADD = 0
OP_ADD_IOC = 1
OP_MARKET = 2
OP_CANCEL = 3
OP_MODIFY = 4

cdef enum:
    K_LIMIT = 0         # rests its remainder
    K_IOC = 1           # remainder cancelled
    K_MARKET = 2        # no price limit; remainder cancelled; nothing to hit -> rejected

# align=True: the same layout as the C struct BookOp, so apply() reads the array in place.
OP_DTYPE = np.dtype([("op", "u1"), ("side", "i1"), ("id", "i8"), ("price", "i8"),
                     ("qty", "i8")], align=True)

_MESSAGES = {
    C_DUPLICATE_ID: "order_id: an order with this id is already resting",
    C_UNKNOWN_ID: "order_id: no resting order has this id",
    C_BAD_QTY: "qty: must be a positive integer",
    C_BAD_PRICE: "price: must be positive, on the tick grid, and within 2**22 ticks of the book",
    C_BAD_SIDE: "side: must be 'buy' or 'sell'",
    C_NO_LIQUIDITY: "no liquidity on the opposite side: market order rejected",
    C_BAD_OP: "op: unknown operation code",
    C_NO_MEMORY: "out of memory",
}


class OrderBookError(ValueError):
    """An operation the book refused. ``code`` is one of the ERR_* constants; the book is
    unchanged by a refused operation."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code


cdef object _error(int code, str detail=""):
    msg = _MESSAGES.get(code, f"error {code}")
    if detail:
        msg = f"{msg} ({detail})"
    return OrderBookError(code, msg)


# ---- ladder: the price levels of one side ------------------------------------------------------

cdef int ladder_init(Ladder* L, bint is_bid) noexcept nogil:
    L.cap = LADDER_MIN_CAP
    L.levels = <Level*>calloc(L.cap, sizeof(Level))
    L.bits = <uint64_t*>calloc(L.cap // 64, sizeof(uint64_t))
    L.base = -1            # unset until the first price arrives
    L.best = -1
    L.nlevels = 0
    L.total = 0
    L.is_bid = is_bid
    if L.levels == NULL or L.bits == NULL:
        return C_NO_MEMORY
    ladder_reset_levels(L)
    return C_OK


cdef inline void ladder_reset_levels(Ladder* L) noexcept nogil:
    cdef int64_t i
    for i in range(L.cap):
        L.levels[i].qty = 0
        L.levels[i].head = -1
        L.levels[i].tail = -1
        L.levels[i].count = 0


cdef void ladder_free(Ladder* L) noexcept nogil:
    free(L.levels)
    free(L.bits)
    L.levels = NULL
    L.bits = NULL


cdef void ladder_clear(Ladder* L) noexcept nogil:
    memset(L.bits, 0, (L.cap // 64) * sizeof(uint64_t))
    ladder_reset_levels(L)
    L.best = -1
    L.nlevels = 0
    L.total = 0
    L.base = -1


cdef inline int64_t ladder_below(const Ladder* L, int64_t i) noexcept nogil:
    """Highest occupied index < i, or -1."""
    cdef int64_t w
    cdef uint64_t word
    if i <= 0:
        return -1
    i -= 1
    w = i >> 6
    word = L.bits[w] & ((~(<uint64_t>0)) >> (63 - (i & 63)))
    while True:
        if word:
            return (w << 6) + 63 - __builtin_clzll(word)
        w -= 1
        if w < 0:
            return -1
        word = L.bits[w]


cdef inline int64_t ladder_above(const Ladder* L, int64_t i) noexcept nogil:
    """Lowest occupied index > i, or -1."""
    cdef int64_t w, nw = L.cap >> 6
    cdef uint64_t word
    i += 1
    if i >= L.cap:
        return -1
    w = i >> 6
    word = L.bits[w] & ((~(<uint64_t>0)) << (i & 63))
    while True:
        if word:
            return (w << 6) + __builtin_ctzll(word)
        w += 1
        if w >= nw:
            return -1
        word = L.bits[w]


cdef inline int64_t ladder_next(const Ladder* L, int64_t i) noexcept nogil:
    """The next level away from the best: lower for bids, higher for asks."""
    return ladder_below(L, i) if L.is_bid else ladder_above(L, i)


cdef inline void ladder_mark(Ladder* L, int64_t i) noexcept nogil:
    """Level i just became non-empty."""
    L.bits[i >> 6] |= (<uint64_t>1) << (i & 63)
    L.nlevels += 1
    if L.best < 0 or (L.is_bid and i > L.best) or (not L.is_bid and i < L.best):
        L.best = i


cdef inline void ladder_unmark(Ladder* L, int64_t i) noexcept nogil:
    """Level i just became empty."""
    L.bits[i >> 6] &= ~((<uint64_t>1) << (i & 63))
    L.nlevels -= 1
    if i == L.best:
        L.best = ladder_next(L, i)


cdef int64_t ladder_index(Ladder* L, int64_t price) noexcept nogil:
    """Index of price's level, growing or moving the window if needed; -1 if the span between
    this price and the side's other levels exceeds LADDER_MAX_SPAN, -2 if out of memory."""
    cdef int64_t lo, hi, span, new_cap, new_base, i, j, shift
    cdef Level* nl
    cdef uint64_t* nb
    if L.base < 0:
        L.base = price - L.cap // 2
        if L.base < 0:
            L.base = 0
    i = price - L.base
    if 0 <= i < L.cap:
        return i
    # The window must move or grow: keep every occupied level and the new price.
    if L.nlevels > 0:
        lo = L.base + (L.best if not L.is_bid else ladder_above(L, -1))
        hi = L.base + (L.best if L.is_bid else ladder_below(L, L.cap))
        lo = price if price < lo else lo
        hi = price if price > hi else hi
    else:
        lo = price
        hi = price
    span = hi - lo + 1
    if span > LADDER_MAX_SPAN:
        return -1
    new_cap = L.cap
    while new_cap < 2 * span:
        new_cap *= 2
    new_base = lo - (new_cap - span) // 2
    if new_base < 0:
        new_base = 0
    nl = <Level*>malloc(new_cap * sizeof(Level))
    nb = <uint64_t*>calloc(new_cap // 64, sizeof(uint64_t))
    if nl == NULL or nb == NULL:
        free(nl)
        free(nb)
        return -2
    for j in range(new_cap):
        nl[j].qty = 0
        nl[j].head = -1
        nl[j].tail = -1
        nl[j].count = 0
    shift = L.base - new_base
    if L.nlevels > 0:
        i = ladder_above(L, -1)
        while i >= 0:
            j = i + shift
            nl[j] = L.levels[i]
            nb[j >> 6] |= (<uint64_t>1) << (j & 63)
            i = ladder_above(L, i)
        L.best += shift
    free(L.levels)
    free(L.bits)
    L.levels = nl
    L.bits = nb
    L.cap = new_cap
    L.base = new_base
    return price - new_base


cdef inline int64_t ladder_best_price(const Ladder* L) noexcept nogil:
    return L.base + L.best if L.best >= 0 else -1


# ---- the L3 book -------------------------------------------------------------------------------

cdef inline double _to_price(double ticks, double tick, double per_unit) noexcept nogil:
    """Ticks to a price. With a tick of 1/n (0.05 = 1/20) divide by n, which rounds to the
    nearest double of the decimal price (2002 ticks -> 100.1, not 100.10000000000001)."""
    return ticks / per_unit if per_unit > 0.0 else ticks * tick


cdef double _per_unit(double tick) noexcept nogil:
    cdef double n = floor(1.0 / tick + 0.5)
    return n if n >= 1.0 and fabs(1.0 / tick - n) <= 1e-9 * n else 0.0

cdef inline uint64_t _hash(int64_t key, int shift) noexcept nogil:
    return ((<uint64_t>key) * <uint64_t>0x9E3779B97F4A7C15) >> shift


cdef object _parse_side(object side):
    if side == "buy" or side == "BUY" or side == "Buy":
        return 1
    if side == "sell" or side == "SELL" or side == "Sell":
        return -1
    raise _error(C_BAD_SIDE, f"got {side!r}")


cdef int _parse_tif(object tif) except -1:
    if tif == "GTC" or tif == "DAY" or tif == "gtc" or tif == "day":
        return K_LIMIT
    if tif == "IOC" or tif == "ioc":
        return K_IOC
    raise _error(C_BAD_SIDE, f"tif: must be 'GTC', 'DAY' or 'IOC', got {tif!r}")


@cython.final
cdef class Fill:
    """One execution: the taker (incoming) order traded qty with the maker (resting) order at
    the maker's price."""
    cdef readonly int64_t taker_id
    cdef readonly int64_t maker_id
    cdef readonly int64_t price_ticks
    cdef readonly int64_t qty
    cdef readonly double price

    def __init__(self, int64_t taker_id, int64_t maker_id, double price, int64_t qty,
                 int64_t price_ticks=-1):
        self.taker_id = taker_id
        self.maker_id = maker_id
        self.price = price
        self.qty = qty
        self.price_ticks = price_ticks

    def __iter__(self):
        return iter((self.taker_id, self.maker_id, self.price, self.qty))

    def __eq__(self, other):
        if not isinstance(other, Fill):
            return NotImplemented
        cdef Fill o = other
        return (self.taker_id == o.taker_id and self.maker_id == o.maker_id
                and self.price == o.price and self.qty == o.qty
                and self.price_ticks == o.price_ticks)

    def __hash__(self):
        return hash((self.taker_id, self.maker_id, self.price_ticks, self.qty))

    def __repr__(self):
        return (f"Fill(taker_id={self.taker_id}, maker_id={self.maker_id}, "
                f"price={self.price!r}, qty={self.qty})")


class BatchResult(tuple):
    """Result of OrderBook.apply: per-op codes and the fills as arrays."""
    __slots__ = ()
    _fields = ("codes", "fill_op", "taker_id", "maker_id", "price_ticks", "qty")

    def __new__(cls, codes, fill_op, taker_id, maker_id, price_ticks, qty):
        return tuple.__new__(cls, (codes, fill_op, taker_id, maker_id, price_ticks, qty))

    codes = property(lambda self: self[0], doc="int8 per op: OK (0) or a negative ERR_* code")
    fill_op = property(lambda self: self[1], doc="int64 per fill: index of the op that caused it")
    taker_id = property(lambda self: self[2], doc="int64 per fill")
    maker_id = property(lambda self: self[3], doc="int64 per fill")
    price_ticks = property(lambda self: self[4], doc="int64 per fill: the maker's price")
    qty = property(lambda self: self[5], doc="int64 per fill")

    def __repr__(self):
        return f"BatchResult(ops={len(self[0])}, fills={len(self[2])})"


cdef class OrderBook:
    """Price-time-priority limit order book of one instrument (order level, L3).

    Parameters
    ----------
    tick_size : float, default 0.05
        Price increment; 0.05 rupees for NSE index options. Prices must lie on its grid.
    """

    def __cinit__(self, double tick_size=0.05):
        cdef int64_t i
        if not (tick_size > 0.0 and isfinite(tick_size)):
            raise ValueError(f"tick_size: must be a positive number, got {tick_size!r}")
        self.tick_size = tick_size
        self._inv_tick = 1.0 / tick_size
        self._per = _per_unit(tick_size)
        if (ladder_init(&self._lad[0], True) != C_OK
                or ladder_init(&self._lad[1], False) != C_OK):
            raise MemoryError()
        self._ocap = 1024
        self._orders = <Order*>malloc(self._ocap * sizeof(Order))
        self._hcap = 2048
        self._hshift = 64 - 11
        self._htab = <HEntry*>malloc(self._hcap * sizeof(HEntry))
        self._fills.cap = 64
        self._fills.n = 0
        self._fills.op = <int64_t*>malloc(64 * sizeof(int64_t))
        self._fills.taker = <int64_t*>malloc(64 * sizeof(int64_t))
        self._fills.maker = <int64_t*>malloc(64 * sizeof(int64_t))
        self._fills.price = <int64_t*>malloc(64 * sizeof(int64_t))
        self._fills.qty = <int64_t*>malloc(64 * sizeof(int64_t))
        if (self._orders == NULL or self._htab == NULL
                or self._fills.op == NULL or self._fills.taker == NULL
                or self._fills.maker == NULL or self._fills.price == NULL
                or self._fills.qty == NULL):
            raise MemoryError()
        for i in range(self._ocap):
            self._orders[i].next = <int32_t>(i + 1) if i + 1 < self._ocap else -1
        self._ofree = 0
        self._ocount = 0
        for i in range(self._hcap):
            self._htab[i].val = -1
        self._hcount = 0
        self._cur_op = 0

    def __dealloc__(self):
        ladder_free(&self._lad[0])
        ladder_free(&self._lad[1])
        free(self._orders)
        free(self._htab)
        free(self._fills.op)
        free(self._fills.taker)
        free(self._fills.maker)
        free(self._fills.price)
        free(self._fills.qty)

    # -- id -> slot hash (open addressing, linear probing, backward-shift deletion) -------------

    cdef int32_t _hfind(self, int64_t key) noexcept nogil:
        cdef uint64_t mask = self._hcap - 1
        cdef uint64_t i = _hash(key, self._hshift)
        cdef int32_t v
        while True:
            v = self._htab[i].val
            if v < 0:
                return -1
            if self._htab[i].key == key:
                return v
            i = (i + 1) & mask

    cdef int _hput(self, int64_t key, int32_t val) noexcept nogil:
        cdef uint64_t mask, i
        if (self._hcount + 1) * 2 > self._hcap:
            if self._hgrow() != C_OK:
                return C_NO_MEMORY
        mask = self._hcap - 1
        i = _hash(key, self._hshift)
        while self._htab[i].val >= 0:
            i = (i + 1) & mask
        self._htab[i].key = key
        self._htab[i].val = val
        self._hcount += 1
        return C_OK

    cdef int _hgrow(self) noexcept nogil:
        cdef int64_t old_cap = self._hcap
        cdef HEntry* old = self._htab
        cdef int64_t i, new_cap = old_cap * 2
        cdef uint64_t mask = new_cap - 1
        cdef uint64_t j
        cdef HEntry* nt = <HEntry*>malloc(new_cap * sizeof(HEntry))
        if nt == NULL:
            return C_NO_MEMORY
        for i in range(new_cap):
            nt[i].val = -1
        self._hshift -= 1
        for i in range(old_cap):
            if old[i].val >= 0:
                j = _hash(old[i].key, self._hshift)
                while nt[j].val >= 0:
                    j = (j + 1) & mask
                nt[j] = old[i]
        free(old)
        self._htab = nt
        self._hcap = new_cap
        return C_OK

    cdef void _hdel(self, int64_t key) noexcept nogil:
        cdef uint64_t mask = self._hcap - 1
        cdef uint64_t i = _hash(key, self._hshift)
        cdef uint64_t j, k
        while True:
            if self._htab[i].val < 0:
                return
            if self._htab[i].key == key:
                break
            i = (i + 1) & mask
        # backward-shift: move later entries of the probe run into the hole
        j = i
        while True:
            j = (j + 1) & mask
            if self._htab[j].val < 0:
                break
            k = _hash(self._htab[j].key, self._hshift)
            # entry at j may move to i if its home k is not cyclically in (i, j]
            if (j > i and (k <= i or k > j)) or (j < i and (k <= i and k > j)):
                self._htab[i] = self._htab[j]
                i = j
        self._htab[i].val = -1
        self._hcount -= 1

    # -- order pool ----------------------------------------------------------------------------

    cdef int32_t _alloc(self) noexcept nogil:
        cdef int32_t s, i, new_cap
        cdef Order* no
        if self._ofree < 0:
            if self._ocap >= 1073741824:
                return -1
            new_cap = self._ocap * 2
            no = <Order*>realloc(self._orders, new_cap * sizeof(Order))
            if no == NULL:
                return -1
            self._orders = no
            for i in range(self._ocap, new_cap):
                self._orders[i].next = i + 1 if i + 1 < new_cap else -1
            self._ofree = self._ocap
            self._ocap = new_cap
        s = self._ofree
        self._ofree = self._orders[s].next
        return s

    cdef void _release(self, int32_t s) noexcept nogil:
        self._orders[s].next = self._ofree
        self._ofree = s

    # -- fills buffer ---------------------------------------------------------------------------

    cdef int _emit(self, int64_t taker, int64_t maker, int64_t price, int64_t qty) noexcept nogil:
        cdef FillBuf* f = &self._fills
        cdef int64_t nc
        if f.n == f.cap:
            nc = f.cap * 2
            if (_grow64(&f.op, nc) or _grow64(&f.taker, nc) or _grow64(&f.maker, nc)
                    or _grow64(&f.price, nc) or _grow64(&f.qty, nc)):
                return C_NO_MEMORY
            f.cap = nc
        f.op[f.n] = self._cur_op
        f.taker[f.n] = taker
        f.maker[f.n] = maker
        f.price[f.n] = price
        f.qty[f.n] = qty
        f.n += 1
        return C_OK

    # -- core operations (trust their input's types; validate its values) ---------------------

    cdef void _unlink(self, Ladder* L, int64_t li, int32_t s) noexcept nogil:
        """Take order s out of level li's queue (the level keeps its place in the ladder)."""
        cdef Order* o = &self._orders[s]
        cdef Level* lv = &L.levels[li]
        if o.prev >= 0:
            self._orders[o.prev].next = o.next
        else:
            lv.head = o.next
        if o.next >= 0:
            self._orders[o.next].prev = o.prev
        else:
            lv.tail = o.prev
        lv.qty -= o.qty
        L.total -= o.qty
        lv.count -= 1
        if lv.count == 0:
            ladder_unmark(L, li)

    cdef int _match(self, int64_t taker, int side, int64_t limit, int64_t* qty) noexcept nogil:
        """Fill up to qty against the opposite side at prices no worse than limit."""
        cdef Ladder* L = &self._lad[1 if side > 0 else 0]
        cdef Level* lv
        cdef Order* m
        cdef int64_t li, px, q
        cdef int32_t s, nxt
        while qty[0] > 0 and L.best >= 0:
            li = L.best
            px = L.base + li
            if (side > 0 and px > limit) or (side < 0 and px < limit):
                break
            lv = &L.levels[li]
            s = lv.head
            while s >= 0 and qty[0] > 0:
                m = &self._orders[s]
                q = m.qty if m.qty < qty[0] else qty[0]
                if self._emit(taker, m.id, px, q) != C_OK:
                    return C_NO_MEMORY
                qty[0] -= q
                m.qty -= q
                lv.qty -= q
                L.total -= q
                nxt = m.next
                if m.qty == 0:
                    lv.head = nxt
                    if nxt >= 0:
                        self._orders[nxt].prev = -1
                    else:
                        lv.tail = -1
                    lv.count -= 1
                    self._hdel(m.id)
                    self._release(s)
                    self._ocount -= 1
                s = nxt
            if lv.count == 0:
                ladder_unmark(L, li)
        return C_OK

    cdef int _rest(self, int64_t oid, int side, int64_t price, int64_t qty) noexcept nogil:
        cdef Ladder* L = &self._lad[0 if side > 0 else 1]
        cdef int64_t li = ladder_index(L, price)
        cdef int32_t s
        cdef Order* o
        cdef Level* lv
        if li == -1:
            return C_BAD_PRICE
        if li < 0:
            return C_NO_MEMORY
        s = self._alloc()
        if s < 0:
            return C_NO_MEMORY
        if self._hput(oid, s) != C_OK:
            self._release(s)
            return C_NO_MEMORY
        o = &self._orders[s]
        o.id = oid
        o.price = price
        o.qty = qty
        o.side = side
        lv = &L.levels[li]
        o.prev = lv.tail
        o.next = -1
        if lv.tail >= 0:
            self._orders[lv.tail].next = s
        else:
            lv.head = s
        lv.tail = s
        lv.qty += qty
        L.total += qty
        lv.count += 1
        if lv.count == 1:
            ladder_mark(L, li)
        self._ocount += 1
        return C_OK

    cdef int _check_rest_price(self, int side, int64_t price) noexcept nogil:
        """Would a remainder at this price fit its side's window? (checked before matching, so
        a refused order changes nothing)."""
        cdef Ladder* L = &self._lad[0 if side > 0 else 1]
        cdef int64_t lo, hi
        if L.nlevels == 0 or L.base < 0:
            return C_OK
        lo = L.base + (L.best if not L.is_bid else ladder_above(L, -1))
        hi = L.base + (L.best if L.is_bid else ladder_below(L, L.cap))
        lo = price if price < lo else lo
        hi = price if price > hi else hi
        return C_OK if hi - lo + 1 <= LADDER_MAX_SPAN else C_BAD_PRICE

    cdef int add_c(self, int64_t oid, int side, int64_t price, int64_t qty,
                   int kind) noexcept nogil:
        """Add an order. kind K_LIMIT / K_IOC (price in ticks) or K_MARKET (price ignored)."""
        cdef int rc
        cdef int64_t limit
        if side != 1 and side != -1:
            return C_BAD_SIDE
        if qty <= 0:
            return C_BAD_QTY
        if kind != K_MARKET and price <= 0:
            return C_BAD_PRICE
        if self._hfind(oid) >= 0:
            return C_DUPLICATE_ID
        if kind == K_MARKET:
            if self._lad[1 if side > 0 else 0].best < 0:
                return C_NO_LIQUIDITY
            limit = INT64_MAX if side > 0 else -1
        else:
            limit = price
            if kind == K_LIMIT:
                rc = self._check_rest_price(side, price)
                if rc != C_OK:
                    return rc
                if qty > INT64_MAX - self._lad[0 if side > 0 else 1].total:
                    return C_BAD_QTY        # resting it could overflow the side's total
        rc = self._match(oid, side, limit, &qty)
        if rc != C_OK:
            return rc
        if qty > 0 and kind == K_LIMIT:
            return self._rest(oid, side, price, qty)
        return C_OK

    cdef int cancel_c(self, int64_t oid, int64_t* remaining) noexcept nogil:
        cdef int32_t s = self._hfind(oid)
        cdef Order* o
        cdef Ladder* L
        if s < 0:
            return C_UNKNOWN_ID
        o = &self._orders[s]
        L = &self._lad[0 if o.side > 0 else 1]
        remaining[0] = o.qty
        self._unlink(L, o.price - L.base, s)
        self._hdel(oid)
        self._release(s)
        self._ocount -= 1
        return C_OK

    cdef int modify_c(self, int64_t oid, int64_t price, int64_t qty) noexcept nogil:
        """New remaining qty and price (ticks; 0 keeps the price). A qty decrease at the same
        price keeps time priority; anything else re-enters at the tail and may match."""
        cdef int32_t s = self._hfind(oid)
        cdef Order* o
        cdef Ladder* L
        cdef int64_t li, old
        cdef int side
        if s < 0:
            return C_UNKNOWN_ID
        if qty <= 0:
            return C_BAD_QTY
        o = &self._orders[s]
        if price == 0:
            price = o.price
        if price < 0:
            return C_BAD_PRICE
        side = o.side
        L = &self._lad[0 if side > 0 else 1]
        if price == o.price:
            if qty == o.qty:
                return C_OK
            if qty < o.qty:
                L.levels[o.price - L.base].qty -= o.qty - qty
                L.total -= o.qty - qty
                o.qty = qty
                return C_OK
        elif self._check_rest_price(side, price) != C_OK:
            return C_BAD_PRICE
        if qty - o.qty > INT64_MAX - L.total:
            return C_BAD_QTY                # the side's total would overflow int64
        # lose priority: take it out, then add it again as a new limit order with the same id
        self._unlink(L, o.price - L.base, s)
        self._hdel(oid)
        self._release(s)
        self._ocount -= 1
        return self.add_c(oid, side, price, qty, K_LIMIT)

    # -- Python face ----------------------------------------------------------------------------

    cdef int64_t _ticks(self, object price) except? -1:
        cdef double p = price
        cdef double t = p * self._inv_tick
        cdef double r = floor(t + 0.5)
        if not (p > 0.0 and isfinite(p)) or fabs(t - r) > fmax(1e-9, 8.0 * DBL_EPSILON * r):
            raise _error(C_BAD_PRICE, f"got {price!r} with tick size {self.tick_size!r}")
        if r > 4.0e18:
            raise _error(C_BAD_PRICE, f"got {price!r}")
        return <int64_t>r

    cdef list _take_fills(self):
        cdef FillBuf* f = &self._fills
        cdef list out = []
        cdef int64_t i
        cdef Fill x
        for i in range(f.n):
            x = Fill.__new__(Fill)
            x.taker_id = f.taker[i]
            x.maker_id = f.maker[i]
            x.price_ticks = f.price[i]
            x.price = _to_price(f.price[i], self.tick_size, self._per)
            x.qty = f.qty[i]
            out.append(x)
        f.n = 0
        return out

    def add(self, int64_t order_id, side, int64_t qty, price=None, tif="GTC"):
        """Add an order; return its fills (list of Fill, in execution order).

        Parameters
        ----------
        order_id : int
            Unique among resting orders.
        side : {"buy", "sell"}
        qty : int
            Positive quantity (units).
        price : float or None
            Limit price on the tick grid; None for a market order (fills what it can at the
            best prices, the rest is cancelled; with nothing to hit it is rejected).
        tif : {"GTC", "DAY", "IOC"}
            GTC/DAY rest their remainder; IOC cancels it.

        Raises
        ------
        OrderBookError
            With ``code`` ERR_DUPLICATE_ID, ERR_BAD_QTY, ERR_BAD_PRICE, ERR_BAD_SIDE or
            ERR_NO_LIQUIDITY; the book is unchanged.
        """
        cdef int s = _parse_side(side)
        cdef int kind
        cdef int64_t t = 0
        cdef int rc
        kind = _parse_tif(tif)              # validated for market orders too
        if price is None:
            kind = K_MARKET
        else:
            t = self._ticks(price)
        self._fills.n = 0
        rc = self.add_c(order_id, s, t, qty, kind)
        if rc != C_OK:
            self._fills.n = 0
            raise _error(rc, f"order_id={order_id}, qty={qty}, price={price!r}")
        if self._fills.n == 0:
            return []
        return self._take_fills()

    def cancel(self, int64_t order_id):
        """Remove a resting order; return its remaining quantity."""
        cdef int64_t rem = 0
        cdef int rc = self.cancel_c(order_id, &rem)
        if rc != C_OK:
            raise _error(rc, f"order_id={order_id}")
        return rem

    def modify(self, int64_t order_id, qty=None, price=None):
        """Change a resting order's remaining qty and/or price; return fills (a new price may
        cross). A qty decrease at the same price keeps time priority; a qty increase or a price
        change moves the order to the tail of its (new) level."""
        cdef int32_t s = self._hfind(order_id)
        cdef int64_t q, t
        cdef int rc
        if s < 0:
            raise _error(C_UNKNOWN_ID, f"order_id={order_id}")
        q = self._orders[s].qty if qty is None else qty
        t = 0 if price is None else self._ticks(price)
        self._fills.n = 0
        rc = self.modify_c(order_id, t, q)
        if rc != C_OK:
            self._fills.n = 0
            raise _error(rc, f"order_id={order_id}, qty={qty!r}, price={price!r}")
        if self._fills.n == 0:
            return []
        return self._take_fills()

    def apply(self, ops):
        """Apply an array of OP_DTYPE operations in one call, without the GIL.

        Returns a BatchResult: ``codes`` (int8 per op, OK or a negative ERR_* code; a refused
        op changes nothing) and the fills as arrays ``fill_op``, ``taker_id``, ``maker_id``,
        ``price_ticks``, ``qty``. Prices in ops are integer ticks.
        """
        cdef cnp.ndarray arr = np.ascontiguousarray(ops)
        if arr.dtype != OP_DTYPE:
            try:
                arr = np.ascontiguousarray(arr.astype(OP_DTYPE))
            except (TypeError, ValueError) as exc:
                raise ValueError(f"ops: expected an array of OP_DTYPE records: {exc}") from None
        cdef Py_ssize_t n = arr.shape[0] if arr.ndim == 1 else -1
        if n < 0:
            raise ValueError("ops: expected a 1-d array of OP_DTYPE records")
        cdef const BookOp* op = <const BookOp*>cnp.PyArray_DATA(arr)
        cdef cnp.ndarray codes = np.empty(n, dtype=np.int8)
        cdef int8_t* cp = <int8_t*>cnp.PyArray_DATA(codes)
        cdef Py_ssize_t i
        cdef int64_t rem
        cdef int rc
        self._fills.n = 0
        with nogil:
            for i in range(n):
                self._cur_op = i
                if op[i].op == 0:
                    rc = self.add_c(op[i].id, op[i].side, op[i].price, op[i].qty, K_LIMIT)
                elif op[i].op == 1:
                    rc = self.add_c(op[i].id, op[i].side, op[i].price, op[i].qty, K_IOC)
                elif op[i].op == 2:
                    rc = self.add_c(op[i].id, op[i].side, 0, op[i].qty, K_MARKET)
                elif op[i].op == 3:
                    rc = self.cancel_c(op[i].id, &rem)
                elif op[i].op == 4:
                    rc = self.modify_c(op[i].id, op[i].price, op[i].qty)
                else:
                    rc = C_BAD_OP
                cp[i] = <int8_t>rc
            self._cur_op = 0
        cdef int64_t m = self._fills.n
        res = BatchResult(codes, _copy64(self._fills.op, m), _copy64(self._fills.taker, m),
                          _copy64(self._fills.maker, m), _copy64(self._fills.price, m),
                          _copy64(self._fills.qty, m))
        self._fills.n = 0
        if (codes == C_NO_MEMORY).any():
            raise MemoryError("order book: out of memory during apply")
        return res

    # -- queries --------------------------------------------------------------------------------

    cdef object _top(self, int k):
        cdef Ladder* L = &self._lad[k]
        if L.best < 0:
            return None
        return (_to_price(L.base + L.best, self.tick_size, self._per), L.levels[L.best].qty)

    def best_bid(self):
        """(price, total qty) of the best bid level, or None."""
        return self._top(0)

    def best_ask(self):
        """(price, total qty) of the best ask level, or None."""
        return self._top(1)

    def spread(self):
        """best ask - best bid, or None if a side is empty."""
        if self._lad[0].best < 0 or self._lad[1].best < 0:
            return None
        return _to_price((self._lad[1].base + self._lad[1].best)
                         - (self._lad[0].base + self._lad[0].best), self.tick_size, self._per)

    def mid(self):
        """(best bid + best ask) / 2, or None if a side is empty."""
        if self._lad[0].best < 0 or self._lad[1].best < 0:
            return None
        return _to_price(((self._lad[1].base + self._lad[1].best)
                          + (self._lad[0].base + self._lad[0].best)) * 0.5,
                         self.tick_size, self._per)

    def depth(self, int n=5):
        """(bid_px, bid_qty, ask_px, ask_qty): the best n levels of each side, best first."""
        return _depth(self._lad, n, self.tick_size, self._per)

    def avg_fill_price(self, side, int64_t qty):
        """Average price a taker order of qty on side would get now (None if the book cannot
        fill it all): the slippage estimate."""
        cdef int s = _parse_side(side)
        if qty <= 0:
            raise _error(C_BAD_QTY, f"got {qty}")
        return _avg_fill(&self._lad[1 if s > 0 else 0], qty, self.tick_size, self._per)

    def queue_ahead(self, int64_t order_id):
        """Total quantity resting ahead of the order at its price level."""
        cdef int32_t s = self._hfind(order_id)
        cdef int64_t ahead = 0
        cdef int32_t k
        if s < 0:
            raise _error(C_UNKNOWN_ID, f"order_id={order_id}")
        k = self._orders[s].prev
        while k >= 0:
            ahead += self._orders[k].qty
            k = self._orders[k].prev
        return ahead

    def get(self, int64_t order_id):
        """(side, price, remaining qty) of a resting order, or None."""
        cdef int32_t s = self._hfind(order_id)
        if s < 0:
            return None
        o = &self._orders[s]
        return ("buy" if o.side > 0 else "sell", _to_price(o.price, self.tick_size, self._per), o.qty)

    def resting_qty(self, side):
        """Total resting quantity on a side."""
        return self._lad[0 if _parse_side(side) > 0 else 1].total

    def levels(self, side):
        """Number of non-empty price levels on a side."""
        return self._lad[0 if _parse_side(side) > 0 else 1].nlevels

    def __len__(self):
        return self._ocount

    def __contains__(self, order_id):
        return self._hfind(order_id) >= 0

    def __repr__(self):
        return (f"OrderBook(tick_size={self.tick_size!r}, orders={self._ocount}, "
                f"best_bid={self.best_bid()}, best_ask={self.best_ask()})")


cdef int _grow64(int64_t** p, int64_t n) noexcept nogil:
    cdef int64_t* q = <int64_t*>realloc(p[0], n * sizeof(int64_t))
    if q == NULL:
        return 1
    p[0] = q
    return 0


cdef cnp.ndarray _copy64(const int64_t* src, int64_t n):
    cdef cnp.ndarray a = np.empty(n, dtype=np.int64)
    if n > 0:
        memcpy(cnp.PyArray_DATA(a), src, n * sizeof(int64_t))
    return a


cdef tuple _depth(Ladder* lad, int n, double tick, double per):
    cdef int k, j
    cdef int64_t i
    cdef Ladder* L
    cdef cnp.ndarray px, qt
    cdef double* pp
    cdef int64_t* qp
    out = []
    if n < 0:
        raise ValueError(f"n: must be >= 0, got {n}")
    for k in range(2):
        L = &lad[k]
        m = n if n < L.nlevels else L.nlevels
        px = np.empty(m, dtype=np.float64)
        qt = np.empty(m, dtype=np.int64)
        pp = <double*>cnp.PyArray_DATA(px)
        qp = <int64_t*>cnp.PyArray_DATA(qt)
        i = L.best
        for j in range(m):
            pp[j] = _to_price(L.base + i, tick, per)
            qp[j] = L.levels[i].qty
            i = ladder_next(L, i)
        out.append(px)
        out.append(qt)
    return tuple(out)


cdef object _avg_fill(Ladder* L, int64_t qty, double tick, double per):
    cdef int64_t i = L.best, left = qty, q
    cdef double notional = 0.0
    while i >= 0 and left > 0:
        q = L.levels[i].qty if L.levels[i].qty < left else left
        notional += <double>q * <double>(L.base + i)
        left -= q
        i = ladder_next(L, i)
    if left > 0:
        return None
    return _to_price(notional / <double>qty, tick, per)


# ---- the L2 book -------------------------------------------------------------------------------

cdef class L2Book:
    """Aggregated depth (price level -> total qty) of one instrument, from a feed's snapshots
    and level updates (Angel One's snap-quote gives 5 levels a side)."""

    def __cinit__(self, double tick_size=0.05):
        if not (tick_size > 0.0 and isfinite(tick_size)):
            raise ValueError(f"tick_size: must be a positive number, got {tick_size!r}")
        self.tick_size = tick_size
        self._inv_tick = 1.0 / tick_size
        self._per = _per_unit(tick_size)
        if (ladder_init(&self._lad[0], True) != C_OK
                or ladder_init(&self._lad[1], False) != C_OK):
            raise MemoryError()

    def __dealloc__(self):
        ladder_free(&self._lad[0])
        ladder_free(&self._lad[1])

    cdef int64_t _ticks(self, double p) except? -1:
        cdef double t = p * self._inv_tick
        cdef double r = floor(t + 0.5)
        if not (p > 0.0 and isfinite(p)) or fabs(t - r) > fmax(1e-9, 8.0 * DBL_EPSILON * r):
            raise _error(C_BAD_PRICE, f"got {p!r} with tick size {self.tick_size!r}")
        return <int64_t>r

    cdef int _set(self, int k, int64_t price, int64_t qty) noexcept nogil:
        cdef Ladder* L = &self._lad[k]
        cdef int64_t li
        cdef Level* lv
        if qty == 0:
            li = price - L.base
            if L.base < 0 or li < 0 or li >= L.cap or L.levels[li].qty == 0:
                return C_OK
            L.total -= L.levels[li].qty
            L.levels[li].qty = 0
            L.levels[li].count = 0
            ladder_unmark(L, li)
            return C_OK
        li = ladder_index(L, price)
        if li == -1:
            return C_BAD_PRICE
        if li < 0:
            return C_NO_MEMORY
        lv = &L.levels[li]
        if qty - lv.qty > INT64_MAX - L.total:
            return C_BAD_QTY                # the side's total would overflow int64
        L.total += qty - lv.qty
        if lv.qty == 0:
            lv.count = 1
            lv.qty = qty
            ladder_mark(L, li)
        else:
            lv.qty = qty
        return C_OK

    def update(self, side, price, int64_t qty):
        """Set the total qty at a price level (0 removes the level)."""
        cdef int k = 0 if _parse_side(side) > 0 else 1
        cdef int64_t t = self._ticks(price)
        cdef int rc
        if qty < 0:
            raise _error(C_BAD_QTY, f"qty must be >= 0, got {qty}")
        rc = self._set(k, t, qty)
        if rc != C_OK:
            raise _error(rc, f"price={price!r}")

    def apply_snapshot(self, bid_px, bid_qty, ask_px, ask_qty):
        """Replace the whole book with these levels (qty 0 levels are skipped). Validated
        first: a bad level raises OrderBookError and leaves the book as it was."""
        sides = []
        for name, px, qt in (("bid", bid_px, bid_qty), ("ask", ask_px, ask_qty)):
            p = np.asarray(px, dtype=np.float64).ravel()
            q = np.asarray(qt).ravel()
            if p.shape != q.shape:
                raise _error(C_BAD_QTY, f"{name} prices and quantities differ in length")
            if q.size and (q.dtype.kind not in "iu" and not np.all(q == np.floor(q))):
                raise _error(C_BAD_QTY, f"{name} quantities must be integers")
            q = q.astype(np.int64)
            if (q < 0).any():
                raise _error(C_BAD_QTY, f"{name} quantities must be >= 0")
            t = [self._ticks(x) for x in p]
            if len(t) and max(t) - min(t) >= LADDER_MAX_SPAN:
                raise _error(C_BAD_PRICE, f"{name} levels span too many ticks")
            sides.append((t, q))
        ladder_clear(&self._lad[0])
        ladder_clear(&self._lad[1])
        for k in range(2):
            t, q = sides[k]
            for j in range(len(t)):
                if q[j] > 0:
                    if self._set(k, t[j], q[j]) != C_OK:
                        raise MemoryError()

    def clear(self):
        """Remove every level."""
        ladder_clear(&self._lad[0])
        ladder_clear(&self._lad[1])

    def best_bid(self):
        L = &self._lad[0]
        return None if L.best < 0 else (_to_price(L.base + L.best, self.tick_size, self._per),
                                         L.levels[L.best].qty)

    def best_ask(self):
        L = &self._lad[1]
        return None if L.best < 0 else (_to_price(L.base + L.best, self.tick_size, self._per),
                                         L.levels[L.best].qty)

    def spread(self):
        if self._lad[0].best < 0 or self._lad[1].best < 0:
            return None
        return _to_price((self._lad[1].base + self._lad[1].best)
                         - (self._lad[0].base + self._lad[0].best), self.tick_size, self._per)

    def mid(self):
        if self._lad[0].best < 0 or self._lad[1].best < 0:
            return None
        return _to_price(((self._lad[1].base + self._lad[1].best)
                          + (self._lad[0].base + self._lad[0].best)) * 0.5,
                         self.tick_size, self._per)

    def depth(self, int n=5):
        """(bid_px, bid_qty, ask_px, ask_qty): the best n levels of each side, best first."""
        return _depth(self._lad, n, self.tick_size, self._per)

    def avg_fill_price(self, side, int64_t qty):
        cdef int s = _parse_side(side)
        if qty <= 0:
            raise _error(C_BAD_QTY, f"got {qty}")
        return _avg_fill(&self._lad[1 if s > 0 else 0], qty, self.tick_size, self._per)

    def levels(self, side):
        return self._lad[0 if _parse_side(side) > 0 else 1].nlevels

    def __repr__(self):
        return (f"L2Book(tick_size={self.tick_size!r}, best_bid={self.best_bid()}, "
                f"best_ask={self.best_ask()})")
