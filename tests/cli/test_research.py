"""mmctl research avellaneda-stoikov: the seeded reproduction, from the command line."""

from __future__ import annotations

import pytest

from mm.cli.main import main
from mm.research.avellaneda_stoikov import format_table, run_experiment


def test_research_avellaneda_stoikov_prints_the_seeded_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["research", "avellaneda-stoikov", "--paths", "50", "--seed", "7", "--gamma", "0.1"]) == 0
    assert capsys.readouterr().out == format_table(run_experiment(gammas=(0.1,), paths=50, seed=7)) + "\n"


def test_research_rejects_a_non_positive_gamma(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["research", "avellaneda-stoikov", "--gamma", "-1"]) == 2
    assert "--gamma must be positive" in capsys.readouterr().err
