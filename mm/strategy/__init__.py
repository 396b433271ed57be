"""The strategy engine: pluggable, pure components (FR-410–416) composed into four-quote sheets."""
