"""Full replay (FR-902): a session recorded from a node quoting on the in-process simulator is replayed through the
unmodified node — its Market reconciler on the recorded clock, a replay adapter answering its orders from the
recording — and every reconcile cycle, quote, order action and state snapshot must come out identical.

The session is recorded once per module: quoting, a fill (inventory, a new mid), the quotes moving (an amend and a
new order), several state snapshots, the shutdown's cancels. Tampered copies of it show that the checks have teeth.
"""

from __future__ import annotations

import asyncio
import gzip
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from mm.cli.main import main
from mm.controller.replay_node import NodeReplayer
from mm.reconcilers.replay_path import EngineQuotePath
from mm.recording.format import SessionFormatError, SessionRecord, read_session
from mm.recording.recorder import SessionRecorder
from mm.recording.replay import ReplayError, SessionReplayer
from mm.sim.types import BookSide as SimBookSide
from tests.controller.harness import EXCHANGE_YAML, RISK_YAML, Harness, admitted, market_yaml, wait_until
from tests.recording.test_node_recording import recorded
from tests.recording.test_replay import (
    assert_the_wider_spread_diverged_at_the_first_quote,
    record_a_fill,
    recording_node,
    rewrite,
    strategy_yaml,
    wider_spread,
)

ROOT = Path(__file__).resolve().parents[2]
ORDER_ACTIONS = ("order_sent", "order_cancel", "order_amend")


def _snapshot_with_the_fill(records: list[SessionRecord]) -> bool:
    return any(
        r.type == "state_snapshot" and r.data["accounts"] and r.data["accounts"][0]["position_units"] for r in records
    )


async def _snapshot_then_move_the_mid(h: Harness, recorder: SessionRecorder, ticker: str) -> None:
    """Wait for a snapshot holding the fill, then move the book's mid: the node must act after that snapshot
    (its own re-quote on the fill may have come before it)."""
    await recorded(recorder, _snapshot_with_the_fill, "a snapshot holding the fill")
    h.seed_book(ticker, bid=4900, ask=5500, size=100)


def _moved_after_the_fill(records: list[SessionRecord]) -> bool:
    """A snapshot holding the fill, then the node acting on it (an amend or a new order), then another snapshot."""
    stage = 0
    for r in records:
        if stage == 0 and r.type == "state_snapshot" and r.data["accounts"] and r.data["accounts"][0]["position_units"]:
            stage = 1
        elif stage == 1 and r.type in ("order_amend", "order_sent"):
            stage = 2
        elif stage == 2 and r.type == "state_snapshot":
            return True
    return False


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("full-replay")
    return asyncio.run(
        record_a_fill(
            directory,
            _moved_after_the_fill,
            "the node acting on the fill, between two snapshots",
            after_fill=_snapshot_then_move_the_mid,
        )
    )


def counts(records: list[SessionRecord]) -> Counter[str]:
    return Counter(r.type for r in records)


def test_the_recording_marks_cycles_answers_and_restorable_state(session: Path) -> None:
    records = read_session(session)
    present = counts(records)
    assert records[0].data["replay_format"] == 3 and records[0].data["client_id_prefix"] == "mm"
    assert present["reconcile"] >= present["quote_generated"] >= 3
    assert present["order_amend"] + present["order_sent"] >= 3 and present["fill"] >= 1
    assert present["order_result"] >= 1 and present["node_cancel"] == 1  # an amend's answer; the shutdown cancels
    first_cycle = next(r for r in records if r.type == "reconcile")
    assert {"market", "trading_node", "market_info"} <= set(first_cycle.data)  # first of its Market: the inputs
    later = [r for r in records if r.type == "reconcile"][1:]
    assert all("market" not in r.data for r in later)  # only when they change
    assert all(r.ts_us == r.data["now_us"] for r in records if r.type == "reconcile")
    ack = next(r for r in records if r.type == "order_ack")
    assert ack.data["created_us"] > 0
    assert all("book_ts_us" in r.data for r in records if r.type in ("book_snapshot", "book_delta"))
    snapshot = next(r for r in records[2:] if r.type == "state_snapshot")
    (market,) = snapshot.data["markets"]
    assert market["volatility"]["kind"] == "ewma" and market["attempts"] and market["last_update_us"]
    restore = snapshot.data["accounts"][0]["restore"]
    assert restore["orders"] and restore["orders"][0]["client_order_id"].startswith("mm:")
    assert restore["ledger"]["net_units"] in (0, 500)
    assert snapshot.data["book"]["book_ts_us"] > 0
    stamps = [r.ts_us for r in records]
    assert stamps == sorted(stamps)


def test_full_instant_replay_reproduces_every_decision_and_snapshot(session: Path) -> None:
    records = read_session(session)
    present = counts(records)
    slept: list[float] = []

    report = NodeReplayer(session, sleep=slept.append).run()

    assert report.divergence is None, report.describe()
    assert report.records == len(records)
    assert report.cycles == present["reconcile"]
    for kind in ("reconcile", "quote_generated", "volatility_update", *ORDER_ACTIONS):
        assert report.checked[kind] == present[kind], kind
    # the first snapshot is where the replay starts (restored); every later one and the final state are compared
    assert report.checked["state_snapshot"] == present["state_snapshot"] - 1 + 1
    assert slept == []
    assert report.describe().startswith(f"identical: {present['quote_generated']} quotes, ")


def test_a_changed_strategy_parameter_diverges_at_the_first_affected_record(session: Path) -> None:
    records = read_session(session)

    report = NodeReplayer(session, strategy_override=wider_spread(records)).run()

    assert_the_wider_spread_diverged_at_the_first_quote(report.divergence, records)
    assert report.checked["reconcile"] >= 1 and report.quotes_checked == 0


def test_partial_replay_from_a_snapshot_in_the_middle(session: Path) -> None:
    records = read_session(session)
    snapshots = [r for r in records if r.type == "state_snapshot"]
    number, snapshot = next(
        (i, s)
        for i, s in enumerate(snapshots, start=1)
        if i > 1 and s.data["accounts"] and s.data["accounts"][0]["position_units"] == 500
    )
    after = [r for r in records if r.seq > snapshot.seq]
    assert any(r.type == "quote_generated" for r in after)

    report = NodeReplayer(session, from_snapshot=number).run()

    assert report.divergence is None, report.describe()
    assert report.start_seq == snapshot.seq
    assert report.cycles == sum(1 for r in after if r.type == "reconcile")  # nothing before it ran
    assert report.quotes_checked == sum(1 for r in after if r.type == "quote_generated")
    assert f"from the state_snapshot at seq {snapshot.seq}" in report.describe()


def test_partial_replay_restores_the_estimator_state_from_the_snapshot(session: Path, tmp_path: Path) -> None:
    """The snapshot carries the volatility estimator's state: a wrong one there makes the next σ differ."""
    records = read_session(session)
    snapshots = [r for r in records if r.type == "state_snapshot"]
    number = len(snapshots) - 1  # the last periodic one (the cycles after it still quote)
    target = snapshots[number - 1]

    def tamper(record: SessionRecord) -> dict[str, Any]:
        data = dict(record.data)
        if record.seq == target.seq:
            market = dict(data["markets"][0])
            market["volatility"] = {**market["volatility"], "sum_sq": market["volatility"]["sum_sq"] * 4}
            data["markets"] = [market]
        return data

    tampered = rewrite(session, tmp_path / "tampered.jsonl.gz", tamper, keep_seq=True)
    assert NodeReplayer(session, from_snapshot=number).run().identical
    report = NodeReplayer(tampered, from_snapshot=number).run()
    d = report.divergence
    assert d is not None and d.type in ("volatility_update", "quote_generated", "state_snapshot")


def test_an_edited_order_sent_is_a_divergence_on_order_sent(session: Path, tmp_path: Path) -> None:
    records = read_session(session)
    sent = next(r for r in records if r.type == "order_sent")

    def edit(record: SessionRecord) -> dict[str, Any]:
        data = dict(record.data)
        if record.seq == sent.seq:
            data["price_units"] = data["price_units"] - 100
        return data

    edited = rewrite(session, tmp_path / "edited.jsonl.gz", edit, keep_seq=True)
    report = NodeReplayer(edited).run()

    d = report.divergence
    assert d is not None
    assert (d.seq, d.type, d.field) == (sent.seq, "order_sent", "price_units")
    assert d.expected == sent.data["price_units"] - 100 and d.got == sent.data["price_units"]


def test_an_order_the_recording_does_not_have_is_reported(session: Path, tmp_path: Path) -> None:
    """A recording without one of the node's creates (and its answer): the replay sends an order it lacks."""
    records = read_session(session)
    sent = [r for r in records if r.type == "order_sent"][1]  # the first quote's second order
    cid = sent.data["client_order_id"]

    def drop(record: SessionRecord) -> dict[str, Any] | None:
        if record.data.get("client_order_id") == cid and record.type in ("order_sent", "order_ack"):
            return None
        return dict(record.data)

    report = NodeReplayer(rewrite(session, tmp_path / "dropped.jsonl.gz", drop)).run()

    d = report.divergence
    assert d is not None and d.field == "(record)"
    assert d.expected == "<missing>" and d.got["type"] == "order_sent" and d.got["client_order_id"] == cid


def test_a_corrupt_line_is_reported_by_line_after_replaying_what_precedes(session: Path, tmp_path: Path) -> None:
    lines = gzip.decompress(session.read_bytes()).split(b"\n")
    lines[9] = b'{"seq": 10, "ts_us": '  # line 10
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b"\n".join(lines))
    with pytest.raises(SessionFormatError) as caught:
        NodeReplayer(bad).run()
    assert caught.value.line_number == 10 and "not valid JSON" in caught.value.reason


def test_a_truncated_file_is_reported_by_line(session: Path, tmp_path: Path) -> None:
    raw = session.read_bytes()
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(raw[: len(raw) * 2 // 3])
    complete = len(gzip.decompress(raw).split(b"\n")) - 1
    with pytest.raises(SessionFormatError) as caught:
        NodeReplayer(cut).run()
    assert "truncated" in caught.value.reason and 1 < caught.value.line_number <= complete


def test_accelerated_and_realtime_pacing_follow_the_recorded_clock(session: Path) -> None:
    records = read_session(session)
    span_s = (records[-1].ts_us - records[0].ts_us) / 1e6
    slept: list[float] = []
    report = NodeReplayer(session, mode="accelerated", speed=4.0, sleep=slept.append).run()
    assert report.identical and slept and all(s > 0 for s in slept)
    assert sum(slept) == pytest.approx(span_s / 4.0) and report.slept_s == pytest.approx(span_s / 4.0)
    slept.clear()
    assert NodeReplayer(session, mode="realtime", speed=99.0, sleep=slept.append).run().identical
    assert sum(slept) == pytest.approx(span_s)  # realtime ignores speed


def test_bad_arguments_and_a_snapshot_beyond_the_file(session: Path) -> None:
    count = sum(1 for r in read_session(session) if r.type == "state_snapshot")
    with pytest.raises(ReplayError, match=f"from_snapshot {count + 1} but the file has {count} state_snapshot"):
        NodeReplayer(session, from_snapshot=count + 1).run()
    with pytest.raises(ReplayError, match="unknown replay mode"):
        NodeReplayer(session, mode="warp")  # type: ignore[arg-type]
    with pytest.raises(ReplayError, match="counts state_snapshot records from 1"):
        NodeReplayer(session, from_snapshot=0)


# ---------------------------------------------------------------------- changes during the session


async def _record_changes(directory: Path) -> Path:
    """A hot reload of the Strategy, then a change of the Market's trading state (a new generation)."""
    async with recording_node(directory) as (h, recorder, ticker):
        await wait_until(lambda: h.quoting("m1", ticker), what="quoting")
        h.runtime.apply(admitted(strategy_yaml(spread="0.06")))

        def requoted(records: list[SessionRecord]) -> bool:
            reloads = [r.seq for r in records if r.type == "config_reload" and r.data["applied"]]
            return bool(reloads) and any(r.type == "order_amend" and r.seq > reloads[0] for r in records)

        await recorded(recorder, requoted, "the reload and the quotes it moved")
        reducing_market = market_yaml("m1", ticker, extra="  trading_state: reducing\n")
        h.runtime.apply(admitted(EXCHANGE_YAML, strategy_yaml(spread="0.06"), RISK_YAML, reducing_market))

        def reducing(records: list[SessionRecord]) -> bool:
            return any(r.type == "reconcile" and r.data.get("generation") == 2 for r in records) and any(
                r.type == "order_cancel" and r.data["reason"] == "reducing" for r in records
            )

        await recorded(recorder, reducing, "the Market reducing at its new generation")
        path = recorder.paths[0]
    return path


def test_hot_reloads_and_spec_changes_replay_at_the_cycle_that_saw_them(tmp_path: Path) -> None:
    session = asyncio.run(_record_changes(tmp_path))
    records = read_session(session)
    changed = [r for r in records if r.type == "reconcile" and "market" in r.data]
    assert [r.data["generation"] for r in changed] == [1, 2] and changed[1].data["market"][
        "trading_state"
    ] == "reducing"

    report = NodeReplayer(session).run()

    assert report.divergence is None, report.describe()
    assert report.checked["config_reload"] == 1 and report.checked["order_cancel"] >= 1
    assert SessionReplayer(session, EngineQuotePath).run().identical  # the quote path follows the reload too


# ---------------------------------------------------------------------- paper execution


async def _record_paper(directory: Path) -> Path:
    """A paper Market: its orders never leave the node, and its fills come from the paper fill model, inside the
    node's own calls — the replay hands them back from the recording at the same places."""

    def paper_market(ticker: str) -> str:
        return market_yaml("p1", ticker).replace("execution: live", "execution: paper")

    async with recording_node(directory, paper_market) as (h, recorder, ticker):
        node = h.runtime.node
        await wait_until(lambda: "paper" in node.exchanges["sim"].accounts, what="the paper account")
        paper = node.account("sim", "paper")
        await wait_until(lambda: len(paper.tracker.open_orders(ticker)) == 2, what="two paper quotes")
        h.take(ticker, SimBookSide.ASK, 4500, 200)  # prints through our 0.48 paper bid: a paper fill
        await wait_until(lambda: paper.ledger.net_units(ticker) == 200, what="the paper fill")
        await _snapshot_then_move_the_mid(h, recorder, ticker)
        await recorded(recorder, _moved_after_the_fill, "the paper node acting on its fill, between two snapshots")
        path = recorder.paths[0]
    return path


def test_a_paper_session_replays_identically(tmp_path: Path) -> None:
    session = asyncio.run(_record_paper(tmp_path))
    records = read_session(session)
    fills = [r for r in records if r.type == "fill"]
    assert fills and all(r.data["execution"] == "paper" for r in fills)
    assert not any(r.type == "order_update" and r.data["execution"] == "live" for r in records)

    report = NodeReplayer(session).run()

    assert report.divergence is None, report.describe()
    present = counts(records)
    assert report.quotes_checked == present["quote_generated"]
    assert report.orders_checked == sum(present[t] for t in ORDER_ACTIONS) > 0


# ---------------------------------------------------------------------- the Exchange reconciler's order resyncs


def _replaced_a_quote(records: list[SessionRecord]) -> bool:
    """A resync that adopted and dropped nothing but replaced the tracker's copy of a quote with the venue's, and a
    state snapshot after it."""
    resyncs = [r.seq for r in records if r.type == "orders_resync" and r.data.get("replaced")]
    return bool(resyncs) and any(r.type == "state_snapshot" and r.seq > resyncs[0] for r in records)


async def _record_a_replacing_resync(directory: Path) -> tuple[Path, list[tuple[bool, bool]]]:
    async with recording_node(directory) as (h, recorder, ticker):
        await wait_until(lambda: h.quoting("m1", ticker), what="quoting")
        # the harness resyncs every second: the venue's copies (its own times) replace the acks' in the tracker
        await recorded(recorder, _replaced_a_quote, "a resync replacing a quote's copy, then a snapshot")
        tracked = h.runtime.node.account("sim", "live").tracker.open_orders(ticker)
        terms = [(o.request.post_only, o.request.reduce_only) for o in tracked]
        path = recorder.paths[0]
    return path, terms


def test_a_resync_that_only_replaced_a_tracked_order_is_recorded_and_replayed(tmp_path: Path) -> None:
    """The venue's copy of an order the node knew replaces the tracker's at every resync: that changes the tracker
    as an adoption does (times, the order's terms), so it is recorded, and the replay applies it where it happened.
    The venue does not report ``post_only``: the copy keeps the one the order was sent with."""
    session, live_terms = asyncio.run(_record_a_replacing_resync(tmp_path))
    records = read_session(session)
    assert records[0].data["replay_format"] == 3
    replacing = next(r for r in records if r.type == "orders_resync" and r.data.get("replaced"))
    assert not replacing.data["adopted"] and not replacing.data["dropped"]
    listed = {o["exchange_order_id"]: o for o in replacing.data["open_orders"]}
    assert set(replacing.data["replaced"]) <= set(listed)
    assert all(o["post_only"] is True and o["reduce_only"] is False for o in listed.values())
    assert live_terms and all(terms == (True, False) for terms in live_terms)

    report = NodeReplayer(session).run()

    assert report.divergence is None, report.describe()
    assert report.checked["state_snapshot"] >= 1 and not report.notes


TRIMMED_FORMAT_2 = Path(__file__).parent / "trimmed" / "format2_unrecorded_resync.jsonl.gz"
"""Trimmed from a real `make demo` recording (replay_format 2) of KXBTCD-26AUG1318-T95499.99: its session_start; a
state_snapshot built by the replay (identical up to there) just before the cycle at original seq 15435; then the
original records from that cycle through the state_snapshot at original seq 16014, renumbered from 3. In it the
node amends order-83131 (the answer, a REST read, has post_only false: the venue does not report it), the order
stream reports the same state (post_only true, millisecond times) just after, and 17 s later the Exchange
reconciler resyncs the open orders — replacing the stream's copy with the venue's, which a format-2 file did not
record — and then gives up on a stuck create (the orders_resync with ``failed``). The snapshot holds the venue's
copy."""


def test_a_format_2_resync_that_only_replaced_an_order_is_inferred_where_the_file_shows_it() -> None:
    records = read_session(TRIMMED_FORMAT_2)
    assert records[0].data["replay_format"] == 2
    answer = next(r for r in records if r.type == "order_result" and r.data["exchange_order_id"] == "order-83131")
    streamed = next(r for r in records if r.type == "order_update" and r.seq > answer.seq)
    lookup = next(r for r in records if r.type == "orders_resync")
    snapshot = records[-1]
    (kept,) = snapshot.data["accounts"][0]["restore"]["orders"]
    assert answer.seq < streamed.seq < lookup.seq < snapshot.seq and "open_orders" not in lookup.data
    assert (answer.data["order"]["post_only"], streamed.data["post_only"], kept["post_only"]) == (False, True, False)
    assert streamed.data["updated_us"] // 1000 == answer.data["order"]["updated_us"] // 1000
    assert kept == answer.data["order"]  # the venue's copy, not the stream's the replay held before

    report = NodeReplayer(TRIMMED_FORMAT_2).run()

    assert report.divergence is None, report.describe()
    assert report.checked["state_snapshot"] == 1 and report.orders_checked == 4
    assert len(report.notes) == 1 and f"seq {lookup.seq}" in report.notes[0] and "order-83131" in report.notes[0]


def test_a_format_2_inference_needs_the_venue_copy_to_still_hold(tmp_path: Path) -> None:
    """The stream reporting a later state of the order after the amend's answer (here: a later millisecond) means
    the venue's copy at the resync is not in the file: the replay keeps its own, and says where it differs."""
    answer = next(
        r
        for r in read_session(TRIMMED_FORMAT_2)
        if r.type == "order_result" and r.data["exchange_order_id"] == "order-83131"
    )

    def later(record: SessionRecord) -> dict[str, Any]:
        data = dict(record.data)
        if record.type == "order_update" and record.seq > answer.seq and data["exchange_order_id"] == "order-83131":
            data["updated_us"] = data["venue_ts_us"] = data["updated_us"] + 1000
        return data

    report = NodeReplayer(rewrite(TRIMMED_FORMAT_2, tmp_path / "later.jsonl.gz", later, keep_seq=True)).run()

    d = report.divergence
    assert d is not None and d.type == "state_snapshot" and not report.notes
    assert d.field.startswith("accounts[0].restore.orders[0].")


# ---------------------------------------------------------------------- the committed sample and older recordings


QUICKSTART = ROOT / "examples" / "sessions" / "session_KXBTCD-26AUG1317-T94999.99_20260813_2045.jsonl.gz"
"""A real `make demo` session (quickstart, 60x simulator, live execution on it): one strike from 16:45 ET through the
settlement cutoff to its deletion at the roll-over, while the node quoted a second strike on the same account. It is
the committed sample under examples/sessions/."""
EXAMPLE = Path(__file__).parent / "sessions" / "session_KXBTCD-26AUG1317-T94749.99_20260813_2045.jsonl.gz"
"""An older real recording, made before the full replay existed (no reconcile records, no call answers): what
files recorded by earlier versions look like."""


def test_a_real_quickstart_session_replays_identically_through_the_node() -> None:
    records = read_session(QUICKSTART)
    present = counts(records)
    assert records[-1].type == "session_end" and "deleted" in records[-1].data["reason"]  # the roll-over
    usage = {u[0] for r in records if r.type == "quote_generated" for u in r.data["inputs"]["risk"]["usage"]}
    assert len(usage) == 2  # the account's other market is in the risk inputs, not in this file

    report = NodeReplayer(QUICKSTART).run()

    assert report.divergence is None, report.describe()
    assert report.cycles == present["reconcile"] > present["quote_generated"] > 100  # settling cycles quote nothing
    assert report.orders_checked == sum(present[t] for t in ORDER_ACTIONS) > 10
    assert SessionReplayer(QUICKSTART, EngineQuotePath).run().identical  # and the quote path alone


def test_an_older_recording_replays_its_quotes_and_the_node_approximately() -> None:
    """Its quote path replays exactly. The node runs on its quote_generated records, but the file does not say
    when the live cancels and amends returned (the throttle measures from then): it gets well in, not through."""
    assert SessionReplayer(EXAMPLE, EngineQuotePath).run().quotes_checked == 114
    report = NodeReplayer(EXAMPLE).run()
    assert report.replay_format == 1 and report.notes
    assert report.divergence is not None and report.quotes_checked >= 50 and report.orders_checked >= 20


# ---------------------------------------------------------------------- mmctl replay


def test_cli_full_replay_identical_exits_0(session: Path, capsys: pytest.CaptureFixture[str]) -> None:
    quotes = counts(read_session(session))["quote_generated"]
    assert main(["replay", str(session)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"identical: {quotes} quotes, ") and "reconcile cycles" in out


def test_cli_changed_parameter_exits_1_with_the_report(
    session: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    changed = tmp_path / "strategy.yaml"
    changed.write_text(strategy_yaml(spread="0.06"))
    assert main(["replay", str(session), "-f", str(changed)]) == 1
    out = capsys.readouterr().out
    assert "divergence at record" in out and "field:    strategy.quotes.yes_bid" in out
    assert "expected: [4800, 500]" in out and "got:      [4700, 500]" in out


def test_cli_quotes_only_and_from_snapshot(session: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", str(session), "--quotes-only"]) == 0
    assert "quotes checked (" in capsys.readouterr().out
    assert main(["replay", str(session), "--from-snapshot", "2", "--mode", "accelerated", "--speed", "1000"]) == 0
    assert "checked over" in capsys.readouterr().out


def test_cli_edited_order_and_corrupt_file_exit_1_without_a_traceback(
    session: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sent = next(r for r in read_session(session) if r.type == "order_sent")

    def edit(record: SessionRecord) -> dict[str, Any]:
        return {**record.data, "size_units": 1} if record.seq == sent.seq else dict(record.data)

    edited = rewrite(session, tmp_path / "edited.jsonl.gz", edit, keep_seq=True)
    assert main(["replay", str(edited)]) == 1
    out = capsys.readouterr().out
    assert "type:     order_sent" in out and "field:    size_units" in out
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(session.read_bytes()[: len(session.read_bytes()) // 2])
    assert main(["replay", str(cut)]) == 1
    captured = capsys.readouterr()
    assert f"error: cannot replay: {cut}:" in captured.err and "truncated" in captured.err
    assert "Traceback" not in captured.err + captured.out


def test_cli_older_recording_gets_the_quote_path_unless_full(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", str(EXAMPLE)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("identical: 114 quotes checked") and "note: an older recording" in out
    assert main(["replay", str(EXAMPLE), "--full"]) == 1  # the node, approximately: a divergence that is not one
    out = capsys.readouterr().out
    assert "divergence at record" in out and "--quotes-only checks an older recording's quotes exactly" in out
