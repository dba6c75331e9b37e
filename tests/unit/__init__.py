"""Unit tests: one module or class at a time, in process (tests/README.md)."""
