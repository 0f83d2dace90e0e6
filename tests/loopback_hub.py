"""A loopback server (127.0.0.1 only) that plays the Hugging Face Hub's resolve endpoint
and an HTTPS-style mirror, with Range support and switchable misbehaviour."""

from __future__ import annotations

import http.server
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Behaviour:
    flip_byte: bool = False          # change one byte of every model file served
    extra_bytes: int = 0             # append junk after the file
    honest_length: bool = True       # False: no Content-Length, body ends when the connection closes
    stall_after: int | None = None   # send this many bytes, then go silent
    stall_seconds: float = 5.0
    drop_after: int | None = None    # send this many bytes, then close (once)
    wrong_commit: str | None = None  # answer with another X-Repo-Commit
    ignore_range: bool = False
    throttle_bps: int | None = None  # bytes per second
    tamper_signature: bool = False
    requests: list[dict] = field(default_factory=list)


def tamper(bundle: bytes) -> bytes:
    """Changes one character in the middle of the DSSE signature (still valid base64)."""
    import json

    doc = json.loads(bundle)
    sig = doc["dsseEnvelope"]["signatures"][0]["sig"]
    i = len(sig) // 2
    doc["dsseEnvelope"]["signatures"][0]["sig"] = sig[:i] + ("A" if sig[i] != "A" else "B") + sig[i + 1:]
    return json.dumps(doc).encode()


class Hub:
    def __init__(self, folder: Path, commit: str) -> None:
        self.folder, self.commit = folder, commit
        self.b = Behaviour()
        hub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                hub.handle(self)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def handle(self, h: http.server.BaseHTTPRequestHandler) -> None:
        b = self.b
        b.requests.append({"path": h.path, "range": h.headers.get("Range")})
        m = re.fullmatch(r"/([^/]+/[^/]+)/resolve/([0-9a-f]{40})/([^/?]+)", h.path) or \
            re.fullmatch(r"/mirror/()()([^/?]+)", h.path)
        if not m:
            h.send_error(404)
            return
        commit, name = m.group(2), m.group(3)
        path = self.folder / name
        if (commit and commit != self.commit) or not path.is_file():
            h.send_error(404)
            return
        data = path.read_bytes()
        is_sig = name.endswith(".sig")
        if is_sig and b.tamper_signature:
            data = tamper(data)
        if not is_sig and b.flip_byte:
            data = data[:100] + bytes([data[100] ^ 0xFF]) + data[101:]
        if not is_sig and b.extra_bytes:
            data = data + b"\0" * b.extra_bytes
        start = 0
        rng = h.headers.get("Range")
        if rng and not b.ignore_range and (mr := re.fullmatch(r"bytes=(\d+)-", rng)):
            start = int(mr.group(1))
            if start >= len(data):
                h.send_response(416)
                h.send_header("Content-Range", f"bytes */{len(data)}")
                h.send_header("Content-Length", "0")
                h.end_headers()
                return
            h.send_response(206)
            h.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            h.send_response(200)
        body = data[start:]
        if b.honest_length or is_sig:
            h.send_header("Content-Length", str(len(body)))
        else:
            h.send_header("Connection", "close")
            h.close_connection = True
        h.send_header("X-Repo-Commit", b.wrong_commit or self.commit)
        h.send_header("ETag", '"' + "0" * 64 + '"')  # never trusted
        h.end_headers()
        sent = 0
        chunk = 64 * 1024
        try:
            while sent < len(body):
                piece = body[sent:sent + chunk]
                if not is_sig and b.drop_after is not None and start + sent + len(piece) > b.drop_after:
                    h.wfile.write(piece[: max(0, b.drop_after - start - sent)])
                    h.wfile.flush()
                    b.drop_after = None  # only once: the next request resumes normally
                    h.close_connection = True
                    h.connection.shutdown(2)
                    return
                if not is_sig and b.stall_after is not None and start + sent >= b.stall_after:
                    time.sleep(b.stall_seconds)
                    return
                h.wfile.write(piece)
                sent += len(piece)
                if b.throttle_bps and not is_sig:
                    time.sleep(len(piece) / b.throttle_bps)
        except (BrokenPipeError, ConnectionResetError, OSError):
            return
