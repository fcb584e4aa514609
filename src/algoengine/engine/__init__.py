"""The trading engine: clock, event loop, order management, risk, portfolio, strategy runner.

One event loop owns all trading state. The same code runs in backtest (simulated clock, paper
exchange), paper (real clock, paper exchange) and live mode (real clock, Angel One); only the
clock, the feed and the broker differ.
"""
