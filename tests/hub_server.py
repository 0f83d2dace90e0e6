"""A loopback stand-in for the Hugging Face Hub (and for a plain HTTPS mirror), with
switchable misbehaviour, for the pull attack tests.

Routes, both served from one folder:

  GET /{org}/{repo}/resolve/{commit}/{filename}   the Hub's resolve endpoint; answers with
                                                  `X-Repo-Commit: <commit>` (404 for another
                                                  repo or commit, as the Hub does)
  GET /{filename}                                 a plain mirror (a catalog's `mirrors` base
                                                  URL is then `server.url`)

HTTP Range (`bytes=N-` and `bytes=N-M`) is answered with 206 and `Content-Range`; a start
past the end gets 416. Every request is recorded (path, Range header, status) so a test
can assert what the client asked for.

Misbehaviour (`server.bad`, a `Misbehaviour`) applies to model files; the signature
bundle (a name ending in `.sig`) is only touched by `tamper_signature`/`stall_signature`.
It binds to 127.0.0.1 only, serves from daemon threads, and `close()` wakes any handler
that is stalling or throttling so shutdown is prompt.
"""

from __future__ import annotations

import base64
import http.server
import json
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import pytest

SEND_CHUNK = 64 * 1024

_RESOLVE = re.compile(r"^/(?P<repo>[^/]+/[^/]+)/resolve/(?P<commit>[^/]+)/(?P<name>[^/?#]+)$")
_MIRROR = re.compile(r"^/(?P<name>[^/?#]+)$")
_RANGE = re.compile(r"^bytes=(\d+)-(\d*)$")


@dataclass
class Misbehaviour:
    flip_byte_at: int | None = None      # XOR this offset of the model file with 0xFF
    extra_bytes: int = 0                 # append this many junk bytes after the file
    truthful_length: bool = True         # with extra bytes: Content-Length counts the junk (True),
                                         # or no Content-Length at all, body ends at close (False)
    stall_after: int | None = None       # send up to this file offset, then go silent...
    stall_seconds: float = 5.0           # ...for this long (longer than the client's timeout)
    drop_after: int | None = None        # send up to this file offset, then cut the connection;
                                         # cleared after firing, so the next request is served normally
    wrong_commit: str | None = None      # answer with this X-Repo-Commit instead of the real one
    tamper_signature: bool = False       # flip a bit in the bundle's DSSE signature
    stall_signature: bool = False        # send half of the signature bundle, then go silent
    ignore_range: bool = False           # answer a Range request with 200 and the whole body
    chunked: bool = False                # Transfer-Encoding: chunked instead of Content-Length
    throttle_bps: int | None = None      # at most this many body bytes per second
    garbage_status: bool = False         # answer model-file requests with a malformed status line
    trickle_every: float | None = None   # after stall_after (or 0) bytes, send one byte per this many seconds
    trickle_headers_every: float | None = None  # send the response headers one byte per this many seconds
    redirect_to: str | None = None       # answer every request with 302 to this base URL + the same path
    trickle_all: bool = False            # trickle signature bundles (and catalogs) too, not only model files


@dataclass
class Seen:
    method: str
    path: str
    range: str | None
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class HubServer:
    folder: Path
    commit: str
    repo: str = "org/model"
    bad: Misbehaviour = field(default_factory=Misbehaviour)
    tls: "LoopbackTLS | None" = None     # serve https with this certificate

    def __post_init__(self) -> None:
        self.folder = Path(self.folder)
        self.requests: list[Seen] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        hub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            timeout = 30  # a client that goes silent cannot pin a thread forever

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

            def do_GET(self) -> None:  # noqa: N802
                hub._serve(self, body=True)

            def do_HEAD(self) -> None:  # noqa: N802
                hub._serve(self, body=False)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        if self.tls is not None:
            self.httpd.socket = self.tls.server_context().wrap_socket(self.httpd.socket, server_side=True,
                                                                      do_handshake_on_connect=False)
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                         daemon=True, name="hub-server")
        self._thread.start()

    # -- public -----------------------------------------------------------------------

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"{'https' if self.tls else 'http'}://{host}:{port}"

    def resolve_path(self, name: str) -> str:
        return f"/{self.repo}/resolve/{self.commit}/{name}"

    def requests_for(self, name: str) -> list[Seen]:
        with self._lock:
            return [r for r in self.requests if r.path.rsplit("/", 1)[-1] == name]

    def close(self) -> None:
        self._stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> "HubServer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- serving ----------------------------------------------------------------------

    def _serve(self, h: http.server.BaseHTTPRequestHandler, body: bool) -> None:
        seen = Seen(h.command, h.path, h.headers.get("Range"), headers={k.lower(): v for k, v in h.headers.items()})
        with self._lock:
            self.requests.append(seen)
        bad = self.bad
        if bad.redirect_to:
            seen.status = 302
            h.send_response(302)
            h.send_header("Location", bad.redirect_to.rstrip("/") + h.path)
            h.send_header("X-Repo-Commit", bad.wrong_commit or self.commit)
            h.send_header("Content-Length", "0")
            h.end_headers()
            return
        if bad.trickle_headers_every:
            seen.status = 200
            head = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n" + b"X-Padding: " + b"a" * 100_000
            try:
                for i in range(len(head)):
                    h.wfile.write(head[i:i + 1])
                    h.wfile.flush()
                    if self._stop.wait(bad.trickle_headers_every):
                        break
            except OSError:
                pass
            h.close_connection = True
            return
        m = _RESOLVE.match(h.path)
        if m:
            if m["repo"] != self.repo or m["commit"] != self.commit:
                return self._error(h, seen, 404, "Revision Not Found")
            name = m["name"]
        elif (m := _MIRROR.match(h.path)):
            name = m["name"]
        else:
            return self._error(h, seen, 404, "Not Found")
        path = self.folder / name
        if name.startswith(".") or not path.is_file():
            return self._error(h, seen, 404, "Entry Not Found")

        is_sig = name.endswith(".sig")
        if bad.garbage_status and not is_sig:
            seen.status = -1
            h.close_connection = True
            h.wfile.write(b"HTTP/1.1 2OO Oops\r\n\r\n")
            return
        data = path.read_bytes()
        if is_sig and bad.tamper_signature:
            data = tamper_bundle(data)
        if not is_sig:
            if bad.flip_byte_at is not None:
                i = bad.flip_byte_at
                data = data[:i] + bytes([data[i] ^ 0xFF]) + data[i + 1:]
            if bad.extra_bytes:
                data = data + b"\xee" * bad.extra_bytes

        start, end, status = 0, len(data) - 1, 200
        rng = seen.range
        if rng and not bad.ignore_range:
            rm = _RANGE.match(rng.strip())
            if rm:
                start = int(rm.group(1))
                end = min(int(rm.group(2)), len(data) - 1) if rm.group(2) else len(data) - 1
                if start >= len(data) or start > end:
                    seen.status = 416
                    h.send_response(416)
                    h.send_header("Content-Range", f"bytes */{len(data)}")
                    h.send_header("Content-Length", "0")
                    h.end_headers()
                    return
                status = 206
        seen.status = status
        payload = data[start:end + 1]

        h.send_response(status)
        h.send_header("Content-Type", "application/octet-stream")
        h.send_header("Accept-Ranges", "bytes")
        h.send_header("X-Repo-Commit", bad.wrong_commit or self.commit)
        h.send_header("ETag", '"' + "0" * 64 + '"')  # a claim about the bytes: never to be trusted
        if status == 206:
            h.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
        chunked = bad.chunked and not is_sig
        if chunked:
            h.send_header("Transfer-Encoding", "chunked")
        elif is_sig or bad.truthful_length or not bad.extra_bytes:
            h.send_header("Content-Length", str(len(payload)))
        else:
            h.send_header("Connection", "close")  # length unknown: the body ends when we close
            h.close_connection = True
        h.end_headers()
        if not body:
            return
        try:
            if is_sig:
                self._send_signature(h, payload, bad)
            else:
                self._send_model(h, payload, start, bad, chunked)
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, socket.timeout):
            h.close_connection = True

    def _send_signature(self, h, payload: bytes, bad: Misbehaviour) -> None:
        if bad.trickle_all and bad.trickle_every:
            self._trickle(h, payload, bad.trickle_every, False)
            return
        if bad.stall_signature:
            h.wfile.write(payload[: len(payload) // 2])
            h.wfile.flush()
            self._stop.wait(bad.stall_seconds)
            h.close_connection = True
            return
        h.wfile.write(payload)

    def _send_model(self, h, payload: bytes, offset: int, bad: Misbehaviour, chunked: bool) -> None:
        pos = 0
        started = time.monotonic()
        while pos < len(payload):
            piece = payload[pos:pos + SEND_CHUNK]
            at = offset + pos  # file offset of this piece's first byte
            if bad.drop_after is not None and at + len(piece) > bad.drop_after:
                cut = max(0, bad.drop_after - at)
                bad.drop_after = None  # once: the next request is served in full
                self._write(h, piece[:cut], chunked)
                h.wfile.flush()
                h.close_connection = True
                try:
                    h.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                return
            if bad.stall_after is not None and at + len(piece) > bad.stall_after or \
                    bad.trickle_every and bad.stall_after is None:
                cut = max(0, (bad.stall_after or 0) - at)
                self._write(h, piece[:cut], chunked)
                h.wfile.flush()
                if bad.trickle_every:
                    self._trickle(h, payload[pos + cut:], bad.trickle_every, chunked)
                else:
                    self._stop.wait(bad.stall_seconds)
                h.close_connection = True
                return
            self._write(h, piece, chunked)
            pos += len(piece)
            if bad.throttle_bps:
                ahead = pos / bad.throttle_bps - (time.monotonic() - started)
                if ahead > 0 and self._stop.wait(ahead):
                    h.close_connection = True
                    return
        if chunked:
            h.wfile.write(b"0\r\n\r\n")

    def _trickle(self, h, data: bytes, every: float, chunked: bool) -> None:
        """One byte at a time: each read on the client succeeds, so only a minimum-progress
        rule (not a per-read timeout) can abandon it."""
        for i in range(len(data)):
            self._write(h, data[i:i + 1], chunked)
            h.wfile.flush()
            if self._stop.wait(every):
                return

    @staticmethod
    def _write(h, data: bytes, chunked: bool) -> None:
        if not data:
            return
        if chunked:
            h.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        else:
            h.wfile.write(data)

    @staticmethod
    def _error(h, seen: Seen, code: int, message: str) -> None:
        seen.status = code
        body = json.dumps({"error": message}).encode()
        h.send_response(code)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(body)))
        h.send_header("X-Error-Message", message)
        h.end_headers()
        if h.command != "HEAD":
            h.wfile.write(body)


def tamper_bundle(bundle: bytes) -> bytes:
    """Flips one bit of the DSSE signature in a Sigstore bundle; the JSON stays well formed
    and the base64 valid, so only the cryptographic check can notice."""
    doc = json.loads(bundle)
    sigs = doc["dsseEnvelope"]["signatures"]
    raw = bytearray(base64.b64decode(sigs[0]["sig"]))
    raw[len(raw) // 2] ^= 0x01
    sigs[0]["sig"] = base64.b64encode(bytes(raw)).decode()
    return json.dumps(doc).encode()


@pytest.fixture
def hub_server_factory() -> Iterator:
    """`make(folder, commit, repo="org/model")` -> a running HubServer, closed after the test."""
    servers: list[HubServer] = []

    def make(folder: Path, commit: str, repo: str = "org/model") -> HubServer:
        s = HubServer(folder, commit, repo)
        servers.append(s)
        return s

    yield make
    for s in servers:
        s.close()


class LoopbackTLS:
    """A throwaway CA and a certificate for 127.0.0.1, for https on loopback; the client
    trusts it through `trust(monkeypatch)` (Vetted's TLS context), nothing machine-wide."""

    def __init__(self, folder: Path, names: tuple[str, ...] = ()) -> None:
        """`names`: host names the certificate covers besides 127.0.0.1 (for a server
        reached through a proxy under a real-looking name)."""
        import datetime
        import ipaddress

        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        folder.mkdir(parents=True, exist_ok=True)
        now = datetime.datetime.now(datetime.timezone.utc)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "loopback test CA")])
        ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
              .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
              .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=2))
              .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
              .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
              .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
              .sign(ca_key, hashes.SHA256()))
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
                .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=2))
                .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                                            *(x509.DNSName(n) for n in names)]), critical=False)
                .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
                .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                               critical=False)
                .sign(ca_key, hashes.SHA256()))
        self.ca_pem = folder / "ca.pem"
        self.cert_pem = folder / "server.pem"
        self.key_pem = folder / "server.key"
        self.ca_pem.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
        self.cert_pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        self.key_pem.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                   serialization.NoEncryption()))

    def server_context(self):
        import ssl

        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.cert_pem, self.key_pem)
        return ctx

    def trust(self, monkeypatch) -> None:
        import ssl

        from vetted.net import http

        monkeypatch.setattr(http, "_SSL", ssl.create_default_context(cafile=str(self.ca_pem)))
