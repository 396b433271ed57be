"""Kalshi trading fees for the simulator: a re-export of :mod:`mm.domain.fees`.

The formula lives in the domain layer so the simulator and the ledger charge through one implementation
(kalshi-api.md §10); see that module for units and rounding.
"""

from __future__ import annotations

from mm.domain.fees import FEE_TYPES, FeeRounding, FeeSchedule, OrderFeeAccumulator, exact_fee, fee_rate, fee_units

__all__ = ["FEE_TYPES", "FeeRounding", "FeeSchedule", "OrderFeeAccumulator", "exact_fee", "fee_rate", "fee_units"]
