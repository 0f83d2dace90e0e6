"""A core `Remedy` worded for the desktop app: where in the app the next step is, and,
where the app can take that step itself, a button that takes it.

The CLI words the same data as a command (cli/remedies.py); the core names neither.
`action(remedy)` says what the button is called and what it does: a *step* the page that
shows the error can run there and then ("retry" a download, "reverify" a model), or a
*page* to open ("Open Settings" to pin a signer); a step the showing page cannot run
becomes "Open <the page that can>". `RemedyButton` is that button; it is
hidden while there is nothing to offer, so a page keeps one in its layout.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtWidgets import QPushButton

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


@dataclass(frozen=True)
class Action:
    label: str           # the button's text
    step: str | None     # something the showing page does itself: "retry", "reverify"
    page: str | None     # else (or when the page cannot): the page to open


_ACTIONS = {
    Fix.INSTALL: Action("Open Discover", None, "Discover"),
    Fix.REINSTALL: Action("Remove…", "remove", "Library"),
    Fix.FULL_CHECK: Action("Re-verify", "reverify", "Library"),
    Fix.RETRY: Action("Retry", "retry", "Downloads"),
    Fix.PIN_SIGNER: Action("Open Settings", None, "Settings"),
    Fix.REPLACE_SIGNER: Action("Open Settings", None, "Settings"),
    Fix.LIST_CATALOG: Action("Open Discover", None, "Discover"),
    Fix.SHOW_AUDIT: Action("Open Audit", None, "Audit"),
    Fix.ACKNOWLEDGE_AUDIT: Action("Open Audit", None, "Audit"),
    Fix.SMALLER_MODEL: Action("Open Discover", None, "Discover"),
}


def where(remedy: Remedy | None) -> str | None:
    return _WHERE.get(remedy.fix) if remedy is not None else None


def action(remedy: Remedy | None) -> Action | None:
    return _ACTIONS.get(remedy.fix) if remedy is not None else None


def remedy_of(exc: BaseException) -> Remedy | None:
    return getattr(exc, "remedy", None)


class RemedyButton(QPushButton):
    """The next step of the last error, as a button; hidden when there is none.

    `steps` maps the steps this page can run itself to what runs them; `go` opens a page.
    A step the page cannot run falls back to opening the page where it can be done."""

    def __init__(self, steps: dict[str, Callable[[], object]], go: Callable[[str], object]) -> None:
        super().__init__()
        self.steps, self.go = steps, go
        self.current: Action | None = None
        self.clicked.connect(self._run)
        self.hide()

    def offer(self, remedy: Remedy | Action | None, what: str = "") -> None:
        act = remedy if isinstance(remedy, Action) or remedy is None else action(remedy)
        if act is not None and act.step not in self.steps and act.page is None:
            act = None
        self.current = act
        if act is None:
            self.hide()
            return
        label = act.label if act.step in self.steps or act.page is None else (
            act.label if act.label.startswith("Open") else f"Open {act.page}")
        self.setText(label)
        self.setAccessibleName(f"{label}{': ' + what if what else ''}")
        self.show()

    def clear(self) -> None:
        self.offer(None)

    def _run(self) -> None:
        act = self.current
        if act is None:
            return
        if act.step in self.steps:
            self.steps[act.step]()
        elif act.page is not None:
            self.go(act.page)
