"""The limits every transfer runs under: one definition, used by the CLI, the GUI,
settings and tests (imported without the HTTP stack, so settings stay cheap to load)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TransferLimits:
    """The limits every transfer runs under (one definition, used by CLI, GUI and tests).

    stall_timeout: seconds without a single byte before a source counts as stalled
                   (`vetted pull --timeout`).
    window, min_rate: in every `window` seconds at least `window * min_rate` bytes must
                   arrive, else the server is trickling and the transfer is abandoned —
                   within `window` seconds of the last real progress, 60 s by default.
                   A file fetched in ranged parts is one transfer: the rule judges the
                   bytes of all its connections together.
    connections:   how many ranged requests one large file may have in flight at once
                   (`fetch/parallel.py`). Content delivery networks cap each connection,
                   so one connection leaves most of a fast link idle; 8 is what aria2c's
                   `-x 8` and hf_transfer use, and what a desktop link and a CDN handle
                   well. 1 keeps to a single connection.
    """

    stall_timeout: float = 30.0
    window: float = 60.0
    min_rate: int = 16 * 1024  # bytes per second, averaged over `window`
    connections: int = 8

    @property
    def min_bytes_per_window(self) -> int:
        return max(1, int(self.window * self.min_rate))

    def describe_rate(self) -> str:
        return f"{self.min_bytes_per_window} bytes in {self.window:g} s"


DEFAULT_LIMITS = TransferLimits()
# The range `connections` may take (settings, `vetted pull --connections`, a policy's lock):
# more than 32 parallel requests to one server is no longer a download but a load test.
MAX_CONNECTIONS = 32
