"""Errors of ``streamal predict``: each names the file and what is wrong with it."""

from __future__ import annotations

from streamal.errors import StreamalError


class InferenceError(StreamalError):
    """Base of the errors :mod:`streamal.inference` raises on purpose (bad input: exit 2)."""


class ModelFilesError(InferenceError):
    """A run directory or checkpoint that holds no usable trained model."""


class PatternError(InferenceError):
    """A pattern file that cannot be read, or does not fit the model's grid.

    The message says what is wrong without the file name; :attr:`path` holds it (``str(exc)``
    is ``"FILE: what"`` when a path is set).
    """

    def __init__(self, message: str, path: str | None = None) -> None:
        self.message = message
        self.path = path
        super().__init__(f"{path}: {message}" if path else message)

    def at(self, path: str) -> PatternError:
        """The same error, naming ``path`` (unless it already names a file)."""
        return self if self.path else PatternError(self.message, path)
