"""Exchange adapters: the only code that knows a venue's wire format (design.md §3)."""
