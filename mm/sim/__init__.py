"""A local exchange that speaks Kalshi's current REST and WebSocket protocol (kalshi-api.md): `mmctl sim`."""
