"""Integration tests: the product end to end (tests/README.md)."""
