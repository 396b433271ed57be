"""The Kalshi Trade API v2 adapter (kalshi-api.md): signer, REST client, WebSocket client."""
