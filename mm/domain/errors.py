"""The root of mmctl's error tree and the domain layer's errors.

The tree lives here because ``mm.domain`` is the bottom layer: every other layer may import it, and it
imports nothing of ours. Other layers add their own subclasses next to their code (``mm.specs.errors``
for spec errors, for example)::

    MmError
    ├── DomainError
    │   ├── InvalidPriceError        a price outside (0, 1), off the 1e-4 grid or off a tick grid
    │   ├── InvalidQuantityError     a quantity that is negative or finer than 1/100 contract
    │   ├── InvalidTickGridError     a price_ranges list that does not describe a grid
    │   ├── InvalidOrderTransition   an order state change the FR-601 machine does not allow
    │   └── BookIntegrityError       a book snapshot or delta that cannot be right (resync)
    └── SpecError (mm.specs.errors)  ...
"""

from __future__ import annotations


class MmError(Exception):
    """Base class of every error mmctl raises on purpose."""


class DomainError(MmError):
    """A value that violates an invariant of the domain model."""


class InvalidPriceError(DomainError, ValueError):
    """A price that is not a valid binary-contract price (or not on the required grid)."""


class InvalidQuantityError(DomainError, ValueError):
    """A quantity that is negative or not a whole number of 1/100 contracts."""


class InvalidTickGridError(DomainError, ValueError):
    """A tick grid description (Kalshi ``price_ranges``) that is inconsistent."""


class InvalidOrderTransition(DomainError):  # noqa: N818 - reads as a sentence at raise sites
    """An order state transition that the FR-601 state machine forbids."""


class BookIntegrityError(DomainError, ValueError):
    """Order book input that cannot be correct: the caller must resync the book."""
