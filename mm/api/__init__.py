"""The node's control API (FastAPI): resources, control, configuration (FR-1004), events."""
