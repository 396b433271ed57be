"""Fixtures for the KalshiAdapter tests (see support.py); modules may override ``sim`` with their own."""

from tests.adapters.kalshi.support import bob, me, sim

__all__ = ["bob", "me", "sim"]
