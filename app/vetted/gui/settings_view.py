"""Settings: the catalogs in use and whose signature each must carry, engine defaults.

Read through the runner (settings file, memory available now) when the page is built,
shown, or the pinned catalogs change.
"""

from __future__ import annotations

import html
from typing import Any

from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import QLabel, QTextBrowser, QVBoxLayout, QWidget

from vetted.gui.bridge import Job, Runner, error_text
from vetted.gui.events import CoreEvents
from vetted.textsafe import one_line

MiB = 1024 * 1024


class SettingsPage(QWidget):
    def __init__(self, runner: Runner, events: CoreEvents) -> None:
        super().__init__()
        self.runner = runner
        self.view = QTextBrowser(accessibleName="Settings")
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Pin a catalog's signer from the command line: "
                                "<code>vetted catalog add LOCATION --key PEM</code> (or --identity/--issuer, "
                                "--cert-chain). An organisation's locked policy will appear here."))
        layout.addWidget(self.view)
        events.catalogs_changed.connect(self.refresh)
        self.refresh()

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802
        super().showEvent(event)
        self.refresh()

    def refresh(self) -> Job:
        app = self.runner.app

        def job(_job: Job) -> tuple[Any, Any, int]:
            return app.settings(), app.engine_defaults(), app.available_memory()

        return self.runner.run(job, key="settings.read", on_done=self._show,
                               on_failed=lambda e: self.view.setPlainText("✖ " + error_text(e)))

    def _show(self, result: tuple[Any, Any, int]) -> None:
        from vetted.paths import pinned_trusted_root
        from vetted.trust.roots import PUBLIC_GOOD_SHA256

        s, engine, available = result
        parts = ["<h3>Catalogs</h3><table>"]
        for c in s.catalogs:
            parts.append(f"<tr><td>{html.escape(one_line(c.location))}</td><td>must be signed by "
                         f"{html.escape(one_line(c.signer.describe()))}</td></tr>")
        if not s.catalogs:
            parts.append("<tr><td>No catalog is configured.</td></tr>")
        parts.append("</table><h3>Trust roots</h3>")
        parts.append(f"<p>Sigstore trusted root (shipped with Vetted, pinned by sha256 "
                     f"{PUBLIC_GOOD_SHA256[:16]}…): {html.escape(one_line(pinned_trusted_root()))}</p>")
        parts.append("<h3>Engine defaults</h3>")
        parts.append(f"<p>Threads: {engine.n_threads} (physical cores). Context: {engine.n_ctx} tokens. "
                     f"Memory available now: {available / MiB:.0f} MiB.</p>")
        parts.append(f"<h3>Data</h3><p>{html.escape(str(self.runner.app.loc.data))}</p>")
        self.view.setHtml("".join(parts))
