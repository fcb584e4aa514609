"""Shared inputs, the timing helper and the ratio summary for the benchmark suite.

Run:  cd /work/main && .venv/bin/python -m pytest benchmarks -q
Smoke (each benchmark once, outputs still checked):  ... -q --benchmark-disable

All inputs are built here, outside any timer, from one fixed seed. The
``pytest_terminal_summary`` hook at the bottom prints, per group, each
benchmark's mean divided by the group's baseline (numpy/scipy for the array
groups, py_vollib for the scalar groups) and the time per option.
"""

from __future__ import annotations

import math
import os
import resource
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # so `import peers` works under any --import-mode
    sys.path.insert(0, str(HERE))

import peers  # noqa: E402

# ---------------------------------------------------------------------------
# constants of the suite
# ---------------------------------------------------------------------------
SEED = 20250115
N_BIG = 1_000_000
N_CHAIN = 1_000
R = 0.07  # scalar rate for the array groups
Q = 0.012  # scalar dividend / carry yield for the array groups
MINUTE = 1.0 / 525_600.0  # one minute in years (365-day year)

warnings.filterwarnings("ignore", message="py_vollib is deprecated", category=DeprecationWarning)


# ---------------------------------------------------------------------------
# our kernel (may not be built yet)
# ---------------------------------------------------------------------------
def _load_ours():
    try:
        from algoengine import greeks

        return greeks, None
    except Exception as first:
        src = HERE.parent / "src"
        if src.is_dir() and str(src) not in sys.path:
            sys.path.insert(0, str(src))
            for mod in [m for m in sys.modules if m == "algoengine" or m.startswith("algoengine.")]:
                del sys.modules[mod]
            try:
                from algoengine import greeks

                return greeks, None
            except Exception as exc:
                return None, f"{type(exc).__name__}: {exc}"
        return None, f"{type(first).__name__}: {first}"


OURS, OURS_ERROR = _load_ours()


@pytest.fixture(scope="session")
def ours():
    if OURS is None:
        pytest.skip(f"algoengine.greeks is not importable (kernel not built?): {OURS_ERROR}")
    return OURS


@pytest.fixture(scope="session")
def numba_ready():
    """Compile all numba peers once, outside the timers."""
    if peers.nb is None:
        pytest.skip(peers.NUMBA_ERROR)
    peers.warm_up_numba()
    return peers.numba_threads()


@pytest.fixture(scope="session")
def pvv_status():
    return peers.pvv_status()


# ---------------------------------------------------------------------------
# inputs
# ---------------------------------------------------------------------------
def random_options(n: int, rng: np.random.Generator) -> dict:
    """n options: moneyness K/S in [0.5, 2] (log-uniform), T in [1 minute, 2y]
    (log-uniform), sigma in [0.01, 3] (log-uniform), S in [50, 150], calls and
    puts mixed 50/50 (phi = +1.0 / -1.0, float64)."""
    S = rng.uniform(50.0, 150.0, n)
    K = S * np.exp(rng.uniform(math.log(0.5), math.log(2.0), n))
    T = np.exp(rng.uniform(math.log(MINUTE), math.log(2.0), n))
    sigma = np.exp(rng.uniform(math.log(0.01), math.log(3.0), n))
    phi = np.where(rng.random(n) < 0.5, 1.0, -1.0)
    return {"phi": phi, "S": S, "K": K, "T": T, "sigma": sigma, "r": R, "q": Q, "n": n}


def chain_options() -> dict:
    """A 1,000-option chain: one underlying (S = 100), one expiry (30 days),
    500 strikes from 50 to 200, a call and a put at each, with a smile.
    S and T are still passed per option (arrays), like the 10^6 case."""
    strikes = np.linspace(50.0, 200.0, N_CHAIN // 2)
    K = np.repeat(strikes, 2)
    phi = np.tile([1.0, -1.0], N_CHAIN // 2)
    S = np.full(N_CHAIN, 100.0)
    T = np.full(N_CHAIN, 30.0 / 365.0)
    k = np.log(K / 100.0)
    sigma = 0.18 - 0.10 * k + 0.35 * k * k
    return {"phi": phi, "S": S, "K": K, "T": T, "sigma": sigma, "r": R, "q": Q, "n": N_CHAIN}


def iv_options(n: int, rng: np.random.Generator) -> dict:
    """n options with prices computed (accurately, peers.reference_price) from known sigmas.

    Drawn like ``random_options`` and kept when the price carries the sigma:
      * out of the money: normalised price >= 1e-290 -- this keeps the deep
        wings, ~1/3 of the set has price < 1e-10 and ~1/10 < 1e-100;
      * in the money: time value >= 1e-3 of the price (below that the
        time value is lost in the rounding of the intrinsic value for any solver).
    Out-of-the-money prices that underflow to 0 are unsolvable and left out.
    """
    parts, have = [], 0
    while have < n:
        d = random_options(2 * n, rng)
        phi, S, K, T, sigma = d["phi"], d["S"], d["K"], d["T"], d["sigma"]
        x = np.log(S / K) + (R - Q) * T
        b = peers.normalised_otm_call(-np.abs(x), sigma * np.sqrt(T))
        price = peers.reference_price(phi, S, K, T, R, sigma, Q)
        fwd = np.exp(-R * T) * S * np.exp((R - Q) * T)  # discounted forward
        tv = np.exp(-R * T) * np.sqrt(S * np.exp((R - Q) * T) * K) * b
        itm = phi * x > 0
        keep = (b >= 1e-290) & (price >= 1e-290) & (~itm | (tv >= 1e-3 * fwd))
        parts.append(
            {
                k: v[keep]
                for k, v in {
                    "phi": phi,
                    "S": S,
                    "K": K,
                    "T": T,
                    "sigma": sigma,
                    "price": price,
                }.items()
            }
        )
        have += int(keep.sum())
    out = {k: np.ascontiguousarray(np.concatenate([p[k] for p in parts])[:n]) for k in parts[0]}
    out.update(r=R, q=Q, n=n)
    return out


def settle_machine(seconds: float = 1.0, mb: int = 48) -> None:
    """Keep every core allocating, touching and computing for a moment before any timer.

    Measured here: in a fresh process the first ~0.5 s of two-thread calls on 10^6 options
    ran 3-5x slower than the steady state (40 ms, then 9 ms), whoever ran first, while
    one-thread calls were steady; churning big (huge-page backed) blocks on every core first
    gives every implementation the same settled machine. numpy releases the GIL in these
    calls, so plain threads keep all cores busy.
    """
    import threading
    import time

    stop = time.perf_counter() + seconds

    def churn() -> None:
        while time.perf_counter() < stop:
            block = np.empty(mb * 1024 * 1024 // 8)
            np.exp(block.fill(-1.0) or block, out=block)
            del block

    workers = [threading.Thread(target=churn) for _ in range(os.cpu_count() or 1)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()


@pytest.fixture(scope="session")
def big():
    opts = random_options(N_BIG, np.random.default_rng(SEED))
    settle_machine()
    return opts


@pytest.fixture(scope="session")
def big_ref(big):
    """numpy/scipy baseline output on the 10^6 set: the reference for every check."""
    return peers.numpy_greeks(big["phi"], big["S"], big["K"], big["T"], R, big["sigma"], Q)


@pytest.fixture(scope="session")
def chain():
    return chain_options()


@pytest.fixture(scope="session")
def chain_ref(chain):
    return peers.numpy_greeks(
        chain["phi"], chain["S"], chain["K"], chain["T"], R, chain["sigma"], Q
    )


@pytest.fixture(scope="session")
def ivset():
    return iv_options(N_BIG, np.random.default_rng(SEED + 1))


# ---------------------------------------------------------------------------
# timing helper
# ---------------------------------------------------------------------------
class Bench:
    """Wraps the pytest-benchmark fixture and fills ``extra_info``.

    extra_info always gets ``impl``, ``n_options``, ``baseline`` and -- when
    timing is enabled -- ``mean_s``, ``per_option_ns`` and ``options_per_sec``.
    """

    def __init__(self, benchmark):
        self.benchmark = benchmark
        self.extra_info = benchmark.extra_info

    def _label(self, impl, n_options, baseline, extra):
        self.extra_info.update(
            impl=impl, n_options=int(n_options), baseline=bool(baseline), **extra
        )

    def _finish(self):
        st = self.benchmark.stats
        if st is not None and st.stats is not None and st.stats.rounds:
            mean = st.stats.mean
            n = self.extra_info["n_options"]
            self.extra_info["mean_s"] = mean
            self.extra_info["per_option_ns"] = mean / n * 1e9
            self.extra_info["options_per_sec"] = n / mean
        else:
            self.extra_info["per_option_ns"] = None  # --benchmark-disable: not timed

    def pedantic(
        self,
        fn,
        *args,
        impl,
        n_options,
        rounds,
        warmup_rounds=1,
        iterations=1,
        baseline=False,
        **extra,
    ):
        """Fixed rounds (for the big arrays); each round is one call on the full input."""
        self._label(impl, n_options, baseline, extra)
        flt0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        result = self.benchmark.pedantic(
            fn, args=args, rounds=rounds, iterations=iterations, warmup_rounds=warmup_rounds
        )
        flt = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - flt0
        self._finish()
        if self.benchmark.stats is not None:
            # first-touch page faults of freshly allocated outputs/temporaries are part
            # of the measured time; recorded so allocator effects can be read off
            self.extra_info["minor_faults_per_call"] = flt / (rounds * iterations + warmup_rounds)
        return result

    def auto(self, fn, *args, impl, n_options, baseline=False, **extra):
        """pytest-benchmark's own calibration (for the small / scalar cases)."""
        self._label(impl, n_options, baseline, extra)
        result = self.benchmark(fn, *args)
        self._finish()
        return result


@pytest.fixture
def bench(benchmark):
    return Bench(benchmark)


# ---------------------------------------------------------------------------
# per-group ratio summary
# ---------------------------------------------------------------------------
def _fmt_time(seconds: float) -> str:
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6), ("ns", 1e-9)):
        if seconds >= scale:
            return f"{seconds / scale:8.3f} {unit}"
    return f"{seconds / 1e-9:8.3f} ns"


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter, exitstatus, config):
    bs = getattr(config, "_benchmarksession", None)
    if bs is None:
        return
    tr = terminalreporter
    if bs.disabled:
        tr.write_sep(
            "-", "benchmark ratios: timing disabled (--benchmark-disable), outputs were checked"
        )
        return
    benches = [b for b in bs.benchmarks if b.stats and b.stats.rounds]
    if not benches:
        return
    groups: dict[str, list] = {}
    for b in benches:
        groups.setdefault(b.group or "(none)", []).append(b)

    tr.write_sep("=", "algoengine benchmark ratios (mean / group baseline; < 1 is faster)")
    try:
        load = os.getloadavg()
        tr.write_line(
            f"cpus={os.cpu_count()}  numba threads={peers.numba_threads()}  "
            f"ours threads={OURS.get_num_threads() if OURS is not None else 'n/a'}  "
            f"loadavg(1m)={load[0]:.2f}"
        )
    except Exception:
        pass
    order = ["greeks-1e6", "greeks-chain-1000", "iv-1e6", "scalar", "scalar-iv"]
    for g in sorted(groups, key=lambda k: (order.index(k) if k in order else len(order), k)):
        # rows with extra_info["subgroup"] (orderbook-queries: one query each) are compared
        # with the baseline of their own subgroup, and listed subgroup by subgroup
        items = sorted(groups[g], key=lambda b: (b.extra_info.get("subgroup", ""), b.stats.mean))
        base = next((b for b in items if b.extra_info.get("baseline")), None)
        sub_base = {
            b.extra_info["subgroup"]: b
            for b in items
            if b.extra_info.get("baseline") and "subgroup" in b.extra_info
        }
        n_opt = items[0].extra_info.get("n_options", 1)
        tr.write_line("")
        tr.write_line(
            f"[{g}]  n_options={n_opt:,}  baseline="
            f"{base.extra_info.get('impl') if base else '(baseline not run)'}"
            f"{' (each subgroup: its own baseline)' if sub_base else ''}"
        )
        tr.write_line(
            f"  {'impl':<26}{'mean':>12}{'min':>12}{'per option':>14}{'vs baseline':>13}"
            f"{'speed-up':>10}  notes"
        )
        for b in items:
            ei = b.extra_info
            rb = sub_base.get(ei["subgroup"]) if "subgroup" in ei else base
            mean = b.stats.mean
            n = ei.get("n_options", 1) or 1
            # compared per option (per op, per order): rows of one group may time different
            # batch sizes (a single call against a call over 10^5 orders)
            rb_per = rb.stats.mean / (rb.extra_info.get("n_options", 1) or 1) if rb else 0.0
            per = mean / n
            ratio = f"{per / rb_per:10.3f}x" if rb else "         -"
            speed = f"{rb_per / per:8.2f}x" if rb else "       -"
            notes = []
            if "max_rel_sigma_err" in ei:
                notes.append(
                    f"max rel sigma err {ei['max_rel_sigma_err']:.1e}, "
                    f"failures {ei.get('failures')}"
                )
            if ei.get("threads"):
                notes.append(f"{ei['threads']} thread{'s' if ei['threads'] != 1 else ''}")
            if ei.get("minor_faults_per_call", 0) >= 1:
                notes.append(f"{ei['minor_faults_per_call']:.0f} page faults/call")
            tr.write_line(
                f"  {ei.get('impl', b.name):<26}{_fmt_time(mean):>12}{_fmt_time(b.stats.min):>12}"
                f"{mean / n * 1e9:>11.2f} ns{ratio:>13}{speed:>10}  {'; '.join(notes)}"
            )
