"""Shared spec inputs: a complete valid bundle that tests vary, and an alias bomb."""

BUNDLE = """\
apiVersion: mm/v1alpha1
kind: Exchange
metadata: {name: sim}
spec:
  venue: simulator
  allow_live: true
---
apiVersion: mm/v1alpha1
kind: Strategy
metadata: {name: s1}
spec:
  preset: baseline
---
apiVersion: mm/v1alpha1
kind: RiskPolicy
metadata: {name: r1}
spec: {}
---
apiVersion: mm/v1alpha1
kind: Market
metadata: {name: m1}
spec:
  exchange_ref: sim
  ticker: KXBTCD-26AUG1317-T73249.99
  strategy_ref: s1
  risk_policy_ref: r1
"""


def billion_laughs() -> str:
    """The classic alias bomb: 9 levels of 9 aliases, 9**9 nodes if anyone expanded it."""
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for level in range(1, 9):
        name, previous = chr(ord("a") + level), chr(ord("a") + level - 1)
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{previous}"] * 9) + "]")
    return "\n".join(lines) + "\n"
