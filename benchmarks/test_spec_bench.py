"""Spec loading and admission: not hot paths, but bounded (config saved -> applied <= 300 ms, design.md §9)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from mm.specs.admission import admit
from mm.specs.errors import SpecSyntaxError
from mm.specs.yaml_loader import load_path, load_text
from tests.specs.samples import billion_laughs

ROOT = Path(__file__).resolve().parents[1]


def test_admit_the_quickstart_bundle(benchmark: BenchmarkFixture) -> None:
    documents = load_path(ROOT / "examples" / "quickstart")
    result = benchmark(admit, documents)
    assert result.ok


def test_load_and_admit_the_reference_file(benchmark: BenchmarkFixture) -> None:
    path = ROOT / "examples" / "reference" / "all-options.yaml"
    result = benchmark(lambda: admit(load_path(path)))
    assert result.ok


def test_load_a_one_mib_file(benchmark: BenchmarkFixture, tmp_path: Path) -> None:
    doc = "apiVersion: mm/v1alpha1\nkind: Strategy\nmetadata: {{name: s{0}}}\nspec:\n  min_spread: 0.01\n"
    parts, size = [], 0
    while size < 1024 * 1024 - 200:
        parts.append(doc.format(len(parts)))
        size += len(parts[-1]) + 4
    path = tmp_path / "big.yaml"
    path.write_text("---\n".join(parts))
    documents = benchmark.pedantic(load_path, args=(path,), rounds=5, iterations=1)
    assert len(documents) == len(parts)


def test_reject_an_alias_bomb(benchmark: BenchmarkFixture) -> None:
    text = billion_laughs()

    def load() -> str:
        with pytest.raises(SpecSyntaxError) as info:
            load_text(text)
        return info.value.issue.message

    assert "alias bomb" in benchmark.pedantic(load, rounds=5, iterations=1)
