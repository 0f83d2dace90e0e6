"""Large files as ranged parts over several connections, hashed in order as they land.

Content delivery networks cap each connection, so one connection leaves most of a fast
link idle; aria2c, hf_transfer and Ollama all fetch a large file as parallel ranges. Here
up to `TransferLimits.connections` connections (8 by default) each fetch pieces of the
file (fetch/pieces.py: handed out in file order, a few MiB each) and write them at their
offsets into the quarantined partial, preallocated at its full size. A hashing thread
reads the contiguous prefix back as it grows and feeds the one SHA-256, so the digest is
known moments after the last byte (DESIGN.md invariant 4); a sidecar next to the partial
records the written ranges, replaced atomically twice a second, so `kill -9` or Ctrl-C
lose at most the last half-second of each part and the next pull resumes every part.

Every guarantee of a single transfer holds for each part:
- size: a part's answer must be `206` with exactly the `Content-Range` asked for, of a
  file of the signed size, and no more bytes than the range; the file is never longer
  than the signed size (writes are bounded by the pieces);
- time: each connection has the stall timeout per read; the minimum rate is judged on
  the file's bytes over all its connections (net/watchdog.py `Meter`); no byte on any
  connection for the stall timeout abandons the source; cancel cuts every connection;
- trust: nothing a server says about the bytes is used, only the signed digest of the
  whole file, checked by the caller (install/pull.py);
- origin: each part goes through net/http.py (proxies, redirects with credentials
  dropped on another origin, `HF_ENDPOINT` as the source built the URL); parts go
  straight to where the first answer was redirected (a CDN), without credentials when
  that is another origin, and a part that fails goes back through the source's own URL.

Small files, `connections` = 1, servers that answer the first ranged request with the
whole file (no Range support) and partials marked `whole_only` take one connection
(fetch/stream.py). A server whose ranged answers break the rules above (a 200 instead
of 206, another range, another length, extra bytes) gets no further ranged request and
nothing it sent through ranges is kept: the file is fetched again from zero over one
connection without Range, and the digest decides. Bytes that pass every check but are
wrong show only in the whole file's digest; no part can be blamed from that, so the
caller restarts the file from zero once over one plain connection before it refuses
the source (install/pull.py).
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable

from vetted.errors import DownloadError, Refused
from vetted.fetch import stream
from vetted.fetch.pieces import MIN_PIECE, MiB, Piece, Plan
from vetted.net import http
from vetted.net.watchdog import DEFAULT_LIMITS, Meter, TransferLimits
from vetted.store.quarantine import Partial, Span

__all__ = ["MIN_PARALLEL", "download"]

MIN_PARALLEL = 16 * MiB  # smaller files take one connection: a few round trips would not pay off
PROBE = 256 * 1024       # the first request asks for this much: its answer decides the mode
CHECKPOINT = 0.5         # seconds between sidecar saves (what a kill -9 can lose per part)
HASH_BLOCK = 4 * MiB     # the hashing thread reads the prefix back in blocks of this size
HASH_WAKE = 1 * MiB      # ... and is woken when the prefix grew by this much
TRIES = 3                # attempts in a row that move less than MIN_PROGRESS before a piece fails the file
MIN_PROGRESS = 64 * 1024
LINGER = 1.0             # seconds, in all, to let connections end after an abort
JOIN = 10.0              # seconds to wait for the hashing thread to end after an abort

_CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+|\*)$")
log = logging.getLogger("vetted.fetch")

Progress = Callable[[int, int], None]


class RangesBroken(Exception):
    """A ranged answer broke the rules: the server's ranged answers are not used."""


def download(url: str, part: Partial, total: int, headers: dict[str, str] | None = None,
             limits: TransferLimits = DEFAULT_LIMITS, progress: Progress | None = None,
             cancel: threading.Event | None = None, check_response: http.ResponseCheck | None = None) -> None:
    """Brings `part` up to `total` bytes from `url` (ranged parts when that pays and the
    server answers them faithfully, else one connection), or raises with the partial kept."""
    if part.size == total:
        return
    if part.whole_only or limits.connections < 2 or total < MIN_PARALLEL:
        stream.download(url, part, total, headers, limits, progress, cancel, check_response)
        return
    try:
        _Ranged(url, part, total, dict(headers or {}), limits, progress, cancel, check_response).run()
    except RangesBroken as exc:
        part.notes.append(f"{exc}: its ranged answers are not used; the file is fetched again from zero over one "
                          "connection without Range")
        part.reset()
        part.whole_only = True
        stream.download(url, part, total, headers, limits, progress, cancel, check_response)


class _Ranged:
    """One ranged download: a probe, then worker threads, a hashing thread, and the caller's
    thread watching them (progress, checkpoints, cancel, stalls)."""

    def __init__(self, url: str, part: Partial, total: int, headers: dict[str, str], limits: TransferLimits,
                 progress: Progress | None, cancel: threading.Event | None,
                 check: http.ResponseCheck | None) -> None:
        self.url, self.part, self.total, self.headers, self.limits = url, part, total, headers, limits
        self.progress, self.cancel, self.check = progress, cancel, check
        self.plan = Plan(total, [(0, part.size), *part.written], limits.connections)
        self.lock = threading.Lock()
        self.moved = threading.Condition(self.lock)    # the frontier moved: the hashing thread waits on it
        self.changed = threading.Condition(self.lock)  # done, failed or a worker ended: the watcher waits on it
        self.freed = threading.Condition(self.lock)    # work came back: idle workers wait on it
        self.abort = threading.Event()                 # every worker connection watches this one
        self.meter = Meter(limits)                     # the minimum rate judges all connections together
        self.error: BaseException | None = None
        self.hashed = part.size
        self.wanted = part.size + HASH_WAKE
        self.running = 0
        self.writing = 0     # workers writing into the partial right now (outside the lock)
        self.stopped = False  # set by _settle: from then on no worker writes
        self.allocated = False
        self.final = (url, headers)  # where parts go: the first answer's address after redirects
        self.last_byte_at: float | None = None
        self.digest_at: float | None = None

    # -- the caller's thread ---------------------------------------------------------------

    def run(self) -> None:
        workers: list[threading.Thread] = []
        hasher = threading.Thread(target=self._hash, daemon=True, name="vetted-hash")
        try:
            if self.plan.missing and not self._probe():
                return  # the server sent the whole file instead: taken over one connection
            self._allocate()
            hasher.start()
            n = min(self.limits.connections, max(1, -(-self.plan.missing // (2 * MIN_PIECE))))
            with self.lock:
                self.running = n
            for i in range(n):
                t = threading.Thread(target=self._work, daemon=True, name=f"vetted-part-{i}")
                workers.append(t)
                t.start()
            self._watch()
            for t in workers:  # each ends once nothing is left; one may still be checking its answer's end
                t.join()
            hasher.join()
            if self.error is not None:
                raise self.error
        except BaseException:
            self._stop(None)
            raise
        finally:
            # Cut connections end at once; one still connecting (a silent address) cannot
            # be cut and is not waited for: Ctrl-C and Cancel return within a second, and
            # _settle makes sure no worker writes after it.
            self.abort.set()
            deadline = time.monotonic() + LINGER
            for t in workers:
                t.join(max(0.0, deadline - time.monotonic()))
            if hasher.is_alive():
                hasher.join(JOIN)  # local reads only: it ends within a block once aborted
            self._settle()

    def _probe(self) -> bool:
        """The first piece, alone, on a connection that watches the caller's cancel: a 206
        as asked starts the parallel download; a 200 (no Range support) is the whole file,
        taken over this one connection. A connection cut on the way is taken again from
        where it stopped, as a part's would be (up to TRIES attempts in a row that move
        less than MIN_PROGRESS); any other failure ends the attempt as it would a single
        transfer's — a stall included, since no other connection is moving yet."""
        with self.lock:
            piece = self.plan.take(first=PROBE)
        assert piece is not None
        asked = piece.end
        while True:
            began = piece.pos
            try:
                return self._probe_once(piece, asked)
            except http.ConnectionLost:
                _count_attempt(piece, began)
                if piece.failures >= TRIES or self.meter.slow or (self.cancel is not None and self.cancel.is_set()):
                    raise
                log.debug("%s: the first request's connection was cut at byte %d; asking again", self.url, piece.pos)
                delay = _pause(piece)
                if self.cancel is None:
                    time.sleep(delay)
                elif self.cancel.wait(delay):
                    raise http.Cancelled(f"download of {self.url}") from None

    def _probe_once(self, piece: Piece, asked: int) -> bool:
        with http.Session(self.limits, self.cancel, self.meter) as session, \
                session.get(self.url, {**self.headers, "Range": f"bytes={piece.pos}-{asked - 1}"},
                            self.check) as resp:
            if resp.status == 200:
                declared = resp.header("content-length")
                if declared and declared.isdigit() and int(declared) > self.total:
                    raise Refused(f"download size of {self.url}",
                                  f"server offers {declared} bytes, the signed catalog declares {self.total}",
                                  "the mirror serves a different file")
                log.debug("%s answers Range with the whole file: one connection", self.url)
                self.part.reset()  # also drops the record of parts an earlier attempt began
                self.allocated = False  # a plain one-connection partial from here: _settle leaves it alone
                stream.pump(self.url, resp.chunks(), self.part, self.total, self.progress, self.cancel)
                return False
            self._check_answer(resp, piece.pos, asked)
            self._remember(resp.url)
            self._allocate()
            # on the caller's thread, before any worker exists: nothing can race _settle, and
            # a Ctrl-C between counting a write and its try block must not leave it counted
            if self._receive(resp, piece, asked, count=False):
                with self.lock:
                    self.plan.finished(piece)
            else:  # split already (cannot happen before the workers start), or closed early
                with self.lock:
                    self.plan.give_back(piece)
        return True

    def _allocate(self) -> None:
        if self.allocated:
            return
        try:
            self.part.begin_ranged(self.total, self.plan.spans())
        except OSError as exc:
            raise DownloadError(f"writing {self.part.path}", exc.strerror or str(exc),
                                "free some disk space and run the command again to resume") from None
        self.allocated = True

    def _watch(self) -> None:
        """Until every byte is written: progress, sidecar checkpoints, cancel, a stalled source."""
        last_save = last_report = time.monotonic()
        reported = -1
        while True:
            with self.lock:
                if not self.plan.complete and self.error is None and self.running:
                    self.changed.wait(0.1)
                written, complete, error, running = self.plan.written, self.plan.complete, self.error, self.running
            if error is not None:
                raise error
            if self.cancel is not None and self.cancel.is_set():
                raise http.Cancelled(f"download of {self.url}")
            now = time.monotonic()
            if self.progress is not None and written != reported and (complete or now - last_report >= 0.1):
                self.progress(written, self.total)
                reported, last_report = written, now
            if complete:
                return
            if not running:
                raise DownloadError(f"download of {self.url}", "every connection ended before the file was complete",
                                    "run the command again to resume")
            if now - self.meter.last > self.limits.stall_timeout:
                raise DownloadError(f"GET {self.url}", f"no data for {self.limits.stall_timeout:g} s on any of its "
                                    "connections", "the server stalled; run the command again to resume")
            if now - last_save >= CHECKPOINT:
                self._checkpoint()
                last_save = now

    def _checkpoint(self) -> None:
        with self.lock:
            if self.stopped:
                return
            spans = self.plan.spans()
        try:
            self.part.save_ranges(spans, self.total)
        except OSError as exc:
            raise DownloadError(f"writing {self.part.ranges_path}", exc.strerror or str(exc),
                                "free some disk space and run the command again to resume") from None

    def _settle(self) -> None:
        """After the workers: the partial records what is hashed and what else is written.

        A worker may still be alive here (one stuck connecting to a silent address, which
        no watchdog can cut, is not waited for); once `stopped` is set and the writes under
        way have landed, none of them touches the partial again."""
        with self.lock:
            self.stopped = True
            while self.writing:
                self.changed.wait(1.0)
            spans = self.plan.spans()
        if not self.allocated:
            return
        self.part.size = self.hashed
        if self.hashed >= self.total:
            self.part.finish_ranged(self.total)
            log.debug("ranged download of %s: last byte %.6f, digest %.6f", self.url,
                      self.last_byte_at or 0.0, self.digest_at or 0.0,
                      extra={"last_byte_at": self.last_byte_at, "digest_at": self.digest_at})
            return
        self.part.written = _beyond(spans, self.hashed)
        try:
            self.part.save_ranges(spans, self.total)
        except OSError:
            pass  # the last checkpoint stands: it never claims more than was written

    def _stop(self, exc: BaseException | None) -> None:
        with self.lock:
            if exc is not None and self.error is None:
                self.error = exc
            self.changed.notify_all()
            self.freed.notify_all()
            self.moved.notify_all()
        self.abort.set()

    # -- worker threads ----------------------------------------------------------------------

    def _work(self) -> None:
        session: http.Session | None = None
        url, headers = self.final
        retired = False
        try:
            while (piece := self._next()) is not None:
                conn = session = session or http.Session(self.limits, self.abort, self.meter)
                asked, began = piece.end, piece.pos
                try:
                    with conn.get(url, {**headers, "Range": f"bytes={piece.pos}-{asked - 1}"},
                                     self.check) as resp:
                        self._check_answer(resp, piece.pos, asked)
                        if resp.url != url:
                            url, headers = self._remember(resp.url)
                        reusable = self._receive(resp, piece, asked)
                    with self.lock:
                        if piece.pos < piece.end:
                            self.plan.give_back(piece)
                        else:
                            self.plan.finished(piece)
                        self.freed.notify_all()
                    if not reusable:
                        conn.close()
                        session = None
                except (RangesBroken, Refused, http.Cancelled) as exc:
                    self._stop(None if isinstance(exc, http.Cancelled) else exc)
                    return
                except DownloadError as exc:
                    conn.close()  # a fresh connection for the next attempt
                    session = None
                    if self.abort.is_set() or self.meter.slow:
                        self._stop(exc)
                        return
                    with self.lock:
                        _count_attempt(piece, began)
                        self.plan.give_back(piece)
                        self.freed.notify_all()
                        # a server that limits connections answers the extra ones 429 or 503:
                        # this one ends and the others take its piece (never the last one)
                        retired = isinstance(exc, http.HTTPStatusError) and exc.status in (429, 503) \
                            and self.running > 1
                        if retired:
                            self.running -= 1
                    if retired:
                        log.debug("%s refused another connection (%s); going on with fewer", url, exc.found)
                        return
                    if piece.failures >= TRIES:
                        self._stop(exc)
                        return
                    url, headers = self.url, self.headers  # back through the source's own address
                    self.abort.wait(_pause(piece))
                except OSError as exc:
                    self._stop(DownloadError(f"writing {self.part.path}", exc.strerror or str(exc),
                                             "free some disk space and run the command again to resume"))
                    return
        except BaseException as exc:  # e.g. a registry's authentication challenge: the caller handles it
            self._stop(exc)
        finally:
            if session is not None:
                session.close()
            with self.lock:
                if not retired:
                    self.running -= 1
                self.changed.notify_all()

    def _next(self) -> Piece | None:
        with self.lock:
            while not (self.abort.is_set() or self.error is not None):
                piece = self.plan.take() or self.plan.steal()
                if piece is not None:
                    return piece
                if not (self.plan.active or self.plan.returned or self.plan.unassigned):
                    return None
                self.freed.wait(0.2)
        return None

    def _check_answer(self, resp: http.Response, start: int, end: int) -> None:
        """A ranged answer must be 206 for exactly the range asked, of a file of the signed size."""
        where = f"{http.target(resp.url).host} (bytes {start}-{end - 1})"
        if resp.status != 206:
            raise RangesBroken(f"{where} answered a ranged request with HTTP {resp.status}")
        got = (resp.header("content-range") or "").strip()
        m = _CONTENT_RANGE.match(got)
        if m and m.group(3) != "*" and int(m.group(3)) != self.total:
            raise Refused(f"download size of {self.url}",
                          f"server says the file has {m.group(3)} bytes, the signed catalog declares {self.total}",
                          "the mirror serves a different file")
        if not m or (int(m.group(1)), int(m.group(2))) != (start, end - 1):
            raise RangesBroken(f"{where} answered with Content-Range {got or '(none)'!r}")
        length = resp.header("content-length")
        if length is not None and length.strip() != str(end - start):
            raise RangesBroken(f"{where} answered with Content-Length {length!r} for {end - start} bytes")

    def _receive(self, resp: http.Response, piece: Piece, asked: int, count: bool = True) -> bool:
        """Writes the answer's body at the piece's offsets; True when the whole answer was
        used and its connection can carry another request. A worker counts its writes
        under way (`count`), so that _settle, once it has stopped them, waits for them."""
        chunks = resp.chunks()
        for chunk in chunks:
            with self.lock:
                if self.stopped:
                    return False
                at = piece.pos
                take = self.plan.reserve(piece, len(chunk))
                counted = count and take > 0
                self.writing += counted  # _settle waits for writes under way to land
            if take:
                try:
                    self.part.write_at(at, memoryview(chunk)[:take])
                finally:
                    if counted:
                        with self.lock:
                            self.writing -= 1
                            self.changed.notify_all()
                with self.lock:
                    moved = self.plan.wrote(piece, take)
                    if moved and (self.plan.frontier >= self.wanted or self.plan.complete):
                        self.moved.notify()
                    if self.plan.complete and self.last_byte_at is None:
                        self.last_byte_at = time.time()
                        self.changed.notify_all()
            if piece.pos >= piece.end or take < len(chunk):
                if piece.end < asked:
                    return False  # another connection took the rest of this piece
                if take < len(chunk) or next(chunks, b""):
                    raise RangesBroken(f"{http.target(resp.url).host} sent more than the {asked - piece.start} "
                                       f"bytes of the range {piece.start}-{asked - 1}")
                return True
        raise http.ConnectionLost(f"GET {resp.url}", f"the answer for bytes {piece.start}-{asked - 1} ended after "
                                  f"{piece.pos - piece.start} bytes", "run the command again to resume")

    def _remember(self, final: str) -> tuple[str, dict[str, str]]:
        """Parts go straight to where the source redirected; credentials only to its origin."""
        same = http.origin(final) == http.origin(self.url)
        self.final = (final, self.headers if same else http.without_credentials(self.headers))
        return self.final

    # -- the hashing thread ------------------------------------------------------------------

    def _hash(self) -> None:
        """Feeds the one SHA-256 with the contiguous prefix, read back from the partial."""
        buf = bytearray(HASH_BLOCK)
        view = memoryview(buf)
        try:
            while self.hashed < self.total:
                with self.lock:
                    while self.plan.frontier <= self.hashed:
                        if self.abort.is_set():
                            return
                        self.wanted = self.hashed + HASH_WAKE
                        self.moved.wait(0.5)
                    upto = self.plan.frontier
                while self.hashed < upto and not self.abort.is_set():
                    n = self.part.read_at(self.hashed, view[:min(HASH_BLOCK, upto - self.hashed)])
                    if n <= 0:
                        raise OSError(f"the partial ends at {self.hashed} bytes")
                    self.part.hasher.update(view[:n])
                    self.hashed += n
                if self.abort.is_set():
                    return
            self.digest_at = time.time()
        except OSError as exc:
            self._stop(DownloadError(f"reading {self.part.path}", exc.strerror or str(exc),
                                     "run the command again to resume"))
        finally:
            with self.lock:
                self.changed.notify_all()


def _count_attempt(piece: Piece, began: int) -> None:
    """A failed attempt at `piece` that had begun at byte `began`: one that moved less than
    MIN_PROGRESS counts towards TRIES; one that moved more starts the count again."""
    piece.failures = 0 if piece.pos - began >= MIN_PROGRESS else piece.failures + 1


def _pause(piece: Piece) -> float:
    """Seconds before the next attempt: doubling with each failure in a row, at most 2."""
    return min(2.0, 0.25 * 2 ** piece.failures)


def _beyond(spans: list[Span], offset: int) -> list[Span]:
    """The written ranges past `offset` (what is on disk but not hashed yet)."""
    return [(max(a, offset), b) for a, b in spans if b > offset]
