"""Attacks on the transfer path with real loopback servers (tests/hub_server.py):
slow retrieval (a server that trickles bytes so every single read succeeds), credentials
carried to another origin by a redirect, a remote catalog pointing at this machine's
files, a FIFO where a file should be, and two pulls sharing one file.

Transfers that the old code could never finish run in a thread with a generous join
bound: the assertion is that they end (with the right reason), not how fast.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
from pathlib import Path

import pytest

from hub_server import HubServer, hub_server_factory  # noqa: F401  (the fixture)
from vetted.catalog.signed import load
from vetted.errors import DownloadError
from vetted.install.pull import pull, store_path
from vetted.fetch.stream import Cancelled
from vetted.paths import locations
from vetted.authoring.publish import build_catalog, generate_key
from vetted.store import audit, installed
from vetted.store.db import open_db
from vetted.trust.identity import PublicKey

COMMIT = "5f0c1e2d3b4a59687766554433221100ffeeddcc"
REPO = "org/model"
SIZE = 256 * 1024


def _limits(**kw):
    from vetted.net.limits import TransferLimits

    return TransferLimits(**kw)


# a tight window so a trickle is caught in a few seconds; the default is 60 s
TIGHT = dict(stall_timeout=5.0, window=2.0, min_rate=8 * 1024)


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    return generate_key(tmp_path_factory.mktemp("keys"))


def _model(folder: Path, name: str = "net.gguf", size: int = SIZE) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    p = folder / name
    p.write_bytes(b"GGUF" + os.urandom(size - 4))
    return p


def _catalog(tmp: Path, keys, models: list[dict], out: Path | None = None) -> Path:
    spec = {"id": "org.test.transfers", "name": "Transfers", "publisher": "Test Org", "version": 1,
            "models": models}
    return build_catalog(spec, tmp, keys[0], out or tmp / "out")


def _entry(model_id: str, path: Path, sources: dict) -> dict:
    return {"id": model_id, "name": model_id, "publisher": "P", "license": "MIT", "path": str(path),
            "sources": sources}


def _bounded(fn, seconds: float = 40.0):
    """Runs `fn(db)` in a thread with its own database connection; returns ("ok", value) or
    ("raised", exc), and fails the test if it never ends."""
    out: list = []

    def run() -> None:
        db = open_db(locations().database)
        try:
            out.append(("ok", fn(db)))
        except BaseException as exc:  # noqa: BLE001  (handed to the test)
            out.append(("raised", exc))
        finally:
            db.conn.close()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(seconds)
    assert out, f"the transfer was still running after {seconds} s: nothing abandoned it"
    return out[0]


def _key(keys) -> PublicKey:
    return PublicKey(keys[1].read_bytes())


# -- slow retrieval -----------------------------------------------------------------------


def test_a_trickling_model_download_is_abandoned_with_the_reason(tmp_path, db, loc, keys, hub_server_factory):
    cat = _catalog(tmp_path, keys, [_entry("net", _model(tmp_path / "src"), {"mirrors": ["http://127.0.0.1:9"]})])
    hub = hub_server_factory(cat.parent / "mirror", COMMIT)
    _point_mirrors(cat, keys, hub.url)
    hub.bad.stall_after, hub.bad.trickle_every = 20_000, 0.2  # 20 KB, then a byte every 0.2 s
    loaded = load(str(cat), _key(keys), db)
    kind, exc = _bounded(lambda db: pull(loc, db, loaded, "net", limits=_limits(**TIGHT)))
    assert kind == "raised" and isinstance(exc, DownloadError), exc
    assert "under the minimum of 16384 bytes in 2 s" in exc.line() and "trickling" in exc.line()
    assert installed.all_models(db) == []
    part = loc.quarantine / f"{loaded.catalog.models[0].files[0].sha256}.part"
    assert part.stat().st_size >= 20_000  # what did arrive is kept for a resume elsewhere


def test_trickled_response_headers_are_abandoned_too(tmp_path, db, loc, keys, hub_server_factory):
    cat = _catalog(tmp_path, keys, [_entry("net", _model(tmp_path / "src"), {"mirrors": ["http://127.0.0.1:9"]})])
    hub = hub_server_factory(cat.parent / "mirror", COMMIT)
    _point_mirrors(cat, keys, hub.url)
    loaded = load(str(cat), _key(keys), db)
    hub.bad.trickle_headers_every = 0.2  # every read gets a byte; the status line never completes
    kind, exc = _bounded(lambda db: pull(loc, db, loaded, "net", limits=_limits(**TIGHT)))
    assert kind == "raised" and isinstance(exc, DownloadError) and "trickling" in exc.line(), exc


def test_a_trickling_catalog_is_abandoned(tmp_path, db, keys, hub_server_factory):
    cat = _catalog(tmp_path, keys, [_entry("net", _model(tmp_path / "src"), {"mirrors": ["http://127.0.0.1:9"]})])
    hub = hub_server_factory(cat.parent, COMMIT)  # serves catalog.json and catalog.json.sig
    hub.bad.trickle_every, hub.bad.trickle_all = 0.2, True
    kind, exc = _bounded(lambda db: load(f"{hub.url}/catalog.json", _key(keys), db, _limits(**TIGHT)))
    assert kind == "raised" and isinstance(exc, DownloadError) and "trickling" in exc.line(), exc


def test_the_cli_abandons_a_trickle_and_keeps_timeout_as_seconds_without_data(tmp_path, loc, keys, cli,
                                                                                 hub_server_factory):
    cat = _catalog(tmp_path, keys, [_entry("net", _model(tmp_path / "src"), {"mirrors": ["http://127.0.0.1:9"]})])
    hub = hub_server_factory(cat.parent / "mirror", COMMIT)
    _point_mirrors(cat, keys, hub.url)
    assert cli("catalog", "add", str(cat), "--key", str(keys[1])).returncode == 0
    hub.bad.stall_after, hub.bad.trickle_every = 10_000, 0.5
    r = cli("pull", "net", "--timeout", "3", "--rate-window", "3", "--min-rate", "4096", timeout=60)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "under the minimum of 12288 bytes in 3 s" in r.stdout and "trickling" in r.stdout
    hub.bad.trickle_every, hub.bad.stall_seconds = None, 30  # now silent: --timeout still means "no data"
    r = cli("pull", "net", "--timeout", "2", timeout=60)
    assert r.returncode == 1 and "no data for 2 s" in r.stdout, r.stdout + r.stderr


def test_cancel_takes_effect_while_the_server_is_silent(tmp_path, db, loc, keys, hub_server_factory):
    cat = _catalog(tmp_path, keys, [_entry("net", _model(tmp_path / "src"), {"mirrors": ["http://127.0.0.1:9"]})])
    hub = hub_server_factory(cat.parent / "mirror", COMMIT)
    _point_mirrors(cat, keys, hub.url)
    hub.bad.stall_after, hub.bad.stall_seconds = 10_000, 120
    loaded = load(str(cat), _key(keys), db)
    cancel = threading.Event()
    threading.Timer(1.0, cancel.set).start()
    slow = _limits(stall_timeout=100.0, window=100.0)
    kind, exc = _bounded(lambda db: pull(loc, db, loaded, "net", cancel=cancel, limits=slow), seconds=30)
    assert kind == "raised" and isinstance(exc, Cancelled), exc


# -- credentials --------------------------------------------------------------------------


def test_the_hub_token_is_not_sent_to_another_origin_on_redirect(tmp_path, db, loc, keys, hub_server_factory,
                                                                 monkeypatch):
    src = _model(tmp_path / "src")
    cat = _catalog(tmp_path, keys, [_entry("net", src, {"huggingface": {"repo": REPO, "commit": COMMIT}})])
    cdn = hub_server_factory(cat.parent / "mirror", COMMIT, REPO)  # another port: another origin
    hub = hub_server_factory(cat.parent / "mirror", COMMIT, REPO)
    hub.bad.redirect_to = cdn.url
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    monkeypatch.setenv("HF_TOKEN", "hf_secret_token_value")
    pull(loc, db, load(str(cat), _key(keys), db), "net")
    assert hub.requests and all(r.headers.get("authorization") == "Bearer hf_secret_token_value"
                                for r in hub.requests)
    assert cdn.requests, "the redirect was not followed"
    assert not [r for r in cdn.requests if "authorization" in r.headers], \
        "the token was forwarded to another origin"
    assert installed.get(db, "net").state == "verified"


def test_a_redirect_within_the_same_origin_keeps_the_token(tmp_path, db, loc, keys, hub_server_factory,
                                                           monkeypatch):
    """Stripping is about the origin, not about redirects as such."""
    from vetted.net import http

    hub = hub_server_factory(tmp_path, COMMIT)
    (tmp_path / "doc.txt").write_bytes(b"hello")
    seen: list[int] = []
    real = hub._serve

    def once_redirect(h, body):
        if h.path == "/old.txt":
            seen.append(1)
            h.send_response(302)
            h.send_header("Location", "/doc.txt")
            h.send_header("Content-Length", "0")
            h.end_headers()
            return
        real(h, body)

    monkeypatch.setattr(hub, "_serve", once_redirect)
    with http.get(f"{hub.url}/old.txt", {"Authorization": "Bearer t"}) as resp:
        data = resp.read(100)
    assert data == b"hello" and seen == [1]
    assert hub.requests[-1].headers.get("authorization") == "Bearer t"


# -- sources a catalog may not use, and files that are not files ----------------------------


def test_a_remote_catalog_cannot_point_at_local_folders(tmp_path, db, loc, keys, hub_server_factory):
    src = _model(tmp_path / "src")
    trap = tmp_path / "trap"
    trap.mkdir()
    os.mkfifo(trap / "net.gguf")  # opening it for reading would wait forever
    out = tmp_path / "site"
    cat = _catalog(tmp_path, keys, [_entry("net", src, {"local": [str(trap)]})], out=out)
    shutil.copy(out / "mirror" / "net.model.sig", out / "net.model.sig")
    hub = hub_server_factory(out, COMMIT)
    loaded = load(f"{hub.url}/catalog.json", _key(keys), db)
    kind, exc = _bounded(lambda db: pull(loc, db, loaded, "net"))
    assert kind == "raised" and isinstance(exc, DownloadError), exc
    assert "cannot point at this machine's files" in exc.line() and str(trap) in exc.line()
    assert not store_path(loc, loaded.catalog.models[0].files[0].sha256).exists()


def test_a_fifo_in_a_local_mirror_is_refused_not_waited_on(tmp_path, db, loc, keys):
    src = _model(tmp_path / "src")
    cat = _catalog(tmp_path, keys, [_entry("net", src, {"local": ["mirror"]})])
    mirrored = cat.parent / "mirror" / "net.gguf"
    mirrored.unlink()
    os.mkfifo(mirrored)
    loaded = load(str(cat), _key(keys), db)
    kind, exc = _bounded(lambda db: pull(loc, db, loaded, "net"))
    assert kind == "raised" and isinstance(exc, DownloadError), exc
    assert "not a regular file" in exc.line()


# -- two pulls, one file ----------------------------------------------------------------


def test_two_models_sharing_a_file_can_be_pulled_at_the_same_time(tmp_path, loc, keys, hub_server_factory):
    shared = _model(tmp_path / "src", "shared.gguf", 3 * 1024 * 1024)
    cat = _catalog(tmp_path, keys, [_entry(m, shared, {"mirrors": ["http://127.0.0.1:9"]}) for m in ("a", "b")])
    hub = hub_server_factory(cat.parent / "mirror", COMMIT)
    _point_mirrors(cat, keys, hub.url)
    hub.bad.throttle_bps = 2 * 1024 * 1024  # slow enough that both pulls overlap
    results: dict[str, object] = {}

    def one(model_id: str) -> None:
        db = open_db(locations().database)
        try:
            results[model_id] = pull(loc, db, load(str(cat), _key(keys), db), model_id)
        except Exception as exc:  # noqa: BLE001  (reported by the assertion below)
            results[model_id] = exc
        finally:
            db.conn.close()

    threads = [threading.Thread(target=one, args=(m,)) for m in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert {k: type(v).__name__ for k, v in results.items()} == {"a": "PullResult", "b": "PullResult"}, results
    db = open_db(locations().database)
    assert [m.state for m in installed.all_models(db)] == ["verified", "verified"]
    sha = json.loads(cat.read_bytes())["models"][0]["files"][0]["sha256"]
    assert store_path(loc, sha).is_file()
    assert not [r for r in audit.entries(db) if r["result"] == "refused"]
    gets = [r for r in hub.requests if r.path.endswith("shared.gguf")]
    assert len(gets) == 1, "the second pull should reuse the file the first one installed"


def _point_mirrors(cat: Path, keys, url: str) -> None:
    """Rewrites the catalog's mirror URLs to a server started after it was built, and re-signs."""
    from vetted.authoring.publish import sign_file_or_folder

    doc = json.loads(cat.read_bytes())
    for m in doc["models"]:
        m["sources"]["mirrors"] = [url]
    cat.write_text(json.dumps(doc, indent=2))
    sign_file_or_folder(cat, keys[0], cat.with_name("catalog.json.sig"))


def test_a_flood_of_informational_responses_does_not_hang_a_transfer(db) -> None:
    """A server answering with endless `103 Early Hints` never sends a body: refused at once."""
    import socket
    import time

    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    stop = threading.Event()

    def flood() -> None:
        conn, _ = srv.accept()
        try:
            conn.recv(65536)
            while not stop.is_set():
                conn.sendall(b"HTTP/1.1 103 Early Hints\r\nLink: </x.css>\r\n\r\n")
                time.sleep(0.001)
        except OSError:
            pass
        finally:
            conn.close()

    threading.Thread(target=flood, daemon=True).start()
    url = f"http://127.0.0.1:{srv.getsockname()[1]}/catalog.json"
    try:
        kind, exc = _bounded(lambda _db: load(url, PublicKey(b""), _db, _limits(**TIGHT)), seconds=30)
    finally:
        stop.set()
        srv.close()
    assert kind == "raised" and isinstance(exc, DownloadError), exc
    assert "HTTP 103" in exc.line() or "trickling" in exc.line()


# -- https: the watchdog must be able to cut TLS connections too ---------------------------


@pytest.fixture
def tls(tmp_path, monkeypatch):
    from hub_server import LoopbackTLS

    t = LoopbackTLS(tmp_path / "tls")
    t.trust(monkeypatch)
    return t


def _https_mirror(tmp_path, keys, tls, hub_server_factory):
    cat = _catalog(tmp_path, keys, [_entry("net", _model(tmp_path / "src"), {"mirrors": ["https://127.0.0.1:9"]})])
    hub = hub_server_factory(cat.parent / "mirror", COMMIT)
    hub.close()
    from hub_server import HubServer

    hub = HubServer(cat.parent / "mirror", COMMIT, tls=tls)
    _point_mirrors(cat, keys, hub.url)
    return cat, hub


def test_a_trickle_over_https_is_abandoned(tmp_path, db, loc, keys, tls, hub_server_factory):
    cat, hub = _https_mirror(tmp_path, keys, tls, hub_server_factory)
    try:
        assert hub.url.startswith("https://")
        hub.bad.stall_after, hub.bad.trickle_every = 20_000, 0.2
        loaded = load(str(cat), _key(keys), db)
        kind, exc = _bounded(lambda db: pull(loc, db, loaded, "net", limits=_limits(**TIGHT)))
        assert kind == "raised" and isinstance(exc, DownloadError) and "trickling" in exc.line(), exc
    finally:
        hub.close()


def test_cancel_over_https_takes_effect_while_the_server_is_silent(tmp_path, db, loc, keys, tls,
                                                                  hub_server_factory):
    cat, hub = _https_mirror(tmp_path, keys, tls, hub_server_factory)
    try:
        hub.bad.stall_after, hub.bad.stall_seconds = 10_000, 120
        loaded = load(str(cat), _key(keys), db)
        cancel = threading.Event()
        threading.Timer(1.0, cancel.set).start()
        slow = _limits(stall_timeout=100.0, window=100.0)
        kind, exc = _bounded(lambda db: pull(loc, db, loaded, "net", cancel=cancel, limits=slow), seconds=30)
        assert kind == "raised" and isinstance(exc, Cancelled), exc
    finally:
        hub.close()


def _raw_server(respond, tls=None):
    """A loopback server whose every connection is handed to `respond(conn)`; returns (url, close)."""
    import socket

    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            if tls is not None:
                try:
                    conn = tls.server_context().wrap_socket(conn, server_side=True)
                except OSError:
                    conn.close()
                    continue

            def serve(c=conn) -> None:
                try:
                    c.recv(65536)
                    respond(c, stop)
                except OSError:
                    pass
                finally:
                    c.close()

            threading.Thread(target=serve, daemon=True).start()

    threading.Thread(target=loop, daemon=True).start()
    scheme = "https" if tls else "http"

    def close() -> None:
        stop.set()
        srv.close()

    return f"{scheme}://127.0.0.1:{srv.getsockname()[1]}", close


def test_a_redirect_with_an_endless_body_is_not_read(db, tls):
    import time

    def endless_redirect(conn, stop) -> None:
        conn.sendall(b"HTTP/1.1 302 Found\r\nLocation: /elsewhere\r\nTransfer-Encoding: chunked\r\n\r\n")
        while not stop.is_set():
            conn.sendall(b"400\r\n" + b"x" * 1024 + b"\r\n")
            time.sleep(0.01)

    url, close = _raw_server(endless_redirect, tls)
    try:
        kind, exc = _bounded(lambda _db: load(f"{url}/catalog.json", PublicKey(b""), _db,
                                              _limits(stall_timeout=5.0, window=60.0)), seconds=30)
    finally:
        close()
    assert kind == "raised" and isinstance(exc, DownloadError), exc


# -- addresses two parsers could read differently -----------------------------------------


def test_a_backslash_redirect_cannot_carry_the_token_to_another_origin(tmp_path, db, loc, keys,
                                                                      hub_server_factory, monkeypatch):
    src = _model(tmp_path / "src")
    cat = _catalog(tmp_path, keys, [_entry("net", src, {"huggingface": {"repo": REPO, "commit": COMMIT}})])
    evil = hub_server_factory(cat.parent / "mirror", COMMIT, REPO)
    hub = hub_server_factory(cat.parent / "mirror", COMMIT, REPO)
    port = hub.url.rsplit(":", 1)[1]
    # urlsplit reads the host after "@" (the Hub itself); the connection layer stops at "\"
    hub.bad.redirect_to = f"{evil.url}\\@127.0.0.1:{port}"
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    monkeypatch.setenv("HF_TOKEN", "hf_secret_token_value")
    with pytest.raises(DownloadError, match="contains a backslash"):
        pull(loc, db, load(str(cat), _key(keys), db), "net")
    assert evil.requests == [], "the ambiguous redirect was followed"


def test_a_malformed_location_is_a_one_line_error(tmp_path, keys, cli):
    def bad_location(conn, stop) -> None:
        conn.sendall(b"HTTP/1.1 302 Found\r\nLocation: http://h:99999/\r\nContent-Length: 0\r\n\r\n")

    url, close = _raw_server(bad_location)
    try:
        assert cli("catalog", "add", f"{url}/catalog.json", "--key", str(keys[1])).returncode == 0
        r = cli("catalog", "list", "--catalog", f"{url}/catalog.json")
    finally:
        close()
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert "redirects to 'http://h:99999/' is malformed" in r.stdout, r.stdout


def test_a_refused_connection_is_not_called_a_timeout(db):
    import socket

    from vetted.net import http

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    with pytest.raises(DownloadError, match=r"cannot connect \(") as info:
        http.read_small(f"http://127.0.0.1:{port}/x", 100)
    assert "no answer within" not in info.value.line()
