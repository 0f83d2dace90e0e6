"""Policy: the organisation's managed policy in force, rule by rule, with where each came from.

An organisation locks the app with a machine-wide document (policy/sources.py); people
must be able to see what is locked and by whom, as Chrome's chrome://policy and VS Code's
"Managed by your organization" show it, instead of meeting controls that silently do
nothing. The page reads `Vetted.policy()` through the runner (it stats and parses files)
and shows one of three states: not managed; managed, with the documents in force and
every rule (its value, what it means, its source); or broken, where the fail-closed
message comes first and prominently, since nothing can be downloaded, imported or run
until an administrator fixes the file it names.

Everything shown is plain text: a policy file's path, a catalog location or a signer's
identity are data, made one line by `textsafe.one_line`, never interpreted as markup.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView, QFrame, QHeaderView, QLabel, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget,
)

from vetted.gui.bridge import MANAGED, Job, Runner, error_text, plain_tooltip
from vetted.textsafe import one_line

if TYPE_CHECKING:
    from vetted.policy.effective import EffectivePolicy, Rule

NOT_MANAGED = "Not managed: no organisation policy applies to this machine."
BROKEN = ("✖ Your organisation's policy cannot be used, so nothing can be downloaded, imported or run "
          "until an administrator fixes it.")
COLUMNS = ["Rule", "Value", "What it does", "Source"]

# What each rule does, in a person's words (the rule's name stays the one the policy uses).
MEANING = {
    "catalogs.allowed": "Only these catalogs may be used, each signed by one of these signers",
    "catalogs.users_may_add": "Whether you may add catalogs of your own",
    "models.blocked_digests": "A file with this sha256 is never downloaded or run (installed copies included)",
    "models.require_publisher_signature": "Models must carry their publisher's own signature, not only the "
                                          "catalog's",
    "safety.require_signed_card": "A model needs a signed safety card",
    "safety.require_spotcheck": "The spot-check must run on this machine before a model's first use",
    "safety.max": "At most this rate, as the signed card or the spot-check here reports it",
    "network.mode": "Where the app may connect",
    "network.hf_endpoint": "Hugging Face downloads go through this endpoint",
    "settings": "A setting locked to this value",
    "audit.copy_to": "A copy of every audit entry is appended to this file",
    "imports.allowed": "Whether model bundles may be imported (air-gapped installs)",
    "imports.only_catalog_signers": "Bundles are imported only when signed by the organisation's catalog signers",
}
NETWORK = {"offline": "offline: only catalogs and files on this machine",
           "catalog_sources": "only the organisation's catalogs and their sources", "any": "anywhere"}


def meaning(name: str) -> str:
    for prefix in (name, name.rsplit(".", 1)[0], name.split(".", 1)[0]):
        if prefix in MEANING:
            return MEANING[prefix]
    return ""


def show_value(rule: Rule) -> str:
    """A rule's value as one line of text (its parts may come from a catalog or a signer)."""
    v = rule.value
    if rule.name == "network.mode":
        return NETWORK.get(str(v), one_line(v))
    if rule.name.startswith("safety.max.") and isinstance(v, (int, float)):
        return f"at most {v:.0%}"
    return _plain(v)


def _plain(v: Any) -> str:
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, dict):
        return "; ".join(f"{k.replace('_', ' ')}: {_plain(x)}" for k, x in v.items() if x is not None)
    if isinstance(v, (list, tuple)):
        return " or ".join(_plain(x) for x in v)
    return one_line(v)


class PolicyPage(QWidget):
    loaded = Signal(object)  # the EffectivePolicy shown (tests, screenshots)

    def __init__(self, runner: Runner) -> None:
        super().__init__()
        self.runner = runner
        self.policy: EffectivePolicy | None = None
        self.state = QLabel("Reading the organisation's policy…", textFormat=Qt.PlainText, wordWrap=True)
        self.state.setAccessibleName("Policy state")
        font = self.state.font()
        font.setPointSizeF(font.pointSizeF() * 1.3)
        font.setBold(True)
        self.state.setFont(font)
        self.broken = QLabel(textFormat=Qt.PlainText, wordWrap=True)  # names a file: data, not markup
        self.broken.setAccessibleName("Policy problem")
        self.broken.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.broken_box = QFrame()
        self.broken_box.setFrameShape(QFrame.StyledPanel)
        self.broken_box.setStyleSheet("QFrame { background: #fdecea; } QLabel { color: #611a15; }")
        QVBoxLayout(self.broken_box).addWidget(self.broken)
        self.broken_box.hide()
        self.documents = QLabel(textFormat=Qt.PlainText, wordWrap=True)
        self.documents.setAccessibleName("Policy documents in force")
        self.documents.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.explain = QLabel(textFormat=Qt.PlainText, wordWrap=True)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setAccessibleName("Rules in force")
        self.table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.table.setWordWrap(False)
        self.table.setTextElideMode(Qt.ElideMiddle)
        self.table.verticalHeader().hide()
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.Interactive)
        header.setStretchLastSection(True)
        header.setMaximumSectionSize(420)
        layout = QVBoxLayout(self)
        layout.addWidget(self.state)
        layout.addWidget(self.broken_box)
        layout.addWidget(self.documents)
        layout.addWidget(self.explain)
        layout.addWidget(self.table, 100)
        layout.addStretch(1)  # keeps the text at the top when there is no table to fill the page
        self.refresh()

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802
        super().showEvent(event)
        if self.policy is None:
            self.refresh()

    def refresh(self) -> Job:
        """Reads the policy in force (once per application object: it changes on restart)."""
        app = self.runner.app
        return self.runner.run(lambda _job: app.policy(), key="policy.read", on_done=self._show,
                               on_failed=lambda e: self.state.setText("✖ " + error_text(e)))

    def rules(self) -> list[tuple[str, str, str]]:
        """(rule, value, source) as shown, row by row (tests read the page through this)."""
        return [(self.table.item(i, 0).text(), self.table.item(i, 1).text(), self.table.item(i, 3).text())
                for i in range(self.table.rowCount())]

    def _show(self, policy: EffectivePolicy) -> None:
        self.policy = policy
        if policy.broken is not None:
            self.state.setText(MANAGED + ", but its policy is broken")
            self.broken.setText(f"{BROKEN}\n\n{error_text(policy.broken)}")
            self.broken_box.show()
        else:
            self.broken_box.hide()
            self.state.setText(MANAGED if policy.managed else NOT_MANAGED)
        docs = [one_line(d) for d in policy.documents]
        self.documents.setText("Documents in force:\n" + "\n".join(f"  • {d}" for d in docs) if docs else "")
        self.documents.setVisible(bool(docs))
        rules = policy.rules()
        if policy.broken is None and policy.managed:
            self.explain.setText(
                f"{len(rules)} rule(s) in force, all locked: nothing in Vetted's settings, its command line or "
                "environment variables loosens them. Ask your organisation's administrator to change them."
                if rules else "The policy sets no rules: nothing is restricted.")
        elif policy.broken is None:
            self.explain.setText("An organisation can lock Vetted to approved catalogs and models with a "
                                 "machine-wide policy (see “For organisations” in the README).")
        else:
            self.explain.setText("Until the policy can be read and trusted, Vetted does not fall back to "
                                 "“not managed”: it refuses instead (fail closed).")
        self.table.setRowCount(len(rules))
        for i, r in enumerate(rules):
            cells = [one_line(r.name), show_value(r), meaning(r.name), one_line(r.source)]
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)  # plain text: a QTableWidgetItem never interprets markup
                item.setToolTip(plain_tooltip(text))
                self.table.setItem(i, col, item)
        self.table.setVisible(bool(rules))
        self.table.resizeColumnsToContents()
        self.loaded.emit(policy)
