# Shared C types of the kernels (compiled into each module that cimports it; STYLE.md).
from libc.stdint cimport int64_t, int32_t, uint8_t

ctypedef double f64
ctypedef int64_t i64        # prices in ticks or paise, quantities in units
ctypedef Py_ssize_t idx
