"""Who may talk to the local API, where it listens, and the server as a process of its own.

- **The token.** Every request needs `Authorization: Bearer <token>`. The token is made on
  first use (256 random bits), kept in the data folder as `api-token`, created owner-only
  (0600, exclusive create, never through a link) and replaced atomically on rotation. A
  token file others can read, or one that is not a plain file owned by this user, is
  refused rather than trusted: someone may have copied it; rotate. The server re-reads it
  when the file changes, so a rotation locks out the old token at once.
- **The settings** (`config/api.json`, all optional): `port`, `queue_size`, `n_ctx`,
  `max_body_bytes`, `cors_origins` (the web origins that may call it from a browser; the
  organisation's `api.cors_origins` replaces this list when it sets one; each must be a
  web origin, `scheme://host[:port]` — never `null` or `*`), `header_seconds` (how long
  a connection may take to send a request's headers before it is closed; default 10).
- **The process.** `ServerProcess` starts `vetted serve` beside a front end (the desktop
  app's switch), never inside it: a hung or crashed server cannot take the UI with it, and
  the engine it drives is the same isolated worker chats use. The child exits when the
  parent's pipe closes, so a crashed app never leaves a listening server behind.
"""

from __future__ import annotations

import json
import math
import os
import secrets
import stat
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vetted.errors import InputError, Refused
from vetted.paths import Locations
from vetted.policy.schema import WEB_ORIGIN

if TYPE_CHECKING:
    from vetted.core.app import Vetted

DEFAULT_PORT = 8386  # "VETT" on a phone keypad; clear of LM Studio 1234, Jan 1337, GPT4All 4891, Ollama 11434
DEFAULT_QUEUE = 16
DEFAULT_MAX_BODY = 4 * 1024 * 1024
TOKEN_FILE = "api-token"
TOKEN_PREFIX = "vetted-"
LOOPBACK = ("127.0.0.1", "::1")
READY_PREFIX = "listening on "  # the first line `vetted serve` prints, for a parent to wait on
DEFAULT_HEADER_SECONDS = 10.0
# The same shape the policy's api.cors_origins must have (policy/schema.py): no path, no wildcard, no "null".


def web_origin(value: object) -> str | None:
    """`value` as a web origin the API may allow (lower case, no trailing slash), or None
    when it is not one (`null`, `*`, a path, a wildcard, a port over 65535)."""
    if not isinstance(value, str):
        return None
    origin = value.strip().lower().rstrip("/")
    m = WEB_ORIGIN.fullmatch(origin)  # the policy schema's shape, on the lower-cased value
    if m is None:
        return None
    port = m.group(1) or m.group(2)
    if port is not None and not 1 <= int(port[1:]) <= 65535:
        return None
    return origin


@dataclass
class ApiSettings:
    port: int = DEFAULT_PORT
    queue_size: int = DEFAULT_QUEUE
    n_ctx: int = 4096
    max_body_bytes: int = DEFAULT_MAX_BODY
    cors_origins: list[str] = field(default_factory=list)
    header_seconds: float = DEFAULT_HEADER_SECONDS

    @classmethod
    def load(cls, loc: Locations) -> "ApiSettings":
        path = loc.config / "api.json"
        try:
            raw = json.loads(path.read_text("utf-8"))
        except FileNotFoundError:
            return cls()
        except (OSError, ValueError) as exc:
            raise InputError(f"API settings {path}", f"cannot be read ({exc})", "fix or delete the file") from None
        if not isinstance(raw, dict):
            raise InputError(f"API settings {path}", "is not a JSON object")
        out = cls()
        for key, value in raw.items():
            if key == "cors_origins":
                origins = [web_origin(v) for v in value] if isinstance(value, list) else [None]
                if None in origins:
                    raise InputError(f"API settings {path}", "cors_origins must be a list of web origins "
                                     "(scheme://host[:port]; not null, not *)")
                out.cors_origins = [o for o in origins if o is not None]
            elif key == "header_seconds":
                if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                        or not 0 < value <= 300:
                    raise InputError(f"API settings {path}", "header_seconds must be a number of seconds "
                                     "from 0 to 300")
                out.header_seconds = float(value)
            elif key in ("port", "queue_size", "n_ctx", "max_body_bytes"):
                if isinstance(value, bool) or not isinstance(value, int) or value < (0 if key == "port" else 1):
                    raise InputError(f"API settings {path}", f"{key} must be a positive whole number")
                setattr(out, key, value)
            else:
                raise InputError(f"API settings {path}", f"unknown setting {key!r}")
        return out


# -- the token ---------------------------------------------------------------------------


def token_path(loc: Locations) -> Path:
    return loc.data / TOKEN_FILE


def _new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def _write_new(path: Path, token: str) -> None:
    """Exclusive create, owner-only from the first byte (no window where it is readable)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags, 0o600)
    try:
        os.write(fd, (token + "\n").encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)


def read_token(loc: Locations) -> tuple[str, tuple[int, int]] | None:
    """The stored token and its file's (inode, mtime) — None when there is none yet.
    Refused when the file is not a plain file of this user readable by this user alone."""
    path = token_path(loc)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise Refused(f"API token {path}", f"cannot be opened safely ({exc.strerror})",
                      "remove it and run `vetted api-token --rotate`") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise Refused(f"API token {path}", "is not a regular file", "remove it and make a new token")
        if os.name == "posix" and (st.st_uid != os.geteuid() or st.st_mode & 0o077):
            raise Refused(f"API token {path}", f"is readable or owned by someone else (mode {st.st_mode & 0o777:o})",
                          "treat it as leaked: make a new one (rotate)")
        data = os.read(fd, 4096).decode("ascii", "replace").strip()
    finally:
        os.close(fd)
    if not data.startswith(TOKEN_PREFIX) or len(data) < len(TOKEN_PREFIX) + 40:
        raise Refused(f"API token {path}", "is not a token Vetted made", "make a new one (rotate)")
    return data, (st.st_ino, st.st_mtime_ns)


def read_or_create_token(loc: Locations) -> str:
    loc.ensure()
    found = read_token(loc)
    if found is not None:
        return found[0]
    try:
        _write_new(token_path(loc), _new_token())
    except FileExistsError:
        pass  # another process made it first: use theirs
    again = read_token(loc)
    assert again is not None
    return again[0]


def rotate_token(loc: Locations) -> str:
    """A new token replaces the old one atomically; the old one stops working at once."""
    loc.ensure()
    token = _new_token()
    tmp = loc.data / f".{TOKEN_FILE}.{secrets.token_hex(8)}"
    _write_new(tmp, token)
    os.replace(tmp, token_path(loc))
    return token


class TokenCheck:
    """The server's view of the token: re-read whenever the file changes (a rotation
    takes effect on the next request), compared in constant time."""

    def __init__(self, loc: Locations) -> None:
        self.loc = loc
        self._lock = threading.Lock()
        self._token = read_or_create_token(loc).encode("ascii")
        self._key = self._file_key()

    def _file_key(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(token_path(self.loc), follow_symlinks=False)
        except OSError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def matches(self, presented: bytes) -> bool:
        import hmac

        key = self._file_key()
        with self._lock:
            if key != self._key:
                try:
                    found = read_token(self.loc)
                except Refused:
                    found = None
                self._token = found[0].encode("ascii") if found else b"\0" * 64  # unreadable: nobody gets in
                self._key = key
            token = self._token
        return hmac.compare_digest(presented, token)


# -- where it listens ----------------------------------------------------------------------


def bind_addresses(extra: list[str] | None) -> list[str]:
    """Loopback (both families), plus the addresses a person asked for (checked against
    the policy by the caller)."""
    import ipaddress

    out = list(LOOPBACK)
    for a in extra or []:
        try:
            ip = ipaddress.ip_address(a.strip("[]"))
        except ValueError:
            raise InputError("--host", f"{a!r} is not an IP address") from None
        if ip.is_unspecified:
            raise InputError("--host", f"{a} means every interface; name the address to listen on")
        if str(ip) not in out:
            out.append(str(ip))
    return out


def url_for(port: int, address: str = "127.0.0.1") -> str:
    host = f"[{address}]" if ":" in address else address
    return f"http://{host}:{port}/v1"


# -- the server as a separate process (the desktop app's switch) ---------------------------


def serve_command() -> list[str]:
    """`vetted serve` as a child process: the frozen executable's own CLI, or the package
    run isolated (-I: no module from the current folder can stand in for Vetted)."""
    if getattr(sys, "frozen", False):
        return [sys.executable, "serve"]
    return [sys.executable, "-I", "-u", "-m", "vetted.launch", "serve"]


class ServerProcess:
    """Starts and stops `vetted serve` beside a front end; off until `start()` is called.

    `start()` checks the policy here first (so the front end can say why not at once),
    then waits for the child's "listening on" line and returns the URL. The child's stdin
    is a pipe it watches: when this process ends, however it ends, the server stops too.
    """

    def __init__(self, app: "Vetted", port: int | None = None, timeout: float = 60.0) -> None:
        self.app = app
        self.port = port
        self.timeout = timeout
        self.proc: subprocess.Popen[bytes] | None = None
        self.url: str | None = None
        self.output: list[str] = []

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def token(self) -> str:
        return self.app.api_token()

    def start(self) -> str:
        if self.running:
            assert self.url is not None
            return self.url
        self.app.api_check_serve(list(LOOPBACK))
        port = self.app.api_settings().port if self.port is None else self.port
        cmd = serve_command() + ["--port", str(port), "--exit-with-stdin"]
        self.output = []
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.proc = proc
        deadline = time.monotonic() + self.timeout
        lines: list[str] = []
        ready = threading.Event()

        def pump() -> None:
            assert proc.stdout is not None
            for raw in proc.stdout:
                line = raw.decode("utf-8", "replace").rstrip()
                lines.append(line)
                del lines[:-200]  # the server logs a line per request; keep the recent ones
                if line.startswith(READY_PREFIX):
                    ready.set()
            ready.set()

        threading.Thread(target=pump, daemon=True, name="vetted-api-output").start()
        while not ready.wait(0.05):
            if time.monotonic() > deadline:
                self.stop()
                raise Refused("the local API server", f"did not start within {self.timeout:g} s")
        self.output = lines  # the server's recent output (refusals, one line per request)
        first = next((ln for ln in lines if ln.startswith(READY_PREFIX)), None)
        if first is None:
            self.stop()
            why = next((ln for ln in reversed(lines) if ln.strip()), "exited without saying why")
            raise Refused("the local API server", f"did not start: {why}")
        self.url = first[len(READY_PREFIX):].split()[0]
        return self.url

    def stop(self) -> None:
        proc, self.proc, self.url = self.proc, None, None
        if proc is None:
            return
        try:
            if proc.stdin is not None:
                proc.stdin.close()  # the server's signal to stop (it watches its stdin)
            proc.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            proc.kill()
            proc.wait()

    def __enter__(self) -> "ServerProcess":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()
