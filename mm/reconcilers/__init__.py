"""Reconcilers: observe, plan (pure), act (design.md §3, §4)."""
