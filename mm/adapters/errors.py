"""Errors adapters raise, venue-independent, so the core handles them without knowing the venue.

::

    MmError
    └── ExchangeError                    anything a venue refused or failed to answer
        ├── NotSupportedError            the venue cannot do this at all (FR-113)
        ├── ExchangeUnavailableError          network failure, timeout, 5xx after retries (transient)
        ├── RateLimitedError                  429 (transient; back off)
        ├── AuthenticationFailedError         401/403: bad key, signature or clock (terminal until fixed)
        └── OrderRejectedError                the venue refused an order operation (terminal for that request)
            ├── InsufficientBalanceError
            ├── OrderPriceError             off the tick grid or outside (0, 1)
            ├── OrderSizeError
            ├── MarketInactiveError           market closed, paused or settled
            ├── DuplicateClientOrderIdError   409: the client_order_id was used before
            └── OrderNotFoundError

Every error carries the venue's status and code when there is one; messages never include
credentials or signatures.
"""

from __future__ import annotations

from mm.domain.errors import MmError


class ExchangeError(MmError):
    def __init__(self, message: str, *, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class NotSupportedError(ExchangeError):
    """The venue has no such operation and it cannot be emulated (FR-113)."""


class ExchangeUnavailableError(ExchangeError):
    """The venue could not be reached or answered 5xx; retrying later may work."""


class RateLimitedError(ExchangeError):
    """The venue answered 429: slow down and retry."""


class AuthenticationFailedError(ExchangeError):
    """401/403: the key, signature or clock is wrong. Retrying will not help until fixed."""


class OrderRejectedError(ExchangeError):
    """The venue refused an order operation."""


class InsufficientBalanceError(OrderRejectedError):
    pass


class OrderPriceError(OrderRejectedError):
    pass


class OrderSizeError(OrderRejectedError):
    pass


class MarketInactiveError(OrderRejectedError):
    pass


class DuplicateClientOrderIdError(OrderRejectedError):
    pass


class OrderNotFoundError(OrderRejectedError):
    pass
