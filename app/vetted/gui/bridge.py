"""Worker bridges: core callables run off the UI thread; results come back as signals.

The core takes plain callbacks (progress, token, done, error); a `Call` turns them into
Qt signals, which Qt delivers on the UI thread because the `Call` lives there. Each
background task opens its own database connection (SQLite connections are per thread).
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from PySide6.QtCore import QObject, Signal


class Call(QObject):
    progress = Signal(object)
    token = Signal(str)
    done = Signal(object)
    failed = Signal(object)  # the exception


class Runner:
    def __init__(self, workers: int = 2, name: str = "vetted-bg") -> None:
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name)
        self.calls: set[Call] = set()

    def run(self, fn: Callable[..., Any], *args: Any, on_done=None, on_failed=None, on_progress=None,
            on_token=None, **kwargs: Any) -> Call:
        call = Call()
        self.calls.add(call)
        if on_done:
            call.done.connect(on_done)
        if on_failed:
            call.failed.connect(on_failed)
        if on_progress:
            call.progress.connect(on_progress)
        if on_token:
            call.token.connect(on_token)
        call.done.connect(lambda _r: self.calls.discard(call))
        call.failed.connect(lambda _e: self.calls.discard(call))

        def job() -> None:
            try:
                result = fn(call, *args, **kwargs)
            except BaseException as exc:  # reported to the UI, never lost in a thread
                exc.__vetted_trace__ = traceback.format_exc()  # type: ignore[attr-defined]
                call.failed.emit(exc)
            else:
                call.done.emit(result)

        self.pool.submit(job)
        return call

    def shutdown(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)


def error_text(exc: BaseException) -> str:
    """What a person reads: what was checked, what was found, what to do. Plain text (show
    it in a plain-text label); each part may quote a server, a catalog or a library, so
    each is made one line by `textsafe.one_line` and only the blank line between is ours."""
    from vetted.errors import VettedError
    from vetted.textsafe import one_line

    if isinstance(exc, VettedError):
        text = f"{one_line(exc.checked)}: {one_line(exc.found)}"
        return text + (f"\n\nWhat you can do: {one_line(exc.action)}" if exc.action else "")
    return f"Unexpected error: {type(exc).__name__}: {one_line(exc)}"
