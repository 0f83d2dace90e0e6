"""A terminal progress bar for downloads (stderr, only when it is a terminal)."""

from __future__ import annotations

import time
from typing import TextIO

from vetted.textsafe import one_line


class TerminalProgress:
    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self.start = time.monotonic()
        self.last = 0.0
        self.shown = False

    def update(self, name: str, done: int, total: int) -> None:
        now = time.monotonic()
        if not self.tty or (now - self.last < 0.1 and done < total):
            return
        self.last = now
        frac = done / total if total else 1.0
        speed = done / max(now - self.start, 1e-6)
        eta = (total - done) / speed if speed > 0 else 0
        bar = "#" * int(frac * 30)
        self.stream.write(f"\r{one_line(name)[:30]:<30} [{bar:<30}] {frac:6.1%} {speed / 1e6:7.1f} MB/s ETA {eta:4.0f}s")
        self.stream.flush()
        self.shown = True

    def done(self) -> None:
        if self.shown:
            self.stream.write("\n")
            self.stream.flush()
            self.shown = False
