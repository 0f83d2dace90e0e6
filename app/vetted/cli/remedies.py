"""What the person can do next, worded for a terminal: the command to run.

The core attaches a `Remedy` (errors.py) to a refusal; the GUI turns the same data into a
button. Only front ends know their own commands.
"""

from __future__ import annotations

from vetted.errors import Fix, Remedy, VettedError
from vetted.textsafe import one_line

_COMMANDS = {
    Fix.INSTALL: "vetted pull {s}",
    Fix.REINSTALL: "vetted remove {s} && vetted pull {s}",
    Fix.FULL_CHECK: "vetted check {s} --full",
    Fix.PIN_SIGNER: "vetted catalog add {s} --key PEM (or --identity ID --issuer URL, "
                    "or --cert-chain PEM --cert-identity ID)",
    Fix.REPLACE_SIGNER: "the same `vetted catalog add` command with --replace-signer",
    Fix.LIST_CATALOG: "vetted catalog",
    Fix.SHOW_AUDIT: "vetted audit",
    Fix.ACKNOWLEDGE_AUDIT: "vetted audit, then vetted audit --acknowledge",
    Fix.SMALLER_MODEL: "vetted catalog (and pick a smaller model)",
    Fix.LIST_CHATS: "vetted chats",
}


def command(remedy: Remedy | None) -> str | None:
    if remedy is None or remedy.fix not in _COMMANDS:
        return None
    return _COMMANDS[remedy.fix].format(s=one_line(remedy.subject) if remedy.subject else "LOCATION")


def hint(exc: VettedError) -> str:
    """" — next: `vetted …`", or nothing."""
    cmd = command(exc.remedy)
    return f" — next: `{cmd}`" if cmd else ""
