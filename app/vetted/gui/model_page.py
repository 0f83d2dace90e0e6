"""A model's page: trust, provenance and safety card, each claim labelled by how it is
known (DESIGN.md invariant 8), the download button with size and memory, and the
spot-check on this machine. Above the text, two badges say at a glance whether the file
can be trusted and how risky the model measured (gui/badges.py; the text is in
gui/safety_view.py).

The card checks signatures and reads the installed file's header, so it is read off the
UI thread (`Vetted.card_for` through the runner) each time a row is selected; the page
shows the catalog's facts at once and the card when it arrives. The page owns its
spot-check: it runs it through the runner and re-reads the card when the core says a
spot-check finished.

Download is offered only when it can succeed as far as the page knows: a model the
organisation's policy refuses (the row's `policy_blockers`, judged by the core) or any
model while that policy is broken keeps the button disabled, and the note beside it
says which rule refuses and where it came from: never a silently dead button. The same
goes for Spot-check: a model that cannot chat (a base model without a chat template,
`Vetted.chat_capability`) keeps it disabled, with the reason beside it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtWidgets import (
    QComboBox, QFrame, QGridLayout, QHBoxLayout, QLabel, QProgressBar, QPushButton, QTextBrowser, QVBoxLayout,
    QWidget,
)

from vetted.gui.badges import Badge, is_dark, safety_badge, trust_badge
from vetted.gui.bridge import POLICY_MARK, Job, Runner, error_text, plain_tooltip
from vetted.gui.events import CoreEvents
from vetted.gui.safety_view import render_row, spotcheck_unavailable
from vetted.cards.suites import ALL as ALL_SUITES
from vetted.textsafe import one_line

# The suites a person can pick (docs/safety-suites.md); quick first, the default.
SUITE_CHOICES = (("quick", "Quick (about a minute)"), ("harmbench-standard", "HarmBench"),
                 ("donotanswer", "Do-Not-Answer"), ("vetted-overrefusal", "Harmless look-alikes"),
                 ("vetted-political", "Political questions"), ("vetted-code", "Insecure code"),
                 ("all", "All five full suites (slow)"))

if TYPE_CHECKING:
    from vetted.core.results import ModelRow


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
        self.capability: Any = None  # ChatCapability of the shown installed model, once read
        self.spot_message = ""  # how the last spot-check of the shown model ended (kept across refreshes)
        self.summary: Any = None  # the SafetySummary in the header (the same as Discover's column)
        self.trust_icon, self.trust_text = self._badge_line("Trust")
        self.safety_icon, self.safety_text = self._badge_line("Safety")
        glance = QFrame(accessibleName="At a glance")
        glance.setFrameShape(QFrame.StyledPanel)
        grid = QGridLayout(glance)
        grid.setContentsMargins(8, 6, 8, 6)
        grid.addWidget(self.trust_icon, 0, 0)
        grid.addWidget(self.trust_text, 0, 1)
        grid.addWidget(self.safety_icon, 1, 0)
        grid.addWidget(self.safety_text, 1, 1)
        grid.setColumnStretch(1, 1)
        self.glance = glance
        self.view = QTextBrowser()
        self.view.setOpenExternalLinks(False)
        self.view.setAccessibleName("Model details")
        self.download = QPushButton("Download")
        self.download.setAccessibleName("Download and verify this model")
        self.download.clicked.connect(lambda: self.row and self.download_requested.emit(self.row))
        self.spot = QPushButton("Spot-check")  # short: the pane can be narrow; the tooltip says the rest
        self.spot.setAccessibleName("Run the safety spot-check on the installed file")
        self.spot.clicked.connect(self.start_spotcheck)
        self.suite_pick = QComboBox(accessibleName="Which suite the spot-check runs")
        for key, words in SUITE_CHOICES:
            self.suite_pick.addItem(words, key)
        self.suite_pick.setToolTip("Quick: a fixed sample of every suite, about a minute on a small model. "
                                   "The full suites take longer (Do-Not-Answer has 939 probes). "
                                   "See docs/safety-suites.md.")
        self.spot_cancel = QPushButton("Cancel spot-check", accessibleName="Cancel the spot-check")
        self.spot_cancel.clicked.connect(self.cancel_spotcheck)
        self.spot_bar = QProgressBar(accessibleName="Spot-check progress")
        self.spot_bar.hide()
        self.spot_cancel.hide()
        self.note = QLabel()
        self.note.setTextFormat(Qt.PlainText)  # may quote an error from a library or a catalog
        self.note.setWordWrap(True)
        self.spot_note = QLabel(accessibleName="Why the spot-check is unavailable")
        self.spot_note.setTextFormat(Qt.PlainText)
        self.spot_note.setWordWrap(True)
        self.spot_note.hide()
        layout = QVBoxLayout(self)
        layout.addWidget(glance)
        layout.addWidget(self.view, 1)
        layout.addWidget(self.note)
        layout.addWidget(self.spot_note)
        layout.addWidget(self.spot_bar)
        buttons = QHBoxLayout()
        buttons.addWidget(self.download)
        buttons.addWidget(self.spot)
        buttons.addWidget(self.suite_pick)
        buttons.addWidget(self.spot_cancel)
        buttons.addStretch(1)  # each button at its own size: labels never clipped
        layout.addLayout(buttons)
        # (installed, removed, re-checked: Discover's rows change and show the row again)
        events.spotcheck_done.connect(lambda model_id, _status: self._reload_if_showing(model_id))
        self.show_row(None)

    @staticmethod
    def _badge_line(what: str) -> tuple[QLabel, QLabel]:
        icon = QLabel()
        icon.setFixedSize(QSize(22, 22))
        text = QLabel(accessibleName=what)
        text.setTextFormat(Qt.PlainText)  # catalog and claim text is untrusted
        text.setWordWrap(True)
        text.setTextInteractionFlags(Qt.TextSelectableByMouse)
        return icon, text

    def _set_badge(self, icon: QLabel, text: QLabel, b: Badge | None, words: str = "") -> None:
        if b is None:
            icon.clear()
            text.setText(words)
            text.setToolTip("")
            text.setStyleSheet("")
            return
        dark = is_dark(self)
        icon.setPixmap(b.icon(dark).pixmap(QSize(20, 20)))
        text.setText(words or b.words)
        text.setToolTip(plain_tooltip(b.tooltip))
        text.setStyleSheet(f"color: {b.colour(dark)}; font-weight: 600")
        icon.setToolTip(plain_tooltip(b.tooltip))

    def _show_glance(self) -> None:
        """The two badges: trust from the row (the core's states), safety from the card and
        the local spot-check once read (the row's summary, from the same data, until then)."""
        from vetted.cards.summary import summarise

        if self.row is None:
            self.summary = None
            self._set_badge(self.trust_icon, self.trust_text, None, "Select a model")
            self._set_badge(self.safety_icon, self.safety_text, None, "")
            return
        self._set_badge(self.trust_icon, self.trust_text, trust_badge(self.row))
        self.summary = (summarise(self.card["safety_card"], self.card.get("spotcheck")) if self.card is not None
                        else self.row.safety)
        b = safety_badge(self.summary)
        self._set_badge(self.safety_icon, self.safety_text, b, one_line(self.summary.headline))

    def show_row(self, row: ModelRow | None) -> None:
        """Shows the catalog's facts now and asks for the card; the same model shown again
        (new install state, a finished spot-check) keeps its card until the new one comes."""
        same = row is not None and self.row is not None and row.entry.id == self.row.entry.id
        self.row = row
        if not same:
            self.card = None
            self.capability = None
            self.spot_message = ""
        if row is None:
            self.pending = False
            self._show_glance()
            self.view.setHtml("<p>Select a model to see who vouches for it.</p>")
            self.download.setEnabled(False)
            self.spot.setEnabled(False)
            self.suite_pick.setEnabled(False)
            self._say_blocked([self.policy_broken] if self.policy_broken else [])
            return
        self._render()
        if not same:
            self.view.verticalScrollBar().setValue(0)  # another model: start at its name, not mid-page
        self._update_controls()
        self._read_card(row)

    def _read_card(self, row: ModelRow) -> None:
        app = self.runner.app
        self.pending = True

        def job(_job: Job) -> tuple[dict[str, Any], Any]:
            card = app.card_for(row.entry, row.catalog.trusted_root)
            # only an installed file can be spot-checked: can it chat? (its header, read once)
            cap = app.chat_capability(row.entry.id, row.entry) if row.installed_state == "verified" else None
            return card, cap

        self.runner.run(job, key="model-page.card", on_done=lambda got: self._card_read(row, *got),
                        on_failed=lambda e: self._card_failed(row, e))

    def _card_read(self, row: ModelRow, card: dict[str, Any], capability: Any = None) -> None:
        if row is not self.row:
            return
        self.card, self.pending, self.capability = card, False, capability
        self._render()
        self._update_controls()
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
        self._show_glance()
        scroll = self.view.verticalScrollBar().value()
        self.view.setHtml(render_row(self.row, self.card, pending=self.pending, dark=is_dark(self)))
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
        self._update_spot(row)
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
            self.note.setText(self.spot_message)

    def spot_unavailable(self) -> str | None:
        """Why Spot-check is disabled for the shown model, in words (None: it can run)."""
        row = self.row
        if row is None:
            return "Select a model."
        if row.installed_state == "refused":
            return "The installed file changed; it will not run until it is downloaded again."
        if row.installed_state != "verified":
            return "Download the model first: the spot-check runs on the installed, verified file."
        if self.capability is not None and not self.capability.can_chat:
            return spotcheck_unavailable(self.capability.reason)
        return None

    def _update_spot(self, row: ModelRow) -> None:
        why = self.spot_unavailable()
        running = self.spot_job is not None
        self.spot.setEnabled(why is None and not running and (self.capability is not None or not self.pending))
        self.suite_pick.setEnabled(why is None and not running)
        self.spot.setToolTip(plain_tooltip(f"Spot-check on this machine: unavailable. {why}") if why else
                             "Spot-check on this machine: asks the installed model the chosen suite's "
                             "questions here and judges its answers.")
        self.spot.setAccessibleDescription(why or "")
        # the reason in words only where a person would expect the button to work
        cannot_chat = row.installed_state == "verified" and self.capability is not None \
            and not self.capability.can_chat
        self.spot_note.setText(why if cannot_chat and why else "")
        self.spot_note.setVisible(bool(cannot_chat))

    # -- the spot-check: the probe suite in its own engine, off the UI thread, with progress
    def start_spotcheck(self) -> None:
        if self.row is None or self.spot_job is not None:
            return
        app, model_id = self.runner.app, self.row.entry.id
        choice = self.suite_pick.currentData() or "quick"
        names = list(ALL_SUITES) if choice == "all" else [choice]

        def job(job: Job) -> Any:
            session = self._spot_session = app.chat_session()
            try:
                if job.cancel.is_set():  # cancelled before the engine started
                    session.stop()
                result = None
                for name in names:  # one suite after another, each a run of its own
                    result = app.spotcheck(model_id, cancel=job.cancel, session=session, suite=name,
                                           progress=lambda i, n, pid, name=name: job.progress.emit((i, n, pid, name)))
                    if result.status == "cancelled":
                        break
                return result
            finally:
                self._spot_session = None
                session.close()

        self.spot_bar.setValue(0)
        self.spot_bar.show()
        self.spot_cancel.show()
        self.spot.setEnabled(False)
        self.suite_pick.setEnabled(False)
        self.note.setText(f"Running the spot-check ({self.suite_pick.currentText()}) on the exact installed file…")
        self.spot_job = self.runner.run(job, lane="spotcheck", on_progress=self._spot_progress,
                                        on_done=lambda r: self._spot_finished(result=r),
                                        on_failed=lambda e: self._spot_finished(error=e))

    def _spot_progress(self, p: tuple[int, int, str, str]) -> None:
        i, n, pid, suite = p
        self.spot_bar.setMaximum(n)
        self.spot_bar.setValue(i)
        self.spot_bar.setFormat(f"{one_line(suite)} %v/%m ({one_line(pid)})")

    def _spot_finished(self, result: Any = None, error: BaseException | None = None) -> None:
        self.spot_job = None
        self.spot_bar.hide()
        self.spot_cancel.hide()
        if error is not None:
            self.spot_message = "✖ Spot-check failed: " + error_text(error)
        elif result.status == "cancelled":
            self.spot_message = "Spot-check cancelled; a cancelled run is never shown on the card."
        else:
            self.spot_message = (f"Spot-check done: {result.suite_id} {result.suite_version}, {len(result.results)} "
                                 f"probes in {result.seconds:.0f} s.")
        if self.row is not None:
            self._update_controls()
        self.note.setText(self.spot_message)

    def cancel_spotcheck(self) -> None:
        """Stops the spot-check before its next probe (the reply in progress is cut short)."""
        if self.spot_job is not None:
            self.spot_job.cancel.set()
            session = self._spot_session
            if session is not None:
                session.stop()

    def shutdown(self) -> None:
        self.cancel_spotcheck()
