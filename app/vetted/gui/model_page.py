"""A model's page: trust, provenance and safety card, each claim labelled by how it is
known (DESIGN.md invariant 8), and the download button with size and memory."""

from __future__ import annotations

from typing import TYPE_CHECKING

import html

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QTextBrowser, QVBoxLayout, QWidget

from vetted.textsafe import one_line

if TYPE_CHECKING:  # the core is imported after the first paint, not before
    from vetted.services import ModelRow


LABEL_COLOURS = {"verified": "#1b7f3a", "declared": "#1f5fa8", "unverified": "#a15c00", "missing": "#777777"}


def esc(value: object) -> str:
    """Untrusted text (catalog, claims, GGUF metadata, refusals) for the page's HTML: control
    and format characters made visible (`textsafe.one_line`), then HTML-escaped."""
    return html.escape(one_line(value))


def badge(kind: str) -> str:
    return (f'<span style="color:{LABEL_COLOURS[kind]}; font-weight:600">[{kind}]</span>')


def fact(label: str, value: str, kind: str) -> str:
    return f"<tr><td><b>{esc(label)}</b></td><td>{esc(value)}</td><td>{badge(kind)}</td></tr>"


def render_row(row: ModelRow, card: dict | None = None) -> str:
    from vetted.units import human_size as human

    e = row.entry
    verified = row.installed_state == "verified"
    parts = [f"<h2>{esc(e.name)}</h2><p>{esc(e.description)}</p>", "<h3>Trust</h3><table>"]
    parts.append(fact("Catalog", f"{row.catalog.catalog.name} v{row.catalog.catalog.version}, signed by "
                      f"{row.catalog.signer}", "verified"))
    parts.append(fact("Publisher signature must come from", row.signer,
                      "verified" if verified else "declared"))
    for f in e.files:
        parts.append(fact(f"sha256 of {f.name}", f.sha256, "verified" if verified else "declared"))
    if row.installed_state == "refused":
        parts.append(fact("State", "the installed file changed after verification; it will not run", "verified"))
    parts.append(fact("Publisher (catalog)", e.publisher, "declared"))
    parts.append(fact("Licence (catalog)", e.license, "declared"))
    if e.parameters:
        parts.append(fact("Parameters (catalog)", f"{e.parameters / 1e6:.0f} M", "declared"))
    if e.quantization:
        parts.append(fact("Quantisation (catalog)", e.quantization, "declared"))
    src = e.sources
    if src.huggingface:
        parts.append(fact("Source", f"huggingface.co/{src.huggingface.repo} @ {src.huggingface.commit[:12]}",
                          "declared"))
    parts.append("</table>")
    parts.append(render_card(card) if card is not None else "")
    parts.append(f"<h3>Size and memory</h3><p>{human(e.size)} download; needs about "
                 f"{row.memory_bytes / 2**20:.0f} MiB of memory to run "
                 f"({'fits' if row.fit == 'ok' else 'tight' if row.fit == 'tight' else 'does not fit'} "
                 "this machine).</p>")
    return "".join(parts)


def _bar(value: float, colour: str) -> str:
    """A small inline bar: reads faster than a column of percentages."""
    filled = round(max(0.0, min(1.0, value)) * 20)
    return (f'<span style="background:{colour}">{"&nbsp;" * filled}</span>'
            f'<span style="background:#dddddd">{"&nbsp;" * (20 - filled)}</span>')


def render_card(c: dict) -> str:
    e = esc
    parts = ["<h3>Provenance</h3>"]
    if not c["provenance"]:
        parts.append(f"<p>{badge('missing')} No provenance is published for this model.</p>")
    for p in c["provenance"]:
        who = f" by {e(p['by'])}" if p.get("by") else ""
        why = f" — {e(p['why'])}" if p.get("why") else ""
        d = p["data"] if isinstance(p["data"], dict) else {}
        parts.append(f"<p>{badge(p['label'])}{who}{why}</p><table>")
        for k in ("publisher", "model_name", "license", "architecture", "tokenizer", "quantization",
                  "training_data"):
            if d.get(k):
                parts.append(f"<tr><td><b>{e(k.replace('_', ' '))}</b></td><td>{e(str(d[k]))}</td></tr>")
        for b in d.get("base_models", []):
            teachers = f" — teachers: {e(', '.join(map(one_line, b['teachers'])))}" if b.get("teachers") else ""
            parts.append(f"<tr><td><b>base model</b></td><td>{e(b['name'])} ({e(b['relation'])}){teachers}</td></tr>")
        for k in ("converter", "quantizer"):
            if d.get(k):
                parts.append(f"<tr><td><b>{k}</b></td><td>{e(d[k].get('name', ''))} {e(d[k].get('version') or '')}</td></tr>")
        if d.get("source"):
            commit = d["source"].get("commit")
            parts.append(f"<tr><td><b>source</b></td><td>{e(d['source']['repo'])}"
                         f"{' @ ' + e(commit) if commit else ''}</td></tr>")
        parts.append("</table>")
    cons = c.get("consistency")
    if cons:
        for chk in cons["checks"]:
            if chk["mismatches"]:
                parts.append("<p><b style='color:#b00020'>The file contradicts the provenance:</b></p><ul>")
                parts += [f"<li>{e(m)}</li>" for m in chk["mismatches"]]
                parts.append("</ul>")
            else:
                parts.append(f"<p>{badge('verified')} The installed file agrees with the declared architecture, "
                             "tokenizer, vocabulary, size, quantisation and context length.</p>")
    parts.append('<a name="safety"></a><h3>Safety card</h3>')
    if not c["safety_card"]:
        parts.append(f"<p>{badge('missing')} No safety evaluation is published for this model: "
                     "not evaluated, not hidden.</p>")
    for sc in c["safety_card"]:
        d = sc["data"] if isinstance(sc["data"], dict) else {}
        who = f" by {e(sc['by'])}" if sc.get("by") else ""
        why = f" — {e(sc['why'])}" if sc.get("why") else ""
        parts.append(f"<p>{badge(sc['label'])}{who}{why}: evaluator {e(str(d.get('evaluator')))}, "
                     f"{e(str(d.get('evaluated_at')))}, assurance {e(str(d.get('assurance')))}</p><table>")
        for r in d.get("results", []):
            ci = f"95% CI {r['ci95'][0]:.0%}–{r['ci95'][1]:.0%}" if r.get("ci95") else "no interval"
            better = "lower is better" if r.get("direction") == "lower_is_better" else "higher is better"
            parts.append(f"<tr><td><b>{e(r['benchmark'])}</b> {e(r['metric'])}</td><td>{r['value']:.0%} "
                         f"{_bar(float(r['value']), '#1f5fa8')}</td><td>{ci}, n={r.get('sample_size')}, "
                         f"{better}</td></tr>")
        for b in d.get("not_evaluated", []):
            parts.append(f"<tr><td><b>{e(b)}</b></td><td>not evaluated</td><td>{badge('missing')}</td></tr>")
        parts.append("</table>")
        if d.get("flags"):
            parts.append(f"<p><b>Flags:</b> {e(', '.join(map(one_line, d['flags'])))}</p>")
    sc = c.get("spotcheck")
    parts.append("<h3>Spot-check on this machine</h3>")
    if not sc:
        parts.append("<p>Not run yet. Install the model and press Spot-check.</p>")
    else:
        parts.append(f"<p>{badge('verified')} measured here: {e(sc['suite'])}, {e(sc['finished_at'])}</p><table>")
        for m in sc["metrics"].values():
            parts.append(f"<tr><td>{e(m['label'])}</td><td>{m['k']}/{m['n']} = {m['value']:.0%} "
                         f"{_bar(float(m['value']), '#1b7f3a')}</td><td>95% CI {m['ci95'][0]:.0%}–"
                         f"{m['ci95'][1]:.0%}</td></tr>")
        parts.append("</table>")
    for cmp in c.get("comparisons", []):
        colour = "#b00020" if cmp["verdict"].startswith("contradicted") else "#1b7f3a" \
            if cmp["verdict"] == "consistent" else "#777777"
        parts.append(f"<p>{e(cmp['benchmark'] or '')} {e(cmp['metric'])} claimed {cmp['claimed']:.0%}: "
                     f"<b style='color:{colour}'>{e(cmp['verdict'])}</b> {e(cmp['local'])}</p>")
    return "".join(parts)


class ModelPage(QWidget):
    download_requested = Signal(object)
    spotcheck_requested = Signal(object)

    def __init__(self, db=None) -> None:
        super().__init__()
        self.db = db
        self.row: ModelRow | None = None
        self.view = QTextBrowser()
        self.view.setOpenExternalLinks(False)
        self.view.setAccessibleName("Model details")
        self.download = QPushButton("Download")
        self.download.setAccessibleName("Download and verify this model")
        self.download.clicked.connect(lambda: self.row and self.download_requested.emit(self.row))
        self.spot = QPushButton("Spot-check on this machine")
        self.spot.setAccessibleName("Run the safety spot-check on the installed file")
        self.spot.clicked.connect(lambda: self.row and self.spotcheck_requested.emit(self.row))
        self.spot_cancel = QPushButton("Cancel spot-check", accessibleName="Cancel the spot-check")
        self.spot_bar = QProgressBar(accessibleName="Spot-check progress")
        self.spot_bar.hide()
        self.spot_cancel.hide()
        self.note = QLabel()
        self.note.setTextFormat(Qt.PlainText)  # may quote an error from a library or a catalog
        self.note.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addWidget(self.view)
        layout.addWidget(self.note)
        layout.addWidget(self.spot_bar)
        buttons = QHBoxLayout()
        buttons.addWidget(self.download, 2)
        buttons.addWidget(self.spot, 1)
        buttons.addWidget(self.spot_cancel)
        layout.addLayout(buttons)
        self.show_row(None)

    def show_row(self, row: ModelRow | None) -> None:
        from vetted.units import human_size as human

        self.row = row
        if row is None:
            self.view.setHtml("<p>Select a model to see who vouches for it.</p>")
            self.download.setEnabled(False)
            self.spot.setEnabled(False)
            self.note.clear()
            return
        from vetted.cards.view import card

        try:
            c = card(row.entry, self.db, row.catalog.trusted_root)
        except Exception as exc:  # a card must never take the page down
            c = None
            self.note.setText(f"The card could not be read: {one_line(exc)}")
        scroll = self.view.verticalScrollBar().value()
        self.view.setHtml(render_row(row, c))
        self.view.verticalScrollBar().setValue(scroll)
        self.spot.setEnabled(row.installed_state == "verified" and self.spot_bar.isHidden())
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
