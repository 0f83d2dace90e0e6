"""Errors are part of the interface: every refusal says what was checked, what was
found and what the user can do about it."""

from __future__ import annotations


class VettedError(Exception):
    """Base for every error Vetted reports to a person."""

    def __init__(self, checked: str, found: str, action: str = "") -> None:
        self.checked = checked
        self.found = found
        self.action = action
        super().__init__(self.line())

    def line(self) -> str:
        text = f"{self.checked}: {self.found}"
        if self.action:
            text += f" ({self.action})"
        return text


class Refused(VettedError):
    """A trust decision said no: a signature, digest, identity or policy check failed."""


class InputError(VettedError):
    """Input could not be read or used at all (missing file, malformed arguments)."""


class CatalogError(Refused):
    """The catalog is malformed, unsigned, signed by the wrong party, rolled back or expired."""


class DownloadError(VettedError):
    """Fetching bytes failed (network, stall, too large, cancelled); nothing was installed."""


class StoreError(VettedError):
    """The model store or its database refused an operation."""
