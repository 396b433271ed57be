"""Research reproductions of published market-making experiments (offline simulations, not the money path)."""
