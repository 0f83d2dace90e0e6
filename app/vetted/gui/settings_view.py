"""Settings: the catalogs in use and whose signature each must carry, engine defaults."""

from __future__ import annotations

import html

from PySide6.QtWidgets import QLabel, QTextBrowser, QVBoxLayout, QWidget

from vetted.paths import Locations, pinned_trusted_root
from vetted.runtime.defaults import physical_cores
from vetted.runtime.memory import MiB, available_memory
from vetted.settings import Settings
from vetted.textsafe import one_line


class SettingsPage(QWidget):
    def __init__(self, loc: Locations) -> None:
        super().__init__()
        self.loc = loc
        self.view = QTextBrowser(accessibleName="Settings")
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Pin a catalog's signer from the command line: "
                                "<code>vetted catalog add LOCATION --key PEM</code> (or --identity/--issuer, "
                                "--cert-chain). An organisation's locked policy will appear here."))
        layout.addWidget(self.view)
        self.refresh()

    def refresh(self) -> None:
        s = Settings.load(self.loc)
        parts = ["<h3>Catalogs</h3><table>"]
        for c in s.catalogs:
            parts.append(f"<tr><td>{html.escape(one_line(c.location))}</td><td>must be signed by "
                         f"{html.escape(one_line(c.signer.describe()))}</td></tr>")
        if not s.catalogs:
            parts.append("<tr><td>No catalog is configured.</td></tr>")
        parts.append("</table><h3>Trust roots</h3>")
        from vetted.trust.roots import PUBLIC_GOOD_SHA256

        parts.append(f"<p>Sigstore trusted root (shipped with Vetted, pinned by sha256 "
                     f"{PUBLIC_GOOD_SHA256[:16]}…): {html.escape(one_line(pinned_trusted_root()))}</p>")
        parts.append("<h3>Engine defaults</h3>")
        parts.append(f"<p>Threads: {physical_cores()} (physical cores). Context: 4096 tokens. "
                     f"Memory available now: {available_memory() / MiB:.0f} MiB.</p>")
        parts.append(f"<h3>Data</h3><p>{html.escape(str(self.loc.data))}</p>")
        self.view.setHtml("".join(parts))
