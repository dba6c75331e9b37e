"""The station's one error type: a refusal with the HTTP status the page gets."""
from __future__ import annotations


class StationError(Exception):
    """A request the station refuses; ``status`` is the HTTP status the page gets with the message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
