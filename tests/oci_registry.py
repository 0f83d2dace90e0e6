"""A real OCI registry on 127.0.0.1 for tests: Debian's `docker-registry` (the CNCF
distribution registry, 2.8), started from its binary with a config in the test's folder.

    from oci_registry import oci_registry  # the fixture
    def test_x(oci_registry): ...oci_registry.url...

`start_registry(folder, auth=TokenServer(folder).auth())` does the same outside a fixture,
here behind the registry token flow (`TokenServer`: a loopback token service issuing the
JWTs the registry checks, optionally only to given users). Storage is
the filesystem under `folder/storage`, so a test can reach a blob's bytes on disk
(`Registry.blob_data`) to play a registry that serves altered data. No systemd service is
used or needed. A missing binary fails the test with the package to install: never a skip.
"""

from __future__ import annotations

import base64
import datetime
import http.client
import http.server
import json
import os
import re
import secrets
import socket
import subprocess
import threading
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest

BINARY = Path("/usr/bin/docker-registry")
READY_SECONDS = 20.0
_ACCESS = re.compile(r'"([A-Z]+) (\S+) HTTP/[0-9.]+" (\d{3}) ')


@dataclass
class Registry:
    url: str  # http://127.0.0.1:PORT
    port: int
    storage: Path
    log: Path
    proc: subprocess.Popen[bytes]

    def blob_data(self, digest: str) -> Path:
        """Where the registry keeps a blob's bytes (manifests are blobs too)."""
        algo, hexd = digest.split(":", 1)
        return self.storage / "docker/registry/v2/blobs" / algo / hexd[:2] / hexd / "data"

    def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request("GET", path, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
        finally:
            conn.close()

    def requests(self) -> list[tuple[str, str, int]]:
        """(method, path, status) of every request so far, from the registry's access log."""
        text = self.log.read_text(errors="replace")
        return [(m[1], m[2], int(m[3])) for m in _ACCESS.finditer(text)]

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _config(storage: Path, port: int, auth: dict[str, Any] | None) -> str:
    lines = [
        "version: 0.1",
        "log:",
        "  level: error",
        "  accesslog:",
        "    disabled: false",
        "storage:",
        "  filesystem:",
        f"    rootdirectory: {storage}",
        "  delete:",
        "    enabled: true",
        "  maintenance:",
        "    uploadpurging:",
        "      enabled: false",
        "http:",
        f"  addr: 127.0.0.1:{port}",
        f"  secret: {secrets.token_hex(16)}",
    ]
    if auth:
        lines += ["auth:", "  token:"] + [f"    {k}: {v}" for k, v in auth.items()]
    return "\n".join(lines) + "\n"


def start_registry(folder: Path, auth: dict[str, Any] | None = None) -> Registry:
    """Starts the registry binary and waits until `GET /v2/` answers (200, or 401 with auth)."""
    if not (BINARY.is_file() and os.access(BINARY, os.X_OK)):
        pytest.fail(f"{BINARY} is missing: install Debian's docker-registry package "
                    "(`make test` does: apt-get install docker-registry)", pytrace=False)
    folder.mkdir(parents=True, exist_ok=True)
    storage = folder / "storage"
    storage.mkdir(exist_ok=True)
    last = ""
    for _attempt in range(3):  # a free port can be taken between choosing and binding it
        port = free_port()
        config = folder / "config.yml"
        config.write_text(_config(storage, port, auth))
        log = folder / "registry.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen([str(BINARY), "serve", str(config)], stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, env={"PATH": os.environ.get("PATH", "/usr/bin")})
        reg = Registry(f"http://127.0.0.1:{port}", port, storage, log, proc)
        deadline = time.monotonic() + READY_SECONDS
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                status, _h, _b = reg.get("/v2/")
                if status in (200, 401):
                    return reg
            except OSError:
                pass
            time.sleep(0.05)
        reg.close()
        last = log.read_text(errors="replace")[-2000:]
    pytest.fail(f"docker-registry did not answer on 127.0.0.1 within {READY_SECONDS:g} s:\n{last}", pytrace=False)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class TokenRequest:
    authorization: str | None
    query: dict[str, list[str]]


class TokenServer:
    """The registry token service (docs.docker.com/registry/spec/auth/token), on 127.0.0.1.

    Issues ES256 JWTs whose `x5c` is a self-signed certificate the registry trusts
    (`auth()` gives the registry's `auth.token` settings). With `users`, a token is given
    only to a request carrying one of them as HTTP Basic; every request is recorded.
    """

    SERVICE = "vetted-test-registry"
    ISSUER = "vetted-test-token-service"

    def __init__(self, folder: Path, users: dict[str, str] | None = None) -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        folder.mkdir(parents=True, exist_ok=True)
        self.users = users
        self.requests: list[TokenRequest] = []
        self.key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "vetted test token service")])
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(self.key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=1))
                .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                             data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                             crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .sign(self.key, hashes.SHA256()))
        self.cert_der = cert.public_bytes(serialization.Encoding.DER)
        self.bundle = folder / "token-cert.pem"
        self.bundle.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *_a: Any) -> None:
                pass

            def do_GET(self) -> None:
                url = urllib.parse.urlsplit(self.path)
                query = urllib.parse.parse_qs(url.query)
                auth = self.headers.get("Authorization")
                server.requests.append(TokenRequest(auth, query))
                user = server.user_of(auth)
                if url.path != "/token" or (server.users is not None and user is None):
                    self.send_response(401)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = json.dumps({"token": server.token(user or "", query.get("scope", []),
                                                         query.get("service", [""])[0]),
                                   "expires_in": 300}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def auth(self) -> dict[str, str]:
        return {"realm": f"{self.url}/token", "service": self.SERVICE, "issuer": self.ISSUER,
                "rootcertbundle": str(self.bundle)}

    def user_of(self, header: str | None) -> str | None:
        if not header or not header.startswith("Basic "):
            return None
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        return user if self.users is not None and self.users.get(user) == password else None

    def token(self, user: str, scopes: list[str], service: str) -> str:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

        access = []
        for scope in scopes:
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            access.append({"type": kind, "name": name, "actions": [a for a in actions.split(",") if a]})
        now = int(time.time())
        header = {"typ": "JWT", "alg": "ES256", "x5c": [base64.b64encode(self.cert_der).decode()]}
        claims = {"iss": self.ISSUER, "sub": user, "aud": service, "exp": now + 300, "nbf": now - 10, "iat": now,
                  "jti": secrets.token_hex(8), "access": access}
        signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        r, s = decode_dss_signature(self.key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
        return f"{signing_input}.{_b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def oci_registry(tmp_path: Path) -> Iterator[Registry]:
    """An empty, anonymous registry for one test; stopped (and its storage left in tmp_path) after it."""
    reg = start_registry(tmp_path / "registry")
    try:
        yield reg
    finally:
        reg.close()


__all__ = ["Registry", "TokenServer", "free_port", "start_registry", "oci_registry"]
