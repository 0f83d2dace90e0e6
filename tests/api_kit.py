"""A real `vetted serve` process for the API tests and the benchmark: a data folder with
SmolLM2 installed through the real pull, the server started on a free loopback port, and
raw HTTP (http.client, so every header — Host included — is exactly what the test says)."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

VENV_BIN = Path(sys.executable).parent
MODEL = "smollm2-135m-instruct-q4_1"
EOS_BIAS = {"0": -100, "1": -100, "2": -100}  # SmolLM2's special tokens: generate until max_tokens


def locations_for(home: Path) -> Any:
    from vetted.paths import Locations

    return Locations(data=home / "data", config=home / "config", cache=home / "cache",
                     site_config=home / "site-config").ensure()


def install_smollm2(home: Path, work: Path) -> Path:
    """SmolLM2 (from the PyPI demo package) signed into a test catalog and pulled into `home`'s
    store; returns the installed file's path."""
    from runtime_kit import install_files
    from vetted.authoring.demo import smollm2_path
    from vetted.authoring.publish import generate_key
    from vetted.store import installed
    from vetted.store.db import open_db

    loc = locations_for(home)
    db = open_db(loc.database)
    key = generate_key(work / "keys")
    install_files(work / "cat", loc, db, key, {MODEL: smollm2_path()})
    path = installed.get(db, MODEL).files[0].path
    installed.check(db, MODEL, full=True)  # its one-time first re-read, here rather than in a timed request
    db.conn.close()
    return Path(path)


class Server:
    def __init__(self, home: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 60) -> None:
        self.home = home
        self.env = {**os.environ, "VETTED_HOME": str(home), **(env or {})}
        self.log_path = home / f"serve-{time.monotonic_ns()}.log"
        home.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([str(VENV_BIN / "vetted"), "serve", "--port", "0", *args], env=self.env,
                                     stdout=subprocess.PIPE, stderr=self._log, stdin=subprocess.DEVNULL)
        line = self._first_line(timeout)
        if not line.startswith("listening on "):
            self.stop()
            raise RuntimeError(f"server did not start: {line!r}\n{self.log()}")
        self.url = line.split()[2]  # http://127.0.0.1:PORT/v1
        self.port = int(self.url.rsplit(":", 1)[1].split("/")[0])
        self.token = self.read_token()

    def _first_line(self, timeout: float) -> str:
        out: list[str] = []

        def read() -> None:
            assert self.proc.stdout is not None
            out.append(self.proc.stdout.readline().decode())

        t = threading.Thread(target=read, daemon=True)
        t.start()
        t.join(timeout)
        return out[0].strip() if out else ""

    def read_token(self) -> str:
        return (self.home / "data" / "api-token").read_text().strip()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()

    # -- raw HTTP ---------------------------------------------------------------------------

    def headers(self, token: str | None = "", **extra: str) -> dict[str, str]:
        h = {"Content-Type": "application/json"}
        tok = self.token if token == "" else token
        if tok is not None:
            h["Authorization"] = f"Bearer {tok}"
        h.update({k.replace("_", "-"): v for k, v in extra.items()})
        return h

    def request(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None,
                timeout: float = 120, address: str = "127.0.0.1") -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection(address, self.port, timeout=timeout)
        try:
            data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
            conn.request(method, path, body=data, headers=headers if headers is not None else self.headers())
            r = conn.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
        finally:
            conn.close()

    def open_stream(self, body: dict[str, Any], path: str = "/v1/completions") -> "RawStream":
        return RawStream(self, path, body)

    # -- the engine worker ------------------------------------------------------------------

    def worker_pids(self) -> list[int]:
        """The server's child processes (the llama.cpp worker)."""
        pids = []
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                stat = Path(f"/proc/{d}/stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if ppid == self.proc.pid:
                pids.append(int(d))
        return pids


class RawStream:
    """A streamed request over a plain socket, read event by event, that can be dropped."""

    def __init__(self, server: Server, path: str, body: dict[str, Any]) -> None:
        data = json.dumps({**body, "stream": True}).encode()
        self.sock = socket.create_connection(("127.0.0.1", server.port), timeout=120)
        head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nAuthorization: Bearer {server.token}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n").encode()
        self.sock.sendall(head + data)
        self.file = self.sock.makefile("rb")
        self.status: int | None = None  # the status line comes with the first token (or the refusal)
        self.events: list[Any] = []

    def start(self) -> int:
        if self.status is None:
            self.status = int(self.file.readline().split()[1])
            while self.file.readline() not in (b"\r\n", b""):
                pass  # headers
        return self.status

    def next_event(self) -> Any:
        """The next `data:` payload (parsed JSON, or the string "[DONE]"); None at the end."""
        self.start()
        while True:
            line = self.file.readline()
            if not line:
                return None
            line = line.strip()
            if line.isalnum() and not line.startswith(b"data"):  # a chunk-size line (hex)
                if line == b"0":
                    return None
                continue
            if line.startswith(b"data: "):
                payload = line[6:].decode()
                ev = payload if payload == "[DONE]" else json.loads(payload)
                self.events.append(ev)
                return ev

    def drop(self) -> float:
        """Closes the connection abruptly; returns time.monotonic() just before."""
        t = time.monotonic()
        self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        return t

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass
