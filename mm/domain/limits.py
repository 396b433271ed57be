"""Code-level hard limits (RCR-101): ceilings no configuration can raise.

A spec asking for more is rejected at admission with a message saying these are code-level limits; the
risk engine enforces them again at run time, whatever a spec says. Changing them is a code change,
reviewed like one. The loss limits are per market (a RiskPolicy applies to one market at a time);
the aggregate limits of FR-1302 are separate and live in the TradingNode (docs/decisions/003).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Final

MAX_POSITION_PER_MARKET: Final = Decimal(1000)
"""Contracts: the absolute maximum inventory in one market (net, and per side)."""

MAX_ORDER_SIZE: Final = Decimal(500)
"""Contracts: the largest single order."""

MAX_DAILY_LOSS: Final = Decimal(100)
"""Dollars: the largest daily loss limit a market may be configured with (kill switch trigger)."""

MAX_HOURLY_LOSS: Final = Decimal(50)
"""Dollars: the largest hourly loss limit a market may be configured with (kill switch trigger)."""
