"""The desk's exception tree: every error a user may see is a `DeskError` with a sentence."""

from __future__ import annotations


class DeskError(Exception):
    """An error with a message meant for a person: what happened, what to do."""

    def __init__(self, message: str, title: str = "Error") -> None:
        super().__init__(message)
        self.message = message
        self.title = title


class ConfigError(DeskError):
    """The configuration file is missing or wrong; the message names file, key and problem."""

    def __init__(self, message: str) -> None:
        super().__init__(message, title="Configuration error")


class ConflictError(DeskError):
    """Someone else changed the record first; the caller should reload and retry."""

    def __init__(self, message: str) -> None:
        super().__init__(message, title="Changed by someone else")


class NotFoundError(DeskError):
    """The record asked for does not exist."""

    def __init__(self, message: str) -> None:
        super().__init__(message, title="Not found")
