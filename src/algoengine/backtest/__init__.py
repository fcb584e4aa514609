"""Backtesting: the runner, Indian F&O charges, performance metrics and reports."""
