"""Fill-model calibration on real recordings: the committed simulator session, a fresh one recorded here by a node
trading live on the in-process simulator, and a seeded probabilistic model (the same seed, the same figures)."""

from __future__ import annotations

import math
import random
from pathlib import Path

from mm.adapters.fill_models import FillModel, QueueFillModel
from mm.backtest.calibrate import calibrate
from mm.recording.format import read_session
from mm.sim.types import BookSide as SimBookSide
from tests.backtest.test_calibrate import Recording
from tests.controller.harness import running_node, wait_until
from tests.recording.test_node_recording import documents

EXAMPLE = (
    Path(__file__).parents[2] / "tests/recording/sessions/session_KXBTCD-26AUG1317-T94749.99_20260813_2045.jsonl.gz"
)
"""A real simulator recording with 5 live fills (an earlier recording format: calibration reads both)."""


def live_fills(path: Path) -> list[int]:
    return [r.data["size_units"] for r in read_session(path) if r.type == "fill" and r.data["execution"] == "live"]


def test_the_committed_simulator_session() -> None:
    report = calibrate(EXAMPLE)
    sizes = live_fills(EXAMPLE)
    assert report.comparable and report.markets == ("KXBTCD-26AUG1317-T94749.99",)
    assert (report.real_fills, report.real_units) == (len(sizes), sum(sizes)) == (5, 4201)
    assert report.unfollowed_fills == 0 and report.orders_followed == 8 and report.skipped_lines == 0
    tape, queue, cross = (report.figures(m) for m in ("trade_through", "queue", "cross"))
    # The simulator matches in price-time priority: a print through our price means it filled us first, so the
    # trade-through ghost never fills where the venue did not (precision 1), but it misses every touch fill.
    assert tape.precision == 1.0 and tape.fill_precision == 1.0 and tape.recall is not None and tape.recall < 1.0
    # With our own size taken out of the book, the queue estimate finds every one of these five fills.
    assert queue.match_rate is not None and queue.match_rate >= 0.9 and report.passes("queue")
    # A real book never shows a cross against a resting order (it trades instead): cross never fills here.
    assert cross.ghost_fills == 0 and cross.match_rate == 0.0
    assert all(m.price_agreement in (None, 1.0) for m in (tape, queue))


def random_queue(seed: int) -> FillModel:
    """A probabilistic queue model: each cancel at our level comes from ahead of us in a random share."""
    rng = random.Random(seed)
    return QueueFillModel(share=lambda _ahead, _behind: rng.random())


def test_a_seeded_model_gives_the_same_figures_for_the_same_seed(tmp_path: Path) -> None:
    """3 contracts ahead of us, 3 behind, then 3 cancelled from somewhere in the queue, then a 3-contract touch: the
    ghost gets exactly the part of the cancel that came from ahead of us — floor(share × 3 contracts)."""
    rec = Recording()
    rec.delta("yes", 5000, 300)
    rec.place()
    rec.delta("yes", 5000, 300)
    rec.delta("yes", 5000, -300)
    rec.trade(5000, 300, "sell")
    rec.fill(5000, 300)
    path = rec.write(tmp_path / "s.jsonl.gz")
    runs = {
        seed: calibrate(path, models=["queue", "random"], factories={"random": random_queue}, seed=seed)
        for seed in (0, 1, 2)
    }
    for seed, report in runs.items():
        assert (
            report.to_json()
            == calibrate(path, models=["queue", "random"], factories={"random": random_queue}, seed=seed).to_json()
        )
        assert report.figures("random").ghost_units == math.floor(random.Random(seed).random() * 300)
        assert report.figures("queue").ghost_units == 150  # the expected-value model: half of an even queue
    assert len({r.figures("random").ghost_units for r in runs.values()}) > 1


async def test_a_fresh_live_session_on_the_simulator(tmp_path: Path) -> None:
    """A node quoting live on the in-process simulator; a crowd seller hits our 0.48 bid (a touch: ours is the only
    size there). The calibration counts exactly the file's fills, and the queue ghost (nobody ahead) takes them."""
    async with running_node(tmp_path, documents(tmp_path / "sessions")) as h:
        ticker = h.tickers()[0]
        h.seed_book(ticker)
        await wait_until(lambda: h.quoting("m1", ticker), what="quoting")
        h.take(ticker, SimBookSide.ASK, 4800, 500)
        account = h.runtime.node.account("sim", "live")
        await wait_until(lambda: account.ledger.net_units(ticker) == 500, what="the fill in the ledger")
    # stopped: the session file is complete
    (path,) = (tmp_path / "sessions").glob("session_*.jsonl.gz")
    sizes = live_fills(path)
    assert sizes == [500]
    report = calibrate(path)
    assert report.comparable and (report.real_fills, report.real_units) == (1, 500)
    assert report.orders_followed >= 2 and report.unfollowed_fills == 0
    queue = report.figures("queue")
    assert (queue.ghost_units, queue.matched_units, queue.match_rate) == (500, 500, 1.0)
    assert report.figures("trade_through").ghost_fills == 0  # a touch, not a print through our price
    assert report.figures("cross").ghost_fills == 0
