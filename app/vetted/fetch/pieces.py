"""Which bytes of a ranged download are written, and which piece a free connection takes next.

The SHA-256 must be computed in file order (DESIGN.md invariant 4: the digest is known
the moment the last byte lands), so pieces are handed out in order, smallest offset
first, and no connection starts a piece more than `AHEAD` bytes past the first byte
not yet written (the *frontier*, up to which the hash can run): the hash trails the
download by a bounded tail however uneven the connections are.

Piece sizes follow guided self-scheduling: a piece is 1/(2N) of what is left to hand out,
clamped to [MIN_PIECE, MAX_PIECE]. Large pieces keep per-request overhead (one round
trip each) small in the middle of a file; near its end they shrink, so N connections
finish together instead of N-1 idling while one finishes a large piece. A connection with
nothing to take splits the largest piece still in flight and takes its back half
(`steal`): a slow connection then holds up little of the file, and never the frontier
for long.

Everything here is plain bookkeeping, called under the downloader's lock.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

from vetted.store.quarantine import Span

MiB = 1024 * 1024
MAX_PIECE = 8 * MiB
MIN_PIECE = 1 * MiB
AHEAD = 128 * MiB  # no piece starts further than this past the frontier
ALIGN = 64 * 1024  # piece boundaries fall on multiples of this (friendlier to caches and disks)


@dataclass(eq=False)
class Piece:
    """Bytes [pos, end) still to be written by one request. `end` shrinks when another
    connection takes the tail; `reserved` is the end of the bytes being written right now,
    which a split never takes."""

    start: int
    end: int
    pos: int = -1
    reserved: int = -1
    failures: int = 0  # attempts in a row that moved less than a block

    def __post_init__(self) -> None:
        if self.pos < 0:
            self.pos = self.start
        if self.reserved < 0:
            self.reserved = self.pos

    @property
    def remaining(self) -> int:
        return self.end - self.pos


class Plan:
    """The written byte ranges (merged, sorted), what is left to hand out, what is in flight."""

    def __init__(self, total: int, done: list[Span], connections: int) -> None:
        self.total = total
        self.connections = max(1, connections)
        self.done: list[list[int]] = []
        for a, b in sorted(done):
            self._merge(a, b)
        # what no piece covers yet: the gaps between written ranges
        self.unassigned: list[list[int]] = []
        at = 0
        for a, b in self.done:
            if a > at:
                self.unassigned.append([at, a])
            at = b
        if at < total:
            self.unassigned.append([at, total])
        self.returned: list[Piece] = []  # remainders of failed attempts, by offset
        self.active: list[Piece] = []

    # -- what is known ---------------------------------------------------------------------

    @property
    def frontier(self) -> int:
        """The first byte not yet written: the hash may run up to here."""
        return self.done[0][1] if self.done and self.done[0][0] == 0 else 0

    @property
    def written(self) -> int:
        return sum(b - a for a, b in self.done)

    @property
    def complete(self) -> bool:
        return self.frontier >= self.total

    @property
    def missing(self) -> int:
        return self.total - self.written

    def spans(self) -> list[Span]:
        return [(a, b) for a, b in self.done]

    # -- handing out work -----------------------------------------------------------------

    def take(self, first: int = 0) -> Piece | None:
        """The next piece in file order, or None (nothing left within reach). `first`
        caps the size (a probe asks for little)."""
        if self.returned:
            piece = self.returned.pop(0)
            piece.reserved = piece.pos
            self.active.append(piece)
            return piece
        if not self.unassigned:
            return None
        gap = self.unassigned[0]
        if gap[0] >= self.frontier + AHEAD:
            return None
        left = sum(b - a for a, b in self.unassigned)
        size = min(MAX_PIECE, max(MIN_PIECE, left // (2 * self.connections)))
        if first:
            size = min(size, first)
        end = _align(gap[0] + size)
        end = min(gap[1], end if end > gap[0] else gap[0] + size)
        piece = Piece(gap[0], end)
        if end >= gap[1]:
            self.unassigned.pop(0)
        else:
            gap[0] = end
        self.active.append(piece)
        return piece

    def steal(self) -> Piece | None:
        """The back half of the piece in flight with the most bytes left, if it is worth a
        request of its own; its owner stops at the split."""
        best = max(self.active, key=lambda p: p.end - p.reserved, default=None)
        if best is None or best.end - best.reserved < 2 * MIN_PIECE:
            return None
        split = _align(best.reserved + (best.end - best.reserved) // 2)
        if split <= best.reserved or split >= best.end:
            return None
        thief = Piece(split, best.end)
        best.end = split
        self.active.append(thief)
        return thief

    def reserve(self, piece: Piece, n: int) -> int:
        """How many of `n` bytes just received at `piece.pos` this piece may still write."""
        take = max(0, min(n, piece.end - piece.pos))
        piece.reserved = piece.pos + take
        return take

    def wrote(self, piece: Piece, n: int) -> bool:
        """Records `n` bytes written at `piece.pos`; True if the frontier moved."""
        before = self.frontier
        self._merge(piece.pos, piece.pos + n)
        piece.pos += n
        piece.reserved = max(piece.reserved, piece.pos)
        return self.frontier != before

    def finished(self, piece: Piece) -> None:
        self.active.remove(piece)

    def give_back(self, piece: Piece) -> None:
        """A failed attempt: what it did not write is handed out again, before anything new."""
        self.active.remove(piece)
        if piece.pos < piece.end:
            rest = Piece(piece.pos, piece.end, failures=piece.failures)
            bisect.insort(self.returned, rest, key=lambda p: p.start)

    # -- internals ---------------------------------------------------------------------------

    def _merge(self, a: int, b: int) -> None:
        if a >= b:
            return
        i = bisect.bisect_left(self.done, [a, a])
        if i > 0 and self.done[i - 1][1] >= a:
            i -= 1
        j = i
        while j < len(self.done) and self.done[j][0] <= b:
            a, b = min(a, self.done[j][0]), max(b, self.done[j][1])
            j += 1
        self.done[i:j] = [[a, b]]


def _align(offset: int) -> int:
    return offset - offset % ALIGN if offset % ALIGN else offset
