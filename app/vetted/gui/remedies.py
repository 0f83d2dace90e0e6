"""A core `Remedy` worded for the desktop app: where in the app the next step is.

The CLI words the same data as a command (cli/remedies.py); the core names neither.
"""

from __future__ import annotations

from vetted.errors import Fix, Remedy

_WHERE = {
    Fix.INSTALL: "install it from Discover",
    Fix.REINSTALL: "remove it in Library, then download it again from Discover",
    Fix.FULL_CHECK: "use Re-verify in Library (a full re-hash)",
    Fix.RETRY: "press Resume in Downloads",
    Fix.PIN_SIGNER: "pin the catalog's signer in Settings",
    Fix.REPLACE_SIGNER: "confirm the new signer in Settings",
    Fix.LIST_CATALOG: "see the models in Discover",
    Fix.SHOW_AUDIT: "open the Audit page",
    Fix.ACKNOWLEDGE_AUDIT: "open the Audit page and acknowledge what was found",
    Fix.SMALLER_MODEL: "tick “Fits this machine” in Discover and pick a smaller model",
    Fix.LIST_CHATS: "pick a chat from the list",
}


def where(remedy: Remedy | None) -> str | None:
    return _WHERE.get(remedy.fix) if remedy is not None else None
