"""Helpers shared by the tests, imported one way: `from support.<module> import ...` (tests/ is
on sys.path through tests/conftest.py)."""
