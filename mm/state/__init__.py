"""State: the position and PnL ledger, the SQLite store with its write-behind queue, checkpoints."""
