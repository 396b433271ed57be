"""A complete, valid bundle of resources that spec tests vary."""

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
