"""Option prices, Greeks and implied volatility: Black-Scholes-Merton and Black-76.

The public face of the compiled kernel :mod:`algoengine._ext.greeks`. The functions validate
their input once (in compiled code, so the scalar path stays cheap) and run compiled loops
without the GIL over arrays.

Models
------
- Black-Scholes-Merton (``price``, ``greeks``, ``implied_vol``): an option on spot ``S`` with a
  continuous dividend or carry yield ``q``. NSE index options are European; use ``q`` for the
  index dividend yield, or Black-76 on the futures price.
- Black-76 (``black76_price``, ``black76_greeks``, ``black76_implied_vol``): an option on a
  forward ``F`` (e.g. the NIFTY future of the same expiry), discounted at ``r``.

Units
-----
=========  ===========================================================================
S, F, K    price units of the underlying (index points), positive
T          years (calendar time: minutes / 525600, days / 365); ``T == 0`` is expiry
r, q       continuously compounded, per year, as decimals (0.07 is 7%)
sigma      per sqrt(year), as a decimal (0.2 is 20%)
delta      dV/dS (Black-76: dV/dF)
gamma      d2V/dS2 (Black-76: d2V/dF2)
vega       dV/dsigma per 1.0 of sigma (divide by 100 for "per vol point")
theta      -dV/dT per year (divide by 365 for "per calendar day")
rho        dV/dr per 1.0 of r (Black-76 holds F fixed: rho = -T * price)
=========  ===========================================================================

Flags are ``"c"``/``"p"`` (also ``"call"``/``"put"``, ``"CE"``/``"PE"``, any case) or +1/-1,
or arrays of them; a float64 array of +1.0/-1.0 is the cheapest form for large arrays.

Inputs broadcast like numpy. All-scalar (Python ``float``/``int``) input takes the scalar path
and returns floats (``Greeks`` for the Greeks); anything else returns float64 arrays
(``GreeksArrays`` for the Greeks).

Bad input
---------
Scalar input raises ``ValueError`` naming the argument (``S``/``F``, ``K``, ``T``, ``r``,
``sigma``, ``q``, ``flag``, ``option_price``) or, for implied volatility, the no-arbitrage
bound that the price breaks. Array input never raises for bad numbers: the affected rows are
NaN in every output, so one bad quote does not cost a whole chain; an unknown flag or shapes
that do not broadcast still raise ``ValueError``.

Expiry day
----------
``T == 0`` (or ``sigma == 0``) gives the discounted intrinsic value of the forward and finite
limits for every Greek (gamma and vega 0; delta 0 or +-exp(-qT), half of that exactly at the
money). ``T`` of a few minutes is computed by the full formulas, accurately.

Threads
-------
Arrays of 32,768 options or more (implied volatility: 1,024 or more) are split across
``get_num_threads()`` threads (OpenMP;
default: the machine's cores or ``OMP_NUM_THREADS``); ``set_num_threads(n)`` changes it.
"""

from __future__ import annotations

from algoengine._ext import load as _load

_k = _load("greeks")

price = _k.price
greeks = _k.greeks
implied_vol = _k.implied_vol
black76_price = _k.black76_price
black76_greeks = _k.black76_greeks
black76_implied_vol = _k.black76_implied_vol
Greeks = _k.Greeks
GreeksArrays = _k.GreeksArrays
set_num_threads = _k.set_num_threads
get_num_threads = _k.get_num_threads

__all__ = [
    "Greeks",
    "GreeksArrays",
    "black76_greeks",
    "black76_implied_vol",
    "black76_price",
    "get_num_threads",
    "greeks",
    "implied_vol",
    "price",
    "set_num_threads",
]
