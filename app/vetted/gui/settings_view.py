"""Settings: the catalogs in use and whose signature each must carry, the transfer limits
in force, engine defaults.

Read through the runner (settings file, the organisation's policy, memory available now)
when the page is built, shown, or the pinned catalogs change. What an organisation's
policy sets is never a silently dead control: each locked transfer limit shows a lock
and "Managed by your organisation" (the rule and its source on hover), and a catalog the
policy provides is marked as managed.
"""

from __future__ import annotations

import html
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import QGridLayout, QGroupBox, QLabel, QTextBrowser, QVBoxLayout, QWidget

from vetted.gui.bridge import MANAGED, Job, Runner, error_text, plain_tooltip
from vetted.gui.events import CoreEvents
from vetted.textsafe import one_line

MiB = 1024 * 1024
# The transfer limits, as the settings file and a policy name them (`transfers.NAME`).
TRANSFERS = (("stall_timeout", "Stall timeout", lambda v: f"{v:g} s without a byte"),
             ("window", "Slow-transfer window", lambda v: f"{v:g} s"),
             ("min_rate", "Minimum rate", lambda v: f"{v / 1024:g} KiB/s averaged over the window"))


class SettingsPage(QWidget):
    def __init__(self, runner: Runner, events: CoreEvents) -> None:
        super().__init__()
        self.runner = runner
        self.view = QTextBrowser(accessibleName="Settings")
        self.managed = QLabel(textFormat=Qt.PlainText, wordWrap=True)
        self.managed.setAccessibleName("Organisation policy")
        self.managed.hide()
        # transfer limits: (value label, lock label) per limit, filled when the settings arrive
        box = QGroupBox("Transfer limits (every download and catalog fetch)")
        grid = QGridLayout(box)
        self.transfers: dict[str, tuple[QLabel, QLabel]] = {}
        for i, (name, label, _fmt) in enumerate(TRANSFERS):
            value = QLabel("…", textFormat=Qt.PlainText, accessibleName=label)
            lock = QLabel(textFormat=Qt.PlainText, accessibleName=f"{label}: who sets it")
            grid.addWidget(QLabel(label), i, 0)
            grid.addWidget(value, i, 1)
            grid.addWidget(lock, i, 2)
            self.transfers[name] = (value, lock)
        grid.setColumnStretch(2, 1)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Pin a catalog's signer from the command line: "
                                "<code>vetted catalog add LOCATION --key PEM</code> (or --identity/--issuer, "
                                "--cert-chain). What your organisation's policy sets is marked 🔒 and "
                                "listed on the Policy page."))
        layout.addWidget(self.managed)
        layout.addWidget(box)
        layout.addWidget(self.view)
        events.catalogs_changed.connect(self.refresh)
        self.refresh()

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802
        super().showEvent(event)
        self.refresh()

    def refresh(self) -> Job:
        app = self.runner.app

        def job(_job: Job) -> tuple[Any, Any, int, Any, Any]:
            return app.settings(), app.engine_defaults(), app.available_memory(), app.policy(), app.catalog_uses()

        return self.runner.run(job, key="settings.read", on_done=self._show,
                               on_failed=lambda e: self.view.setPlainText("✖ " + error_text(e)))

    def _show(self, result: tuple[Any, Any, int, Any, Any]) -> None:
        from vetted.paths import normalise_location, pinned_trusted_root
        from vetted.trust.roots import PUBLIC_GOOD_SHA256

        s, engine, available, policy, uses = result
        self._show_policy(policy)
        self._show_transfers(s.transfers, policy)
        parts = ["<h3>Catalogs</h3><table>"]
        for u in uses:
            signers = " or ".join(html.escape(one_line(x.describe())) for x in u.signers)
            managed = (f" <b>🔒 Managed by your organisation</b> (policy {html.escape(one_line(u.managed_by))})"
                       if u.managed_by else "")
            parts.append(f"<tr><td>{html.escape(one_line(u.location))}</td><td>must be signed by "
                         f"{signers}{managed}</td></tr>")
        in_use = {normalise_location(u.location) for u in uses}
        for c in s.catalogs:  # the person's own pins the policy keeps out
            if normalise_location(c.location) in in_use:
                continue
            rule = policy.users_may_add
            why = (f" (rule catalogs.users_may_add, from {html.escape(one_line(rule.source))})"
                   if rule is not None else "")
            parts.append(f"<tr><td>{html.escape(one_line(c.location))}</td><td>🔒 not used: your organisation "
                         f"does not allow catalogs of your own{why}</td></tr>")
        if not uses and not s.catalogs:
            parts.append("<tr><td>No catalog is configured.</td></tr>")
        parts.append("</table><h3>Trust roots</h3>")
        parts.append(f"<p>Sigstore trusted root (shipped with Vetted, pinned by sha256 "
                     f"{PUBLIC_GOOD_SHA256[:16]}…): {html.escape(one_line(pinned_trusted_root()))}</p>")
        parts.append("<h3>Engine defaults</h3>")
        parts.append(f"<p>Threads: {engine.n_threads} (physical cores). Context: {engine.n_ctx} tokens. "
                     f"Memory available now: {available / MiB:.0f} MiB.</p>")
        parts.append(f"<h3>Data</h3><p>{html.escape(str(self.runner.app.loc.data))}</p>")
        self.view.setHtml("".join(parts))

    def _show_policy(self, policy: Any) -> None:
        if policy.broken is not None:
            self.managed.setText("✖ Your organisation's policy is broken: nothing can be downloaded, imported or "
                                 "run until an administrator fixes it. See the Policy page.")
            self.managed.setStyleSheet("color: #b00020; font-weight: 600")
        elif policy.managed:
            self.managed.setText(f"{MANAGED}: settings marked 🔒 are set by its policy and cannot be changed "
                                 "here. See the Policy page.")
            self.managed.setStyleSheet("font-weight: 600")
        self.managed.setVisible(policy.managed)

    def _show_transfers(self, limits: Any, policy: Any) -> None:
        """Each limit in force; one the policy locks says so, with its rule and source on hover."""
        for name, _label, fmt in TRANSFERS:
            value, lock = self.transfers[name]
            value.setText(fmt(getattr(limits, name)))
            rule = policy.settings.get(f"transfers.{name}")
            if rule is None:
                why = ""
                lock.setText("not locked by the policy" if policy.managed else "")
            else:
                why = (f"Locked to {one_line(rule.value)} by rule settings.transfers.{name}, from "
                       f"{one_line(rule.source)}. Nothing you set (settings, command-line options) changes it.")
                lock.setText(MANAGED)
            for w in (value, lock):
                w.setToolTip(plain_tooltip(why) if why else "")
            lock.setAccessibleDescription(why)
