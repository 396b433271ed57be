"""Backtests of recorded sessions (FR-903, docs/backtest.md).

``tape`` decodes a session once (our own live orders taken out of its book by ``own_orders``); ``config`` says
what runs; ``engine`` runs the node's strategy, risk, planner and paper fills on it into ``results``;
``report`` and ``html_report`` present them; ``sweep`` runs parameter grids in parallel; ``calibrate`` (with
``ghost``) measures the fill models against real fills; ``synthetic`` writes seeded sessions for benchmarks.
"""
