"""A model's page: trust, provenance and safety card, each claim labelled by how it is
known (DESIGN.md invariant 8), the download button with size and memory, and the
spot-check on this machine.

The card checks signatures and reads the installed file's header, so it is read off the
UI thread (`Vetted.card_for` through the runner) each time a row is selected; the page
shows the catalog's facts at once and the card when it arrives. The page owns its
spot-check: it runs it through the runner and re-reads the card when the core says a
spot-check finished.

Download is offered only when it can succeed as far as the page knows: a model the
organisation's policy refuses (the row's `policy_blockers`, judged by the core) or any
model while that policy is broken keeps the button disabled, and the note beside it
says which rule refuses and where it came from: never a silently dead button.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QTextBrowser, QVBoxLayout, QWidget

from vetted.gui.bridge import POLICY_MARK, Job, Runner, error_text, plain_tooltip
from vetted.gui.events import CoreEvents
from vetted.textsafe import one_line

if TYPE_CHECKING:
    from vetted.core.results import ModelRow


LABEL_COLOURS = {"verified": "#1b7f3a", "declared": "#1f5fa8", "unverified": "#a15c00", "missing": "#777777"}


def esc(value: object) -> str:
    """Untrusted text (catalog, claims, GGUF metadata, refusals) for the page's HTML: control
    and format characters made visible (`textsafe.one_line`), then HTML-escaped."""
    return html.escape(one_line(value))


def badge(kind: str) -> str:
    return (f'<span style="color:{LABEL_COLOURS[kind]}; font-weight:600">[{kind}]</span>')


def fact(label: str, value: str, kind: str) -> str:
    return f"<tr><td><b>{esc(label)}</b></td><td>{esc(value)}</td><td>{badge(kind)}</td></tr>"


def render_row(row: ModelRow, card: dict | None = None, pending: bool = False) -> str:
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
    if card is not None:
        parts.append(render_card(card))
    elif pending:
        parts.append("<h3>Provenance and safety card</h3><p>Checking the signed claims and the installed "
                     "file…</p>")
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
    download_requested = Signal(object)  # ModelRow
    card_shown = Signal(str)  # model id: the card for the row shown arrived (tests, screenshots)

    def __init__(self, runner: Runner, events: CoreEvents) -> None:
        super().__init__()
        self.runner = runner
        self.row: ModelRow | None = None
        self.card: dict[str, Any] | None = None  # the card of `row`, once read
        self.pending = False  # a card is being read for `row`
        self.spot_job: Job | None = None
        self._spot_session: Any = None
        self.policy_broken: str | None = None  # the fail-closed reason, when the policy is broken
        self.view = QTextBrowser()
        self.view.setOpenExternalLinks(False)
        self.view.setAccessibleName("Model details")
        self.download = QPushButton("Download")
        self.download.setAccessibleName("Download and verify this model")
        self.download.clicked.connect(lambda: self.row and self.download_requested.emit(self.row))
        self.spot = QPushButton("Spot-check on this machine")
        self.spot.setAccessibleName("Run the safety spot-check on the installed file")
        self.spot.clicked.connect(self.start_spotcheck)
        self.spot_cancel = QPushButton("Cancel spot-check", accessibleName="Cancel the spot-check")
        self.spot_cancel.clicked.connect(self.cancel_spotcheck)
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
        # (installed, removed, re-checked: Discover's rows change and show the row again)
        events.spotcheck_done.connect(lambda model_id, _status: self._reload_if_showing(model_id))
        self.show_row(None)

    def show_row(self, row: ModelRow | None) -> None:
        """Shows the catalog's facts now and asks for the card; the same model shown again
        (new install state, a finished spot-check) keeps its card until the new one comes."""
        same = row is not None and self.row is not None and row.entry.id == self.row.entry.id
        self.row = row
        if not same:
            self.card = None
        if row is None:
            self.pending = False
            self.view.setHtml("<p>Select a model to see who vouches for it.</p>")
            self.download.setEnabled(False)
            self.spot.setEnabled(False)
            self._say_blocked([self.policy_broken] if self.policy_broken else [])
            return
        self._render()
        self._update_controls()
        self._read_card(row)

    def _read_card(self, row: ModelRow) -> None:
        app = self.runner.app
        self.pending = True
        self.runner.run(lambda _job: app.card_for(row.entry, row.catalog.trusted_root), key="model-page.card",
                        on_done=lambda c: self._card_read(row, c), on_failed=lambda e: self._card_failed(row, e))

    def _card_read(self, row: ModelRow, card: dict[str, Any]) -> None:
        if row is not self.row:
            return
        self.card, self.pending = card, False
        self._render()
        self.card_shown.emit(row.entry.id)

    def _card_failed(self, row: ModelRow, exc: BaseException) -> None:
        if row is not self.row:
            return
        self.pending = False  # a card must never take the page down
        self._render()
        self.note.setText("The card could not be read: " + error_text(exc))
        self.card_shown.emit(row.entry.id)

    def _reload_if_showing(self, model_id: str) -> None:
        if self.row is not None and self.row.entry.id == model_id:
            self._read_card(self.row)

    def _render(self) -> None:
        assert self.row is not None
        scroll = self.view.verticalScrollBar().value()
        self.view.setHtml(render_row(self.row, self.card, pending=self.pending))
        self.view.verticalScrollBar().setValue(scroll)

    def set_policy_broken(self, reason: str | None) -> None:
        """The organisation's policy cannot be used (fail closed): no download is offered."""
        self.policy_broken = reason
        if self.row is None:
            self.show_row(None)
        else:
            self._update_controls()

    def blockers(self) -> list[str]:
        """Why the policy refuses the shown model (each naming its rule and source)."""
        if self.row is not None and self.row.policy_blockers:
            return list(self.row.policy_blockers)
        return [self.policy_broken] if self.policy_broken else []

    def _say_blocked(self, blockers: list[str]) -> None:
        """Beside the disabled button, in words: which rule refuses, and where it came from."""
        if not blockers:
            self.note.clear()
            self.download.setToolTip("")
            self.download.setAccessibleDescription("")
            return
        head = ("✖ Nothing can be downloaded, imported or run while your organisation's policy is broken:"
                if self.policy_broken else f"{POLICY_MARK} does not allow downloading or running this model:")
        text = head + "\n" + "\n".join(one_line(b) for b in blockers)
        self.note.setText(text)
        self.download.setToolTip(plain_tooltip(text))
        self.download.setAccessibleDescription(text)

    def _update_controls(self) -> None:
        from vetted.units import human_size as human

        row = self.row
        assert row is not None
        self.spot.setEnabled(row.installed_state == "verified" and self.spot_job is None)
        expired = row.catalog.expired
        blockers = self.blockers()
        can = row.installed_state != "verified" and not expired and row.fit != "too_big" and not blockers
        self.download.setEnabled(can)
        self.download.setText("Installed" if row.installed_state == "verified"
                              else f"Download {human(row.entry.size)}" + (" 🔒" if blockers else ""))
        if self.spot_job is not None:
            return  # the spot-check's own note stays
        if blockers:
            self._say_blocked(blockers)
            return
        self._say_blocked([])
        if expired:
            self.note.setText("This catalog has expired: new downloads are frozen until its publisher issues "
                              "a fresh one. Installed models keep working.")
        elif row.fit == "too_big":
            self.note.setText("This model needs more memory than this machine has available.")
        else:
            self.note.clear()

    # -- the spot-check: the probe suite in its own engine, off the UI thread, with progress
    def start_spotcheck(self) -> None:
        if self.row is None or self.spot_job is not None:
            return
        app, model_id = self.runner.app, self.row.entry.id

        def job(job: Job) -> Any:
            session = self._spot_session = app.chat_session()
            try:
                if job.cancel.is_set():  # cancelled before the engine started
                    session.stop()
                return app.spotcheck(model_id, cancel=job.cancel, session=session,
                                     progress=lambda i, n, pid: job.progress.emit((i, n, pid)))
            finally:
                self._spot_session = None
                session.close()

        self.spot_bar.setValue(0)
        self.spot_bar.show()
        self.spot_cancel.show()
        self.spot.setEnabled(False)
        self.note.setText("Running the spot-check on the exact installed file…")
        self.spot_job = self.runner.run(job, lane="spotcheck", on_progress=self._spot_progress,
                                        on_done=lambda r: self._spot_finished(result=r),
                                        on_failed=lambda e: self._spot_finished(error=e))

    def _spot_progress(self, p: tuple[int, int, str]) -> None:
        i, n, pid = p
        self.spot_bar.setMaximum(n)
        self.spot_bar.setValue(i)
        self.spot_bar.setFormat(f"spot-check %v/%m ({one_line(pid)})")

    def _spot_finished(self, result: Any = None, error: BaseException | None = None) -> None:
        self.spot_job = None
        self.spot_bar.hide()
        self.spot_cancel.hide()
        if self.row is not None:
            self._update_controls()
        if error is not None:
            self.note.setText("✖ Spot-check failed: " + error_text(error))
        elif result.status == "cancelled":
            self.note.setText("Spot-check cancelled; a cancelled run is never shown on the card.")
        else:
            self.note.setText(f"Spot-check done: {len(result.results)} probes in {result.seconds:.0f} s.")

    def cancel_spotcheck(self) -> None:
        """Stops the spot-check before its next probe (the reply in progress is cut short)."""
        if self.spot_job is not None:
            self.spot_job.cancel.set()
            session = self._spot_session
            if session is not None:
                session.stop()

    def shutdown(self) -> None:
        self.cancel_spotcheck()
