"""Helpers for tests and benchmarks: random feeds, numeric comparison, the model zoo."""
