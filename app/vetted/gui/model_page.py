"""A model's page: trust, provenance and safety card, each claim labelled by how it is
known (DESIGN.md invariant 8), and the download button with size and memory."""

from __future__ import annotations

import html

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QLabel, QPushButton, QTextBrowser, QVBoxLayout, QWidget

from vetted.services import ModelRow

LABEL_COLOURS = {"verified": "#1b7f3a", "declared": "#1f5fa8", "unverified": "#a15c00", "missing": "#777777"}


def badge(kind: str) -> str:
    return (f'<span style="color:{LABEL_COLOURS[kind]}; font-weight:600">[{kind}]</span>')


def fact(label: str, value: str, kind: str) -> str:
    return f"<tr><td><b>{html.escape(label)}</b></td><td>{html.escape(value)}</td><td>{badge(kind)}</td></tr>"


def render_row(row: ModelRow) -> str:
    from vetted.gui.discover import human

    e = row.entry
    verified = row.installed_state == "verified"
    parts = [f"<h2>{html.escape(e.name)}</h2><p>{html.escape(e.description)}</p>", "<h3>Trust</h3><table>"]
    parts.append(fact("Catalog", f"{row.catalog.catalog.name} v{row.catalog.catalog.version}, signed by "
                      f"{row.catalog.signer}", "verified"))
    parts.append(fact("Publisher signature must come from", row.signer,
                      "verified" if verified else "declared"))
    for f in e.files:
        parts.append(fact(f"sha256 of {f.name}", f.sha256, "verified" if verified else "declared"))
    if row.installed_state == "refused":
        parts.append(fact("State", "the installed file changed after verification; it will not run", "verified"))
    parts.append("</table><h3>Provenance</h3><table>")
    prov = e.provenance or {}
    if prov:
        for k, v in prov.items():
            parts.append(fact(k.replace("_", " "), str(v), "declared"))
    else:
        parts.append(fact("Provenance", "not declared by the catalog", "missing"))
    parts.append(fact("Publisher", e.publisher, "declared"))
    parts.append(fact("Licence", e.license, "declared"))
    if e.family:
        parts.append(fact("Family", e.family, "declared"))
    if e.parameters:
        parts.append(fact("Parameters", f"{e.parameters / 1e6:.0f} M", "declared"))
    if e.quantization:
        parts.append(fact("Quantisation", e.quantization, "declared"))
    src = e.sources
    if src.huggingface:
        parts.append(fact("Source", f"huggingface.co/{src.huggingface.repo} @ {src.huggingface.commit[:12]}",
                          "declared"))
    parts.append("</table><h3>Safety card</h3>")
    card = e.safety_card
    if not card:
        parts.append(f"<p>{badge('missing')} No safety evaluation is published for this model: "
                     "not evaluated, not hidden.</p>")
    else:
        parts.append("<table>")
        for b in card.get("benchmarks", []):
            parts.append(fact(str(b.get("name")), f"{b.get('metric')}: {b.get('value')}", "declared"))
        parts.append("</table>")
    parts.append(f"<h3>Size and memory</h3><p>{human(e.size)} download; needs about "
                 f"{row.memory_bytes / 2**20:.0f} MiB of memory to run "
                 f"({'fits' if row.fit == 'ok' else 'tight' if row.fit == 'tight' else 'does not fit'} "
                 "this machine).</p>")
    return "".join(parts)


class ModelPage(QWidget):
    download_requested = Signal(object)

    def __init__(self) -> None:
        super().__init__()
        self.row: ModelRow | None = None
        self.view = QTextBrowser()
        self.view.setOpenExternalLinks(False)
        self.view.setAccessibleName("Model details")
        self.download = QPushButton("Download")
        self.download.setAccessibleName("Download and verify this model")
        self.download.clicked.connect(lambda: self.row and self.download_requested.emit(self.row))
        self.note = QLabel()
        self.note.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addWidget(self.view)
        layout.addWidget(self.note)
        layout.addWidget(self.download)
        self.show_row(None)

    def show_row(self, row: ModelRow | None) -> None:
        from vetted.gui.discover import human

        self.row = row
        if row is None:
            self.view.setHtml("<p>Select a model to see who vouches for it.</p>")
            self.download.setEnabled(False)
            self.note.clear()
            return
        self.view.setHtml(render_row(row))
        expired = row.catalog.expired
        can = row.installed_state != "verified" and not expired and row.fit != "too_big"
        self.download.setEnabled(can)
        self.download.setText("Installed" if row.installed_state == "verified"
                              else f"Download {human(row.entry.size)}")
        if expired:
            self.note.setText("This catalog has expired: new downloads are frozen until its publisher issues "
                              "a fresh one. Installed models keep working.")
        elif row.fit == "too_big":
            self.note.setText("This model needs more memory than this machine has available.")
        else:
            self.note.clear()
