"""End to end: what the compatibility fixes make work in a real run (a killed run resumed)."""
