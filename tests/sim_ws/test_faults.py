"""Keep-alive pings and injected faults, observed by a real client (kalshi-api.md §6; design.md §6)."""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
from typing import Any

import pytest
from websockets.client import ClientProtocol
from websockets.exceptions import ConnectionClosed
from websockets.frames import Close, Frame, Opcode
from websockets.http11 import Response
from websockets.uri import parse_uri

from tests.sim_ws.conftest import BID, T1, T2, Client, Sim, SimFactory, wait_until

PING = 0.05


def book_sub(cmd_id: int = 1, **params: Any) -> dict[str, Any]:
    return {
        "id": cmd_id,
        "cmd": "subscribe",
        "params": {"channels": ["orderbook_delta"], "market_tickers": [T1, T2], **params},
    }


def churn(sim: Sim, n: int) -> None:
    """``n`` orders resting on T1 and T2, each one ``orderbook_delta``."""
    for i in range(n):
        sim.place("bob", (T1, T2)[i % 2], BID, 100 * (10 + i % 40), 100)


async def next_ping(client: Client, timeout: float = 2.0) -> bytes:
    return await asyncio.wait_for(client.ws.pings.get(), timeout)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # uvicorn's legacy "websockets" implementation
@pytest.mark.filterwarnings("ignore::uvicorn.config.UvicornDeprecationWarning")
@pytest.mark.parametrize("ws", ["websockets-sansio", "websockets"])
async def test_the_server_pings_with_payload_heartbeat(make_sim: SimFactory, ws: str) -> None:
    sim = await make_sim(ws=ws, ping_interval_s=PING)
    client = await sim.connect()
    assert await next_ping(client) == b"heartbeat"
    assert await next_ping(client) == b"heartbeat"
    # the client's automatic pongs keep the connection healthy
    assert (await client.command(book_sub()))[0]["type"] == "subscribed"


async def test_dropped_messages_leave_a_seq_gap(sim: Sim) -> None:
    client = await sim.connect()
    await client.command(book_sub())  # snapshots: seq 1, 2
    sim.state.faults.ws_drop_message_rate = 0.3
    churn(sim, 200)
    got = await client.sync()
    seqs = [m["seq"] for m in got]
    dropped = sim.state.faults.counters.dropped_messages
    assert 0 < dropped < 200 and len(seqs) == 200 - dropped
    assert seqs == sorted(seqs) and seqs[-1] == 202  # every message took its seq, sent or not
    assert any(b - a > 1 for a, b in itertools.pairwise(seqs))  # the client sees gaps
    # a get_snapshot resyncs: its seq follows the last one used
    sim.state.faults.ws_drop_message_rate = 0.0
    got = await client.command(
        {"id": 5, "cmd": "update_subscription", "params": {"sid": 1, "market_ticker": T1, "action": "get_snapshot"}}
    )
    assert got[0]["seq"] == 203 and got[0]["type"] == "orderbook_snapshot"


async def test_duplicated_messages_repeat_their_seq(sim: Sim) -> None:
    client = await sim.connect()
    await client.command(book_sub())
    sim.state.faults.ws_duplicate_message_rate = 0.25
    churn(sim, 100)
    got = await client.sync()
    duplicated = sim.state.faults.counters.duplicated_messages
    assert 0 < duplicated < 100 and len(got) == 100 + duplicated
    seqs = [m["seq"] for m in got]
    assert sorted(set(seqs)) == list(range(3, 103))  # no gap, some repeated
    repeats = [i for i in range(1, len(got)) if seqs[i] == seqs[i - 1]]
    assert len(repeats) == duplicated and all(got[i] == got[i - 1] for i in repeats)


async def test_silence_sends_nothing_not_even_pings_then_traffic_resumes(make_sim: SimFactory) -> None:
    sim = await make_sim(ping_interval_s=PING)
    client = await sim.connect()
    await client.command(book_sub())  # seq 1, 2
    assert await next_ping(client) == b"heartbeat"
    sim.state.faults.ws_silent = True
    await wait_until(lambda: sim.state.faults.counters.silenced_connections == 1)
    while not client.ws.pings.empty():  # a ping already on the wire when silence began
        client.ws.pings.get_nowait()
    churn(sim, 5)  # seq 3..7: never sent
    await client.send({"id": 9, "cmd": "list_subscriptions"})  # processed, not answered
    await client.expect_nothing(timeout=10 * PING)
    assert client.ws.pings.empty()
    assert sim.hub.connection_count == 1  # the connection stays open
    sim.state.faults.ws_silent = False
    assert await next_ping(client) == b"heartbeat"
    churn(sim, 1)
    (delta,) = await client.sync()
    assert delta["seq"] == 8  # the silent stretch shows as a gap
    assert sim.state.faults.counters.silenced_connections == 1


async def test_latency_delays_messages_in_order(sim: Sim) -> None:
    client = await sim.connect()
    await client.command(book_sub())
    sim.state.faults.ws_latency_s = 0.3
    loop = asyncio.get_running_loop()
    start = loop.time()
    churn(sim, 3)
    first = await client.recv()
    elapsed = loop.time() - start
    rest = [await client.recv(), await client.recv()]
    assert elapsed >= 0.3
    assert [first["seq"], *(m["seq"] for m in rest)] == [3, 4, 5]


async def test_drop_all_connections_drops_every_client(sim: Sim) -> None:
    alice, bob = await sim.connect("alice"), await sim.connect("bob")
    await alice.command(book_sub())
    assert sim.hub.drop_all_connections() == 2
    for client in (alice, bob):
        with pytest.raises(ConnectionClosed) as info:
            await asyncio.wait_for(client.ws.recv(), 5)
        assert info.value.rcvd is None  # no close frame: the TCP stream was cut
    assert sim.state.faults.counters.dropped_connections == 2
    await wait_until(lambda: sim.hub.connection_count == 0)
    # a client reconnects and resubscribes
    again = await sim.connect("alice")
    assert (await again.command(book_sub()))[0]["msg"] == {"channel": "orderbook_delta", "sid": 1}


async def test_a_client_that_falls_behind_gets_error_25_and_is_closed(make_sim: SimFactory) -> None:
    sim = await make_sim(queue_limit=50)
    client = await sim.connect()
    await client.command(book_sub())
    other = await sim.connect("bob")
    await other.command({"id": 1, "cmd": "subscribe", "params": {"channels": ["trade"]}})
    # a slow link (latency) lets the subscribed connection's queue grow past its limit
    sim.state.faults.ws_latency_s = 30.0
    churn(sim, 60)
    overflow = await client.recv()
    assert overflow == {"type": "error", "msg": {"code": 25, "msg": "Subscription buffer overflow"}}
    with pytest.raises(ConnectionClosed) as info:
        await client.recv()
    assert info.value.rcvd is not None and info.value.rcvd.code == 1008
    assert info.value.rcvd.reason == "buffer overflow"
    await wait_until(lambda: sim.hub.connection_count == 1)  # the other connection is unaffected
    assert sim.hub.users() == ["bob"]


class StalledClient:
    """A real WebSocket client that stops reading after subscribing: its tiny receive buffer fills, TCP pushes
    back, and the server's queue for it grows (the websockets sans-io protocol frames the bytes)."""

    def __init__(self, sim: Sim) -> None:
        self.sim = sim
        self.protocol = ClientProtocol(parse_uri(sim.url))
        self.reader: asyncio.StreamReader
        self.writer: asyncio.StreamWriter

    async def open(self, command: dict[str, Any]) -> None:
        uri = parse_uri(self.sim.url)
        request = self.protocol.connect()
        for name, value in self.sim.headers("alice").items():
            request.headers[name] = value
        self.protocol.send_request(request)
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, (uri.host, uri.port))
        self.reader, self.writer = await asyncio.open_connection(sock=sock)
        self.writer.write(b"".join(self.protocol.data_to_send()))
        while not any(isinstance(e, Response) for e in self.protocol.events_received()):
            self.protocol.receive_data(await asyncio.wait_for(self.reader.read(65536), 5))
        self.protocol.send_text(json.dumps(command).encode())
        self.writer.write(b"".join(self.protocol.data_to_send()))
        await self.writer.drain()

    async def read_all(self) -> list[Frame]:
        """Read until the server closes or cuts the stream; every frame received."""
        frames: list[Frame] = []
        while True:
            data = await asyncio.wait_for(self.reader.read(1 << 20), 5)
            if not data:
                self.protocol.receive_eof()
                return frames
            self.protocol.receive_data(data)
            frames.extend(e for e in self.protocol.events_received() if isinstance(e, Frame))
            self.writer.write(b"".join(self.protocol.data_to_send()))

    def close(self) -> None:
        self.writer.close()


async def overflow_a_stalled_client(sim: Sim) -> StalledClient:
    stalled = StalledClient(sim)
    await stalled.open(book_sub())
    await wait_until(lambda: sim.hub.connection_count == 1)
    for _ in range(1000):  # a busy market; the writer runs between bursts until TCP stops it
        churn(sim, 100)
        await asyncio.sleep(0)  # a bare yield to the writer task, not a timed wait
        if sim.hub.users() == []:
            return stalled
    raise AssertionError("the stalled client never overflowed")


async def test_a_stalled_client_gets_error_25_and_a_close_once_it_reads(make_sim: SimFactory) -> None:
    sim = await make_sim(queue_limit=500, close_grace_s=30.0)
    stalled = await overflow_a_stalled_client(sim)
    frames = await stalled.read_all()
    texts = [json.loads(bytes(f.data)) for f in frames if f.opcode is Opcode.TEXT]
    assert texts[-1] == {"type": "error", "msg": {"code": 25, "msg": "Subscription buffer overflow"}}
    seqs = [m["seq"] for m in texts[:-1] if "seq" in m]
    assert seqs == list(range(1, len(seqs) + 1))  # everything before the overflow arrived in order
    close = Close.parse(frames[-1].data)
    assert frames[-1].opcode is Opcode.CLOSE and (close.code, close.reason) == (1008, "buffer overflow")
    stalled.close()


async def test_a_stalled_client_that_never_reads_is_cut_off_after_the_grace(make_sim: SimFactory) -> None:
    sim = await make_sim(queue_limit=500, close_grace_s=0.1)
    stalled = await overflow_a_stalled_client(sim)
    await wait_until(lambda: sim.hub.connection_count == 0)  # the TCP stream was aborted
    frames = await stalled.read_all()
    assert not any(f.opcode is Opcode.CLOSE for f in frames)
    stalled.close()


async def test_a_formatting_bug_closes_connections_but_never_breaks_the_publisher(
    sim: Sim, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = await sim.connect()
    await client.command(book_sub())

    def broken(*_args: object) -> dict[str, Any]:
        raise RuntimeError("bug")

    monkeypatch.setattr(sim.hub.messages, "delta", broken)
    sim.place("bob", T1, BID, 4000, 100)  # publish() returns normally
    assert await client.recv() == {"type": "error", "msg": {"code": 17, "msg": "Internal error"}}
    with pytest.raises(ConnectionClosed) as info:
        await client.recv()
    assert info.value.rcvd is not None and info.value.rcvd.code == 1011
