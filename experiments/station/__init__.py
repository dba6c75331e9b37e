"""Operator station: page round trip, SQLite store insert time, K / area-ratio bands for rule files."""
