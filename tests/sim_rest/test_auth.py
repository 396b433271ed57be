"""REST authentication (kalshi-api.md §2): signed requests pass, every failure is a 401 with Kalshi's body."""

from __future__ import annotations

from tests.sim_rest.conftest import PREFIX, Client, assert_error


async def test_a_correctly_signed_request_is_served(client: Client) -> None:
    response = await client.get("/portfolio/balance", "alice")
    assert response.status_code == 200, response.text


async def test_the_query_string_is_not_signed(client: Client) -> None:
    headers = client.headers("alice", "GET", "/portfolio/orders")  # signed without "?limit=5"
    response = await client.http.get(PREFIX + "/portfolio/orders?limit=5", headers=headers)
    assert response.status_code == 200, response.text


async def test_a_bad_signature_is_401_incorrect_api_key_signature(client: Client) -> None:
    headers = client.headers("alice", "GET", "/portfolio/fills")  # signed for another path
    response = await client.http.get(PREFIX + "/portfolio/balance", headers=headers)
    body = assert_error(response, 401, "authentication_error")
    assert body["error"]["details"] == "INCORRECT_API_KEY_SIGNATURE"


async def test_another_users_signature_does_not_pass(client: Client) -> None:
    headers = client.headers("bob", "GET", "/portfolio/balance")
    headers["KALSHI-ACCESS-KEY"] = client.sim.keys["alice"].key_id
    response = await client.http.get(PREFIX + "/portfolio/balance", headers=headers)
    assert assert_error(response, 401, "authentication_error")["details"] == "INCORRECT_API_KEY_SIGNATURE"


async def test_a_stale_timestamp_is_401_header_timestamp_expired(client: Client) -> None:
    stale = client.sim.clock.now_us() // 1000 - 30_000  # §2: −30 s fails
    headers = client.headers("alice", "GET", "/portfolio/balance", ts_ms=stale)
    response = await client.http.get(PREFIX + "/portfolio/balance", headers=headers)
    assert assert_error(response, 401, "authentication_error")["details"] == "header_timestamp_expired"


async def test_a_small_clock_difference_passes(client: Client) -> None:
    early = client.sim.clock.now_us() // 1000 - 4_000  # ±5 s passes
    headers = client.headers("alice", "GET", "/portfolio/balance", ts_ms=early)
    response = await client.http.get(PREFIX + "/portfolio/balance", headers=headers)
    assert response.status_code == 200


async def test_an_unknown_key_is_401_not_found(client: Client) -> None:
    headers = client.headers("alice", "GET", "/portfolio/balance")
    headers["KALSHI-ACCESS-KEY"] = "00000000-0000-4000-8000-000000000000"
    response = await client.http.get(PREFIX + "/portfolio/balance", headers=headers)
    assert assert_error(response, 401, "authentication_error")["details"] == "NOT_FOUND"


async def test_missing_headers_are_401(client: Client) -> None:
    response = await client.http.get(PREFIX + "/portfolio/balance")
    assert_error(response, 401, "authentication_error")


async def test_writes_need_auth_too(client: Client) -> None:
    response = await client.http.post(PREFIX + "/portfolio/events/orders", json={})
    assert_error(response, 401, "authentication_error")
    assert client.sim.exchange.orders == {}


async def test_public_reads_need_no_auth_and_accept_it(client: Client) -> None:
    anonymous = await client.get("/markets")
    signed = await client.get("/markets", "alice")
    garbage = await client.http.get(PREFIX + "/markets", headers={"KALSHI-ACCESS-KEY": "nope"})
    assert anonymous.status_code == signed.status_code == garbage.status_code == 200
    assert [m["ticker"] for m in anonymous.json()["markets"]] == [m["ticker"] for m in signed.json()["markets"]]
