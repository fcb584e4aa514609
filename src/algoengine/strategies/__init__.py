"""Strategies: the Strategy API and the premium-selling strategies."""
