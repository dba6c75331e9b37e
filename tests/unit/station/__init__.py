"""defect-station: rules, store, uploads, the real server and a real browser."""
