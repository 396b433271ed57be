"""Session-scoped factory fixtures for risk tests (the factories live in tests/risk/builders.py)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from mm.domain.market import MarketSnapshot
from mm.domain.quotes import QuoteSet
from mm.risk.base import RiskContext
from tests.risk.builders import make_context, make_quotes, make_snapshot


@pytest.fixture(scope="session")
def ctx() -> Callable[..., RiskContext]:
    return make_context


@pytest.fixture(scope="session")
def quotes() -> Callable[..., QuoteSet]:
    return make_quotes


@pytest.fixture(scope="session")
def snapshot() -> Callable[..., MarketSnapshot]:
    return make_snapshot
