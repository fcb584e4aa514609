# C-facing declarations of the order-book kernel algoengine._ext.orderbook (ext/orderbook.pyx).
#
# Named with the module's full dotted name so that Cython finds it for a module built as
# algoengine._ext.orderbook (see ext/algoengine._ext.greeks.pxd).
#
# Layout: one Ladder per side, an array of price levels over a window of integer ticks
# [base, base + cap) with an occupancy bitmap (best price and next level by bit scan); orders in
# a pool of fixed-size records linked FIFO per level; an open-addressing hash from order id to
# pool slot. Everything is plain C memory owned by the book; no Python object per order.

cimport cython
from libc.stdint cimport int8_t, int32_t, int64_t, uint8_t, uint64_t

cdef enum:
    LADDER_MIN_CAP = 1024
    LADDER_MAX_SPAN = 4194304       # 2**22 ticks between the lowest and highest level of a side

ctypedef struct Level:
    int64_t qty                     # total resting quantity at this price
    int32_t head                    # first order (pool slot) in time priority, -1 if none
    int32_t tail                    # last order, -1 if none
    int32_t count                   # number of orders
    int32_t _pad

ctypedef struct Ladder:
    Level* levels                   # cap levels; levels[i] is price base + i
    uint64_t* bits                  # cap / 64 words; bit i set when level i is not empty
    int64_t base                    # price in ticks of levels[0]
    int64_t cap                     # power of two, >= LADDER_MIN_CAP
    int64_t best                    # index of the best level (bids: highest, asks: lowest), -1
    int64_t nlevels                 # number of non-empty levels
    int64_t total                   # resting qty over all levels (kept <= INT64_MAX)
    int8_t is_bid

ctypedef struct Order:
    int64_t id
    int64_t price                   # ticks
    int64_t qty                     # remaining quantity
    int32_t prev                    # pool slots, -1 at the ends; next doubles as free-list link
    int32_t next
    int8_t side                     # +1 buy, -1 sell

ctypedef struct HEntry:             # id -> pool slot; one cache line holds four
    int64_t key
    int32_t val                     # -1: empty
    int32_t _pad

ctypedef struct FillBuf:
    int64_t* op                     # index of the op that caused the fill (batch), or 0
    int64_t* taker
    int64_t* maker
    int64_t* price
    int64_t* qty
    int64_t n
    int64_t cap

ctypedef struct BookOp:             # one record of OP_DTYPE, packed as numpy lays it out
    uint8_t op
    int8_t side
    int64_t id
    int64_t price
    int64_t qty


@cython.final
cdef class OrderBook:
    cdef readonly double tick_size
    cdef double _inv_tick
    cdef double _per               # ticks per price unit when tick = 1/n, else 0
    cdef Ladder _lad[2]             # [0] bids, [1] asks
    cdef Order* _orders
    cdef int32_t _ocap
    cdef int32_t _ofree
    cdef int64_t _ocount
    cdef HEntry* _htab
    cdef int64_t _hcap
    cdef int64_t _hcount
    cdef int _hshift
    cdef FillBuf _fills
    cdef int64_t _cur_op

    # kernel doors: trust types, validate values, return C_OK or a negative error code
    cdef int add_c(self, int64_t oid, int side, int64_t price, int64_t qty, int kind) noexcept nogil
    cdef int cancel_c(self, int64_t oid, int64_t* remaining) noexcept nogil
    cdef int modify_c(self, int64_t oid, int64_t price, int64_t qty) noexcept nogil
    # internals
    cdef int32_t _hfind(self, int64_t key) noexcept nogil
    cdef int _hput(self, int64_t key, int32_t val) noexcept nogil
    cdef int _hgrow(self) noexcept nogil
    cdef void _hdel(self, int64_t key) noexcept nogil
    cdef int32_t _alloc(self) noexcept nogil
    cdef void _release(self, int32_t s) noexcept nogil
    cdef int _emit(self, int64_t taker, int64_t maker, int64_t price, int64_t qty) noexcept nogil
    cdef void _unlink(self, Ladder* L, int64_t li, int32_t s) noexcept nogil
    cdef int _match(self, int64_t taker, int side, int64_t limit, int64_t* qty) noexcept nogil
    cdef int _rest(self, int64_t oid, int side, int64_t price, int64_t qty) noexcept nogil
    cdef int _check_rest_price(self, int side, int64_t price) noexcept nogil
    cdef int64_t _ticks(self, object price) except? -1
    cdef list _take_fills(self)
    cdef object _top(self, int k)


@cython.final
cdef class L2Book:
    cdef readonly double tick_size
    cdef double _inv_tick
    cdef double _per               # ticks per price unit when tick = 1/n, else 0
    cdef Ladder _lad[2]

    cdef int64_t _ticks(self, double p) except? -1
    cdef int _set(self, int k, int64_t price, int64_t qty) noexcept nogil
