"""Venues: the Broker protocol, the paper exchange (and, later, the Angel One adapter)."""

from algoengine.brokers.base import Broker

__all__ = ["Broker"]
