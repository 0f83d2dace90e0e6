"""The local API refuses, over raw HTTP against a real `vetted serve` process: no token, a
wrong or rotated-out token, a foreign `Host` (DNS rebinding), a foreign `Origin` and its
preflight, an oversize body (declared and chunked), malformed JSON, an unknown model, a
model changed on disk after install, a model the policy blocks, and a server the policy
forbids or restricts. None of these needs the model to run, so none is slow."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import time
from pathlib import Path

import pytest

from api_kit import MODEL, Server, install_smollm2, locations_for
from conftest import run_cli

pytestmark = pytest.mark.usefixtures("no_machine_policy")


@pytest.fixture(scope="module")
def installed_home(tmp_path_factory) -> tuple[Path, Path]:
    work = tmp_path_factory.mktemp("api-refusals")
    home = work / "home"
    return home, install_smollm2(home, work)


@pytest.fixture(scope="module")
def server(installed_home):
    s = Server(installed_home[0], "--cors-origin", "https://tool.example.org")
    yield s
    s.stop()


def error_of(body: bytes) -> dict:
    doc = json.loads(body)
    assert set(doc) == {"error"} and {"message", "type", "code"} <= set(doc["error"]), doc
    return doc["error"]


def read_reply(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes (a reset after its answer ends it too)."""
    out = b""
    while True:
        try:
            data = sock.recv(65536)
        except OSError:
            return out
        if not data:
            return out
        out += data


def audit_rows(home: Path) -> list[dict]:
    from vetted.store import audit
    from vetted.store.db import open_db

    db = open_db(locations_for(home).database)
    try:
        return audit.entries(db)
    finally:
        db.conn.close()


# -- authentication -----------------------------------------------------------------------


@pytest.mark.parametrize("method,path", [("GET", "/v1/models"), ("GET", f"/v1/models/{MODEL}"),
                                         ("POST", "/v1/chat/completions"), ("POST", "/v1/completions"),
                                         ("POST", "/v1/embeddings"), ("GET", "/v1/nothing-here")])
def test_no_token_is_401_on_every_endpoint(server, method, path) -> None:
    status, headers, body = server.request(method, path, {"model": MODEL, "prompt": "x"},
                                           headers=server.headers(token=None))
    assert status == 401
    assert error_of(body)["code"] == "invalid_api_key"
    assert headers["www-authenticate"].startswith("Bearer")


def test_wrong_token_and_other_schemes_are_401(server) -> None:
    for auth in (f"Bearer {server.token[:-1]}x", f"Bearer {server.token}x", f"Basic {server.token}",
                 server.token, "Bearer "):
        h = server.headers(token=None)
        h["Authorization"] = auth
        status, _, body = server.request("GET", "/v1/models", headers=h)
        assert status == 401, auth
        assert error_of(body)["type"] == "invalid_request_error"
    assert server.request("GET", "/v1/models")[0] == 200


def test_token_file_is_owner_only_printed_alone_and_rotation_locks_out_the_old_one(server) -> None:
    path = server.home / "data" / "api-token"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    printed = run_cli("api-token", env={"VETTED_HOME": str(server.home)})
    assert printed.returncode == 0 and printed.stdout == server.token + "\n"
    old = server.token
    rotated = run_cli("api-token", "--rotate", env={"VETTED_HOME": str(server.home)})
    new = rotated.stdout.strip()
    assert rotated.returncode == 0 and new != old and rotated.stdout == new + "\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    try:
        assert server.request("GET", "/v1/models", headers=server.headers(token=old))[0] == 401  # at once
        assert server.request("GET", "/v1/models", headers=server.headers(token=new))[0] == 200
    finally:
        server.token = new


def test_a_token_file_others_can_read_is_not_trusted(tmp_path) -> None:
    home = tmp_path / "h"
    env = {"VETTED_HOME": str(home)}
    assert run_cli("api-token", env=env).returncode == 0
    os.chmod(home / "data" / "api-token", 0o644)
    out = run_cli("api-token", env=env)
    assert out.returncode == 1 and "readable or owned by someone else" in out.stdout
    assert run_cli("api-token", "--rotate", env=env).returncode == 0  # the way out
    assert stat.S_IMODE((home / "data" / "api-token").stat().st_mode) == 0o600


# -- DNS rebinding and browsers --------------------------------------------------------------


def test_foreign_host_is_refused_before_authentication(server) -> None:
    for host in ("evil.example", f"evil.example:{server.port}", f"127.0.0.1:{server.port + 1}",
                 f"localhost.evil.example:{server.port}", "127.0.0.1"):
        status, headers, body = server.request("GET", "/v1/models", headers=server.headers(Host=host))
        assert status == 403, host
        assert error_of(body)["code"] == "host_not_allowed"
        assert "access-control-allow-origin" not in headers
    # without a token too: a rebinding page learns nothing, not even that a token is needed
    assert server.request("GET", "/v1/models", headers=server.headers(token=None, Host="evil.example"))[0] == 403
    for host in (f"127.0.0.1:{server.port}", f"localhost:{server.port}", f"LOCALHOST:{server.port}"):
        assert server.request("GET", "/v1/models", headers=server.headers(Host=host))[0] == 200, host


def test_ipv6_loopback_answers_with_its_own_host_name(server) -> None:
    try:
        socket.create_connection(("::1", server.port), timeout=5).close()
    except OSError:
        pytest.skip("no IPv6 loopback on this machine")
    assert server.request("GET", "/v1/models", headers=server.headers(Host=f"[::1]:{server.port}"),
                          address="::1")[0] == 200
    assert server.request("GET", "/v1/models", headers=server.headers(Host="evil.example"), address="::1")[0] == 403


def test_foreign_origin_preflight_gets_no_cors_headers(server) -> None:
    pre = {"Host": f"127.0.0.1:{server.port}", "Origin": "https://evil.example",
           "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization, content-type"}
    status, headers, body = server.request("OPTIONS", "/v1/chat/completions", headers=pre)
    assert status == 403
    assert not any(k.startswith("access-control-") for k in headers)
    assert error_of(body)["code"] == "origin_not_allowed"
    # the real request from that origin, even with the token (a leaked one), is refused too
    status, headers, _ = server.request("GET", "/v1/models", headers=server.headers(Origin="https://evil.example"))
    assert status == 403 and "access-control-allow-origin" not in headers
    # "null" (sandboxed frames, file://) is a foreign origin like any other
    assert server.request("GET", "/v1/models", headers=server.headers(Origin="null"))[0] == 403


def test_allowlisted_origin_gets_cors_for_itself_only(server) -> None:
    origin = "https://tool.example.org"
    pre = {"Host": f"127.0.0.1:{server.port}", "Origin": origin, "Access-Control-Request-Method": "POST",
           "Access-Control-Request-Headers": "authorization, content-type, x-evil"}
    status, headers, _ = server.request("OPTIONS", "/v1/chat/completions", headers=pre)
    assert status == 204
    assert headers["access-control-allow-origin"] == origin
    assert "access-control-allow-credentials" not in headers
    assert headers["access-control-allow-headers"] == "authorization, content-type"
    status, headers, _ = server.request("GET", "/v1/models", headers=server.headers(Origin=origin))
    assert status == 200 and headers["access-control-allow-origin"] == origin and headers["vary"] == "Origin"
    # the allowlist does not replace the token
    assert server.request("GET", "/v1/models", headers=server.headers(token=None, Origin=origin))[0] == 401
    # and no CORS headers at all for clients that are not browsers
    assert "access-control-allow-origin" not in server.request("GET", "/v1/models")[1]


# -- bodies ------------------------------------------------------------------------------------


def test_oversize_body_is_413_declared_or_chunked(server) -> None:
    head = (f"POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
            f"Authorization: Bearer {server.token}\r\n").encode()
    # declared: answered from the headers, before a byte of the body is read
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    try:
        sock.sendall(head + b"Content-Length: 5242880\r\n\r\n" + b"a" * 65536)
        reply = read_reply(sock)
    finally:
        sock.close()
    assert reply.startswith(b"HTTP/1.1 413"), reply[:100]
    assert error_of(reply.split(b"\r\n\r\n", 1)[1])["code"] == "request_too_large"
    # chunked, never declared: answered once the cap is passed
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    try:
        sock.sendall(head + b"Transfer-Encoding: chunked\r\n\r\n")
        chunk = b"a" * 65536
        try:
            for _ in range(100):  # 6.4 MB
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        except OSError:
            pass  # the server answered and closed while we were still sending
        reply = read_reply(sock)
    finally:
        sock.close()
    assert reply.startswith(b"HTTP/1.1 413"), reply[:100]
    # just under the cap is read (and then judged on its content)
    ok = b'{"model": "nope", "prompt": "' + b"a" * (4 * 1024 * 1024 - 64) + b'"}'
    assert server.request("POST", "/v1/completions", ok)[0] == 404


def test_malformed_json_and_bad_fields_are_400(server) -> None:
    status, _, body = server.request("POST", "/v1/chat/completions", b"{not json")
    assert status == 400 and error_of(body)["code"] == "invalid_json"
    status, _, body = server.request("POST", "/v1/chat/completions", b"[1, 2]")
    assert status == 400
    for doc, param in (({"model": MODEL, "messages": []}, "messages"),
                       ({"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "temperature": 9}, "temperature"),
                       ({"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "n": 3}, "n"),
                       ({"model": MODEL, "messages": [{"role": "user", "content": "hi"}],
                         "tools": [{"type": "function"}]}, "tools"),
                       ({"messages": [{"role": "user", "content": "hi"}]}, "model")):
        status, _, body = server.request("POST", "/v1/chat/completions", doc)
        assert status == 400, doc
        assert error_of(body)["param"] == param


# -- models --------------------------------------------------------------------------------------


def test_unknown_model_is_404_and_audited(server) -> None:
    for path, doc in (("/v1/chat/completions", {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}),
                      ("/v1/completions", {"model": "gpt-4o", "prompt": "hi"}),
                      ("/v1/embeddings", {"model": "gpt-4o", "input": "hi"})):
        status, _, body = server.request("POST", path, doc)
        assert status == 404 and error_of(body)["code"] == "model_not_found", path
    assert server.request("GET", "/v1/models/gpt-4o")[0] == 404
    rows = [r for r in audit_rows(server.home) if r["action"] == "api.request" and r["subject"] == "gpt-4o"]
    assert rows and rows[-1]["result"] == "refused" and rows[-1]["identity"] == "local API"


def test_embeddings_are_a_clear_400(server) -> None:
    status, _, body = server.request("POST", "/v1/embeddings", {"model": MODEL, "input": "hello"})
    assert status == 400 and error_of(body)["code"] == "embeddings_not_supported"


def test_model_blocked_by_policy_is_refused_naming_the_rule(installed_home, tmp_path) -> None:
    home, path = installed_home
    from vetted.digest import sha256_file

    pol = tmp_path / "policy.json"
    pol.write_text(json.dumps({"schema": "vetted.policy/1", "models": {"blocked_digests": [sha256_file(path)]}}))
    os.chmod(pol, 0o600)
    s = Server(home, env={"VETTED_POLICY_EXTRA": str(pol)})
    try:
        status, _, body = s.request("POST", "/v1/chat/completions",
                                    {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]})
        err = error_of(body)
        assert status == 403 and err["code"] == "policy_refused"
        assert "models.blocked_digests" in err["message"] and "is blocked" in err["message"]
        assert s.worker_pids() == []  # nothing was loaded
    finally:
        s.stop()
    rows = audit_rows(home)
    assert any(r["action"] == "policy.load" and r["result"] == "refused" for r in rows)
    assert any(r["action"] == "api.load" and r["result"] == "refused" and r["identity"] == "local API"
               and "blocked" in r["reason"] for r in rows)


def test_policy_can_forbid_the_server_or_keep_it_on_loopback(tmp_path) -> None:
    home = tmp_path / "h"
    pol = tmp_path / "policy.json"
    pol.write_text(json.dumps({"schema": "vetted.policy/1", "api": {"allowed": False}}))
    os.chmod(pol, 0o600)
    out = run_cli("serve", "--port", "0", env={"VETTED_HOME": str(home), "VETTED_POLICY_EXTRA": str(pol)})
    assert out.returncode == 1 and "rule api.allowed" in out.stdout and "listening" not in out.stdout
    # no policy rule: loopback only, whatever the person asks
    out = run_cli("serve", "--port", "0", "--host", "192.0.2.7", env={"VETTED_HOME": str(home)})
    assert out.returncode == 1 and "192.0.2.7 is not loopback" in out.stdout and "api.interfaces" in out.stdout
    # a policy listing other addresses still refuses one it does not list
    pol.write_text(json.dumps({"schema": "vetted.policy/1", "api": {"interfaces": ["192.0.2.8"]}}))
    out = run_cli("serve", "--port", "0", "--host", "192.0.2.7",
                  env={"VETTED_HOME": str(home), "VETTED_POLICY_EXTRA": str(pol)})
    assert out.returncode == 1 and "rule api.interfaces" in out.stdout
    out = run_cli("serve", "--port", "0", "--host", "0.0.0.0", env={"VETTED_HOME": str(home)})
    assert out.returncode == 2 and "every interface" in out.stderr


def test_policy_origin_list_replaces_the_persons(installed_home, tmp_path) -> None:
    pol = tmp_path / "policy.json"
    pol.write_text(json.dumps({"schema": "vetted.policy/1", "api": {"cors_origins": ["https://org.example"]}}))
    os.chmod(pol, 0o600)
    s = Server(installed_home[0], "--cors-origin", "https://mine.example", env={"VETTED_POLICY_EXTRA": str(pol)})
    try:
        assert s.request("GET", "/v1/models", headers=s.headers(Origin="https://mine.example"))[0] == 403
        status, headers, _ = s.request("GET", "/v1/models", headers=s.headers(Origin="https://org.example"))
        assert status == 200 and headers["access-control-allow-origin"] == "https://org.example"
    finally:
        s.stop()


def test_model_changed_on_disk_after_install_is_refused_and_audited(tmp_path) -> None:
    home = tmp_path / "home"
    path = install_smollm2(home, tmp_path)
    s = Server(home)
    try:
        st = path.stat()
        os.chmod(path, 0o644)
        with open(path, "r+b") as f:  # one byte, same size, timestamps put back
            f.seek(5_000_000)
            b = f.read(1)
            f.seek(5_000_000)
            f.write(bytes([b[0] ^ 0xFF]))
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
        status, _, body = s.request("POST", "/v1/completions", {"model": MODEL, "prompt": "hi", "max_tokens": 2})
        err = error_of(body)
        assert status == 403 and err["code"] == "model_refused"
        assert "sha256 is now" in err["message"]
        assert s.worker_pids() == []  # refused before any engine started
        # and it stays refused; /v1/models no longer offers it
        assert s.request("POST", "/v1/completions", {"model": MODEL, "prompt": "hi"})[0] == 403
        models = json.loads(s.request("GET", "/v1/models")[2])
        assert models == {"object": "list", "data": []}
    finally:
        s.stop()
    rows = audit_rows(home)
    assert any(r["action"] == "model.load" and r["result"] == "refused" and "sha256 is now" in r["reason"]
               for r in rows)
    assert any(r["action"] == "api.load" and r["result"] == "refused" and r["identity"] == "local API" for r in rows)


def test_server_exits_with_its_parent_and_never_binds_a_wildcard(tmp_path) -> None:
    """The desktop app's switch (`Vetted.api_server()`): a separate process, stopped when the
    app lets go of it, listening only on loopback."""
    from vetted.core import Vetted  # VETTED_HOME: conftest's per-test folder

    app = Vetted()
    proc_server = app.api_server(port=0)
    url = proc_server.start()
    try:
        assert url.startswith("http://127.0.0.1:") and proc_server.running
        assert proc_server.token() == app.api_token()
        port = int(url.rsplit(":", 1)[1].split("/")[0])
        listening = subprocess.run(["ss", "-Hltn", f"sport = :{port}"], capture_output=True, text=True).stdout
        if listening:
            addrs = {line.split()[3].rsplit(":", 1)[0] for line in listening.splitlines()}
            assert addrs <= {"127.0.0.1", "[::1]"}, addrs
        pid = proc_server.proc.pid
    finally:
        proc_server.stop()
    assert not proc_server.running
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_policy_schema_checks_the_api_rules_and_lists_them(tmp_path) -> None:
    def check(api: dict) -> subprocess.CompletedProcess:
        doc = tmp_path / "p.json"
        doc.write_text(json.dumps({"schema": "vetted.policy/1", "api": api}))
        return run_cli("policy", "check", str(doc), tool="vetted-admin")

    assert check({"allowed": False, "interfaces": ["10.0.0.5", "fd00::5"],
                  "cors_origins": ["https://tool.example.org", "http://localhost:3000"]}).returncode == 0
    for bad, why in (({"interfaces": ["0.0.0.0"]}, "every interface"), ({"interfaces": ["eth0"]}, "not an IP"),
                     ({"cors_origins": ["https://tool.example.org/app"]}, "not a web origin"),
                     ({"cors_origins": ["*"]}, "not a web origin"), ({"listen": True}, "listen")):
        out = check(bad)
        assert out.returncode == 1 and why in out.stdout + out.stderr, (bad, out.stdout, out.stderr)
    doc = tmp_path / "p.json"
    doc.write_text(json.dumps({"schema": "vetted.policy/1", "api": {"allowed": False, "cors_origins": []}}))
    os.chmod(doc, 0o600)
    shown = run_cli("policy", "--json", env={"VETTED_POLICY_EXTRA": str(doc)})
    rules = {r["rule"]: r["value"] for r in json.loads(shown.stdout)["rules"]}
    assert rules["api.allowed"] is False and rules["api.cors_origins"] == []


# -- the security review's findings ------------------------------------------------------------


def _ipv6_squatter(port: int = 0) -> socket.socket:
    """What another local user can do: listen on [::1]:PORT (IPv6 only, so 127.0.0.1 stays free)."""
    try:
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        s.bind(("::1", port))
        s.listen(5)
    except OSError:
        pytest.skip("no IPv6 loopback on this machine")
    return s


def test_a_squatter_on_ipv6_loopback_stops_the_start(tmp_path) -> None:
    """F1: clients resolving `localhost` to ::1 would send their token to the squatter."""
    squatter = _ipv6_squatter()
    port = squatter.getsockname()[1]
    try:
        try:
            out = run_cli("serve", "--port", str(port), env={"VETTED_HOME": str(tmp_path / "h")}, timeout=30)
        except subprocess.TimeoutExpired:
            pytest.fail("vetted serve started although another program holds [::1]:%d" % port)
    finally:
        squatter.close()
    said = out.stdout + out.stderr
    assert out.returncode != 0 and "listening on http" not in said, said
    assert f"[::1] port {port}" in said and "in use" in said, said


def test_port_0_gives_up_a_port_taken_on_ipv6_for_a_fresh_one(monkeypatch) -> None:
    """F1 with --port 0: a port the OS chose on 127.0.0.1 but held on ::1 is retried, not skipped."""
    from vetted.api import server as api_server

    squatter = _ipv6_squatter()
    held = squatter.getsockname()[1]
    real = api_server._bind_once
    calls: list[int] = []

    def first_gets_the_held_port(addresses, port):
        calls.append(port)
        return real(addresses, held if len(calls) == 1 else port)

    monkeypatch.setattr(api_server, "_bind_once", first_gets_the_held_port)
    try:
        socks, bound, port = api_server.bind(["127.0.0.1", "::1"], 0)
    finally:
        squatter.close()
    try:
        assert len(calls) == 2 and bound == ["127.0.0.1", "::1"] and port != held
    finally:
        for s in socks:
            s.close()


def test_idle_connections_do_not_block_requests_and_are_closed(installed_home) -> None:
    """F2: silent connections counted against uvicorn's limit made every real request a 503."""
    home = installed_home[0]
    settings = home / "config" / "api.json"
    settings.write_text(json.dumps({"header_seconds": 1.5}))
    try:
        s = Server(home)
    finally:
        settings.unlink()
    idle: list[socket.socket] = []
    try:
        for _ in range(100):  # over the old limit of 64
            idle.append(socket.create_connection(("127.0.0.1", s.port), timeout=10))
        trickle = socket.create_connection(("127.0.0.1", s.port), timeout=10)
        trickle.sendall(b"GET /v1/models HTTP/1.1\r\n")  # headers begun, never finished
        idle.append(trickle)
        status, _, body = s.request("GET", "/v1/models", timeout=10)
        assert status == 200, body[:200]
        time.sleep(3)
        for c in idle:  # each was closed by the server: end of stream (or a reset)
            try:
                assert c.recv(1) == b""
            except ConnectionResetError:
                pass
        assert s.request("GET", "/v1/models", timeout=10)[0] == 200
    finally:
        for c in idle:
            c.close()
        s.stop()


def _db_size(home: Path) -> int:
    db = home / "data" / "vetted.sqlite3"
    return sum(p.stat().st_size for p in (db, db.with_name(db.name + "-wal")) if p.exists())


def test_a_huge_model_id_is_400_and_never_reaches_the_audit(server) -> None:
    """F3: a 4 MiB model id went into the audit log's reason, on every request."""
    huge = "x" * (4 * 1024 * 1024 - 200)
    before = _db_size(server.home)
    for path, doc in (("/v1/completions", {"model": huge, "prompt": "hi"}),
                      ("/v1/chat/completions", {"model": huge, "messages": [{"role": "user", "content": "hi"}]}),
                      ("/v1/embeddings", {"model": huge, "input": "hi"}),
                      ("/v1/completions", {"model": "../../etc/passwd", "prompt": "hi"}),
                      ("/v1/completions", {"model": "x" * 201, "prompt": "hi"})):
        status, _, body = server.request("POST", path, doc)
        err = error_of(body)
        assert status == 400 and err["param"] == "model", (path, body[:200])
        assert len(body) < 1000
    status, _, body = server.request("GET", "/v1/models/" + "y" * 5000)
    assert status == 404 and len(body) < 1000
    assert _db_size(server.home) - before < 64 * 1024
    assert all(len(r["reason"] or "") < 2000 and len(r["subject"] or "") < 1000 for r in audit_rows(server.home))


def test_cors_origin_must_be_a_web_origin(tmp_path) -> None:
    """F4: `null` (any sandboxed page or file://) and `*` were accepted as allowed origins."""
    env = {"VETTED_HOME": str(tmp_path / "h")}
    for bad in ("null", "*", "https://*.example.org", "https://tool.example.org/app", "tool.example.org"):
        try:
            out = run_cli("serve", "--port", "0", "--cors-origin", bad, env=env, timeout=30)
        except subprocess.TimeoutExpired:
            pytest.fail(f"vetted serve started with --cors-origin {bad}")
        assert out.returncode == 2 and "not a web origin" in out.stderr, (bad, out.stdout, out.stderr)
    config = tmp_path / "h" / "config"
    config.mkdir(parents=True, exist_ok=True)
    (config / "api.json").write_text(json.dumps({"cors_origins": ["null"]}))
    try:
        out = run_cli("serve", "--port", "0", env=env, timeout=30)
    except subprocess.TimeoutExpired:
        pytest.fail("vetted serve started with cors_origins [\"null\"] in config/api.json")
    assert out.returncode != 0 and "web origins" in out.stdout + out.stderr, (out.stdout, out.stderr)


def test_malformed_bodies_are_openai_shaped_400s(server) -> None:
    """F5: each of these was a plain-text 500 (TypeError, ValueError, RecursionError,
    UnicodeEncodeError in the worker)."""
    chat = "/v1/chat/completions"
    cases = [
        (chat, json.dumps({"model": MODEL, "messages": [{"role": ["user"], "content": "x"}]}).encode(),
         "messages[0].role"),
        ("/v1/completions", json.dumps({"model": MODEL, "prompt": "hi", "logit_bias": {"\u00b2": 1}}).encode(),
         "logit_bias"),
        ("/v1/completions", b'{"model": "x", "prompt": "hi", "metadata": ' + b"[" * 100000 + b"]" * 100000 + b"}",
         None),
        ("/v1/completions", b'{"model": "x", "prompt": "hi", "metadata": ' + b"[" * 500 + b"]" * 500 + b"}",
         "metadata"),
        ("/v1/completions", b'{"model": "%s", "prompt": "\\ud800", "max_tokens": 2}' % MODEL.encode(), "prompt"),
        (chat, b'{"model": "%s", "messages": [{"role": "user", "content": "a\\udfffb"}], "max_tokens": 2}'
         % MODEL.encode(), "messages"),
    ]
    for path, body, param in cases:
        status, headers, reply = server.request("POST", path, body)
        assert status == 400 and headers["content-type"] == "application/json", (body[:80], reply[:200])
        err = error_of(reply)
        assert err["type"] == "invalid_request_error" and err["param"] == param, (body[:80], err)
    assert server.worker_pids() == []  # none of them reached the engine


def test_an_unexpected_failure_is_an_openai_shaped_500_without_its_text() -> None:
    """The catch-all: a bug answers in OpenAI's shape, and its message stays in the log."""
    import asyncio

    from vetted.api import routes

    class Broken:
        n_ctx = 4096

        def models(self) -> list:
            raise RuntimeError("secret internals /home/someone/path")

    app = routes.build(Broken())  # type: ignore[arg-type]
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
             "path": "/v1/models", "raw_path": b"/v1/models", "query_string": b"", "root_path": "",
             "headers": [(b"host", b"127.0.0.1:1")], "scheme": "http", "server": ("127.0.0.1", 1),
             "client": ("127.0.0.1", 2)}
    with pytest.raises(RuntimeError):  # Starlette re-raises after answering, so the server logs it
        asyncio.run(app(scope, receive, send))
    assert sent[0]["status"] == 500
    err = error_of(b"".join(m.get("body", b"") for m in sent[1:]))
    assert err["type"] == "server_error" and err["code"] == "internal_error"
    assert "secret" not in err["message"]


def test_new_data_folders_are_owner_only_and_existing_ones_are_left_alone(tmp_path) -> None:
    """The database (chats, audit), the token and the models live here: other local users
    must not be able to list or read them."""
    from vetted.paths import Locations

    parent = tmp_path / "mine"
    parent.mkdir(mode=0o755)
    os.chmod(parent, 0o755)
    kept = parent / "cache"
    kept.mkdir()
    os.chmod(kept, 0o751)  # the person's own, already there
    old = os.umask(0o022)
    try:
        loc = Locations(data=parent / "home" / "data", config=parent / "home" / "config", cache=kept,
                        site_config=parent / "site").ensure()
    finally:
        os.umask(old)
    for p in (loc.data, loc.config, loc.store, loc.quarantine):
        assert stat.S_IMODE(p.stat().st_mode) == 0o700, p
    assert stat.S_IMODE(kept.stat().st_mode) == 0o751
    assert stat.S_IMODE(parent.stat().st_mode) == 0o755
    assert not loc.site_config.exists()
