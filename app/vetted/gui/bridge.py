"""The one way the GUI runs core work: off the UI thread, results back on it.

Every call into `Vetted` that can block — verifying catalogs, a card with its signature
checks and GGUF read, compare, check, remove, discard, pull, spot-check, a chat turn,
reading the audit chain — goes through `Runner.run` (the shape of Anki's
`QueryOp`/`CollectionOp` and Dangerzone's `Runner`): the function runs on a pool thread
of its *lane*, gets the `Job` to report progress, tokens or read its cancel flag, and its
result or exception comes back as a Qt signal, which Qt delivers on the UI thread because
the `Job` lives there. Each job closes its thread's database connection when it ends
(SQLite connections belong to one thread; `Vetted.db` opens one per thread).

Lanes keep long work from starving short work: "core" (catalogs, cards, compare, check,
remove, lists), "download" (pulls, which take minutes), "chat" (one thread: the chat
session's engine stays loaded across turns) and "spotcheck". A job given a `key`
supersedes the earlier jobs with that key: one not started yet is skipped, and a result
that arrives late is dropped (selecting rows quickly reads only the last card).

Views never refresh each other: the core announces what changed (gui/events.py).
"""

from __future__ import annotations

import logging
import threading
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Signal

if TYPE_CHECKING:
    from vetted.core.app import Vetted

LANES = {"core": 2, "download": 3, "chat": 1, "spotcheck": 1}
log = logging.getLogger(__name__)


class Job(QObject):
    """One call in flight. `progress` and `token` may be emitted from the job's thread;
    `done` and `failed` are emitted on the UI thread, once, unless the job was superseded
    or the runner shut down meanwhile."""

    progress = Signal(object)
    token = Signal(str)
    done = Signal(object)
    failed = Signal(object)  # the exception, with its traceback text in `__vetted_trace__`
    _finished = Signal(bool, object)  # (ok, result or exception), from the job's thread

    def __init__(self, runner: Runner, lane: str, key: str | None) -> None:
        super().__init__()
        self.runner, self.lane, self.key = runner, lane, key
        self.cancel = threading.Event()  # a job that can stop early (a pull, a spot-check) watches it
        self.running = True
        self.handled = False  # someone listens to `failed`
        self._finished.connect(self._deliver)

    @property
    def superseded(self) -> bool:
        return self.key is not None and self.runner._latest.get(self.key) is not self

    def _deliver(self, ok: bool, value: Any) -> None:
        self.running = False
        self.runner._jobs.discard(self)
        if self.superseded or self.runner._closed:  # a newer job answers; or the window is gone
            return
        if ok:
            self.done.emit(value)
        elif not self.handled:  # nobody handles it: it must not vanish
            self.runner.unhandled.emit(value)
        else:
            self.failed.emit(value)


class Runner(QObject):
    """Runs functions of a `Job` on the lane's threads; see the module docstring."""

    unhandled = Signal(object)  # an exception no caller handles (the main window shows it)

    def __init__(self, app: Vetted, lanes: dict[str, int] | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.app = app
        self._sizes = dict(lanes or LANES)
        self._pools: dict[str, ThreadPoolExecutor] = {}
        self._jobs: set[Job] = set()
        self._latest: dict[str, Job] = {}
        self._closed = False
        self.unhandled.connect(lambda exc: log.error("unhandled error in a background job: %s",
                                                     getattr(exc, "__vetted_trace__", exc)))

    def run(self, fn: Callable[[Job], Any], *, lane: str = "core", key: str | None = None,
            on_done: Callable[[Any], None] | None = None, on_failed: Callable[[BaseException], None] | None = None,
            on_progress: Callable[[Any], None] | None = None,
            on_token: Callable[[str], None] | None = None) -> Job:
        """Runs `fn(job)` on `lane`; call from the UI thread. `on_done` gets the result and
        `on_failed` the exception, both on the UI thread."""
        job = Job(self, lane, key)
        job.handled = on_failed is not None
        for signal, slot in ((job.done, on_done), (job.failed, on_failed), (job.progress, on_progress),
                             (job.token, on_token)):
            if slot is not None:
                signal.connect(slot)
        if self._closed:
            job.running = False
            return job
        if key is not None:
            self._latest[key] = job
        self._jobs.add(job)
        self._pool(lane).submit(self._work, job, fn)
        return job

    def _pool(self, lane: str) -> ThreadPoolExecutor:
        pool = self._pools.get(lane)
        if pool is None:
            pool = self._pools[lane] = ThreadPoolExecutor(self._sizes.get(lane, 1),
                                                          thread_name_prefix=f"vetted-{lane}")
        return pool

    def _work(self, job: Job, fn: Callable[[Job], Any]) -> None:
        """On the lane's thread."""
        ok, value = True, None
        try:
            if not job.superseded:
                value = fn(job)
        except BaseException as exc:  # reported to the UI, never lost in a thread
            exc.__vetted_trace__ = traceback.format_exc()  # type: ignore[attr-defined]
            ok, value = False, exc
        finally:
            try:
                self.app.close_thread()
            except Exception:  # a connection that will not close must not hide the result
                log.exception("closing a background connection")
        try:
            job._finished.emit(ok, value)
        except RuntimeError:  # the window went away meanwhile
            pass

    def busy(self, lane: str | None = None) -> bool:
        """Any job (of `lane`) still in flight, its result not yet delivered."""
        return any(j.lane == lane or lane is None for j in self._jobs)

    def shutdown(self, wait_for: tuple[str, ...] = ("chat", "spotcheck")) -> None:
        """Stops taking work, asks running jobs to stop (a pull pauses: its partial file is
        kept), drops queued ones, and waits only for the lanes in `wait_for`."""
        if self._closed:
            return
        self._closed = True
        for job in list(self._jobs):
            job.cancel.set()
        for lane, pool in self._pools.items():
            pool.shutdown(wait=lane in wait_for, cancel_futures=lane not in wait_for)


def error_text(exc: BaseException) -> str:
    """What a person reads: what was checked, what was found, what to do. Plain text (show
    it in a plain-text label); each part may quote a server, a catalog or a library, so
    each is made one line by `textsafe.one_line` and only the blank line between is ours.
    A refusal by the organisation's policy says so first (its text names the rule and the
    document it came from)."""
    from vetted.errors import VettedError
    from vetted.textsafe import one_line

    if isinstance(exc, VettedError):
        from vetted.gui.remedies import where

        text = f"{one_line(exc.checked)}: {one_line(exc.found)}"
        if is_policy(exc) and not exc.checked.startswith("organisation policy"):  # (a broken one names itself)
            text = f"🔒 Refused by your organisation's policy: {text}"
        steps = [one_line(exc.action)] if exc.action else []
        if where(exc.remedy):
            steps.append(str(where(exc.remedy)))
        return text + (f"\n\nWhat you can do: {'; '.join(steps)}" if steps else "")
    return f"Unexpected error: {type(exc).__name__}: {one_line(exc)}"


POLICY_MARK = "🔒 Your organisation's policy"
MANAGED = "🔒 Managed by your organisation"


def is_policy(exc: BaseException) -> bool:
    """A refusal by the organisation's policy: one of its rules, or the policy itself
    unusable (fail closed)."""
    from vetted.policy.effective import PolicyRefused
    from vetted.policy.sources import PolicyError

    return isinstance(exc, (PolicyRefused, PolicyError))


def plain_tooltip(text: str) -> str:
    """A tooltip that shows `text` as written: Qt renders a tooltip that looks like markup
    as rich text, so the text is escaped inside an explicit rich-text wrapper."""
    import html

    return f"<qt>{html.escape(text)}</qt>"
