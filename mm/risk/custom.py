"""Custom risk rules (FR-512): user classes loaded from ``package.module.ClassName`` with ``params``.

Loading imports user code, so it happens when the controller builds a policy's pipeline, not at
admission; failures raise :class:`RiskConfigError` with the module, the class and the cause, and the
policy is reported Stalled until its spec changes. At run time a custom rule is wrapped by the
pipeline's fail-safe: if it raises, that cycle is blocked and the traceback recorded.
"""

from __future__ import annotations

import importlib
from typing import Any

from mm.domain.errors import MmError
from mm.risk.base import RiskRule
from mm.specs.risk import CustomRule


class RiskConfigError(MmError):
    """A risk policy that cannot be turned into a pipeline (e.g. a custom rule that does not load)."""


def load_custom_rule(config: CustomRule) -> RiskRule:
    """Import ``config.module``'s class, check it is a :class:`RiskRule`, build it with ``config.params``.

    The instance's ``name`` is the spec's ``name`` (which ``rule_order`` refers to).
    """
    module_name, _, class_name = config.module.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # ImportError, or anything the module raises while importing
        raise RiskConfigError(
            f"custom rule {config.name!r}: cannot import module {module_name!r}: {type(exc).__name__}: {exc}"
        ) from exc
    cls: Any = getattr(module, class_name, None)
    if cls is None:
        raise RiskConfigError(f"custom rule {config.name!r}: module {module_name!r} has no {class_name!r}")
    if not (isinstance(cls, type) and issubclass(cls, RiskRule)):
        raise RiskConfigError(
            f"custom rule {config.name!r}: {config.module} is not a subclass of mm.risk.base.RiskRule"
        )
    try:
        rule = cls(**config.params)
    except Exception as exc:
        raise RiskConfigError(
            f"custom rule {config.name!r}: {config.module}({', '.join(config.params)}) failed: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    rule.name = config.name
    return rule
