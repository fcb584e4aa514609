"""One engine task's lease loop, run as a separate process by tests/integration/test_leases.py.

It does what an engine task does with its leases, without the engine: every ``ttl / 3`` it
writes to the database under each lease it holds (a fenced write, attempted *without* asking
:meth:`~LeaseManager.still_valid` first, so that a process resumed after a pause tries to
write with a stale token and must be refused), renews, and acquires; every ~10 ms it asks
:meth:`~LeaseManager.still_valid` of each lease, as the engine does before every order.

It appends one line per observation to its log file (one ``write`` per line, so a SIGKILL
loses at most the line being written)::

    S <t>                                   started
    V <strategy> <token> <t> <valid_until>  still_valid was True at t (local monotonic ns)
    W <strategy> <token> <t>                a fenced write committed
    F <strategy> <token> <t>                a fenced write refused (LeaseLostError)
    L <strategy> <token> <t>                renew reported the lease lost
    R <strategy> <token> <t>                about to release (SIGTERM): no longer valid from t
    E <t> <message>                         a database error (the loop carries on)

Times are ``time.monotonic_ns()``: one clock for every process on the host.

Usage: ``python lease_worker.py URL OWNER LOG --ttl 1.5 --strategies 8 --max-runtime 60``.
The fenced writes go to the table ``lease_test_writes`` (made by the test). SIGTERM: release
every lease and exit 0. The process also exits when its parent dies or ``--max-runtime``
passes, so that a failed test leaves nothing behind.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from types import FrameType

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from algoengine.persistence.db import make_engine
from algoengine.persistence.leases import (
    LeaseError,
    LeaseLostError,
    LeaseManager,
    fenced_transaction,
)

CHECK_EVERY_S = 0.01
INSERT = text(
    "INSERT INTO lease_test_writes (strategy_id, owner, token, t_ns) VALUES (:s, :o, :k, :t)"
)


def strategy_ids(n: int) -> list[str]:
    """The strategies the test runs: ``s0 .. s<n-1>``."""
    return [f"s{i}" for i in range(n)]


class Log:
    """Append-only log lines, one ``os.write`` each."""

    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def __call__(self, *fields: object) -> None:
        os.write(self.fd, (" ".join(str(f) for f in fields) + "\n").encode())


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("url")
    parser.add_argument("owner")
    parser.add_argument("log")
    parser.add_argument("--ttl", type=float, default=1.5)
    parser.add_argument("--strategies", type=int, default=8)
    parser.add_argument("--max-runtime", type=float, default=60.0)
    args = parser.parse_args(argv)

    log = Log(args.log)
    stop = False

    def on_term(_signum: int, _frame: FrameType | None) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_term)
    parent = os.getppid()
    deadline = time.monotonic() + args.max_runtime

    engine = make_engine(args.url, connect_timeout_s=2)
    manager = LeaseManager(engine, args.owner, ttl_s=args.ttl)
    log("S", time.monotonic_ns())
    beat_ns = round(manager.renew_interval_s * 1e9)
    next_beat = 0
    ensured = False
    while not stop and time.monotonic() < deadline and os.getppid() == parent:
        # first, as the engine before an order (and a process resumed after a pause does it
        # before anything else): which leases may it act on?
        for lease in manager.held():
            t = manager.now_ns()
            if manager.still_valid(lease, t):
                log("V", lease.strategy_id, lease.fencing_token, t, lease.valid_until_ns)
        now = time.monotonic_ns()
        if now >= next_beat:
            next_beat = now + beat_ns
            try:
                if not ensured:
                    manager.ensure(strategy_ids(args.strategies))
                    ensured = True
                held = manager.held()
                for lease in held:  # stale after a pause: the database must refuse
                    try:
                        with fenced_transaction(engine, lease, idle_timeout_s=0.3) as conn:
                            conn.execute(
                                INSERT,
                                {
                                    "s": lease.strategy_id,
                                    "o": lease.owner,
                                    "k": lease.fencing_token,
                                    "t": time.monotonic_ns(),
                                },
                            )
                        log("W", lease.strategy_id, lease.fencing_token, time.monotonic_ns())
                    except LeaseLostError:
                        log("F", lease.strategy_id, lease.fencing_token, time.monotonic_ns())
                kept = {(x.strategy_id, x.fencing_token) for x in manager.renew(held)}
                for lease in held:
                    if (lease.strategy_id, lease.fencing_token) not in kept:
                        log("L", lease.strategy_id, lease.fencing_token, time.monotonic_ns())
                manager.acquire()
            except (LeaseError, SQLAlchemyError) as exc:
                log("E", time.monotonic_ns(), type(exc).__name__)
        time.sleep(CHECK_EVERY_S)

    if stop:
        for lease in manager.held():
            log("R", lease.strategy_id, lease.fencing_token, time.monotonic_ns())
        manager.release_all()
    engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
