"""Whose signature to require, as a form: the GUI's version of the CLI's TRUST options.

Exactly one mode, as on the command line (DESIGN.md invariant 2: no "any valid
signature"): a public key file, a certificate chain with the identity its signing
certificate must name, or a Sigstore identity with its issuer. The form only collects
what the person typed; files are read and the signer built off the UI thread, by the core
(`Vetted.signer`), so a malformed key is reported like any other refusal.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtWidgets import (
    QComboBox, QFileDialog, QFormLayout, QHBoxLayout, QLineEdit, QPushButton, QStackedWidget, QWidget,
)

MODES = [("key", "A public key (PEM file)"),
         ("certificate", "A certificate chain and who the signing certificate names"),
         ("sigstore", "A Sigstore identity (keyless signing)")]


def file_row(edit: QLineEdit, title: str, filters: str) -> QWidget:
    """A path field with a Browse… button."""
    row = QWidget()
    h = QHBoxLayout(row)
    h.setContentsMargins(0, 0, 0, 0)
    browse = QPushButton("Browse…", accessibleName=f"Browse for {title}")

    def pick() -> None:
        path, _f = QFileDialog.getOpenFileName(row, title, "", filters)
        if path:
            edit.setText(path)

    browse.clicked.connect(pick)
    h.addWidget(edit, 1)
    h.addWidget(browse)
    return row


class SignerForm(QWidget):
    def __init__(self, purpose: str) -> None:
        super().__init__()
        self.mode = QComboBox(accessibleName=f"Kind of signer {purpose}")
        for kind, label in MODES:
            self.mode.addItem(label, kind)
        self.key = QLineEdit(placeholderText="signer's public key, e.g. org-catalog.pub.pem",
                             accessibleName=f"Public key file {purpose}")
        self.chain = QLineEdit(placeholderText="the organisation's CA certificate(s), PEM",
                               accessibleName=f"Certificate chain file {purpose}")
        self.cert_identity = QLineEdit(placeholderText="e.g. email:catalog@example.org",
                                       accessibleName=f"Certificate identity {purpose}")
        self.identity = QLineEdit(placeholderText="e.g. release@example.org or a workflow URI",
                                  accessibleName=f"Sigstore identity {purpose}")
        self.issuer = QLineEdit(placeholderText="e.g. https://token.actions.githubusercontent.com",
                                accessibleName=f"Sigstore issuer {purpose}")
        pages = QStackedWidget()
        key_page = QWidget()
        QFormLayout(key_page).addRow("Public key", file_row(self.key, "Public key", "PEM (*.pem *.pub);;All (*)"))
        cert_page = QWidget()
        cf = QFormLayout(cert_page)
        cf.addRow("Certificate chain", file_row(self.chain, "Certificate chain", "PEM (*.pem *.crt);;All (*)"))
        cf.addRow("Signed by", self.cert_identity)
        sig_page = QWidget()
        sf = QFormLayout(sig_page)
        sf.addRow("Identity", self.identity)
        sf.addRow("Issuer", self.issuer)
        for p in (key_page, cert_page, sig_page):
            p.layout().setContentsMargins(0, 0, 0, 0)
            pages.addWidget(p)
        self.pages = pages
        self.mode.currentIndexChanged.connect(self._show_mode)
        self._show_mode(0)
        layout = QFormLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addRow("Must be signed by", self.mode)
        layout.addRow(pages)

    def _show_mode(self, index: int) -> None:
        """Only the chosen mode's fields take room (a stack is as tall as its tallest page)."""
        from PySide6.QtWidgets import QSizePolicy

        for i in range(self.pages.count()):
            vertical = QSizePolicy.Policy.Preferred if i == index else QSizePolicy.Policy.Ignored
            self.pages.widget(i).setSizePolicy(QSizePolicy.Policy.Preferred, vertical)
        self.pages.setCurrentIndex(index)
        self.pages.adjustSize()

    def use_key(self, path: str) -> None:
        self.mode.setCurrentIndex(0)
        self.key.setText(path)

    def collect(self) -> dict[str, Any]:
        """What was typed, for `read_signer` (off the UI thread). Empty fields are kept
        empty: the core names the one that is missing."""
        kind = self.mode.currentData()
        if kind == "key":
            return {"kind": "key", "key_file": self.key.text().strip()}
        if kind == "certificate":
            return {"kind": "certificate", "chain_file": self.chain.text().strip(),
                    "identity": self.cert_identity.text().strip()}
        return {"kind": "sigstore", "identity": self.identity.text().strip(), "issuer": self.issuer.text().strip()}


def read_signer(app: Any, form: dict[str, Any]) -> Any:
    """Reads the files a form names and builds the signer through the core (in a job)."""
    from vetted.errors import InputError

    data = dict(form)
    for field, target, what in (("key_file", "public_key_pem", "a public key file"),
                                ("chain_file", "chain_pem", "a certificate chain file")):
        if field in data:
            name = data.pop(field)
            if not name:
                raise InputError("signer", f"choose {what}")
            try:
                data[target] = Path(name).read_text("utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise InputError(f"reading {name}", getattr(exc, "strerror", None) or str(exc)) from None
    for field in ("identity", "issuer"):
        if field in data and not data[field]:
            raise InputError("signer", f"the {field} is empty")
    return app.signer(data)
