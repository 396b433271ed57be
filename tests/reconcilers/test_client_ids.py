"""Client order ids: deterministic, within Kalshi's limits, parseable back, foreign ids rejected."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mm.domain.sides import OrderSide, Side
from mm.reconcilers.client_ids import (
    MAX_CLIENT_ORDER_ID_LENGTH,
    MAX_COUNTER,
    ClientOrderId,
    Level,
    check_prefix,
    make_client_order_id,
    market_hash,
    parse_client_order_id,
)

TICKER = "KXBTCD-26AUG1317-T73249.99"
KALSHI_CHARSET = re.compile(r"[-\w:+=/]+\Z")  # kalshi-api.md §5


def test_an_id_is_deterministic_and_parses_back() -> None:
    cid = make_client_order_id("mm", TICKER, 7, Level.YES_ASK, 3)
    assert cid == make_client_order_id("mm", TICKER, 7, Level.YES_ASK, 3)
    assert cid == f"mm:{market_hash(TICKER)}:7:ya:3"
    assert parse_client_order_id(cid, "mm") == ClientOrderId("mm", market_hash(TICKER), 7, Level.YES_ASK, 3)
    assert str(parse_client_order_id(cid, "mm")) == cid


def test_the_ticker_is_hashed_because_kalshi_refuses_dots_in_ids() -> None:
    assert "." in TICKER
    cid = make_client_order_id("mm", TICKER, 1, Level.YES_BID, 0)
    assert "." not in cid and KALSHI_CHARSET.match(cid)
    assert len(market_hash(TICKER)) == 12
    assert market_hash(TICKER) != market_hash("KXBTCD-26AUG1317-T73499.99")


def test_the_longest_id_fits_kalshis_limit() -> None:
    longest = make_client_order_id("P" * 16, TICKER, MAX_COUNTER - 1, Level.NO_ASK, MAX_COUNTER - 1)
    assert len(longest) == 58 <= MAX_CLIENT_ORDER_ID_LENGTH
    assert KALSHI_CHARSET.match(longest)


def test_every_part_changes_the_id() -> None:
    base = ("mm", TICKER, 1, Level.YES_BID, 0)
    variants = {
        make_client_order_id(*base),
        make_client_order_id("mm2", TICKER, 1, Level.YES_BID, 0),
        make_client_order_id("mm", "OTHER", 1, Level.YES_BID, 0),
        make_client_order_id("mm", TICKER, 2, Level.YES_BID, 0),
        make_client_order_id("mm", TICKER, 1, Level.YES_ASK, 0),
        make_client_order_id("mm", TICKER, 1, Level.YES_BID, 1),
    }
    assert len(variants) == 6


@pytest.mark.parametrize(
    "cid",
    [
        "",
        "3f1c2d4e-5a6b-4c7d-8e9f-0a1b2c3d4e5f",  # a uuid from another tool
        "xx:0123456789ab:1:yb:0",  # another prefix
        "mmx:0123456789ab:1:yb:0",
        "mm:0123456789ab:1:yb",  # too few parts
        "mm:0123456789ab:1:yb:0:9",  # too many
        "mm:0123456789AB:1:yb:0",  # upper-case hash
        "mm:0123456789a:1:yb:0",  # short hash
        "mm:0123456789ab:01:yb:0",  # leading zero: not canonical
        "mm:0123456789ab:1:yb:-1",
        "mm:0123456789ab:+1:yb:0",
        "mm:0123456789ab:1:xx:0",  # unknown level
        "mm:0123456789ab:1000000000000:yb:0",  # 10**12: out of range
        "mm:0123456789ab:١:yb:0",  # a non-ASCII digit
    ],
)
def test_foreign_or_malformed_ids_do_not_parse(cid: str) -> None:
    assert parse_client_order_id(cid, "mm") is None


@pytest.mark.parametrize("prefix", ["", "m-m", "m:m", "mm_", "x" * 17, "é"])
def test_bad_prefixes_are_refused(prefix: str) -> None:
    with pytest.raises(ValueError, match="prefix"):
        check_prefix(prefix)
    with pytest.raises(ValueError, match="prefix"):
        make_client_order_id(prefix, TICKER, 1, Level.YES_BID, 0)


@pytest.mark.parametrize(("generation", "attempt"), [(-1, 0), (0, -1), (MAX_COUNTER, 0), (0, MAX_COUNTER)])
def test_counters_out_of_range_are_refused(generation: int, attempt: int) -> None:
    with pytest.raises(ValueError, match="must be an int"):
        make_client_order_id("mm", TICKER, generation, Level.YES_BID, attempt)


def test_levels_know_their_order() -> None:
    assert (Level.YES_BID.side, Level.YES_BID.order_side, Level.YES_BID.direction) == (Side.YES, OrderSide.BUY, 1)
    assert (Level.YES_ASK.side, Level.YES_ASK.order_side, Level.YES_ASK.direction) == (Side.YES, OrderSide.SELL, -1)
    assert (Level.NO_BID.side, Level.NO_BID.order_side, Level.NO_BID.direction) == (Side.NO, OrderSide.BUY, -1)
    assert (Level.NO_ASK.side, Level.NO_ASK.order_side, Level.NO_ASK.direction) == (Side.NO, OrderSide.SELL, 1)
    assert {lvl.opposite for lvl in Level} == set(Level)
    assert all(lvl.opposite.opposite is lvl for lvl in Level)


@given(
    prefix=st.from_regex(r"[A-Za-z0-9]{1,16}", fullmatch=True),
    market=st.text(min_size=1, max_size=80),
    generation=st.integers(0, MAX_COUNTER - 1),
    level=st.sampled_from(Level),
    attempt=st.integers(0, MAX_COUNTER - 1),
)
def test_round_trip_and_limits_for_any_input(
    prefix: str, market: str, generation: int, level: Level, attempt: int
) -> None:
    cid = make_client_order_id(prefix, market, generation, level, attempt)
    assert len(cid) <= MAX_CLIENT_ORDER_ID_LENGTH and KALSHI_CHARSET.match(cid)
    assert parse_client_order_id(cid, prefix) == ClientOrderId(prefix, market_hash(market), generation, level, attempt)
    assert parse_client_order_id(cid, prefix + "x") is None
