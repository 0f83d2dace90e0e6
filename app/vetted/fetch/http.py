"""HTTP with the limits a hostile server calls for: timeouts on every read (slow
retrieval), a byte cap (endless data), and Range resume.

Built on urllib so proxy variables (HTTPS_PROXY, NO_PROXY, ...) are honoured exactly as
the standard library does; bytes are read with `readinto` into large buffers so Python
adds little over the socket.
"""

from __future__ import annotations

import socket
import ssl
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.client import HTTPResponse
from pathlib import Path

from vetted import __version__
from vetted.errors import DownloadError, InputError

USER_AGENT = f"vetted/{__version__}"
DEFAULT_TIMEOUT = 30.0


def _ssl_context() -> ssl.SSLContext:
    try:
        import truststore  # the OS trust store, where organisations put their proxy CA

        return truststore.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    except Exception:
        return ssl.create_default_context()


_opener: urllib.request.OpenerDirector | None = None


def opener() -> urllib.request.OpenerDirector:
    global _opener
    if _opener is None:
        _opener = urllib.request.build_opener(
            urllib.request.ProxyHandler(), urllib.request.HTTPSHandler(context=_ssl_context())
        )
    return _opener


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    raw: HTTPResponse

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@contextmanager
def get(url: str, headers: dict[str, str] | None = None, timeout: float = DEFAULT_TIMEOUT) -> Iterator[Response]:
    req = urllib.request.Request(url, headers={"User-Agent": USER_AGENT, **(headers or {})})
    try:
        raw = opener().open(req, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416:
            yield Response(416, {k.lower(): v for k, v in exc.headers.items()}, exc)  # type: ignore[arg-type]
            return
        raise DownloadError(f"GET {url}", f"HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError, socket.timeout) as exc:
        reason = getattr(exc, "reason", exc)
        raise DownloadError(f"GET {url}", f"cannot connect ({reason})", "check the network or try another source") from None
    try:
        yield Response(raw.status, {k.lower(): v for k, v in raw.headers.items()}, raw)
    finally:
        raw.close()


def read_small(location: str, cap: int, timeout: float = DEFAULT_TIMEOUT) -> bytes:
    """Reads a small document (catalog, signature) from a path or URL, refusing more than `cap` bytes."""
    if location.startswith(("http://", "https://")):
        with get(location, timeout=timeout) as resp:
            declared = resp.header("content-length")
            if declared and declared.isdigit() and int(declared) > cap:
                raise DownloadError(f"GET {location}", f"server declares {declared} bytes, over the {cap}-byte cap")
            try:
                data = resp.raw.read(cap + 1)
            except (OSError, socket.timeout) as exc:
                raise DownloadError(f"GET {location}", f"read failed ({exc})") from None
    else:
        path = Path(location.removeprefix("file://"))
        try:
            with open(path, "rb") as f:
                data = f.read(cap + 1)
        except OSError as exc:
            raise InputError(f"reading {path}", exc.strerror or str(exc)) from None
    if len(data) > cap:
        raise DownloadError(f"reading {location}", f"more than the {cap}-byte cap", "the source may be hostile")
    return data
