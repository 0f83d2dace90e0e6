"""Welcome: the first run of an installed app, with no catalog and no model yet.

It says in a few lines what Vetted does and offers the three ways in: add a catalog
(a file or an address, and whose signature it must carry), import an air-gapped bundle,
or check a model file someone handed over against its signature. An organisation's
policy pre-configures what it decides: its catalogs are already there (and listed), and a
step the policy forbids is shown disabled with the rule and where it came from — never a
silently dead button. Everything runs through the runner; results come back as text.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QFormLayout, QGroupBox, QHBoxLayout, QLabel, QLineEdit, QPushButton, QScrollArea, QVBoxLayout, QWidget,
)

from vetted.gui import theme
from vetted.gui.bridge import MANAGED, Job, Runner, error_text
from vetted.gui.signer_form import SignerForm, file_row, read_signer
from vetted.textsafe import one_line

INTRO = ("Vetted runs language models on this computer — and only models whose every byte matches a "
         "signature from someone you chose to trust. It checks each file before it is installed and again "
         "before every run, shows who vouches for a model and what is known about its safety, and keeps a "
         "log of every decision. Nothing you type leaves this computer.")


def _plain(text: str = "") -> QLabel:
    label = QLabel(text, textFormat=Qt.PlainText, wordWrap=True)
    label.setTextInteractionFlags(Qt.TextSelectableByMouse)
    return label


class _Status(QLabel):
    """A result line that takes no room (no blank line at a box's bottom) until it says something."""

    def __init__(self) -> None:
        super().__init__("", textFormat=Qt.PlainText, wordWrap=True)
        self.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.hide()

    def setText(self, text: str) -> None:  # noqa: N802 (Qt's name)
        super().setText(text)
        self.setVisible(bool(text))


def _left(button: QPushButton) -> QWidget:
    """A button at its natural width (a form row would stretch it across the page)."""
    row = QWidget()
    h = QHBoxLayout(row)
    h.setContentsMargins(0, 0, 0, 0)
    h.addWidget(button)
    h.addStretch(1)
    return row


class WelcomePage(QWidget):
    catalog_added = Signal(str)  # the location now pinned
    import_requested = Signal()
    done = Signal()  # the person chose to look around

    def __init__(self, runner: Runner) -> None:
        super().__init__()
        self.runner = runner
        self.state: Any = None
        title = QLabel("Welcome to Vetted")
        font = title.font()
        font.setPointSizeF(font.pointSizeF() * 1.6)
        font.setBold(True)
        title.setFont(font)
        self.managed = _plain()
        self.managed.setAccessibleName("Organisation setup")
        self.managed.hide()

        # 1. a catalog
        self.catalog_box = QGroupBox("Add a catalog of models")
        self.location = QLineEdit(placeholderText="https://models.example.org/catalog.json or a file",
                                  accessibleName="Catalog location")
        self.catalog_signer = SignerForm("for the catalog")
        self.add_btn = QPushButton("Add catalog", accessibleName="Add the catalog and pin its signer")
        self.add_btn.clicked.connect(self.add_catalog)
        self.catalog_status = _Status()
        self.catalog_status.setAccessibleName("Add catalog result")
        cf = QFormLayout(self.catalog_box)
        cf.addRow(_plain("A catalog lists models someone vouches for. Vetted uses it only when it carries the "
                         "signature you name here (ask whoever gave you the catalog)."))
        cf.addRow("Catalog", file_row(self.location, "Catalog file", "Catalogs (*.json);;All (*)"))
        cf.addRow(self.catalog_signer)
        cf.addRow(_left(self.add_btn))
        cf.addRow(self.catalog_status)

        # 2. a bundle
        self.import_box = QGroupBox("Import a bundle (no network needed)")
        self.import_btn = QPushButton("Choose a bundle…", accessibleName="Import the models of a bundle")
        self.import_btn.clicked.connect(self.import_requested.emit)
        self.import_note = _Status()
        bl = QVBoxLayout(self.import_box)
        bl.addWidget(_plain("A bundle file from your organisation carries a signed catalog and its models. "
                            "Every model in it is checked before any is installed."))
        row = QHBoxLayout()
        row.addWidget(self.import_btn)
        row.addStretch(1)
        bl.addLayout(row)
        bl.addWidget(self.import_note)

        # 3. a file someone handed over
        self.check_box = QGroupBox("Check a model file against its signature")
        self.model_file = QLineEdit(placeholderText="the model file (.gguf) or folder", accessibleName="Model file")
        self.sig_file = QLineEdit(placeholderText="its signature (model.sig or .sigstore.json)",
                                  accessibleName="Signature file")
        self.check_signer = SignerForm("for the model")
        self.check_btn = QPushButton("Check", accessibleName="Check the model file against its signature")
        self.check_btn.clicked.connect(self.check_file)
        self.check_status = _Status()
        self.check_status.setAccessibleName("Check result")
        kf = QFormLayout(self.check_box)
        kf.addRow("Model", file_row(self.model_file, "Model file", "GGUF (*.gguf);;All (*)"))
        kf.addRow("Signature", file_row(self.sig_file, "Signature", "Signatures (*.sig *.json);;All (*)"))
        kf.addRow(self.check_signer)
        kf.addRow(_left(self.check_btn))
        kf.addRow(self.check_status)

        for box in (self.catalog_box, self.import_box, self.check_box):
            theme.bold_title(box)

        self.skip = QPushButton("Look around first", accessibleName="Close the welcome page")
        self.skip.clicked.connect(self.done.emit)
        inner = QWidget()
        v = QVBoxLayout(inner)
        v.addWidget(title)
        v.addWidget(_plain(INTRO))
        v.addWidget(self.managed)
        for box in (self.catalog_box, self.import_box, self.check_box):
            v.addWidget(box)
        end = QHBoxLayout()
        end.addStretch(1)
        end.addWidget(self.skip)
        v.addLayout(end)
        v.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(inner)
        QVBoxLayout(self).addWidget(scroll)

    def show_state(self, state: Any) -> None:
        """What the organisation pre-configured, and which steps it allows (`SetupState`)."""
        self.state = state
        lines = []
        if state.managed_catalogs:
            lines.append(f"{MANAGED}: its catalogs are already set up — "
                         + ", ".join(one_line(c) for c in state.managed_catalogs) + ". Discover lists their models.")
        self.managed.setText("\n".join(lines))
        self.managed.setVisible(bool(lines))
        for box, button, blocked, note in (
                (self.catalog_box, self.add_btn, state.add_catalog_blocked, self.catalog_status),
                (self.import_box, self.import_btn, state.import_blocked, self.import_note)):
            button.setEnabled(blocked is None)
            for w in box.findChildren(QLineEdit):
                w.setEnabled(blocked is None)
            if blocked is not None:
                note.setText(f"🔒 {one_line(blocked)}")

    def add_catalog(self) -> Job:
        app = self.runner.app
        location = self.location.text().strip()
        form = self.catalog_signer.collect()

        def job(_job: Job) -> Any:
            from vetted.errors import InputError

            if not location:
                raise InputError("catalog", "enter its address or choose its file")
            return app.pin_catalog(location, read_signer(app, form))

        self.add_btn.setEnabled(False)
        self.catalog_status.setText("Pinning the catalog's signer…")
        return self.runner.run(job, on_done=self._added, on_failed=self._add_failed)

    def _added(self, pinned: Any) -> None:
        self.add_btn.setEnabled(True)
        self.catalog_status.setText(f"✔ Added {one_line(pinned.location)}: it must be signed by "
                                    f"{one_line(pinned.signer)}. Its models are checked now; see Discover.")
        self.catalog_added.emit(pinned.location)

    def _add_failed(self, exc: BaseException) -> None:
        self.add_btn.setEnabled(True)
        self.catalog_status.setText("✖ " + error_text(exc))

    def check_file(self) -> Job:
        app = self.runner.app
        model, sig = self.model_file.text().strip(), self.sig_file.text().strip()
        form = self.check_signer.collect()

        def job(_job: Job) -> Any:
            from vetted.errors import InputError

            if not model or not sig:
                raise InputError("check", "choose the model file and its signature")
            return app.verify(Path(model), Path(sig), read_signer(app, form))

        self.check_btn.setEnabled(False)
        self.check_status.setText("Checking every byte…")
        return self.runner.run(job, on_done=self._checked, on_failed=self._check_failed)

    def _checked(self, verdict: Any) -> None:
        self.check_btn.setEnabled(True)
        self.check_status.setText(f"✔ {one_line(verdict.line())}")

    def _check_failed(self, exc: BaseException) -> None:
        self.check_btn.setEnabled(True)
        self.check_status.setText("✖ " + error_text(exc))
