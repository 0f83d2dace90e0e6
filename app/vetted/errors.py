"""Errors are part of the interface: every refusal says what was checked, what was
found and what the user can do about it.

The core words `action` for any front end ("remove the model and install it again") and
never names a command or a button; where there is one obvious next step it also attaches
a `Remedy` — data that each front end turns into its own words: the CLI prints the
command, the GUI offers a button, an API returns it as a field.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Fix(str, Enum):
    """The next steps the core can suggest (each front end words them)."""

    INSTALL = "install"                # install (pull) the model from its catalog
    REINSTALL = "reinstall"            # remove the model, then install it again
    FULL_CHECK = "full_check"          # re-hash the model in full (clears a refusal if the bytes are right)
    RETRY = "retry"                    # do the same again (a download resumes)
    PIN_SIGNER = "pin_signer"          # pin the signer a catalog must carry
    REPLACE_SIGNER = "replace_signer"  # confirm replacing the signer a location is pinned to
    LIST_CATALOG = "list_catalog"      # see what a catalog offers
    SHOW_AUDIT = "show_audit"          # look at the audit log
    ACKNOWLEDGE_AUDIT = "acknowledge_audit"  # record a break in the audit chain so decisions resume
    SMALLER_MODEL = "smaller_model"    # choose a smaller model or context
    LIST_CHATS = "list_chats"          # see the saved chats


@dataclass(frozen=True)
class Remedy:
    fix: Fix
    subject: str | None = None  # the model id, catalog location, … the step is about


class VettedError(Exception):
    """Base for every error Vetted reports to a person."""

    def __init__(self, checked: str, found: str, action: str = "", remedy: Remedy | None = None) -> None:
        self.checked = checked
        self.found = found
        self.action = action
        self.remedy = remedy
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
