"""The ``mmctl`` command line (typer + rich)."""
