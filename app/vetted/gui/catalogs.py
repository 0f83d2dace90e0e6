"""The catalogs as Discover and Compare show them, kept current by core events.

Verifying a catalog checks its signature (and every claim's, once) and writes audit
rows, so it runs once for both pages, off the UI thread, and again only when the pinned
catalogs change. When a model is installed, removed or re-checked, or a spot-check
finishes, only the rows' install state, memory fit and local spot-check (which the Safety
column summarises) are recomputed (`Vetted.model_rows`), also off the UI thread. Pages
listen to `loaded`; none asks another to refresh.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Signal

from vetted.gui.bridge import Job, Runner, error_text
from vetted.gui.events import CoreEvents
from vetted.textsafe import one_line

if TYPE_CHECKING:
    from vetted.core.results import CatalogState, ModelRow


def catalog_notes(states: list[CatalogState], rows: list[ModelRow]) -> str:
    """One line of escaped text per note: catalog names and refusal reasons are untrusted."""
    notes = []
    for s in states:
        if s.error:
            notes.append(f"✖ Catalog {one_line(s.location)} refused: {one_line(s.error)}")
        elif s.loaded and s.loaded.expired:
            notes.append(f"⚠ {one_line(s.label)}: expired; new downloads are frozen, installed models keep working.")
    if not states:
        notes.append("No catalog is configured. Pin one with `vetted catalog add LOCATION --key PEM`.")
    elif not rows and not notes:
        notes.append("The catalogs list no models.")
    return "\n".join(notes)


class CatalogRows(QObject):
    loading = Signal(str)       # what is being done
    loaded = Signal(object, str)  # the rows (a list), and the notes to show above them
    failed = Signal(str)        # why nothing could be shown

    def __init__(self, runner: Runner, events: CoreEvents, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.runner = runner
        self.states: list[CatalogState] | None = None
        self.rows: list[ModelRow] = []
        self._reloading = False
        self._stale = False
        events.catalogs_changed.connect(self.reload)
        events.models_changed.connect(lambda _model_id: self.refresh_rows())
        # a finished spot-check changes a row's safety summary (Discover's Safety column)
        events.spotcheck_done.connect(lambda _model_id, _status: self.refresh_rows())

    def reload(self) -> Job:
        """Verifies every pinned catalog again, then recomputes the rows."""
        app = self.runner.app

        def job(_job: Job) -> tuple[list[CatalogState], list[ModelRow]]:
            states = app.catalogs()
            return states, app.model_rows(states)

        self._reloading, self._stale = True, False
        self.loading.emit("Verifying catalogs…")
        return self.runner.run(job, key="catalogs.reload", on_done=self._reloaded, on_failed=self._failed)

    def refresh_rows(self) -> None:
        """Install state and memory fit changed: the same catalogs, new rows."""
        if self._reloading:
            self._stale = True  # the reload in flight may have read the old state
            return
        if self.states is None:
            self.reload()
            return
        app, states = self.runner.app, self.states
        self.runner.run(lambda _job: app.model_rows(states), key="catalogs.rows",
                        on_done=lambda rows: self._publish(states, rows), on_failed=self._failed)

    def _reloaded(self, result: tuple[list[CatalogState], list[ModelRow]]) -> None:
        self._reloading = False
        self._publish(*result)
        if self._stale:
            self._stale = False
            self.refresh_rows()

    def _publish(self, states: list[CatalogState], rows: list[ModelRow]) -> None:
        self.states, self.rows = states, rows
        self.loaded.emit(rows, catalog_notes(states, rows))

    def _failed(self, exc: Any) -> None:
        self._reloading = False
        self.failed.emit("✖ " + error_text(exc))
