"""V2 order writes and the legacy write paths (kalshi-api.md §4 "Order writes", §5 CreateOrderV2 / Order)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from mm.sim.types import OrderStatus
from tests.sim_rest.conftest import DOLLAR, T1, T2, Client, Sim, assert_error

ORDERS = "/portfolio/events/orders"
COUNT = re.compile(r"^\d+\.\d{2}$")
ACK_KEYS = {"order_id", "client_order_id", "fill_count", "remaining_count", "average_fill_price", "average_fee_paid"}


async def test_create_answers_201_with_the_thin_ack(client: Client, sim: Sim) -> None:
    response = await client.create("alice", T1, "bid", "0.5600", "10", client_order_id="mm-1")
    assert response.status_code == 201, response.text
    ack = response.json()
    assert ACK_KEYS | {"ts_ms"} <= set(ack)
    assert ack["client_order_id"] == "mm-1" and ack["fill_count"] == "0.00" and ack["remaining_count"] == "10.00"
    assert ack["average_fill_price"] is None and isinstance(ack["ts_ms"], int)
    assert ack["ts_ms"] == sim.clock.now_us() // 1000
    order = sim.exchange.orders[ack["order_id"]]
    assert (order.price, order.remaining_count, order.status) == (5600, 1000, OrderStatus.RESTING)
    assert any(e.kind == "user_order" for e in sim.published)  # published for the WebSocket layer


async def test_the_order_reads_back_right_after_the_ack(client: Client) -> None:
    ack = (await client.create("alice", T1, "ask", "0.9900", "2.5", client_order_id="no-leg")).json()
    response = await client.get(f"/portfolio/orders/{ack['order_id']}", "alice")
    assert response.status_code == 200
    order = response.json()["order"]
    required = [
        "order_id",
        "user_id",
        "client_order_id",
        "ticker",
        "outcome_side",
        "book_side",
        "type",
        "status",
        "yes_price_dollars",
        "no_price_dollars",
        "initial_count_fp",
        "fill_count_fp",
        "remaining_count_fp",
        "taker_fill_cost_dollars",
        "maker_fill_cost_dollars",
        "taker_fees_dollars",
        "maker_fees_dollars",
        "created_time",
        "last_update_time",
        "expiration_time",
        "self_trade_prevention_type",
        "order_group_id",
        "cancel_order_on_pause",
        "subaccount_number",
        "exchange_index",
    ]
    assert set(required) <= set(order)
    # "buy NO @0.01" reads back as an ask at YES 0.99 (§5).
    assert (order["outcome_side"], order["book_side"], order["yes_price_dollars"]) == ("no", "ask", "0.9900")
    assert order["no_price_dollars"] == "0.0100" and order["status"] == "resting" and order["type"] == "limit"
    assert (order["initial_count_fp"], order["remaining_count_fp"], order["fill_count_fp"]) == ("2.50", "2.50", "0.00")
    assert order["self_trade_prevention_type"] == "taker_at_cross" and order["expiration_time"] is None
    assert_error(await client.get(f"/portfolio/orders/{ack['order_id']}", "bob"), 404, "not_found")


async def test_a_duplicate_client_order_id_is_409(client: Client) -> None:
    assert (await client.create("alice", T1, "bid", "0.40", "1", client_order_id="dup")).status_code == 201
    assert_error(await client.create("alice", T1, "bid", "0.41", "1", client_order_id="dup"), 409,
                 "duplicate_client_order_id")  # fmt: skip


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"price": "0.565"}, 400, "invalid_price"),  # off the cent grid
        ({"price": "0.56001"}, 400, "invalid_price"),  # more than 4 dp
        ({"price": "1.0000"}, 400, "invalid_price"),
        ({"price": 0.56}, 400, "invalid_price"),  # a number, not a dollar string
        ({"count": "1.001"}, 400, "invalid_order_size"),
        ({"count": "0"}, 400, "invalid_order_size"),
        ({"side": "buy"}, 400, "invalid_order"),
        ({"time_in_force": "gtc"}, 400, "invalid_order"),
        ({"self_trade_prevention_type": "none"}, 400, "invalid_order"),
        ({"ticker": None}, 400, "missing_parameters"),
        ({"price": None}, 400, "missing_parameters"),
        ({"client_order_id": "has space"}, 400, "invalid_parameters"),
        ({"client_order_id": "x" * 65}, 400, "invalid_parameters"),
        ({"time_in_force": "immediate_or_cancel", "expiration_time": 4_000_000_000}, 400, "invalid_order"),
        ({"expiration_time": 1_000_000_000}, 400, "invalid_order"),  # in the past
        ({"ticker": "NOPE-1"}, 404, "not_found"),
        ({"count": "5000"}, 400, "available_balance_too_low"),
    ],
)
async def test_invalid_creates_are_refused_with_kalshi_codes(
    client: Client, sim: Sim, change: dict[str, Any], status: int, code: str
) -> None:
    body = {"ticker": T1, "side": "bid", "price": "0.5600", "count": "10", "time_in_force": "good_till_canceled",
            "self_trade_prevention_type": "maker"}  # fmt: skip
    body.update(change)
    assert_error(await client.post(ORDERS, "alice", body), status, code)
    assert sim.exchange.orders == {}


async def test_unknown_keys_are_ignored_and_tif_stp_default(client: Client, sim: Sim) -> None:
    body = {"ticker": T1, "side": "bid", "price": "0.50", "count": "1", "buy_max_cost_dollars": "1.00", "foo": 1}
    response = await client.post(ORDERS, "alice", body)
    assert response.status_code == 201, response.text
    order = sim.exchange.orders[response.json()["order_id"]]
    assert order.time_in_force.value == "good_till_canceled" and order.stp.value == "maker"


async def test_a_cross_between_two_users_fills_both(client: Client, sim: Sim) -> None:
    maker = (await client.create("alice", T1, "ask", "0.5000", "10")).json()
    taker_response = await client.create("bob", T1, "bid", "0.5200", "4")
    taker = taker_response.json()
    assert taker_response.status_code == 201
    assert (taker["fill_count"], taker["remaining_count"]) == ("4.00", "0.00")
    assert taker["average_fill_price"] == "0.5000"  # fills print at the resting price
    assert taker["average_fee_paid"] == "0.0175"  # 0.07 × 0.5 × 0.5 per contract

    bob_fills = (await client.get("/portfolio/fills", "bob")).json()["fills"]
    alice_fills = (await client.get("/portfolio/fills", "alice")).json()["fills"]
    assert len(bob_fills) == len(alice_fills) == 1
    bf, af = bob_fills[0], alice_fills[0]
    assert bf["trade_id"] == bf["fill_id"] == af["trade_id"] and bf["ticker"] == bf["market_ticker"] == T1
    assert (bf["order_id"], af["order_id"]) == (taker["order_id"], maker["order_id"])
    assert (bf["is_taker"], af["is_taker"]) == (True, False)
    assert (bf["outcome_side"], bf["book_side"], af["outcome_side"], af["book_side"]) == ("yes", "bid", "no", "ask")
    assert bf["count_fp"] == "4.00" and bf["yes_price_dollars"] == "0.5000" and bf["no_price_dollars"] == "0.5000"
    assert (bf["fee_cost"], af["fee_cost"]) == ("0.0700", "0.0000")
    assert isinstance(bf["ts"], int) and isinstance(bf["created_time"], str)

    bob_pos = (await client.get("/portfolio/positions", "bob")).json()["market_positions"]
    alice_pos = (await client.get("/portfolio/positions", "alice")).json()["market_positions"]
    assert (bob_pos[0]["position_fp"], alice_pos[0]["position_fp"]) == ("4.00", "-4.00")

    bob_balance = (await client.get("/portfolio/balance", "bob")).json()
    assert bob_balance["balance_dollars"] == "997.9300"  # 1000 − 4 × 0.50 − 0.07
    assert bob_balance["balance"] == 99793
    alice_balance = (await client.get("/portfolio/balance", "alice")).json()
    assert alice_balance["balance_dollars"] == "995.0000"  # 2.00 paid for 4 NO, 3.00 reserved for 6 resting
    assert sim.exchange.accounts["alice"].balance == 998 * DOLLAR

    maker_order = (await client.get(f"/portfolio/orders/{maker['order_id']}", "alice")).json()["order"]
    assert (maker_order["fill_count_fp"], maker_order["remaining_count_fp"]) == ("4.00", "6.00")
    assert maker_order["maker_fill_cost_dollars"] == "2.0000" and maker_order["maker_fees_dollars"] == "0.0000"
    taker_order = (await client.get(f"/portfolio/orders/{taker['order_id']}", "bob")).json()["order"]
    assert taker_order["status"] == "executed" and taker_order["taker_fees_dollars"] == "0.0700"


async def test_amend_sets_a_new_total_count(client: Client, sim: Sim) -> None:
    maker = (await client.create("alice", T1, "ask", "0.5000", "3")).json()
    order = (await client.create("bob", T1, "bid", "0.5000", "5", client_order_id="b-1")).json()
    assert (order["fill_count"], order["remaining_count"]) == ("3.00", "2.00")
    body = {"ticker": T1, "side": "bid", "price": "0.4800", "count": "10", "client_order_id": "b-1"}
    response = await client.post(f"{ORDERS}/{order['order_id']}/amend", "bob", body)
    assert response.status_code == 200, response.text
    ack = response.json()
    assert ack["order_id"] == order["order_id"] and ack["client_order_id"] == "b-1"
    assert (ack["fill_count"], ack["remaining_count"]) == ("3.00", "7.00")  # total 10 = 3 filled + 7 resting
    assert sim.exchange.orders[order["order_id"]].price == 4800
    assert maker["order_id"] != order["order_id"]
    mismatch = {**body, "side": "ask"}
    assert_error(await client.post(f"{ORDERS}/{order['order_id']}/amend", "bob", mismatch), 400,
                 "order_side_mismatch")  # fmt: skip
    wrong_ticker = {**body, "ticker": T2}
    assert_error(await client.post(f"{ORDERS}/{order['order_id']}/amend", "bob", wrong_ticker), 400,
                 "order_ticker_mismatch")  # fmt: skip


async def test_a_post_only_amend_that_would_cross_is_refused(client: Client, sim: Sim) -> None:
    await client.create("alice", T1, "ask", "0.5000", "3")
    order = (await client.create("bob", T1, "bid", "0.4000", "2", post_only=True)).json()
    body = {"ticker": T1, "side": "bid", "price": "0.5000", "count": "2"}
    assert_error(await client.post(f"{ORDERS}/{order['order_id']}/amend", "bob", body), 400, "invalid_order")
    assert sim.exchange.orders[order["order_id"]].price == 4000


async def test_decrease_takes_exactly_one_of_reduce_by_or_reduce_to(client: Client) -> None:
    order_id = (await client.create("alice", T1, "bid", "0.3000", "10")).json()["order_id"]
    by = await client.post(f"{ORDERS}/{order_id}/decrease", "alice", {"reduce_by": "2.5"})
    assert by.status_code == 200, by.text
    assert by.json()["order_id"] == order_id and by.json()["remaining_count"] == "7.50"
    to = await client.post(f"{ORDERS}/{order_id}/decrease", "alice", {"reduce_to": "3"})
    assert to.json()["remaining_count"] == "3.00"
    both = await client.post(f"{ORDERS}/{order_id}/decrease", "alice", {"reduce_to": "1", "reduce_by": "1"})
    assert_error(both, 400, "invalid_parameters")
    assert_error(await client.post(f"{ORDERS}/{order_id}/decrease", "alice", {}), 400, "invalid_parameters")
    zero = await client.post(f"{ORDERS}/{order_id}/decrease", "alice", {"reduce_to": "0"})
    assert zero.json()["remaining_count"] == "0.00"
    status = (await client.get(f"/portfolio/orders/{order_id}", "alice")).json()["order"]["status"]
    assert status == "canceled"


async def test_cancel_acks_the_reduced_count(client: Client) -> None:
    order_id = (await client.create("alice", T1, "bid", "0.3000", "4", client_order_id="c-1")).json()["order_id"]
    response = await client.delete(f"{ORDERS}/{order_id}", "alice", subaccount=0)
    assert response.status_code == 200, response.text
    ack = response.json()
    assert (ack["order_id"], ack["client_order_id"], ack["reduced_by"]) == (order_id, "c-1", "4.00")
    assert isinstance(ack["ts_ms"], int)
    assert_error(await client.delete(f"{ORDERS}/{order_id}", "alice"), 404, "not_found")  # no longer resting
    assert_error(await client.delete(f"{ORDERS}/order-999", "alice"), 404, "not_found")
    other = (await client.create("alice", T1, "bid", "0.3000", "1")).json()["order_id"]
    assert_error(await client.delete(f"{ORDERS}/{other}", "bob"), 404, "not_found")  # not bob's
    assert_error(await client.delete(f"{ORDERS}/{other}", "alice", market_ticker=T2), 400, "order_ticker_mismatch")


async def test_batched_create_keeps_order_and_reports_the_bad_item(client: Client, sim: Sim) -> None:
    good = {"ticker": T1, "side": "bid", "price": "0.30", "count": "1"}
    bad = {"ticker": T1, "side": "bid", "price": "0.305", "count": "1"}
    response = await client.post(f"{ORDERS}/batched", "alice", {"orders": [good, bad, {**good, "price": "0.31"}]})
    assert response.status_code == 201, response.text
    items = response.json()["orders"]
    assert len(items) == 3
    assert items[0]["error"] is None and items[2]["error"] is None
    assert sim.exchange.orders[items[2]["order_id"]].price == 3100
    failed = items[1]
    assert all(failed[k] is None for k in (*ACK_KEYS, "ts_ms"))
    assert failed["error"]["code"] == "invalid_price" and "message" in failed["error"]
    assert len(sim.exchange.orders) == 2


async def test_batched_cancel(client: Client) -> None:
    ids = [(await client.create("alice", T1, "bid", "0.30", "2")).json()["order_id"] for _ in range(2)]
    body = {"orders": [{"order_id": ids[0]}, {"order_id": "order-404"}, {"order_id": ids[1]}]}
    response = await client.delete(f"{ORDERS}/batched", "alice", body)
    assert response.status_code == 200, response.text
    items = response.json()["orders"]
    assert [i["order_id"] for i in items] == [ids[0], None, ids[1]]
    assert [i["reduced_by"] for i in items] == ["2.00", "0.00", "2.00"]
    assert items[1]["error"]["code"] == "not_found" and items[0]["error"] is None


async def test_reduce_only_caps_at_the_position(client: Client, sim: Sim) -> None:
    await client.create("alice", T1, "ask", "0.5000", "10")
    await client.create("bob", T1, "bid", "0.5000", "3")  # bob long 3 YES
    refused = await client.create("bob", T1, "bid", "0.4000", "1", reduce_only=True)
    assert_error(refused, 400, "invalid_order")  # buying YES would not reduce a YES position
    capped = (await client.create("bob", T1, "ask", "0.6000", "10", reduce_only=True)).json()
    assert capped["remaining_count"] == "3.00"
    assert sim.exchange.orders[capped["order_id"]].initial_count == 300


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/portfolio/orders", {"ticker": T1, "action": "buy", "side": "yes", "count": 1, "yes_price": 50}),
        ("DELETE", "/portfolio/orders/order-1", None),
        ("POST", "/portfolio/orders/order-1/amend", {"ticker": T1}),
        ("POST", "/portfolio/orders/order-1/decrease", {"reduce_by": 1}),
        ("POST", "/portfolio/orders/batched", {"orders": []}),
        ("DELETE", "/portfolio/orders/batched", {"ids": ["order-1"]}),
    ],
)
async def test_legacy_writes_answer_deprecated(client: Client, sim: Sim, method: str, path: str, body: Any) -> None:
    before = sim.state.limiter.available("alice", "write")
    response = await client.request(method, path, "alice", json=body)
    body_json = assert_error(response, 400, "deprecated_endpoint")
    assert body_json["message"] == "Please switch to the V2 endpoints"
    assert sim.state.limiter.available("alice", "write") < before  # charged first
    assert sim.exchange.orders == {}


async def test_legacy_writes_still_need_auth(client: Client) -> None:
    response = await client.http.post("/trade-api/v2/portfolio/orders", json={})
    assert_error(response, 401, "authentication_error")
