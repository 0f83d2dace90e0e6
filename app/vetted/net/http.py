"""HTTP with the limits a hostile network calls for.

- Slow retrieval: a stall timeout per read *and* a minimum-progress watchdog
  (`net/watchdog.py`) on every transfer, headers included, catalogs included.
- Endless data: callers cap what they read; this module never buffers a body.
- Credentials stay with their origin: redirects are followed here, and every header that
  carries a credential is dropped the moment a redirect changes scheme, host or port
  (httpx and requests keep `Authorization` across an http→https upgrade; Vetted does
  not). A redirect from https to plain http is refused (except on loopback, for tests).
- Proxies: `HTTP(S)_PROXY` / `NO_PROXY` as the standard library reads them; loopback
  never goes through a proxy.

The transport is urllib3 (well kept, installed with requests), driven with redirects and
retries off: its connection class is extended only to hand each new socket to the
transfer's watchdog. Bodies are read in 1 MiB blocks straight from http.client's buffered
reader, so the transfer path keeps up with a fast link (httpcore's h11 parser, tried
first, copies every byte three times and halved the throughput). Nothing here decides
whether bytes are right: digests come only from signed catalogs and signatures
(DESIGN.md invariant 3).
"""

from __future__ import annotations

import ipaddress
import os
import socket
import ssl
import stat
import threading
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import urllib3
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from vetted import __version__
from vetted.errors import DownloadError, InputError
from vetted.net.watchdog import DEFAULT_LIMITS, Meter, TransferLimits, Watchdog

USER_AGENT = f"vetted/{__version__}"
DEFAULT_TIMEOUT = DEFAULT_LIMITS.stall_timeout
MAX_REDIRECTS = 10
BLOCK = 1024 * 1024
# Headers that carry a credential: never sent to an origin other than the one asked for.
SENSITIVE_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization", "x-api-key", "x-auth-token"})

ResponseCheck = Callable[["Response"], None]


class Cancelled(DownloadError):
    def __init__(self, what: str) -> None:
        super().__init__(what, "cancelled", "run the same command again to resume")


class ConnectionLost(DownloadError):
    """The connection ended early or broke; what arrived is kept for a resume."""


class HTTPStatusError(DownloadError):
    """The server answered with a status that carries no body to use (4xx, 5xx, …)."""

    def __init__(self, what: str, status: int, reason: str) -> None:
        super().__init__(what, f"HTTP {status} {reason}".rstrip())
        self.status = status


def _ssl_context() -> ssl.SSLContext:
    try:
        import truststore  # the OS trust store, where organisations put their proxy CA

        return truststore.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    except Exception:
        return ssl.create_default_context()


_SSL: ssl.SSLContext | None = None


def ssl_context() -> ssl.SSLContext:
    global _SSL
    if _SSL is None:
        _SSL = _ssl_context()
    return _SSL


@dataclass
class Response:
    """One response of a transfer; `chunks()` streams the body under the transfer's watchdog."""

    url: str
    status: int
    reason: str
    headers: dict[str, str]
    _body: Any = field(default=None, repr=False)
    _dog: Watchdog | None = field(default=None, repr=False)
    _fail: Callable[[BaseException], Exception] | None = field(default=None, repr=False)

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def chunks(self, size: int = BLOCK) -> Iterator[bytes]:
        if self._body is None:
            return
        assert self._fail is not None and self._dog is not None
        while True:
            try:
                chunk = self._body.read1(size, decode_content=False)  # what has arrived, up to size
            except Exception as exc:
                raise self._fail(exc) from None
            if not chunk:
                if self._dog.tripped:  # a cut socket reads as the end of the body
                    raise self._fail(ConnectionError("cut by the watchdog"))
                return
            self._dog.feed(len(chunk))
            yield chunk

    def read(self, cap: int) -> bytes:
        """Up to `cap` + 1 bytes, so a caller can tell "more than cap"."""
        buf = bytearray()
        for chunk in self.chunks(min(BLOCK, cap + 1)):
            buf += chunk
            if len(buf) > cap:
                break
        return bytes(buf)


@dataclass(frozen=True)
class Target:
    """A URL as the connection layer will see it: parsed by urllib3's own parser, so the
    origin Vetted judges (credentials, downgrade, proxy) is the one actually contacted."""

    url: str
    scheme: str
    host: str
    port: int

    @property
    def origin(self) -> tuple[str, str, int]:
        return (self.scheme, self.host, self.port)


def target(url: str) -> Target:
    """Parses and rebuilds a URL; refuses what two parsers could read differently (a
    backslash, control characters, whitespace) and user names or passwords in it."""
    from urllib3.exceptions import LocationParseError
    from urllib3.util import parse_url

    if any(ch == "\\" or ord(ch) < 0x21 or ord(ch) == 0x7F for ch in url):
        raise DownloadError("address", f"{url!r} contains a backslash, a space or a control character",
                            "a server or catalog sent an ambiguous address; it was not followed")
    try:
        p = parse_url(url)
    except (LocationParseError, ValueError) as exc:
        raise DownloadError("address", f"{url!r} is malformed ({exc})", "the source is misconfigured") from None
    scheme = (p.scheme or "").lower()
    if scheme not in ("http", "https") or not p.host:
        raise DownloadError("address", f"{url!r} is not an http(s) address with a host")
    if p.auth:
        raise DownloadError("address", f"{url!r} carries a user name or password",
                            "credentials never travel inside addresses")
    host = p.host.lower()
    port = p.port or (443 if scheme == "https" else 80)
    path = p.path or "/"
    rebuilt = f"{scheme}://{host}" + (f":{p.port}" if p.port else "") + path + \
        (f"?{p.query}" if p.query is not None else "")
    return Target(rebuilt, scheme, host, port)


def origin(url: str) -> tuple[str, str, int]:
    return target(url).origin


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _proxy_for(url: str) -> str | None:
    scheme, host, _port = target(url).origin
    if is_loopback(host):
        return None
    proxies = urllib.request.getproxies()
    if urllib.request.proxy_bypass(host):
        return None
    return proxies.get(scheme) or proxies.get("all")


def _watched_pools(dog: Watchdog) -> dict[str, type[HTTPConnectionPool]]:
    """urllib3's pool classes, with connections that hand each new socket to `dog` the moment
    it connects (before TLS, a proxy tunnel or the response headers)."""

    class WatchedHTTP(HTTPConnection):
        def _new_conn(self) -> socket.socket:
            sock = super()._new_conn()
            dog.register(sock)
            return sock

    class WatchedHTTPS(HTTPSConnection):
        def _new_conn(self) -> socket.socket:
            sock = super()._new_conn()
            dog.register(sock)
            return sock

    class HTTPPool(HTTPConnectionPool):
        ConnectionCls = WatchedHTTP

    class HTTPSPool(HTTPSConnectionPool):
        ConnectionCls = WatchedHTTPS

    return {"http": HTTPPool, "https": HTTPSPool}


class _Managers:
    """The connection managers of one transfer (direct, or per proxy), all on its watchdog."""

    def __init__(self, dog: Watchdog, limits: TransferLimits) -> None:
        self.dog = dog
        self.timeout = urllib3.Timeout(connect=limits.stall_timeout, read=limits.stall_timeout)
        self.managers: dict[str | None, urllib3.PoolManager] = {}

    def for_url(self, url: str) -> urllib3.PoolManager:
        proxy = _proxy_for(url)
        if proxy not in self.managers:
            common: dict[str, Any] = {"retries": False, "timeout": self.timeout, "ssl_context": ssl_context(),
                                      "num_pools": 4}
            pm: urllib3.PoolManager
            if proxy is None:
                pm = urllib3.PoolManager(**common)
            else:
                p = urllib.parse.urlsplit(proxy if "://" in proxy else "http://" + proxy)
                headers = None
                if p.username:
                    userinfo = f"{urllib.parse.unquote(p.username)}:{urllib.parse.unquote(p.password or '')}"
                    headers = urllib3.make_headers(proxy_basic_auth=userinfo)
                bare = p._replace(netloc=(p.hostname or "") + (f":{p.port}" if p.port else "")).geturl()
                pm = urllib3.ProxyManager(bare, proxy_headers=headers, proxy_ssl_context=ssl_context(), **common)
            pm.pool_classes_by_scheme = _watched_pools(self.dog)
            self.managers[proxy] = pm
        return self.managers[proxy]

    def close(self) -> None:
        for pm in self.managers.values():
            pm.clear()


def _failure(url: str, dog: Watchdog, limits: TransferLimits) -> Callable[[BaseException], Exception]:
    """Turns whatever the transport raised into an error that says what happened."""
    from urllib3 import exceptions as e

    def fail(exc: BaseException) -> Exception:
        what = f"GET {url}"
        if dog.tripped == "cancelled":
            return Cancelled(f"download of {url}")
        if dog.tripped == "slow":
            got, secs = dog.meter.since_mark()
            return DownloadError(
                what, f"only {got} bytes arrived in the last {secs:.0f} s ({dog.received} in all), under the "
                      f"minimum of {limits.describe_rate()}",
                "the server is trickling data (a slow-retrieval attack or a very poor link); try another "
                "source, or lower the minimum rate in settings")
        inner = getattr(exc, "reason", None) or exc
        if isinstance(exc, (e.NewConnectionError, e.NameResolutionError)):  # before: they subclass the timeout
            return DownloadError(what, f"cannot connect ({inner})", "check the network or try another source")
        if isinstance(exc, e.ReadTimeoutError) or isinstance(inner, (TimeoutError, socket.timeout)) and \
                not isinstance(exc, e.ConnectTimeoutError):
            return DownloadError(what, f"no data for {limits.stall_timeout:g} s",
                                 "the server stalled; run the command again to resume")
        if isinstance(exc, e.ConnectTimeoutError):
            return DownloadError(what, f"cannot connect (no answer within {limits.stall_timeout:g} s)",
                                 "check the network or try another source")
        if isinstance(exc, e.ProxyError):
            return DownloadError(what, f"the proxy refused ({inner})", "check HTTPS_PROXY / HTTP_PROXY")
        if isinstance(exc, e.SSLError):
            return DownloadError(what, f"TLS failed ({inner})", "the server's certificate is not trusted here")
        if isinstance(exc, (e.NewConnectionError, e.NameResolutionError)):
            return DownloadError(what, f"cannot connect ({inner})", "check the network or try another source")
        if isinstance(exc, (e.ProtocolError, e.IncompleteRead, e.InvalidChunkLength, e.ResponseError,
                            ConnectionError, OSError)):
            return ConnectionLost(what, f"the server broke the connection or the protocol ({inner})",
                                  "run the command again to resume, or try another source")
        if isinstance(exc, (e.LocationValueError, e.URLSchemeUnknown, ValueError)):
            return DownloadError(what, f"cannot be requested ({exc})", "the source address is malformed")
        return DownloadError(what, f"failed ({type(exc).__name__}: {exc})", "try another source")

    return fail


class Session:
    """Requests that share connections (HTTP keep-alive) and one watchdog.

    A ranged download sends one request per piece; reusing the connection saves a TCP and
    TLS handshake per piece. Every connection the session opens is registered with its
    watchdog the moment it connects, as for a single `get`. `meter` lets several sessions
    (the connections of one ranged download) be judged together by the minimum rate.
    """

    def __init__(self, limits: TransferLimits = DEFAULT_LIMITS, cancel: threading.Event | None = None,
                 meter: Meter | None = None) -> None:
        self.limits = limits
        self.dog = Watchdog(limits, cancel, meter)
        self._managers = _Managers(self.dog, limits)

    def close(self) -> None:
        self._managers.close()
        self.dog.stop()

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def get(self, url: str, headers: dict[str, str] | None = None,
            on_response: ResponseCheck | None = None) -> Iterator[Response]:
        """GETs `url` following redirects; yields the final response (2xx, or 416 for resumes).

        `on_response` sees every response of the redirect chain (the Hub answers its pinned
        commit on the first one) and may raise to refuse it. A body left unread when the
        block ends closes its connection, so the next request never reads its tail.
        """
        dog, limits = self.dog, self.limits
        here = target(url)
        first = here.origin
        current = here.url
        send = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity", **(headers or {})}
        for _hop in range(MAX_REDIRECTS + 1):
            fail = _failure(current, dog, limits)
            if here.origin != first:
                send = without_credentials(send)
            try:
                raw = self._managers.for_url(current).request(
                    "GET", current, headers=send, preload_content=False, redirect=False, retries=False,
                    decode_content=False)
            except Exception as exc:
                raise fail(exc) from None
            resp = Response(current, raw.status, raw.reason or "",
                            {k.lower(): v for k, v in raw.headers.items()}, raw, dog, fail)
            try:
                if on_response is not None:
                    on_response(resp)
            except BaseException:
                raw.release_conn()
                raise
            if resp.status in (301, 302, 303, 307, 308) and resp.header("location"):
                raw.close()  # never read a redirect's body: it may be endless; the connection goes
                location = resp.header("location") or ""
                try:
                    nxt = target(urllib.parse.urljoin(current, location) if "\\" not in location else location)
                except DownloadError as exc:
                    raise DownloadError(f"GET {current}", f"redirects to {exc.found}", exc.action) from None
                if here.scheme == "https" and nxt.scheme == "http" and not is_loopback(nxt.host):
                    raise DownloadError(f"GET {current}", f"redirects from https to plain http ({nxt.url})",
                                        "the server tried to downgrade the connection; use another source")
                here, current = nxt, nxt.url
                continue
            try:
                if resp.status == 416 or 200 <= resp.status < 300:
                    yield resp
                    return
                raise HTTPStatusError(f"GET {current}", resp.status, resp.reason)
            finally:
                if not raw.closed:
                    raw.close()  # unread body: the connection cannot carry another request
                raw.release_conn()
        raise DownloadError(f"GET {url}", f"more than {MAX_REDIRECTS} redirects", "the source is misconfigured")


def without_credentials(headers: dict[str, str]) -> dict[str, str]:
    """The headers that may go to another origin than the one they were meant for."""
    return {k: v for k, v in headers.items() if k.lower() not in SENSITIVE_HEADERS}


@contextmanager
def get(url: str, headers: dict[str, str] | None = None, limits: TransferLimits = DEFAULT_LIMITS,
        cancel: threading.Event | None = None, on_response: ResponseCheck | None = None) -> Iterator[Response]:
    """One GET on connections of its own (`Session.get`), closed when the block ends."""
    with Session(limits, cancel) as session, session.get(url, headers, on_response) as resp:
        yield resp


def read_small(location: str, cap: int, limits: TransferLimits = DEFAULT_LIMITS,
               cancel: threading.Event | None = None, on_response: ResponseCheck | None = None) -> bytes:
    """Reads a small document (catalog, signature) from a path or URL, refusing more than `cap` bytes."""
    if location.startswith(("http://", "https://")):
        with get(location, limits=limits, cancel=cancel, on_response=on_response) as resp:
            declared = resp.header("content-length")
            if declared and declared.isdigit() and int(declared) > cap:
                raise DownloadError(f"GET {location}", f"server declares {declared} bytes, over the {cap}-byte cap")
            data = resp.read(cap)
    else:
        data = read_local(Path(location.removeprefix("file://")), cap)
    if len(data) > cap:
        raise DownloadError(f"reading {location}", f"more than the {cap}-byte cap", "the source may be hostile")
    return data


def open_regular(path: Path) -> int:
    """Opens a local source read-only, refusing anything but a regular file (a FIFO would hang)."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise InputError(f"reading {path}", exc.strerror or str(exc)) from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise InputError(f"reading {path}", "not a regular file (a pipe, device or folder)",
                         "point at the file itself")
    if hasattr(os, "set_blocking"):
        os.set_blocking(fd, True)
    return fd


def read_local(path: Path, cap: int) -> bytes:
    fd = open_regular(path)
    with open(fd, "rb", closefd=True) as f:
        return f.read(cap + 1)
