"""Logs, metrics and alerts."""
