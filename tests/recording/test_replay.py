"""Deterministic replay (FR-902): a session recorded from a node on the in-process simulator is replayed through
the same strategy and risk engines, and every ``quote_generated`` must come out identical.

The session is recorded once per module (a few seconds: quoting, a fill, quoting again with inventory, several
state snapshots) with an EWMA volatility estimator, so the replay has to reproduce the estimator's history too.
"""

from __future__ import annotations

import asyncio
import gzip
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from mm.cli.main import main
from mm.reconcilers.replay_path import EngineQuotePath
from mm.recording.format import SessionFormatError, SessionRecord, encode_record, read_session
from mm.recording.recorder import SessionRecorder
from mm.recording.replay import Divergence, ReplayError, SessionReplayer, compare
from mm.sim.types import BookSide as SimBookSide
from tests.controller.harness import EXCHANGE_YAML, RISK_YAML, Harness, market_yaml, running_node, wait_until
from tests.recording.test_node_recording import node_yaml, recorded


def strategy_yaml(spread: str = "0.04") -> str:
    return f"""\
apiVersion: mm/v1alpha1
kind: Strategy
metadata: {{name: s1}}
spec:
  components:
    volatility: {{type: ewma, params: {{alpha: 0.9, min_observations: 2, initial_volatility: 0.0001}}}}
    reservation_price: {{type: simple_mid, params: {{}}}}
    skew: {{type: none, params: {{}}}}
    spread: {{type: fixed, params: {{base_spread: {spread}}}}}
    sizer: {{type: fixed, params: {{base_size: 5}}}}
  max_inventory: 50
"""


@asynccontextmanager
async def recording_node(
    directory: Path, market: Callable[[str], str] = lambda ticker: market_yaml("m1", ticker)
) -> AsyncIterator[tuple[Harness, SessionRecorder, str]]:
    """A node on the simulator recording to ``directory``/sessions, with one Market (``market(ticker)``) on the
    first ticker, whose book is seeded: the harness, the recorder and the ticker."""
    sessions = directory / "sessions"

    def build(tickers: list[str]) -> list[str]:
        return [EXCHANGE_YAML, strategy_yaml(), RISK_YAML, market(tickers[0]), node_yaml(sessions)]

    async with running_node(directory, build) as h:
        recorder = h.runtime.recorder
        assert recorder is not None
        ticker = h.tickers()[0]
        h.seed_book(ticker)
        yield h, recorder, ticker


async def record_a_fill(
    directory: Path,
    until: Callable[[list[SessionRecord]], bool],
    what: str,
    *,
    after_fill: Callable[[Harness, SessionRecorder, str], Awaitable[None]] | None = None,
) -> Path:
    """A session of Market m1 quoting, then filled (inventory, a new mid), recorded until ``until`` holds;
    ``after_fill`` runs once the fill is in the ledger (to provoke what ``until`` waits for)."""
    async with recording_node(directory) as (h, recorder, ticker):
        await wait_until(lambda: h.quoting("m1", ticker), what="quoting")
        h.take(ticker, SimBookSide.ASK, 4800, 500)  # a crowd seller hits our 0.48 bid: inventory, a new mid
        account = h.runtime.node.account("sim", "live")
        await wait_until(lambda: account.ledger.net_units(ticker) == 500, what="the fill in the ledger")
        if after_fill is not None:
            await after_fill(h, recorder, ticker)
        await recorded(recorder, until, what)
        path = recorder.paths[0]
    return path


def _quoted_after_a_snapshot_with_the_fill(records: list[SessionRecord]) -> bool:
    seen = False
    for r in records:
        if r.type == "state_snapshot" and r.data["accounts"] and r.data["accounts"][0]["position_units"]:
            seen = True
        elif seen and r.type == "quote_generated" and r.data["inputs"]["inventory_units"] == 500:
            return True
    return False


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("replay")
    return asyncio.run(
        record_a_fill(directory, _quoted_after_a_snapshot_with_the_fill, "a quote after a snapshot with the fill")
    )


def quotes_of(records: list[SessionRecord]) -> list[SessionRecord]:
    return [r for r in records if r.type == "quote_generated"]


def rewrite(
    source: Path, target: Path, change: Callable[[SessionRecord], dict[str, Any] | None], *, keep_seq: bool = False
) -> Path:
    """A copy of ``source`` with each record's data replaced by ``change`` (None drops the record; seqs renumbered)."""
    with gzip.open(target, "wb") as out:
        seq = 0
        for record in read_session(source):
            data = change(record)
            if data is None:
                continue
            seq = record.seq if keep_seq else seq + 1
            out.write(encode_record(seq, record.ts_us, record.type, record.market, data))
    return target


def wider_spread(records: list[SessionRecord]) -> dict[str, Any]:
    """The session's recorded Strategy with a base spread of 0.06 instead of 0.04."""
    override = dict(records[0].data["config"]["markets"][0]["strategy"])
    components = dict(override["components"])
    components["spread"] = {**components["spread"], "params": {"base_spread": "0.06"}}
    override["components"] = components
    return override


def assert_the_wider_spread_diverged_at_the_first_quote(d: Divergence | None, records: list[SessionRecord]) -> None:
    first = quotes_of(records)[0]
    assert d is not None
    assert (d.index, d.seq, d.type) == (records.index(first) + 1, first.seq, "quote_generated")
    assert d.field == "strategy.quotes.yes_bid"
    assert d.expected == [4800, 500] and d.got == [4700, 500]  # mid 0.50 − 0.03 instead of − 0.02


def test_instant_replay_reproduces_every_quote_exactly(session: Path) -> None:
    records = read_session(session)
    quotes = quotes_of(records)
    assert len(quotes) >= 3
    assert {q.data["inputs"]["inventory_units"] for q in quotes} >= {0, 500}  # before and after the fill
    assert len({q.data["inputs"]["mid"] for q in quotes}) >= 2  # the book moved
    assert len({q.data["inputs"]["volatility"] for q in quotes}) >= 2  # the EWMA estimator learnt

    slept: list[float] = []
    report = SessionReplayer(session, EngineQuotePath, sleep=slept.append).run()

    assert report.divergence is None, report.describe()
    assert report.identical
    assert report.quotes_checked == len(quotes)
    assert report.records == len(records)
    assert slept == []  # instant: no pacing at all
    assert report.describe().startswith(f"identical: {len(quotes)} quotes checked")


def test_a_changed_spread_diverges_at_the_first_quote(session: Path) -> None:
    records = read_session(session)
    first = quotes_of(records)[0]

    report = SessionReplayer(session, EngineQuotePath, strategy_override=wider_spread(records)).run()

    d = report.divergence
    assert_the_wider_spread_diverged_at_the_first_quote(d, records)
    assert d is not None and report.quotes_checked == 0
    text = d.describe()
    assert f"seq {first.seq}" in text and "strategy.quotes.yes_bid" in text and "[4800,500]" in text


def test_partial_replay_from_a_snapshot_with_the_fill(session: Path) -> None:
    records = read_session(session)
    snapshots = [r for r in records if r.type == "state_snapshot"]
    # the first snapshot holding the fill (1-based among the file's state_snapshots)
    number, snapshot = next(
        (i, s)
        for i, s in enumerate(snapshots, start=1)
        if s.data["accounts"] and s.data["accounts"][0]["position_units"] == 500
    )
    before = [q for q in quotes_of(records) if q.seq < snapshot.seq]
    after = [q for q in quotes_of(records) if q.seq > snapshot.seq]
    assert before and after and number > 1

    report = SessionReplayer(session, EngineQuotePath, from_snapshot=number).run()

    assert report.divergence is None, report.describe()
    assert report.start_seq == snapshot.seq
    assert report.quotes_checked == len(after)
    assert report.quotes_fast_forwarded == len(before)
    assert f"from the state_snapshot at seq {snapshot.seq}" in report.describe()


def test_partial_replay_needs_the_estimator_history(session: Path) -> None:
    """Without fast-forwarding the earlier mids, the EWMA σ after the snapshot differs: the check has teeth."""
    records = read_session(session)
    snapshots = [r for r in records if r.type == "state_snapshot"]
    number = next(
        i for i, s in enumerate(snapshots, start=1) if s.data["accounts"] and s.data["accounts"][0]["position_units"]
    )

    class Forgetful(EngineQuotePath):
        def on_mid(self, mid: Decimal, now_us: int) -> None:
            return None

    report = SessionReplayer(session, Forgetful, from_snapshot=number).run()
    assert report.divergence is not None and report.divergence.field == "inputs.volatility"


def test_from_snapshot_beyond_the_file_is_an_error(session: Path) -> None:
    count = sum(1 for r in read_session(session) if r.type == "state_snapshot")
    with pytest.raises(ReplayError, match=f"from_snapshot {count + 1} but the file has {count} state_snapshot"):
        SessionReplayer(session, EngineQuotePath, from_snapshot=count + 1).run()


def test_accelerated_and_realtime_pacing_follow_the_recorded_clock(session: Path) -> None:
    records = read_session(session)
    span_s = (records[-1].ts_us - records[0].ts_us) / 1e6
    assert span_s > 0

    slept: list[float] = []
    report = SessionReplayer(session, EngineQuotePath, mode="accelerated", speed=4.0, sleep=slept.append).run()
    assert report.identical
    assert slept and all(s > 0 for s in slept)
    assert sum(slept) == pytest.approx(span_s / 4.0)
    assert report.slept_s == pytest.approx(span_s / 4.0)

    slept.clear()
    report = SessionReplayer(session, EngineQuotePath, mode="realtime", speed=99.0, sleep=slept.append).run()
    assert report.identical and sum(slept) == pytest.approx(span_s)  # realtime ignores speed


def test_a_truncated_file_is_a_clear_error_with_the_line_number(session: Path, tmp_path: Path) -> None:
    raw = session.read_bytes()
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(raw[: len(raw) * 2 // 3])
    complete = len(gzip.decompress(raw).split(b"\n")) - 1

    with pytest.raises(SessionFormatError) as caught:
        SessionReplayer(cut, EngineQuotePath).run()

    assert "truncated" in caught.value.reason
    assert 1 < caught.value.line_number <= complete
    assert str(caught.value).startswith(f"{cut}:{caught.value.line_number}: ")


def test_a_corrupt_line_is_a_clear_error_with_the_line_number(session: Path, tmp_path: Path) -> None:
    lines = gzip.decompress(session.read_bytes()).split(b"\n")
    lines[4] = b'{"seq": 5, "ts_us": '  # line 5
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b"\n".join(lines))
    with pytest.raises(SessionFormatError) as caught:
        SessionReplayer(bad, EngineQuotePath).run()
    assert caught.value.line_number == 5 and "not valid JSON" in caught.value.reason


def test_compare_is_exact() -> None:
    assert compare({"a": [1, 2], "b": 0.1}, {"a": [1, 2], "b": 0.1}) is None
    assert compare({"b": 1}, {"b": 1.0}) == ("b", 1, 1.0)  # an int is not a float
    assert compare({"b": 1}, {"b": True}) == ("b", 1, True)
    assert compare({"b": 0.1}, {"b": math.nextafter(0.1, 1.0)}) == ("b", 0.1, 0.10000000000000002)  # one ulp
    assert compare({"q": {"yes_bid": [4800, 500]}}, {"q": {"yes_bid": None}}) == ("q.yes_bid", [4800, 500], None)
    assert compare({"a": 1}, {}) == ("a", 1, "<missing>")


# ---------------------------------------------------------------------- mmctl replay --quotes-only


def test_cli_identical_exits_0(session: Path, capsys: pytest.CaptureFixture[str]) -> None:
    quotes = len(quotes_of(read_session(session)))
    assert main(["replay", str(session), "--quotes-only"]) == 0
    assert f"identical: {quotes} quotes checked" in capsys.readouterr().out


def test_cli_changed_parameter_exits_1_with_the_report(
    session: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    changed = tmp_path / "strategy.yaml"
    changed.write_text(strategy_yaml(spread="0.06"))
    assert main(["replay", str(session), "--quotes-only", "-f", str(changed)]) == 1
    out = capsys.readouterr().out
    assert "divergence at record" in out
    assert "field:    strategy.quotes.yes_bid" in out
    assert "expected: [4800, 500]" in out and "got:      [4700, 500]" in out


def test_cli_from_snapshot_and_accelerated(session: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--quotes-only", "--from-snapshot", "2", "--mode", "accelerated", "--speed", "1000"]
    assert main(["replay", str(session), *args]) == 0
    assert "quotes checked from the state_snapshot at seq" in capsys.readouterr().out


def test_cli_truncated_file_exits_1_without_a_traceback(
    session: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    raw = session.read_bytes()
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(raw[: len(raw) // 2])
    assert main(["replay", str(cut)]) == 1
    captured = capsys.readouterr()
    assert f"error: cannot replay: {cut}:" in captured.err and "truncated" in captured.err
    assert "Traceback" not in captured.err + captured.out and "internal error" not in captured.err


def test_cli_missing_file_and_bad_mode(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", str(tmp_path / "nope.jsonl.gz")]) == 1
    assert "cannot open" in capsys.readouterr().err
    assert main(["replay", str(tmp_path / "nope.jsonl.gz"), "--mode", "warp"]) == 2
    assert "--mode must be one of" in capsys.readouterr().err


def test_quotes_carry_the_risk_inputs_and_replay_evaluates_on_them(session: Path, tmp_path: Path) -> None:
    """Each quote records what the risk engine saw besides the quotes (PnL, aggregate usage, trading states);
    the replay evaluates on exactly those: a recorded hourly loss beyond the limit must change the outcome."""
    records = read_session(session)
    first = quotes_of(records)[0]
    risk_inputs = first.data["inputs"]["risk"]
    assert risk_inputs["states"] == ["active", "active", "active"]
    assert [u[0] for u in risk_inputs["usage"]] == [first.market] or risk_inputs["usage"] == []

    def tamper(record: SessionRecord) -> dict[str, Any]:
        data = dict(record.data)
        if record.seq == first.seq:
            inputs = dict(data["inputs"])
            inputs["risk"] = {**risk_inputs, "hourly_pnl_units": -1_000_000, "daily_pnl_units": -1_000_000}
            data["inputs"] = inputs
        return data

    tampered = rewrite(session, tmp_path / "tampered.jsonl.gz", tamper, keep_seq=True)
    report = SessionReplayer(tampered, EngineQuotePath).run()
    assert report.divergence is not None and report.divergence.seq == first.seq
    assert report.divergence.field.startswith("risk.")


def test_the_committed_sessions_quote_paths_replay_identically() -> None:
    """examples/sessions/ holds a real `make demo` recording and tests/recording/sessions/ one from an earlier format:
    the recorder and the replay must stay compatible with both."""
    root = Path(__file__).resolve().parents[2]
    files = [*(root / "examples" / "sessions").glob("session_*.jsonl.gz")]
    files += (root / "tests" / "recording" / "sessions").glob("session_*.jsonl.gz")
    assert len(files) == 2
    for example in files:
        report = SessionReplayer(example, EngineQuotePath).run()
        assert report.divergence is None, (example.name, report.describe())
        assert report.quotes_checked > 100
