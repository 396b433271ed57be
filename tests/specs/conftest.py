"""Helpers for spec tests: a complete valid bundle, and admission of YAML text."""

from __future__ import annotations

import textwrap
from collections.abc import Callable

import pytest

from mm.specs.admission import AdmissionResult, admit
from mm.specs.yaml_loader import load_text
from tests.specs.samples import BUNDLE

AdmitText = Callable[..., AdmissionResult]


@pytest.fixture
def admit_text() -> AdmitText:
    """Admit YAML text (dedented) as if it were the file ``bundle.yaml``."""

    def run(text: str, *, with_bundle: bool = False, source: str = "bundle.yaml") -> AdmissionResult:
        body = textwrap.dedent(text)
        if with_bundle:
            body = BUNDLE + "---\n" + body
        return admit(load_text(body, source))

    return run
