"""User-facing errors: every bad input becomes one of these, so the CLI can print what and where."""

from __future__ import annotations


class CascadeError(Exception):
    """An error a user can act on: what is wrong, where (file, row, column) and optionally a hint.

    The CLI prints it without a traceback and exits with code 2. Library code raises it for bad
    input; bugs stay ordinary exceptions so they are not mistaken for user errors.
    """

    def __init__(self, what: str, where: str | None = None, hint: str | None = None) -> None:
        self.what = what
        self.where = where
        self.hint = hint
        super().__init__(self.message)

    @property
    def message(self) -> str:
        text = f"{self.where}: {self.what}" if self.where else self.what
        return f"{text} ({self.hint})" if self.hint else text


class DataValidationError(CascadeError):
    """Input data breaks its dataset's schema (columns, types, timestamps, values)."""


class ConfigError(CascadeError):
    """A pipeline file or option is invalid."""


class ModelBundleError(CascadeError):
    """A model bundle is missing, unreadable, or does not match the features."""
