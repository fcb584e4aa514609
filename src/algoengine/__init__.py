"""algoengine: algorithmic options trading for NSE index options through Angel One.

The hot paths (Greeks and implied volatility, order book, risk checks) are compiled Cython
kernels in :mod:`algoengine._ext`; the public faces (:mod:`algoengine.greeks`, ...) validate
input and delegate to them.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("algoengine")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
