"""Helpers shared by tests and bench campaigns (``PYTHONPATH=. python bench/...`` imports them)."""
