"""Large files in ranged parts over several connections (fetch/parallel.py), against a
loopback server that caps each connection and can answer each ranged request wrongly
(tests/range_server.py).

What must hold: the parts really run in parallel and the file installs verified; one
connection for small files, for `connections: 1` and for servers without Range; every
wrong ranged answer (200 instead of 206, another Content-Range, another length, extra
bytes, another file size) is refused or falls back, never trusted; wrong bytes that pass
every header check are caught by the digest and fetched again over one plain connection,
and a source that lies there too is refused for the next one; stalls, trickles and
cancel end every connection; parts go through the proxy, and past the Hub's redirect
without the token; a corrupted record of the parts never installs wrong bytes.
"""

from __future__ import annotations

import _thread
import hashlib
import itertools
import json
import logging
import os
import re
import signal
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from hub_server import HubServer
from range_server import Answer, RangeServer, Request
from vetted.authoring.publish import build_catalog, generate_key
from vetted.catalog.signed import load
from vetted.errors import DownloadError, Refused
from vetted.fetch.stream import Cancelled
from vetted.install.pull import pull, store_path
from vetted.net.limits import TransferLimits
from vetted.store import audit, installed
from vetted.trust.identity import PublicKey

MiB = 1024 * 1024
SIZE = 24 * MiB + 12_345  # large enough for parts; not a multiple of any piece size
FILE = "big.gguf"
MODEL = "big"
CAP = 4_000_000  # bytes/s per connection: one connection would need ~6.3 s for SIZE
COMMIT = "5f0c1e2d3b4a59687766554433221100ffeeddcc"


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    return generate_key(tmp_path_factory.mktemp("keys"))


@pytest.fixture(scope="module")
def source_file(tmp_path_factory) -> Path:
    p = tmp_path_factory.mktemp("src") / FILE
    p.write_bytes(b"GGUF" + os.urandom(SIZE - 4))
    return p


@dataclass
class Published:
    catalog: Path
    mirror: Path   # the folder the catalog's mirror serves (and its `local` source reads)
    sha256: str
    data: bytes

    def load(self, db, keys):
        return load(str(self.catalog), PublicKey(keys[1].read_bytes()), db)


def publish(tmp: Path, keys, model: Path, sources: dict, catalog_id: str = "org.test.parallel") -> Published:
    """A signed catalog with one model; its files land in tmp/out/mirror (serve that folder)."""
    spec = {"id": catalog_id, "name": "Parallel", "publisher": "Test Org", "version": 1,
            "models": [{"id": MODEL, "name": "Big", "publisher": "P", "license": "MIT", "path": str(model),
                        "sources": sources}]}
    cat = build_catalog(spec, tmp, keys[0], tmp / "out")
    f = json.loads(cat.read_bytes())["models"][0]["files"][0]
    return Published(cat, tmp / "out" / "mirror", f["sha256"], model.read_bytes())


@pytest.fixture
def serve(tmp_path, keys, source_file):
    """`serve(**server_options, sources=None)` -> (Published, RangeServer): a mirror on a
    loopback server capped per connection, its URL in a freshly signed catalog."""
    servers: list[RangeServer] = []

    def make(sources=None, **options) -> tuple[Published, RangeServer]:
        """`sources(url)` -> the catalog's sources (default: only this mirror)."""
        options.setdefault("cap_bps", CAP)
        srv = RangeServer(tmp_path / "out" / "mirror", **options)
        servers.append(srv)
        return publish(tmp_path, keys, source_file, (sources or (lambda url: {"mirrors": [url]}))(srv.url)), srv

    yield make
    for s in servers:
        s.close()


def file_gets(srv: RangeServer) -> list[Request]:
    return srv.for_file(FILE)


def ranged(reqs: list[Request]) -> list[Request]:
    return [r for r in reqs if r.range]


def covered(reqs: list[Request]) -> list[tuple[int, int]]:
    """The byte ranges the answers were asked for, merged."""
    out: list[list[int]] = []
    for a, b in sorted((r.start, r.end) for r in reqs if r.status == 206):
        if out and a <= out[-1][1]:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return [(a, b) for a, b in out]


def assert_installed(loc, db, p: Published) -> None:
    target = store_path(loc, p.sha256)
    assert target.is_file() and hashlib.sha256(target.read_bytes()).hexdigest() == p.sha256
    assert installed.get(db, MODEL).state == "verified"
    assert not list(loc.quarantine.glob("*.part")) and not list(loc.quarantine.glob("*.ranges"))


def assert_nothing_installed(loc, db, p: Published) -> None:
    assert not store_path(loc, p.sha256).exists()
    assert installed.all_models(db) == []


def infos(db) -> list[str]:
    return [r["reason"] for r in audit.entries(db) if r["action"] == "model.pull" and r["result"] == "info"]


def refusals(db) -> list[str]:
    return [r["reason"] for r in audit.entries(db) if r["action"] == "model.pull" and r["result"] == "refused"]


def nth_ranged(n: int, answer: Answer):
    """A fault hook: the n-th ranged request after the first one gets `answer`."""
    count = itertools.count()

    def fault(req: Request) -> Answer | None:
        return answer if req.start > 0 and next(count) == n else None

    return fault


# -- the happy path --------------------------------------------------------------------------


def test_a_large_file_arrives_in_parallel_parts_hashed_in_order(loc, db, keys, serve, caplog) -> None:
    p, srv = serve()
    seen: list[tuple[int, int]] = []
    caplog.set_level(logging.DEBUG, logger="vetted.fetch")
    t0 = time.monotonic()
    result = pull(loc, db, p.load(db, keys), MODEL, progress=lambda _n, done, total: seen.append((done, total)))
    took = time.monotonic() - t0
    assert not result.already
    assert_installed(loc, db, p)
    reqs = file_gets(srv)
    # every request asked for a range and got exactly it; together they cover the file once
    assert all(r.range and r.status == 206 for r in reqs), [(r.range, r.status) for r in reqs]
    assert covered(reqs) == [(0, SIZE)]
    assert sum(r.end - r.start for r in reqs) == SIZE, "a byte was fetched twice"
    # several connections at once, each capped: far quicker than one connection could be
    assert srv.max_active >= 6 and len({r.conn for r in reqs}) >= 6
    assert took < SIZE / CAP * 0.6, f"{took:.1f} s: the parts did not run in parallel"
    assert seen[-1] == (SIZE, SIZE) and all(a <= b for (a, _), (b, _) in zip(seen, seen[1:]))
    # the digest was known moments after the last byte (hashed while the parts arrived)
    rec = next(r for r in caplog.records if getattr(r, "digest_at", None))
    assert 0 <= rec.digest_at - rec.last_byte_at < 0.5, (rec.last_byte_at, rec.digest_at)


def test_small_files_and_one_connection_take_a_single_plain_request(tmp_path, loc, db, keys, serve,
                                                                    monkeypatch) -> None:
    p, srv = serve()
    limits = TransferLimits(connections=1)
    pull(loc, db, p.load(db, keys), MODEL, limits=limits)
    assert_installed(loc, db, p)
    assert [(r.range, r.status) for r in file_gets(srv)] == [(None, 200)]
    # a file under the parallel threshold: one request, no Range
    small = tmp_path / "small-src" / FILE
    small.parent.mkdir()
    small.write_bytes(os.urandom(3 * MiB))
    with RangeServer(tmp_path / "small" / "out" / "mirror") as srv2:
        q = publish(tmp_path / "small", keys, small, {"mirrors": [srv2.url]}, "org.test.parallel.small")
        installed.purge(db, MODEL)
        pull(loc, db, q.load(db, keys), MODEL)
        assert [(r.range, r.status) for r in file_gets(srv2)] == [(None, 200)]


def test_connections_come_from_settings_the_command_line_and_an_organisation_s_lock(
        tmp_path, loc, keys, serve, monkeypatch, cli) -> None:
    """`transfers.connections` in settings.json, `vetted pull --connections N`, and an
    organisation that holds every download to one connection (a proxy or mirror that counts
    connections per client): its lock wins over both, and a flag asking more is refused."""
    from vetted.core import Vetted
    from vetted.errors import InputError
    from vetted.policy import sources

    p, srv = serve()
    app = Vetted(loc)
    app.pin_catalog(str(p.catalog), PublicKey(keys[1].read_bytes()))
    assert app.transfer_limits().connections == 8  # the default
    for bad in (0, 33):
        with pytest.raises(InputError, match=f"connections: must be from 1 to 32, not {bad}"):
            app.transfer_limits(connections=bad)
    flag = cli("pull", MODEL, "--connections", "33")
    assert flag.returncode == 2 and "connections: must be from 1 to 32, not 33" in flag.stderr, flag.stderr
    settings = loc.config / "settings.json"
    settings.write_text(json.dumps({**json.loads(settings.read_text()), "transfers": {"connections": 3}}))
    assert app.transfer_limits().connections == 3

    policy = tmp_path / "policies" / "policy.json"
    policy.parent.mkdir()
    policy.write_text(json.dumps({"schema": "vetted.policy/1", "settings": {"transfers.connections": 1}}))
    os.chmod(policy, 0o600)
    monkeypatch.setenv(sources.EXTRA_ENV, str(policy))
    refused = cli("pull", MODEL, "--connections", "8", env={sources.EXTRA_ENV: str(policy)})
    assert refused.returncode == 1 and "setting transfers.connections: is locked to 1 by your organisation, " \
        f"not 8 (rule transfers.connections, from {policy})" in refused.stdout, refused.stdout
    assert file_gets(srv) == []
    assert cli("pull", MODEL, env={sources.EXTRA_ENV: str(policy)}).returncode == 0
    assert [(r.range, r.status) for r in file_gets(srv)] == [(None, 200)], "the lock to one connection was ignored"
    assert srv.max_active == 1


def test_a_server_without_range_support_is_fetched_whole_over_one_connection(loc, db, keys, serve) -> None:
    p, srv = serve(ranges=False)
    pull(loc, db, p.load(db, keys), MODEL)
    assert_installed(loc, db, p)
    reqs = file_gets(srv)
    # the first (ranged) request got the whole file: taken as it came, nothing asked again
    assert [r.status for r in reqs] == [200] and reqs[0].range and srv.max_active == 1
    assert not infos(db) and not refusals(db)


def test_a_server_limiting_connections_is_served_with_fewer(loc, db, keys, serve) -> None:
    lock = threading.Lock()
    busy: set[int] = set()

    def two_at_most(req: Request) -> Answer | None:
        with lock:
            if srv.active > 2:
                busy.add(req.conn)
                return Answer(status=503)
        return None

    p, srv = serve(fault=two_at_most)
    pull(loc, db, p.load(db, keys), MODEL)
    assert_installed(loc, db, p)
    assert busy, "the server never refused a connection"
    assert covered(file_gets(srv)) == [(0, SIZE)]


# -- ranged answers that break the rules ---------------------------------------------------


@pytest.mark.parametrize("answer, found", [
    (Answer(status=200), "answered a ranged request with HTTP 200"),
    (Answer(content_range="bytes 0-1048575/{size}"), "answered with Content-Range 'bytes 0-1048575/"),
    (Answer(content_length="1000"), "answered with Content-Length '1000'"),
    (Answer(content_length="", extra=4096), "sent more than the"),
], ids=["200-instead-of-206", "another-content-range", "another-content-length", "more-bytes-than-the-range"])
def test_a_broken_ranged_answer_is_not_trusted_the_file_comes_over_one_plain_connection(
        loc, db, keys, serve, answer, found) -> None:
    if answer.content_range:
        answer.content_range = answer.content_range.format(size=SIZE)
    p, srv = serve(fault=nth_ranged(3, answer))
    pull(loc, db, p.load(db, keys), MODEL)
    assert_installed(loc, db, p)
    reqs = file_gets(srv)
    assert len(ranged(reqs)) >= 4
    # nothing that came through ranges was kept: the file came again, whole, without Range
    assert (reqs[-1].range, reqs[-1].status) == (None, 200)
    note = [n for n in infos(db) if found in n]
    assert note and "ranged answers are not used" in note[0] and "without Range" in note[0], infos(db)
    assert not refusals(db)


def test_a_part_claiming_another_file_size_is_refused_and_the_next_source_used(loc, db, keys, serve) -> None:
    p, srv = serve(fault=_content_range_total(SIZE + 1, after=2),
                   sources=lambda url: {"mirrors": [url], "local": ["mirror"]})
    result = pull(loc, db, p.load(db, keys), MODEL)
    assert result.source.startswith("local folder")
    assert_installed(loc, db, p)
    assert any(f"server says the file has {SIZE + 1} bytes, the signed catalog declares {SIZE}" in r
               for r in refusals(db)), refusals(db)


def _content_range_total(total: int, after: int):
    count = itertools.count()

    def fault(req: Request) -> Answer | None:
        if req.start > 0 and next(count) >= after:
            return Answer(content_range=f"bytes {req.start}-{req.end - 1}/{total}")
        return None

    return fault


@pytest.mark.parametrize("answer, found", [
    (Answer(status=200, content_length=str(SIZE + 4096)), f"server offers {SIZE + 4096} bytes, the signed catalog declares {SIZE}"),
    (Answer(status=200, content_length="", extra=5 * MiB), f"more than the {SIZE} bytes the signed catalog declares"),
], ids=["longer-declared", "longer-sent"])
def test_a_whole_file_answer_longer_than_signed_is_refused(loc, db, keys, serve, answer, found) -> None:
    """The first (ranged) request answered with the whole file, but a longer one: the
    declared size caps it, as for a single transfer; the partial is deleted."""
    p, srv = serve(fault=lambda req: answer if req.start == 0 and req.path.endswith(FILE) else None, cap_bps=None)
    with pytest.raises(Refused, match=found):
        pull(loc, db, p.load(db, keys), MODEL)
    assert_nothing_installed(loc, db, p)
    assert not list(loc.quarantine.glob("*.part")) and not list(loc.quarantine.glob("*.ranges"))
    assert any(found in r for r in refusals(db))


def test_a_part_cut_short_is_taken_again_from_where_it_stopped(loc, db, keys, serve) -> None:
    cut: list[Request] = []

    def fault(req: Request) -> Answer | None:
        if req.start > 0 and not cut:
            cut.append(req)
            return Answer(close_after=300_000)
        return None

    p, srv = serve(fault=fault)
    pull(loc, db, p.load(db, keys), MODEL)
    assert_installed(loc, db, p)
    reqs = file_gets(srv)
    again = [r for r in reqs if r.start == cut[0].start + 300_000]
    assert again and again[0].status == 206
    # nothing but the cut answer's missing bytes was asked twice
    assert sum(r.end - r.start for r in reqs) - (cut[0].end - cut[0].start) + 300_000 == SIZE


def test_junk_after_a_truthful_length_is_never_written(loc, db, keys, serve) -> None:
    """Extra bytes past Content-Length land where the next answer's headers should be: that
    connection breaks and the piece is asked again; the junk never reaches the file."""
    p, srv = serve(fault=nth_ranged(2, Answer(extra=70_000)))
    pull(loc, db, p.load(db, keys), MODEL)
    assert_installed(loc, db, p)


# -- bytes that pass every header check but are wrong ----------------------------------------


def flip_when_ranged(offset: int):
    def fault(req: Request) -> Answer | None:
        return Answer(flip_at=offset) if req.range and req.start <= offset < req.end else None

    return fault


def test_wrong_bytes_in_a_part_are_caught_by_the_digest_and_fetched_again_without_range(loc, db, keys,
                                                                                        serve) -> None:
    p, srv = serve(fault=flip_when_ranged(SIZE // 2))
    pull(loc, db, p.load(db, keys), MODEL)
    assert_installed(loc, db, p)
    reqs = file_gets(srv)
    assert len(ranged(reqs)) >= 4 and (reqs[-1].range, reqs[-1].status) == (None, 200)
    assert [r.range for r in reqs].count(None) == 1
    note = [n for n in infos(db) if "the ranged parts from mirror" in n]
    assert note and "did not lead to the signed digest" in note[0] and "over one connection without Range" in note[0]
    assert not refusals(db)


def test_a_source_lying_with_and_without_range_is_refused_for_the_next_source(loc, db, keys, serve) -> None:
    p, srv = serve(fault=lambda req: Answer(flip_at=1_000_000),
                   sources=lambda url: {"mirrors": [url], "local": ["mirror"]})
    result = pull(loc, db, p.load(db, keys), MODEL)
    assert result.source.startswith("local folder")
    assert_installed(loc, db, p)
    reqs = file_gets(srv)
    assert ranged(reqs) and reqs[-1].range is None  # a ranged attempt, then one plain one, both wrong
    assert len(refusals(db)) == 1 and f"mirror {srv.url}: downloaded {FILE}" in refusals(db)[0]
    assert "altered bytes" in refusals(db)[0]


# -- time: stalls, trickles, cancel -----------------------------------------------------------


def test_a_stalled_part_is_taken_again_from_where_it_stopped(loc, db, keys, serve) -> None:
    stalled: list[Request] = []

    def fault(req: Request) -> Answer | None:
        if req.start > 0 and not stalled:
            stalled.append(req)
            return Answer(stall_after=100_000, stall_seconds=30)
        return None

    p, srv = serve(fault=fault)
    t0 = time.monotonic()
    pull(loc, db, p.load(db, keys), MODEL, limits=TransferLimits(stall_timeout=1.5))
    assert time.monotonic() - t0 < 12
    assert_installed(loc, db, p)
    again = [r for r in file_gets(srv) if r.start == stalled[0].start + 100_000]
    assert again and again[0].status == 206, "the stalled part did not resume where it stopped"


def test_a_source_silent_on_every_connection_is_abandoned_and_kept_for_a_resume(loc, db, keys, serve) -> None:
    p, srv = serve(fault=lambda req: Answer(stall_after=0, stall_seconds=30) if req.start > 0 else None)
    t0 = time.monotonic()
    with pytest.raises(DownloadError, match="no data for 2 s") as info:
        pull(loc, db, p.load(db, keys), MODEL, limits=TransferLimits(stall_timeout=2.0))
    assert time.monotonic() - t0 < 12, info.value
    assert_nothing_installed(loc, db, p)
    side = loc.quarantine / f"{p.sha256}.part.ranges"
    assert json.loads(side.read_bytes())["ranges"][0][0] == 0  # the first part is kept for a resume


def test_trickling_parts_are_abandoned_by_the_minimum_rate_of_the_whole_file(loc, db, keys, serve) -> None:
    p, srv = serve(fault=lambda req: Answer(stall_after=20_000, trickle=0.2) if req.start > 0 else None)
    limits = TransferLimits(stall_timeout=5.0, window=2.0, min_rate=8 * 1024)
    t0 = time.monotonic()
    with pytest.raises(DownloadError) as info:
        pull(loc, db, p.load(db, keys), MODEL, limits=limits)
    assert time.monotonic() - t0 < 15
    assert "under the minimum of 16384 bytes in 2 s" in info.value.line() and "trickling" in info.value.line()
    # the bytes the rule judged, not the file's: most of it came fast before the parts trickled
    got = re.search(r"only (\d+) bytes arrived in the last (\d+) s \((\d+) in all\)", info.value.line())
    assert got and int(got[1]) < 16384 <= int(got[3]), info.value.line()
    assert_nothing_installed(loc, db, p)


def test_cancel_ends_every_connection_and_keeps_the_parts(loc, db, keys, serve) -> None:
    p, srv = serve(cap_bps=1_000_000)
    cancel = threading.Event()
    threading.Timer(1.0, cancel.set).start()
    t0 = time.monotonic()
    with pytest.raises(Cancelled):
        pull(loc, db, p.load(db, keys), MODEL, cancel=cancel, limits=TransferLimits(stall_timeout=60, window=60))
    assert time.monotonic() - t0 < 4
    side = json.loads((loc.quarantine / f"{p.sha256}.part.ranges").read_bytes())
    kept = sum(b - a for a, b in side["ranges"])
    assert kept > 500_000 and len(side["ranges"]) > 1
    part = (loc.quarantine / f"{p.sha256}.part").read_bytes()
    assert all(part[a:b] == p.data[a:b] for a, b in side["ranges"])  # only written bytes are claimed
    time.sleep(0.5)
    assert srv.active == 0, "a connection outlived the cancel"


@pytest.fixture
def black_hole():
    """A loopback address whose connections never complete: its listen queue is full, so
    the kernel drops every new handshake (as a firewall that drops packets would)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    queued = []
    for _ in range(4):
        s = socket.socket()
        s.setblocking(False)
        try:
            s.connect(listener.getsockname())
        except BlockingIOError:
            pass
        queued.append(s)
    time.sleep(0.2)
    probe = socket.socket()
    probe.settimeout(0.5)
    try:
        with pytest.raises(TimeoutError):  # the premise: a connect there hangs
            probe.connect(listener.getsockname())
    finally:
        probe.close()
    yield "http://%s:%d" % listener.getsockname()
    for s in [*queued, listener]:  # once closed, the hanging connects fail at once
        s.close()


@pytest.mark.parametrize("how", ["cancel", "ctrl-c"])
def test_cancel_and_ctrl_c_do_not_wait_for_parts_stuck_connecting(loc, db, keys, serve, black_hole, how) -> None:
    """Every part after the first is redirected to an address that never answers the
    handshake: no watchdog can cut a connect under way, so the download must not wait for
    those connections (each would take the stall timeout, 120 s here) before it stops."""
    p, srv = serve(cap_bps=None, fault=lambda req: Answer(status=302, location=f"{black_hole}/{FILE}")
                   if req.start > 0 else None)
    cancel = threading.Event()

    def stop() -> None:
        deadline = time.monotonic() + 30
        while len(file_gets(srv)) < 3 and time.monotonic() < deadline:  # the parts are on their way
            time.sleep(0.05)
        time.sleep(0.3)
        if how == "cancel":
            cancel.set()
        else:
            _thread.interrupt_main()  # what Ctrl-C does to a CLI pull: KeyboardInterrupt in the main thread

    # interrupt_main does nothing where SIGINT is ignored (a suite run in the background, as
    # tests/terminal.py explains): Python's own handler is put in place for the test
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        threading.Thread(target=stop, daemon=True).start()
        t0 = time.monotonic()
        with pytest.raises(Cancelled if how == "cancel" else KeyboardInterrupt):
            pull(loc, db, p.load(db, keys), MODEL, cancel=cancel,
                 limits=TransferLimits(stall_timeout=120, window=120))
        took = time.monotonic() - t0
    finally:
        signal.signal(signal.SIGINT, before)
    assert took < 30, f"stopping took {took:.0f} s: it waited for connections that could not be cut"
    assert_nothing_installed(loc, db, p)
    side = json.loads((loc.quarantine / f"{p.sha256}.part.ranges").read_bytes())
    assert side["ranges"] and side["ranges"][0][0] == 0  # the first part is kept for a resume
    part = (loc.quarantine / f"{p.sha256}.part").read_bytes()
    assert all(part[a:b] == p.data[a:b] for a, b in side["ranges"])


def test_a_cut_first_request_is_taken_again_like_any_part(loc, db, keys, serve) -> None:
    cut: list[Request] = []

    def fault(req: Request) -> Answer | None:
        if req.path.endswith(FILE) and req.range and not cut:  # the model file's first request
            cut.append(req)
            return Answer(close_after=100_000)
        return None

    p, srv = serve(cap_bps=None, fault=fault)
    pull(loc, db, p.load(db, keys), MODEL)
    assert_installed(loc, db, p)
    reqs = file_gets(srv)
    assert reqs[1].start == 100_000 and reqs[1].range and reqs[1].status == 206, \
        "the first request was not taken again from where it was cut"
    assert all(r.range for r in reqs) and sum(r.end - r.start for r in reqs[1:]) == SIZE - 100_000


def test_a_cut_first_request_answered_whole_on_its_retry_is_installed(loc, db, keys, serve) -> None:
    """The retry of a cut first request gets a 200 with the whole file: that is a
    one-connection download from then on, and nothing of the ranged attempt it began may
    change it (an honest source was refused as serving altered bytes)."""
    seen: list[Request] = []

    def fault(req: Request) -> Answer | None:
        if not (req.path.endswith(FILE) and req.range):
            return None
        seen.append(req)
        return Answer(close_after=100_000) if len(seen) == 1 else Answer(status=200) if len(seen) == 2 else None

    p, srv = serve(cap_bps=None, fault=fault)
    pull(loc, db, p.load(db, keys), MODEL)
    assert_installed(loc, db, p)
    assert [(r.start, r.status) for r in file_gets(srv)] == [(0, 206), (100_000, 200)]
    assert not refusals(db)


def test_ctrl_c_between_counting_a_write_and_making_it_does_not_hang_the_stop(tmp_path, serve) -> None:
    """Ctrl-C reaches the caller's thread, where the first request is received: landing right
    after a write was counted as under way, it left the count up and the stop waited for
    that write for ever. A trace function puts the interrupt exactly there."""
    import sys

    from vetted.fetch import parallel
    from vetted.store.quarantine import Partial

    p, srv = serve(cap_bps=2_000_000)
    part = Partial.open(tmp_path / f"{p.sha256}.part", SIZE)
    code = parallel._Ranged._receive.__code__
    first_write = next(i for i, line in enumerate(open(parallel.__file__), 1) if line.strip() == "if take:")
    state: dict = {"fired": False, "raised": None}

    def tracer(frame, event, arg):
        if frame.f_code is not code:
            return None

        def line(f, ev, a):
            if ev == "line" and f.f_lineno == first_write and not state["fired"]:
                state["fired"] = True
                raise KeyboardInterrupt
            return line
        return line

    def caller() -> None:  # plays the CLI's main thread
        sys.settrace(tracer)
        try:
            parallel.download(f"{srv.url}/{FILE}", part, SIZE)
        except BaseException as exc:  # noqa: BLE001 - recorded and asserted below
            state["raised"] = exc
        finally:
            sys.settrace(None)

    t = threading.Thread(target=caller, daemon=True)
    t.start()
    t.join(20)
    try:
        assert state["fired"], "the trace never reached the first write"
        assert not t.is_alive(), "the stop waited for a write that was never made"
        assert isinstance(state["raised"], KeyboardInterrupt)
    finally:
        part.close()


# -- where parts go: proxies, the Hub's redirect ------------------------------------------------


def _only_proxy(monkeypatch, scheme: str, url: str) -> None:
    """Every `scheme` request goes through the proxy at `url`, and nothing is exempt."""
    for var in (f"{scheme.upper()}_PROXY", f"{scheme}_proxy"):
        monkeypatch.setenv(var, url)
    for var in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)


def test_every_part_goes_through_the_proxy(tmp_path, keys, serve, monkeypatch) -> None:
    """At the transfer layer (a catalog may name plain http only on loopback, and loopback
    never goes through a proxy): the loopback server plays the proxy, answering the
    absolute-form requests a proxy gets from the mirror folder."""
    from vetted.fetch.sources import Mirror
    from vetted.store.quarantine import Partial

    p, srv = serve()
    _only_proxy(monkeypatch, "http", srv.url)
    part = Partial.open(tmp_path / "proxied.part", SIZE)
    try:
        Mirror("mirror", "http://models.example.invalid").fetch(FILE, part, SIZE)
        assert part.size == SIZE and part.hasher.hexdigest() == p.sha256
    finally:
        part.close()
    reqs = file_gets(srv)
    assert len(ranged(reqs)) > 4 and all(r.proxied for r in reqs)
    assert covered(reqs) == [(0, SIZE)]
    assert not (tmp_path / "proxied.part.ranges").exists()


def test_https_parts_each_go_through_their_own_proxy_tunnel_and_cancel_cuts_them(tmp_path, keys, source_file,
                                                                                  monkeypatch) -> None:
    """An organisation's network: https only through its proxy (CONNECT). Every part's
    connection is a tunnel of its own to the named host, TLS is checked inside it, and
    Cancel cuts the tunnels too (the watchdog holds each socket from before the tunnel)."""
    from connect_proxy import ConnectProxy
    from hub_server import LoopbackTLS
    from vetted.fetch.sources import Mirror
    from vetted.store.quarantine import Partial

    host = "models.example.invalid"
    tls = LoopbackTLS(tmp_path / "tls", names=(host,))
    tls.trust(monkeypatch)
    mirror = tmp_path / "https-mirror"
    mirror.mkdir()
    (mirror / FILE).write_bytes(source_file.read_bytes())
    want = hashlib.sha256(source_file.read_bytes()).hexdigest()
    with RangeServer(mirror, tls=tls, cap_bps=CAP) as srv:
        proxy = ConnectProxy(srv.httpd.server_address[:2])
        _only_proxy(monkeypatch, "https", proxy.url)
        part = Partial.open(tmp_path / "tls.part", SIZE)
        try:
            Mirror("mirror", f"https://{host}").fetch(FILE, part, SIZE)
            assert part.size == SIZE and part.hasher.hexdigest() == want
            reqs = file_gets(srv)
            assert len(ranged(reqs)) > 4 and covered(reqs) == [(0, SIZE)]
            assert len(proxy.tunnels) >= 4 and set(proxy.tunnels) == {f"{host}:443"}
            assert len({r.conn for r in reqs}) == len(proxy.tunnels), "a part bypassed the proxy"
        finally:
            part.close()
        # again, cancelled while the parts stream through their tunnels
        srv.cap_bps = 1_000_000
        cancel = threading.Event()
        threading.Timer(1.0, cancel.set).start()
        part = Partial.open(tmp_path / "tls-cancelled.part", SIZE)
        try:
            with pytest.raises(Cancelled):
                Mirror("mirror", f"https://{host}", TransferLimits(stall_timeout=60, window=60)).fetch(
                    FILE, part, SIZE, cancel=cancel)
        finally:
            part.close()
        deadline = time.monotonic() + 5
        while proxy.open and time.monotonic() < deadline:
            time.sleep(0.05)
        assert proxy.open == 0, "a tunnel outlived the cancel"
        proxy.close()


def test_parts_follow_the_hub_redirect_without_the_token(tmp_path, loc, db, keys, source_file,
                                                         monkeypatch) -> None:
    mirror = tmp_path / "out" / "mirror"
    cdn = HubServer(mirror, COMMIT)
    hub = HubServer(mirror, COMMIT)
    try:
        hub.bad.redirect_to = cdn.url
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        monkeypatch.setenv("HF_TOKEN", "hf_secret_token_value")
        p = publish(tmp_path, keys, source_file, {"huggingface": {"repo": "org/model", "commit": COMMIT}})
        pull(loc, db, p.load(db, keys), MODEL)
        assert_installed(loc, db, p)
        at_hub = [r for r in hub.requests_for(FILE) if r.method == "GET"]
        at_cdn = [r for r in cdn.requests_for(FILE) if r.method == "GET"]
        # the Hub answered once (its redirect carries the pinned commit); the parts went to the CDN
        assert len(at_hub) == 1 and at_hub[0].headers.get("authorization") == "Bearer hf_secret_token_value"
        assert len(at_cdn) > 4 and all(r.range for r in at_cdn)
        assert not [r for r in at_cdn if "authorization" in r.headers], "the token went to another origin"
    finally:
        cdn.close()
        hub.close()


# -- the record of written parts -----------------------------------------------------------------


def _plant(loc, p: Published, content: bytes, sidecar: bytes | None) -> Path:
    part = loc.quarantine / f"{p.sha256}.part"
    part.write_bytes(content)
    if sidecar is not None:
        (loc.quarantine / f"{p.sha256}.part.ranges").write_bytes(sidecar)
    return part


def _sidecar(spans: list[tuple[int, int]]) -> bytes:
    return json.dumps({"format": "vetted.ranges/1", "size": SIZE, "ranges": spans}).encode()


def test_a_resume_fetches_only_the_parts_not_written(loc, db, keys, serve) -> None:
    p, srv = serve(cap_bps=None)
    spans = [(0, 5 * MiB + 17), (9 * MiB, 12 * MiB + 3), (20 * MiB, 21 * MiB)]
    content = bytearray(SIZE)
    for a, b in spans:
        content[a:b] = p.data[a:b]
    _plant(loc, p, bytes(content), _sidecar(spans))
    pull(loc, db, p.load(db, keys), MODEL)
    assert_installed(loc, db, p)
    asked = covered(file_gets(srv))
    assert asked == [(5 * MiB + 17, 9 * MiB), (12 * MiB + 3, 20 * MiB), (21 * MiB, SIZE)]
    assert sum(r.end - r.start for r in file_gets(srv)) == SIZE - sum(b - a for a, b in spans)


def test_a_sidecar_claiming_unwritten_bytes_never_installs_them(loc, db, keys, serve) -> None:
    p, srv = serve(cap_bps=None)
    spans = [(0, 4 * MiB), (8 * MiB, 16 * MiB)]
    content = bytearray(SIZE)
    content[0:4 * MiB] = p.data[0:4 * MiB]  # the claim about 8-16 MiB is false: zeros there
    _plant(loc, p, bytes(content), _sidecar(spans))
    pull(loc, db, p.load(db, keys), MODEL)
    assert_installed(loc, db, p)
    reqs = file_gets(srv)
    assert (reqs[-1].range, reqs[-1].status) == (None, 200)  # caught by the digest, fetched again whole
    assert any("did not lead to the signed digest; restarting from zero" in n for n in infos(db))
    assert not refusals(db)


def test_a_parts_record_too_large_to_read_never_makes_the_partial_pass_for_complete(loc, db, keys, serve) -> None:
    """Vetted's own record padded past the size it reads: removed unread, it must not leave
    a preallocated partial looking like a complete one-connection download (hashed whole,
    then blamed on the source as kept bytes that failed)."""
    from vetted.store.quarantine import RANGES_CAP, Partial

    p, srv = serve(cap_bps=1_000_000)
    cancel = threading.Event()
    threading.Timer(1.0, cancel.set).start()
    with pytest.raises(Cancelled):
        pull(loc, db, p.load(db, keys), MODEL, cancel=cancel, limits=TransferLimits(stall_timeout=60, window=60))
    side = loc.quarantine / f"{p.sha256}.part.ranges"
    doc = side.read_bytes()
    side.write_bytes(doc[:-1] + b" " * (RANGES_CAP + 10) + doc[-1:])
    part = Partial.open(loc.quarantine / f"{p.sha256}.part", SIZE)
    try:
        assert (part.size, part.resumed_from, part.ranged) == (0, 0, False)
        assert part.notes and "could not be read" in part.notes[0]
    finally:
        part.close()
    pull(loc, db, p.load(db, keys), MODEL)
    assert_installed(loc, db, p)
    assert not [n for n in infos(db) if "did not lead to the signed digest" in n], infos(db)


@pytest.mark.parametrize("garbage", [b"{not json", b'{"format": "vetted.ranges/1", "size": 1, "ranges": []}',
                                     _sidecar([(5, 3)]), _sidecar([(0, 10), (5, 20)]),
                                     b"[" * 100_000 + b"]" * 100_000,
                                     _sidecar([(i * 1000, i * 1000 + 500) for i in range(5000)])],
                         ids=["not-json", "other-size", "backwards", "overlapping", "nested-past-the-stack",
                              "thousands-of-gaps"])
def test_an_unreadable_sidecar_starts_the_file_again(loc, db, keys, serve, garbage) -> None:
    p, srv = serve(cap_bps=None)
    _plant(loc, p, os.urandom(SIZE), garbage)
    pull(loc, db, p.load(db, keys), MODEL)
    assert_installed(loc, db, p)
    assert covered(file_gets(srv)) == [(0, SIZE)]
    assert sum(r.end - r.start for r in file_gets(srv)) == SIZE
    assert any("could not be read" in n and "started again from zero" in n for n in infos(db)), infos(db)


# -- the bookkeeping, and the platforms without positional I/O -----------------------------------


def test_pieces_are_handed_out_in_order_within_reach_of_the_hash_and_split_when_idle() -> None:
    from vetted.fetch.pieces import AHEAD, MAX_PIECE, MIN_PIECE, Plan

    total = 1024 * MiB
    plan = Plan(total, [(0, 0)], 8)
    taken = [plan.take() for _ in range(200)]
    got = [p for p in taken if p is not None]
    # in file order, contiguous, at most MAX_PIECE each, and none starting past the reach of the hash
    assert [p.start for p in got] == sorted(p.start for p in got)
    assert all(a.end == b.start for a, b in zip(got, got[1:])) and got[0].start == 0
    assert all(p.end - p.start <= MAX_PIECE for p in got)
    assert got[-1].start < plan.frontier + AHEAD and taken[-1] is None  # blocked until the frontier moves
    # the frontier follows what is written in order; bytes written ahead of it wait
    assert plan.wrote(got[1], got[1].end - got[1].start) is False and plan.frontier == 0
    assert plan.wrote(got[0], 1000) is True and plan.frontier == 1000
    # an idle connection takes the back half of a piece with the most left; its owner stops there
    ends = {id(p): p.end for p in got}
    thief = plan.steal()
    owner = next(p for p in got if p.end != ends[id(p)])
    assert thief is not None and thief.end == ends[id(owner)] and owner.end == thief.start
    assert owner is not got[0] and thief.start - owner.reserved >= MIN_PIECE
    # a failed attempt hands its remainder back before anything new
    plan.give_back(owner)
    again = plan.take()
    assert again is not None and (again.start, again.end) == (owner.pos, owner.end)
    # near the end, pieces shrink so the connections finish together
    tail = Plan(16 * MiB, [(0, 12 * MiB)], 8).take()
    assert tail is not None and tail.end - tail.start == MIN_PIECE


def test_without_positional_reads_and_writes_the_parts_still_land_right(tmp_path, serve, monkeypatch) -> None:
    """Windows has neither os.pwrite nor os.preadv: seek-and-write under a lock instead."""
    from vetted.fetch.sources import Mirror
    from vetted.store.quarantine import Partial

    p, srv = serve(cap_bps=None)
    monkeypatch.delattr(os, "pwrite")
    monkeypatch.delattr(os, "preadv")
    part = Partial.open(tmp_path / "nopos.part", SIZE)
    try:
        Mirror("mirror", srv.url).fetch(FILE, part, SIZE)
        assert part.size == SIZE and part.hasher.hexdigest() == p.sha256
        assert hashlib.sha256((tmp_path / "nopos.part").read_bytes()).hexdigest() == p.sha256
    finally:
        part.close()
    assert len(ranged(file_gets(srv))) > 4


def test_the_number_of_connections_is_a_setting(loc) -> None:
    from vetted.core.settings import Settings
    from vetted.errors import InputError

    assert Settings.load(loc).transfers.connections == 8  # the default
    path = Settings.path(loc)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"catalogs": [], "transfers": {"connections": 3}}))
    s = Settings.load(loc)
    assert s.transfers.connections == 3
    s.save(loc)
    assert json.loads(path.read_text())["transfers"]["connections"] == 3
    for bad in (0, 33, 2.5, True, "8"):
        path.write_text(json.dumps({"catalogs": [], "transfers": {"connections": bad}}))
        with pytest.raises(InputError, match="transfers.connections must be a whole number from 1 to 32"):
            Settings.load(loc)
    for name in ("stall_timeout", "window", "min_rate"):  # a NaN timeout fails every request; inf never ends
        for bad in (float("nan"), float("inf"), 0):
            path.write_text(json.dumps({"catalogs": [], "transfers": {name: bad}}))
            with pytest.raises(InputError, match=f"transfers.{name} must be a positive number"):
                Settings.load(loc)
