"""defect-station end to end: the real server over HTTP, its fences, a real browser."""
