"""The ``algoengine`` command.

Commands now: ``--version``; ``health`` (imports the compiled kernels, exit 0 or 1 naming what
is missing: the container health check); ``chain`` (prices an option chain with the compiled
Greeks and recovers the smile by implied volatility: the main job until the engine exists).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Sequence
from datetime import date
from typing import Any

from algoengine import __version__

MINUTES_PER_YEAR = 365.0 * 24.0 * 60.0


def _cmd_health(args: argparse.Namespace) -> int:
    from algoengine._ext import BUILD_HINT, check_build

    status = check_build()
    missing = {name: err for name, err in status.items() if err is not None}
    for name, err in status.items():
        print(
            f"{'ok' if err is None else 'MISSING'}  algoengine._ext.{name}"
            + ("" if err is None else f"  ({err})")
        )
    if missing:
        print(
            f"unhealthy: missing compiled kernels: {', '.join(sorted(missing))}; {BUILD_HINT}",
            file=sys.stderr,
        )
        return 1
    print("healthy")
    return 0


def _positive(name: str):  # type: ignore[no-untyped-def]
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name}: not a number: {text!r}") from None
        if not (value > 0.0 and math.isfinite(value)):
            raise argparse.ArgumentTypeError(f"{name}: must be positive, got {text!r}")
        return value

    return parse


def _cmd_chain(args: argparse.Namespace) -> int:
    import numpy as np

    from algoengine import greeks as gk

    spot: float = args.spot
    step: float = args.strike_step
    T = args.expiry_minutes / MINUTES_PER_YEAR
    fwd = spot * math.exp((args.rate - args.div_yield) * T)
    atm = round(fwd / step) * step
    strikes = atm + step * np.arange(-args.strikes, args.strikes + 1, dtype=np.float64)
    strikes = strikes[strikes > 0]
    # A skewed smile in log-moneyness, as index options show: puts richer than calls.
    k = np.log(strikes / fwd)
    smile = args.atm_vol + args.skew * k + args.curvature * k * k
    smile = np.maximum(smile, 0.01)

    calls = gk.greeks("c", spot, strikes, T, args.rate, smile, args.div_yield)
    puts = gk.greeks("p", spot, strikes, T, args.rate, smile, args.div_yield)
    call_iv = gk.implied_vol(calls.price, "c", spot, strikes, T, args.rate, args.div_yield)
    put_iv = gk.implied_vol(puts.price, "p", spot, strikes, T, args.rate, args.div_yield)
    # Nearest the money on each side: the strikes a straddle or strangle seller watches.
    pick = np.argmin(np.abs(strikes - fwd))

    print(
        f"{args.underlying} option chain: spot {spot:.2f}, forward {fwd:.2f}, "
        f"{args.expiry_minutes / 1440:.2f} days to expiry, r {args.rate:.2%}, "
        f"q {args.div_yield:.2%}"
    )
    print(f"ATM strike {strikes[pick]:.0f}; theta per calendar day, vega per vol point")
    head = (
        f"{'C delta':>8} {'C theta':>8} {'C price':>9} {'C IV%':>6} | {'strike':>8} | "
        f"{'P IV%':>6} {'P price':>9} {'P theta':>8} {'P delta':>8} | {'gamma':>8} {'vega':>7}"
    )
    print(head)
    print("-" * len(head))
    for i, strike in enumerate(strikes):
        print(
            f"{calls.delta[i]:8.3f} {calls.theta[i] / 365:8.2f} {calls.price[i]:9.2f} "
            f"{call_iv[i] * 100:6.2f} | {strike:8.0f} | {put_iv[i] * 100:6.2f} "
            f"{puts.price[i]:9.2f} {puts.theta[i] / 365:8.2f} {puts.delta[i]:8.3f} | "
            f"{calls.gamma[i]:8.5f} {calls.vega[i] / 100:7.2f}"
        )
    recovered = np.concatenate([call_iv, put_iv])
    err = float(np.nanmax(np.abs(recovered - np.concatenate([smile, smile]))))
    straddle = calls.price[pick] + puts.price[pick]
    print(
        f"ATM straddle premium {straddle:.2f}; implied-vol round trip over "
        f"{2 * len(strikes)} options: max error {err:.1e}"
    )
    return 0


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def _settings(args: argparse.Namespace) -> Any:
    from algoengine.settings import load_settings

    settings = load_settings(args.config)
    seed = getattr(args, "seed", None)
    return settings.with_seed(seed) if seed is not None else settings


def _cmd_config_show(args: argparse.Namespace) -> int:
    from algoengine.config import dumps_toml, mask_secrets, to_dict

    print(dumps_toml(mask_secrets(to_dict(_settings(args)))), end="")
    return 0


def _cmd_backtest(args: argparse.Namespace) -> int:
    from algoengine.backtest.metrics import format_paise
    from algoengine.backtest.runner import run_backtest
    from algoengine.observability.logs import configure_logging

    configure_logging(args.log_level)
    settings = _settings(args)
    out = args.out or settings.backtest.out_dir
    started_ns = time.time_ns()
    result = run_backtest(
        settings,
        strategy_ids=[args.strategy] if args.strategy else None,
        start=args.start,
        end=args.end,
        out_dir=out,
        progress=not args.quiet,
    )
    m = result.metrics
    if not args.no_db:
        _record_backtest(settings, args, result, out, started_ns)
    print(m.format_summary())
    charges = sum(f.charges_paise for f in result.engine.fills)
    print(f"{'Charges (in net P&L)':<22}{format_paise(charges):>20}")
    print(
        f"{result.events:,} market events ({result.slices:,} slices) in {result.seconds:.2f} s: "
        f"{result.events_per_second:,.0f} events/s"
    )
    print(f"report: {out}/")
    return 0


def _record_backtest(
    settings: Any, args: argparse.Namespace, result: Any, out: str, started_ns: int
) -> None:
    """Record the backtest and its metrics in the database (a failure is a warning: the
    report on disk is the result)."""
    import logging

    try:
        from algoengine.persistence.db import ensure_schema, make_engine
        from algoengine.persistence.records import BacktestRunRow
        from algoengine.persistence.repositories import new_backtest_id, record_backtest_run
        from algoengine.settings import settings_database_url

        db = make_engine(settings_database_url(settings))
        ensure_schema(db)
        params = {
            "strategies": [s.strategy_id for s in settings.strategies],
            "strategy": args.strategy,
            "start": str(result.days[0]) if result.days else None,
            "end": str(result.days[-1]) if result.days else None,
            "seed": settings.market.synthetic.seed,
        }
        record_backtest_run(
            db,
            BacktestRunRow(
                id=new_backtest_id(),
                params=params,
                started_ns=started_ns,
                finished_ns=time.time_ns(),
                metrics=result.metrics.to_dict(),
                output_dir=str(out),
            ),
        )
        db.dispose()
    except Exception as exc:  # the report is written; the database is a copy
        logging.getLogger(__name__).warning(
            "backtest not recorded in the database", extra={"error": str(exc)}
        )


def _cmd_run(args: argparse.Namespace) -> int:
    from algoengine.backtest.runner import run_paper
    from algoengine.observability.logs import configure_logging

    configure_logging(args.log_level)
    settings = _settings(args)

    if args.broker == "paper-remote" and not args.venue_url:
        raise ValueError("--broker paper-remote needs --venue-url")
    if args.sessions is not None and not args.continuous:
        raise ValueError("--sessions goes with --continuous")
    live_market = args.broker == "angelone" and args.market == "live"
    kw: dict[str, Any] = {
        "day": args.day,
        "out_dir": args.out or settings.paper.out_dir,
        "venue_url": args.venue_url if args.broker == "paper-remote" else None,
        "anchor_wall_ns": args.anchor_wall_ns,
        "broker": args.broker,
        "live_market": live_market,
    }
    runner: Any = run_paper
    if args.scale_out:
        from algoengine.backtest.runner import run_task

        if args.broker == "paper":
            raise ValueError("--scale-out needs a broker the tasks share: paper-remote or angelone")
        if args.broker == "paper-remote" and (args.anchor_wall_ns is None or args.day is None):
            raise ValueError("--scale-out --broker paper-remote needs --anchor-wall-ns and --day")
        if args.strategy:
            raise ValueError(
                "--scale-out trades the strategies whose leases it holds: no --strategy"
            )
        runner = run_task
        kw.update(speed=args.speed or settings.paper.speed, lease_ttl_s=args.lease_ttl)
        if not args.continuous:
            kw["run_code"] = args.run_code
    else:
        kw.update(speed=args.speed, strategy_ids=[args.strategy] if args.strategy else None)
    if args.continuous:
        from algoengine.backtest.runner import run_sessions

        if args.anchor_wall_ns is not None:
            raise ValueError("--continuous runs each session on its own clock: no --anchor-wall-ns")
        if args.run_code:
            raise ValueError("--continuous gives each session a fresh run code: no --run-code")

        def waiting(day: Any, start_ns: int) -> None:
            from datetime import datetime, timedelta, timezone

            at = datetime.fromtimestamp(start_ns / 1e9, timezone(timedelta(hours=5, minutes=30)))
            print(
                f"waiting for the next session: {day}, starting {at:%Y-%m-%d %H:%M} IST", flush=True
            )

        run_sessions(
            settings,
            sessions=args.sessions,
            lead_s=args.lead,
            on_result=_report_run,
            on_wait=waiting,
            runner=runner,
            **kw,
        )
        return 0
    _report_run(runner(settings, **kw))
    return 0


def _report_run(result: Any) -> None:
    """The summary of a paper or live session: metrics, positions, working orders, why it
    stopped."""
    print(f"session {result.days[0] if result.days else '-'}")
    print(result.metrics.format_summary())
    open_pos = result.engine.portfolio.open_positions()
    if open_pos:
        print("open positions:")
        for pos in open_pos:
            inst = result.engine.universe[pos.idx]
            print(
                f"  {pos.strategy_id} {inst.symbol} qty {pos.qty} "
                f"avg {pos.avg_price_paise / 100:.2f}"
            )
    else:
        print("no open positions")
    working = result.engine.oms.open_orders()
    if working:
        print("orders still working at the venue:")
        for o in working:
            print(
                f"  {o.client_order_id} {o.strategy_id} {o.instrument.symbol} {o.side.value} "
                f"{o.order_type.value} qty {o.remaining_qty} status {o.status.value}"
            )
    print(f"stopped: {result.stop_reason}", flush=True)


def _cmd_market_record(args: argparse.Namespace) -> int:
    from algoengine.market.replay import write_slices
    from algoengine.market.synthetic import SyntheticMarket

    settings = _settings(args)
    b = settings.backtest
    market = SyntheticMarket(settings.market.synthetic, args.start or b.start, args.end or b.end)
    rows = write_slices(args.out, market, market.universe)
    print(f"wrote {rows:,} rows ({len(market.trading_days)} sessions) to {args.out}")
    return 0


def _cmd_market_master(args: argparse.Namespace) -> int:
    from algoengine.market.scrip_master import save_scrip_master
    from algoengine.market.synthetic import SyntheticMarket

    settings = _settings(args)
    b = settings.backtest
    market = SyntheticMarket(settings.market.synthetic, args.start or b.start, args.end or b.end)
    save_scrip_master(args.out, market.instrument_master())
    print(f"wrote {len(market.universe):,} instruments to {args.out}")
    return 0


def _cmd_command(args: argparse.Namespace) -> int:
    """Post a command to the engine through the database (as the dashboard does)."""
    import getpass

    from algoengine.engine.commands import KillSwitch, Pause, Resume, SquareOff, StopStrategy
    from algoengine.persistence.db import ensure_schema, make_engine
    from algoengine.persistence.repositories import audit, get_command, post_command
    from algoengine.settings import settings_database_url

    who = f"cli:{getpass.getuser()}"
    kind = args.command_kind
    cmd: Any
    if kind == "kill-switch":
        cmd = KillSwitch(on=not args.off, issued_by=who)
    elif kind == "square-off":
        cmd = SquareOff(strategy_id=args.strategy, issued_by=who)
    elif kind == "pause":
        cmd = Pause(strategy_id=args.strategy, issued_by=who)
    elif kind == "resume":
        cmd = Resume(strategy_id=args.strategy, issued_by=who)
    else:
        if not args.strategy:
            raise ValueError("stop: --strategy is required")
        cmd = StopStrategy(strategy_id=args.strategy, issued_by=who)
    settings = _settings(args)
    db = make_engine(args.url or settings_database_url(settings))
    ensure_schema(db)
    now = time.time_ns()
    cid = post_command(db, cmd, issued_ns=now)
    audit(db, ts_ns=now, actor=who, action=f"command {kind}", details={"command_id": cid})
    print(f"command {cid} posted: {kind}" + (f" ({args.strategy})" if args.strategy else ""))
    deadline = time.monotonic() + args.wait
    while args.wait > 0 and time.monotonic() < deadline:
        row = get_command(db, cid)
        if row is not None and row.acted_ns is not None:
            print(f"acted on by {row.acted_by}: {row.result}")
            return 0
        time.sleep(0.2)
    if args.wait > 0:
        print(f"not acted on within {args.wait:g} s (is an engine running?)", file=sys.stderr)
        return 1
    return 0


def _public_ip(timeout_s: float = 3.0) -> str:
    """The public IP address the broker sees (``ALGOENGINE_PUBLIC_IP_URL``, default ipify);
    "unknown" when it cannot be learnt."""
    import os
    import urllib.request

    url = os.environ.get("ALGOENGINE_PUBLIC_IP_URL", "https://api.ipify.org")
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as r:
            text = r.read(64).decode("ascii", "replace").strip()
        return text or "unknown"
    except Exception:
        return "unknown"


def _cmd_broker_status(args: argparse.Namespace) -> int:
    """Log in, show the account as the broker sees it, log out. Never prints a secret."""
    from algoengine.brokers.angelone.adapter import AngelOneBroker
    from algoengine.brokers.angelone.credentials import AngelOneEndpoints, load_credentials

    with AngelOneBroker(load_credentials(), [], endpoints=AngelOneEndpoints.from_env()) as b:
        profile = b.profile()
        funds = b.funds()
        orders = b.open_orders()
        positions = b.positions()
        print(f"client code   {profile.get('clientcode', '?')}  ({profile.get('name', '')})")
        for key in ("net", "availablecash", "utiliseddebits"):
            if key in funds:
                print(f"{key:<13} {funds[key]}")
        print(f"open orders   {len(orders)}")
        for o in orders:
            print(
                f"  {o.client_order_id} {o.instrument_token} {o.side.value} {o.qty} "
                f"{o.status.value}"
            )
        print(f"positions     {len(positions)}")
        for p in positions:
            print(f"  {p.get('tradingsymbol', '?')} net qty {p.get('netqty', '?')}")
        print(f"public IP     {_public_ip()} (what the broker must whitelist)")
    print("logged out")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="algoengine",
        description="Algorithmic options trading for NSE index options through Angel One.",
    )
    parser.add_argument("--version", action="version", version=f"algoengine {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    health = sub.add_parser("health", help="check that the compiled kernels import (exit 0/1)")
    health.set_defaults(func=_cmd_health)

    chain = sub.add_parser("chain", help="price an option chain and recover its smile by IV")
    chain.add_argument("--underlying", default="NIFTY")
    chain.add_argument("--spot", type=_positive("spot"), default=24350.0)
    chain.add_argument("--strike-step", type=_positive("strike-step"), default=50.0)
    chain.add_argument("--strikes", type=int, default=10, help="strikes each side of ATM")
    chain.add_argument(
        "--expiry-minutes",
        type=_positive("expiry-minutes"),
        default=3 * 1440.0 + 375.0,
        help="time to expiry in minutes",
    )
    chain.add_argument("--rate", type=float, default=0.065)
    chain.add_argument("--div-yield", type=float, default=0.012)
    chain.add_argument("--atm-vol", type=_positive("atm-vol"), default=0.13)
    chain.add_argument("--skew", type=float, default=-0.35)
    chain.add_argument("--curvature", type=float, default=1.5)
    chain.set_defaults(func=_cmd_chain)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--config", help="configuration file (TOML or YAML); default: built-in")
        p.add_argument("--strategy", help="run only this strategy (its strategy_id)")
        p.add_argument("--seed", type=int, help="seed of the synthetic market")
        p.add_argument("--out", help="output folder")
        p.add_argument("--log-level", default="WARNING")

    bt = sub.add_parser("backtest", help="run strategies over a date range and report")
    common(bt)
    bt.add_argument("--from", dest="start", type=_date, help="first day (YYYY-MM-DD)")
    bt.add_argument("--to", dest="end", type=_date, help="last day (YYYY-MM-DD)")
    bt.add_argument("--quiet", action="store_true", help="no progress bar")
    bt.add_argument("--no-db", action="store_true", help="do not record the run in the database")
    bt.set_defaults(func=_cmd_backtest)

    run = sub.add_parser("run", help="trade: paper (default) or live through Angel One")
    common(run)
    run.add_argument("--broker", default="paper", choices=["paper", "paper-remote", "angelone"])
    run.add_argument("--venue-url", help="paper-remote: the venue server's address")
    run.add_argument(
        "--market",
        choices=["live", "synthetic"],
        default="synthetic",
        help="angelone: market data from the model (default; the fake serves the same) or "
        "the broker's websocket feed and instrument master (live: the wall clock, speed 1, "
        "unless --anchor-wall-ns aims it at an accelerated fake)",
    )
    run.add_argument(
        "--anchor-wall-ns",
        type=int,
        help="paper-remote: the wall-clock ns at which the session opened (the venue's)",
    )
    run.add_argument("--speed", type=_positive("speed"), help="simulated seconds per second")
    run.add_argument("--day", type=_date, help="the session (default: today or the next one)")
    run.add_argument(
        "--scale-out",
        action="store_true",
        help="one of several engine tasks: trade the strategies whose leases this task holds",
    )
    run.add_argument("--lease-ttl", type=_positive("lease-ttl"), default=5.0, help="seconds")
    run.add_argument("--run-code", help="scale-out: this task's run code (8 letters/digits)")
    run.add_argument(
        "--continuous",
        action="store_true",
        help="a service: session after session (live: wait for each open; paper: one day "
        "after another), a fresh broker login for each; outputs in <out>/<day>",
    )
    run.add_argument(
        "--sessions",
        type=int,
        help="--continuous: stop after this many sessions (default: never)",
    )
    run.add_argument(
        "--lead",
        type=_positive("lead"),
        default=600.0,
        help="--continuous on a live market: seconds before the open to log in (default 600)",
    )
    run.set_defaults(func=_cmd_run)

    mk = sub.add_parser("market", help="the synthetic market: record it, write its master")
    mk_sub = mk.add_subparsers(dest="market_command", metavar="SUBCOMMAND", required=True)
    for name, func, what in (
        ("record", _cmd_market_record, "write the market's slices (CSV or Parquet) for replay"),
        ("master", _cmd_market_master, "write its instrument master (scrip-master JSON)"),
    ):
        p = mk_sub.add_parser(name, help=what)
        p.add_argument("--config", help="configuration file (TOML or YAML)")
        p.add_argument("--seed", type=int, help="seed of the synthetic market")
        p.add_argument("--from", dest="start", type=_date, help="first day (YYYY-MM-DD)")
        p.add_argument("--to", dest="end", type=_date, help="last day (YYYY-MM-DD)")
        p.add_argument("--out", required=True, help="output file (.csv, .parquet or .json)")
        p.set_defaults(func=func)

    cm = sub.add_parser("command", help="send a command to the running engine (kill switch, ...)")
    cm_sub = cm.add_subparsers(dest="command_kind", metavar="KIND", required=True)
    for name, what in (
        ("kill-switch", "cancel every working order and block new ones (--off releases)"),
        ("square-off", "close positions (of --strategy, or all)"),
        ("pause", "stop calling a strategy's market callbacks"),
        ("resume", "undo pause"),
        ("stop", "stop a strategy (--strategy)"),
    ):
        p = cm_sub.add_parser(name, help=what)
        p.add_argument("--strategy", help="the strategy (default: all)")
        p.add_argument("--url", help="database URL (default: configuration / environment)")
        p.add_argument("--config", help="configuration file")
        p.add_argument("--wait", type=float, default=0.0, help="seconds to wait for the engine")
        if name == "kill-switch":
            p.add_argument("--off", action="store_true", help="release the kill switch")
        p.set_defaults(func=_cmd_command)

    from algoengine.persistence.cli import add_db_commands

    add_db_commands(sub)

    br = sub.add_parser("broker", help="the broker account")
    br_sub = br.add_subparsers(dest="broker_command", metavar="SUBCOMMAND", required=True)
    st = br_sub.add_parser("status", help="log in, show the account and the public IP, log out")
    st.add_argument("--broker", default="angelone", choices=["angelone"])
    st.set_defaults(func=_cmd_broker_status)

    cfg = sub.add_parser("config", help="configuration")
    cfg_sub = cfg.add_subparsers(dest="config_command", metavar="SUBCOMMAND", required=True)
    show = cfg_sub.add_parser("show", help="print the effective configuration, secrets masked")
    show.add_argument("--config", help="configuration file (TOML or YAML)")
    show.set_defaults(func=_cmd_config_show)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    from algoengine.errors import AlgoEngineError

    try:
        result: int = args.func(args)
    except (ValueError, AlgoEngineError) as exc:
        print(f"algoengine: error: {exc}", file=sys.stderr)
        return 2
    return result


if __name__ == "__main__":
    raise SystemExit(main())
