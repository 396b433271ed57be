"""Declared resources: loading, models, admission, schemas."""
