"""An OCI registry as a model source, against the real CNCF registry (Debian's
`docker-registry`, tests/oci_registry.py) on 127.0.0.1.

Models go in with the real `vetted-admin oci-push` and come out with the real `vetted pull`:
the catalog pins the manifest by digest, every layer must agree with the signed catalog
before a model byte is asked for, and the bytes go through the same transfer path as from
any source (cap, hashing, quarantine). A registry that serves other bytes, another
manifest or a longer blob is refused with nothing installed and nothing left behind.
"""

from __future__ import annotations

import dataclasses
import hashlib
import http.client
import http.server
import io
import json
import re
import threading
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest

from catalog_kit import build, rewrite_and_resign
from oci_registry import Registry, TokenServer, oci_registry, start_registry  # noqa: F401  (the fixture)
from vetted.authoring.oci_push import RegistryClient, local_blobs, manifest
from vetted.catalog.schema import parse
from vetted.core import Vetted
from vetted.policy import sources as policy_sources

REPO = "vetted/models"


@dataclass
class Pushed:
    catalog: Path  # the catalog whose only source is the registry, signed (not yet pinned)
    built: Path  # the catalog build-catalog wrote (its mirror/ holds the files)
    pub: Path
    source: dict[str, str]  # the oci source oci-push printed
    sha256: str
    size: int
    bundle_name: str


def push(cli, catalog: Path, key: tuple[Path, Path], registry: str, out: Path, version: int = 2,
         env: dict[str, str] | None = None) -> dict[str, str]:
    """`vetted-admin oci-push ... --key --out --version`, through its main() (the subprocess form is
    tested below); returns the oci source it printed."""
    from vetted.cli import admin

    stdout, stderr = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as mp, redirect_stdout(stdout), redirect_stderr(stderr):
        for k, v in (env or {}).items():
            mp.setenv(k, v)
        code = admin.main(["oci-push", "--catalog", str(catalog), "--registry", registry, "--repository", REPO,
                           "--key", str(key[0]), "--out", str(out), "--version", str(version)])
    assert code == 0, stdout.getvalue() + stderr.getvalue()
    model_id, _, src = stdout.getvalue().splitlines()[0].partition(": ")
    assert model_id == "tiny"
    return json.loads(src)


def only_oci(doc: dict[str, Any]) -> None:
    """The registry as the model's only source: nothing can come from the local mirror instead."""
    doc["models"][0]["sources"].pop("local")


def publish(tmp_path: Path, key: tuple[Path, Path], cli, registry: str, env: dict[str, str] | None = None) -> Pushed:
    built = build(tmp_path / "cat", key[0])
    source = push(cli, built, key, registry, tmp_path / "oci", env=env)
    catalog = tmp_path / "oci" / "catalog.json"
    rewrite_and_resign(catalog, key[0], only_oci)
    model = json.loads(catalog.read_text())["models"][0]
    assert model["sources"] == {"oci": source}
    f = model["files"][0]
    return Pushed(catalog, built, key[1], source, f["sha256"], f["size"], model["signature"]["bundle"])


@pytest.fixture
def pushed(tmp_path: Path, signing_key, cli, oci_registry: Registry) -> Pushed:
    return publish(tmp_path, signing_key, cli, oci_registry.url)


def pin(cli, p: Pushed) -> None:
    r = cli("catalog", "add", str(p.catalog), "--key", str(p.pub))
    assert r.returncode == 0, r.stdout + r.stderr


def assert_nothing_installed(loc, cli) -> None:
    store = loc.store / "sha256"
    assert not (store.exists() and [x for x in store.rglob("*") if x.is_file()])
    assert list(loc.quarantine.glob("*.part")) == []  # wrong bytes are never kept for a resume
    assert Vetted(loc).models() == []


def blob_gets(reg: Registry, digest: str) -> list[tuple[str, str, int]]:
    return [r for r in reg.requests() if r[0] == "GET" and r[1].endswith(f"/blobs/{digest}")]


# -- (a) the journey ----------------------------------------------------------------------------


def test_a_model_pushed_to_a_registry_installs_verified_from_it(tmp_path, loc, signing_key, cli, pushed,
                                                                 oci_registry) -> None:
    src = pushed.source
    assert src["registry"] == oci_registry.url and src["repository"] == REPO
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", src["manifest"])
    # the registry holds exactly what oci-push said: the manifest by digest and by the model's tag
    status, headers, raw = oci_registry.get(f"/v2/{REPO}/manifests/tiny",
                                            {"Accept": "application/vnd.oci.image.manifest.v1+json"})
    assert status == 200 and headers["docker-content-digest"] == src["manifest"]
    doc = json.loads(raw)
    assert doc["artifactType"] == "application/vnd.vetted.model.v1"
    assert doc["config"]["mediaType"] == "application/vnd.oci.empty.v1+json"
    assert [(x["mediaType"], x["annotations"]["org.opencontainers.image.title"], x["digest"], x["size"])
            for x in doc["layers"]] == [
        ("application/vnd.vetted.gguf.v1", "tiny.gguf", f"sha256:{pushed.sha256}", pushed.size),
        ("application/vnd.vetted.oms-bundle.v1+json", pushed.bundle_name, doc["layers"][1]["digest"],
         (pushed.built.parent / "mirror" / pushed.bundle_name).stat().st_size)]

    pin(cli, pushed)
    r = cli("pull", "tiny")
    assert r.returncode == 0, r.stdout + r.stderr
    label = f"oci {oci_registry.url}/{REPO}@{src['manifest'][:19]}"
    assert f"verified: tiny.gguf sha256 {pushed.sha256} ({pushed.size} bytes) matches catalog org.test.catalog v2" \
        in r.stdout
    assert f"installed: tiny from {label}" in r.stdout
    models = json.loads(cli("models", "--json").stdout)
    assert [(m["id"], m["state"], m["files"]) for m in models] == [("tiny", "verified", {"tiny.gguf": pushed.sha256})]
    stored = loc.store / "sha256" / pushed.sha256[:2] / pushed.sha256
    assert stored.is_file() and stored.stat().st_size == pushed.size
    row = [x for x in Vetted(loc).audit_entries() if x["action"] == "model.install"][-1]
    assert (row["subject"], row["result"], row["details"]["source"]) == ("tiny", "accepted", label)
    # the bytes came from the registry, by digest, once each
    assert len(blob_gets(oci_registry, f"sha256:{pushed.sha256}")) == 1
    assert len(blob_gets(oci_registry, doc["layers"][1]["digest"])) == 1


def test_pushing_again_uploads_nothing_and_yields_the_same_manifest(tmp_path, signing_key, cli, pushed,
                                                                      oci_registry) -> None:
    r = cli("oci-push", "--catalog", str(pushed.built), "--registry", oci_registry.url, "--repository", REPO,
            tool="vetted-admin")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [f"tiny: {json.dumps(pushed.source)}"]
    assert "pushed 0 new blob(s)" in r.stderr


def test_an_interrupted_download_resumes_from_the_registry_with_a_range(loc, cli, pushed, oci_registry) -> None:
    """A partial left by an earlier attempt is continued with HTTP Range, which the registry answers with 206."""
    half = pushed.size // 2
    model = (pushed.built.parent / "mirror" / "tiny.gguf").read_bytes()
    (loc.quarantine / f"{pushed.sha256}.part").write_bytes(model[:half])
    pin(cli, pushed)
    r = cli("pull", "tiny")
    assert r.returncode == 0, r.stdout + r.stderr
    assert blob_gets(oci_registry, f"sha256:{pushed.sha256}") == [
        ("GET", f"/v2/{REPO}/blobs/sha256:{pushed.sha256}", 206)]
    stored = loc.store / "sha256" / pushed.sha256[:2] / pushed.sha256
    assert stored.read_bytes() == model


# -- (b)–(d) a registry that serves something else ----------------------------------------------


def test_a_registry_serving_altered_blob_bytes_is_refused_and_nothing_is_kept(loc, cli, pushed,
                                                                              oci_registry) -> None:
    data = oci_registry.blob_data(f"sha256:{pushed.sha256}")
    raw = bytearray(data.read_bytes())
    raw[len(raw) // 2] ^= 0xFF  # same size, one byte changed
    data.write_bytes(bytes(raw))
    pin(cli, pushed)
    r = cli("pull", "tiny")
    assert r.returncode == 1, r.stdout + r.stderr
    assert r.stdout.startswith("refused: pull of tiny: oci ")
    assert f"downloaded tiny.gguf from oci {oci_registry.url}/{REPO}" in r.stdout
    assert f"the signed catalog says {pushed.sha256} ({pushed.size} bytes)" in r.stdout
    assert_nothing_installed(loc, cli)
    row = [x for x in Vetted(loc).audit_entries() if x["action"] == "model.pull"][-1]
    assert row["result"] == "refused" and "sha256" in row["reason"]


def test_a_registry_serving_another_manifest_under_the_pinned_digest_is_refused_before_any_model_byte(
        loc, cli, pushed, oci_registry) -> None:
    stored = oci_registry.blob_data(pushed.source["manifest"])
    doc = json.loads(stored.read_bytes())
    doc["annotations"] = {"org.opencontainers.image.description": "swapped"}  # any other manifest
    swapped = json.dumps(doc).encode()
    stored.write_bytes(swapped)
    pin(cli, pushed)
    r = cli("pull", "tiny")
    assert r.returncode == 1, r.stdout + r.stderr
    got = "sha256:" + hashlib.sha256(swapped).hexdigest()
    assert f"manifest {pushed.source['manifest']} in {oci_registry.url} repository {REPO}: the registry served " \
           f"a manifest whose digest is {got}" in r.stdout
    assert "the registry serves another manifest than the signed catalog pins" in r.stdout
    assert blob_gets(oci_registry, f"sha256:{pushed.sha256}") == []  # not one model byte was asked for
    assert_nothing_installed(loc, cli)


def test_a_manifest_that_lists_another_size_is_refused_before_any_model_byte(tmp_path, loc, signing_key, cli,
                                                                             pushed, oci_registry) -> None:
    """The catalog (signed) pins a manifest that disagrees with it about the file's size."""
    entry = parse(pushed.built.read_bytes(), "built").models[0]
    layers = local_blobs(pushed.built, entry)
    layers[0] = dataclasses.replace(layers[0], size=pushed.size + 1)
    raw = manifest(layers)
    digest = "sha256:" + hashlib.sha256(raw).hexdigest()
    RegistryClient(oci_registry.url, REPO).put_manifest(digest, raw)  # the registry takes it as is

    def point_at_it(doc: dict[str, Any]) -> None:
        doc["models"][0]["sources"]["oci"]["manifest"] = digest

    rewrite_and_resign(pushed.catalog, signing_key[0], point_at_it)
    pin(cli, pushed)
    r = cli("pull", "tiny")
    assert r.returncode == 1, r.stdout + r.stderr
    assert f"manifest {digest} in {oci_registry.url} repository {REPO}: lists tiny.gguf " \
           f"(sha256:{pushed.sha256[:16]}…) with size {pushed.size + 1}, the signed catalog declares {pushed.size}" \
        in r.stdout
    assert blob_gets(oci_registry, f"sha256:{pushed.sha256}") == []
    assert_nothing_installed(loc, cli)


def test_a_manifest_without_the_model_layer_is_refused(tmp_path, loc, signing_key, cli, pushed,
                                                       oci_registry) -> None:
    entry = parse(pushed.built.read_bytes(), "built").models[0]
    raw = manifest(local_blobs(pushed.built, entry)[1:])  # the signature only
    digest = "sha256:" + hashlib.sha256(raw).hexdigest()
    RegistryClient(oci_registry.url, REPO).put_manifest(digest, raw)
    rewrite_and_resign(pushed.catalog, signing_key[0],
                       lambda doc: doc["models"][0]["sources"]["oci"].update(manifest=digest))
    pin(cli, pushed)
    r = cli("pull", "tiny")
    assert r.returncode == 1, r.stdout + r.stderr
    assert f"lists no layer sha256:{pushed.sha256} for tiny.gguf" in r.stdout
    assert_nothing_installed(loc, cli)


def test_a_blob_larger_than_the_signed_size_is_refused_by_the_cap(loc, cli, pushed, oci_registry) -> None:
    data = oci_registry.blob_data(f"sha256:{pushed.sha256}")
    data.write_bytes(data.read_bytes() + b"\0" * 4096)
    pin(cli, pushed)
    r = cli("pull", "tiny")
    assert r.returncode == 1, r.stdout + r.stderr
    assert f"server offers {pushed.size + 4096} bytes, the signed catalog declares {pushed.size}" in r.stdout
    assert_nothing_installed(loc, cli)


# -- (e) the organisation's offline rule --------------------------------------------------------


def test_the_organisation_offline_rule_skips_the_registry_with_a_reason(tmp_path, loc, signing_key, cli,
                                                                        monkeypatch, oci_registry) -> None:
    if policy_sources.LINUX_PATH.exists():
        pytest.fail(f"{policy_sources.LINUX_PATH} exists on this machine; the test needs it absent")
    built = build(tmp_path / "cat", signing_key[0])
    push(cli, built, signing_key, oci_registry.url, tmp_path / "cat" / "out", version=2)  # keeps mirror/
    catalog = tmp_path / "cat" / "out" / "catalog.json"
    assert json.loads(catalog.read_text())["models"][0]["sources"].keys() == {"local", "oci"}
    assert cli("catalog", "add", str(catalog), "--key", str(signing_key[1])).returncode == 0
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({"schema": "vetted.policy/1", "network": {"mode": "offline"}}))
    policy.chmod(0o600)
    before = len(oci_registry.requests())
    r = cli("pull", "tiny", env={policy_sources.EXTRA_ENV: str(policy)})
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"not using OCI registry {oci_registry.url} ({REPO}): the organisation keeps this app offline " \
           "(rule network.mode" in r.stderr
    assert f"installed: tiny from local folder {catalog.parent / 'mirror'}" in r.stdout
    assert oci_registry.requests()[before:] == []  # the registry was not contacted at all


# -- (f) the catalog's oci source is strict -----------------------------------------------------


@pytest.mark.parametrize("field,value,found", [
    ("manifest", "latest", "manifest 'latest' must be pinned by digest (sha256:<64 hex digits>), not a tag"),
    ("manifest", "sha256:" + "A" * 64, "must be pinned by digest"),
    ("registry", "http://registry.example", "registry 'http://registry.example' must be an https:// URL "
                                            "(plain http only on loopback)"),
    ("repository", "Vetted/Models", "repository 'Vetted/Models' is not an OCI repository name"),
    ("repository", "vetted//models", "is not an OCI repository name"),
    ("tag", "latest", "Extra inputs are not permitted"),
])
def test_a_catalog_with_a_bad_oci_source_is_refused_naming_the_field(tmp_path, signing_key, cli, field, value,
                                                                     found) -> None:
    catalog = build(tmp_path / "cat", signing_key[0])
    good = {"registry": "https://registry.example", "repository": "vetted/models", "manifest": "sha256:" + "0" * 64}

    def bad(doc: dict[str, Any]) -> None:
        doc["models"][0]["sources"] = {"oci": {**good, field: value}}

    rewrite_and_resign(catalog, signing_key[0], bad)
    assert cli("catalog", "add", str(catalog), "--key", str(signing_key[1])).returncode == 0
    r = cli("catalog", "--catalog", str(catalog))
    assert r.returncode == 1, r.stdout + r.stderr
    assert f"models.0.sources.oci.{field}: " in r.stdout and found in r.stdout


def test_an_oci_source_alone_is_enough_and_pins_only_digests() -> None:
    from vetted.catalog.schema import Sources

    s = Sources.model_validate({"oci": {"registry": "https://registry.example/base", "repository": "a/b-c",
                                        "manifest": "sha256:" + "f" * 64}}, strict=True)
    assert s.oci is not None and s.oci.repository == "a/b-c"
    with pytest.raises(ValueError, match="at least one source \\(huggingface, oci, mirrors or local\\)"):
        Sources.model_validate({}, strict=True)


def test_oci_push_refuses_a_target_a_catalog_could_not_name(tmp_path, signing_key, cli) -> None:
    catalog = build(tmp_path / "cat", signing_key[0])
    r = cli("oci-push", "--catalog", str(catalog), "--registry", "http://registry.example", "--repository", REPO,
            tool="vetted-admin")
    assert r.returncode == 2 and "must be an https:// URL (plain http only on loopback)" in r.stderr
    r = cli("oci-push", "--catalog", str(catalog), "--registry", "https://127.0.0.1:9", "--repository", REPO,
            "--key", str(signing_key[0]), tool="vetted-admin")
    assert r.returncode == 2 and "--key needs --out and --version" in r.stderr
    r = cli("oci-push", "--catalog", str(catalog), "--registry", "https://127.0.0.1:9", "--repository", REPO,
            "--models", "nope", tool="vetted-admin")
    assert r.returncode == 2 and "has no model nope" in r.stderr
    r = cli("oci-push", "--catalog", str(catalog), "--registry", "https://127.0.0.1:9", "--repository", REPO,
            "--key", str(signing_key[0]), "--out", str(tmp_path / "o"), "--version", "1", tool="vetted-admin")
    assert r.returncode == 2 and "--version: 1 is not above the catalog's version 1" in r.stderr
    (catalog.parent / "mirror" / "tiny.gguf").write_bytes(b"GGUF other bytes")
    r = cli("oci-push", "--catalog", str(catalog), "--registry", "https://127.0.0.1:9", "--repository", REPO,
            tool="vetted-admin")  # never pushes bytes the catalog does not sign (and nothing was contacted)
    assert r.returncode == 2 and "the catalog signs" in r.stderr and "push the very bytes the catalog names" in r.stderr


# -- the registry token flow, and a blob redirected to storage ----------------------------------


class _Front:
    """Stands in front of the registry like a CDN-backed one does: blob GETs get a 307 to a
    "storage" origin (another port) that serves the blob from the registry's disk; every
    other request is passed through. Both record the Authorization header they saw."""

    BLOB = re.compile(r"^/v2/.+/blobs/(sha256:[0-9a-f]{64})$")

    def __init__(self, reg: Registry) -> None:
        self.seen: list[tuple[str, str, str | None]] = []  # (origin, path, Authorization)
        front = self

        class Storage(http.server.BaseHTTPRequestHandler):
            def log_message(self, *_a: Any) -> None:
                pass

            def do_GET(self) -> None:
                front.seen.append(("storage", self.path, self.headers.get("Authorization")))
                body = reg.blob_data(self.path[1:].split("?")[0]).read_bytes()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        class Front(http.server.BaseHTTPRequestHandler):
            def log_message(self, *_a: Any) -> None:
                pass

            def forward(self) -> None:
                front.seen.append(("registry", self.path, self.headers.get("Authorization")))
                m = _Front.BLOB.match(self.path)
                if self.command == "GET" and m:
                    self.send_response(307)
                    self.send_header("Location", f"{front.storage_url}/{m.group(1)}?X-Amz-Signature=abc")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                conn = http.client.HTTPConnection("127.0.0.1", reg.port, timeout=30)
                conn.request(self.command, self.path, body=body or None, headers=dict(self.headers))
                resp = conn.getresponse()
                data = resp.read()
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in ("connection", "transfer-encoding", "content-length"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
                conn.close()

            do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = forward

        self.servers = [http.server.ThreadingHTTPServer(("127.0.0.1", 0), h) for h in (Front, Storage)]
        for s in self.servers:
            s.daemon_threads = True
            threading.Thread(target=s.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.servers[0].server_address[1]}"
        self.storage_url = f"http://127.0.0.1:{self.servers[1].server_address[1]}"

    def close(self) -> None:
        for s in self.servers:
            s.shutdown()
            s.server_close()


@pytest.fixture
def guarded(tmp_path: Path) -> Iterator[tuple[Registry, TokenServer, _Front]]:
    """A registry behind the token flow (only alice gets a token), fronted by a redirecting proxy."""
    tokens = TokenServer(tmp_path / "tokens", {"alice": "s3cret"})
    reg = start_registry(tmp_path / "registry", auth=tokens.auth())
    front = _Front(reg)
    try:
        yield reg, tokens, front
    finally:
        front.close()
        reg.close()
        tokens.close()


def test_token_auth_sends_credentials_only_to_the_token_service_and_the_token_never_to_storage(
        tmp_path, loc, signing_key, cli, guarded) -> None:
    reg, tokens, front = guarded
    alice = {"VETTED_OCI_USERNAME": "alice", "VETTED_OCI_PASSWORD": "s3cret", "VETTED_OCI_REGISTRY": front.url}
    anonymous = cli("oci-push", "--catalog", str(build(tmp_path / "cat0", signing_key[0])), "--registry",
                    front.url, "--repository", REPO, tool="vetted-admin")
    assert anonymous.returncode == 1 and "answered HTTP 401 without a token" in anonymous.stderr
    p = publish(tmp_path, signing_key, cli, front.url, env=alice)
    pin(cli, p)

    denied = cli("pull", "tiny")  # no credentials: the token service refuses, and the pull says what to set
    assert denied.returncode == 1, denied.stdout + denied.stderr
    assert "token for" in denied.stdout and "HTTP 401" in denied.stdout
    assert "set VETTED_OCI_USERNAME and VETTED_OCI_PASSWORD" in denied.stdout
    assert_nothing_installed(loc, cli)
    # credentials issued for another registry are not offered to this one
    tokens.requests.clear()
    elsewhere = cli("pull", "tiny", env={**alice, "VETTED_OCI_REGISTRY": "https://registry.example.org"})
    assert elsewhere.returncode == 1
    assert "VETTED_OCI_USERNAME is for https://registry.example.org (from VETTED_OCI_REGISTRY), not" in elsewhere.stdout
    assert all(t.authorization is None for t in tokens.requests)
    assert_nothing_installed(loc, cli)

    front.seen.clear()
    tokens.requests.clear()
    r = cli("pull", "tiny", env=alice)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"installed: tiny from oci {front.url}/{REPO}@" in r.stdout
    # the credentials went to the token service only, as Basic; the registry got the token
    assert tokens.requests and all(t.authorization and t.authorization.startswith("Basic ")
                                   for t in tokens.requests)
    assert tokens.requests[0].query["scope"] == [f"repository:{REPO}:pull"]
    registry_side = [s for s in front.seen if s[0] == "registry"]
    assert registry_side[0][2] is None  # first ask anonymously: the 401 says where the token comes from
    assert all(auth and auth.startswith("Bearer ") for _o, _p, auth in registry_side[1:])
    assert len([s for s in registry_side if "/blobs/" in s[1]]) == 2  # bundle and model, both redirected
    # ...and the token never followed a blob to the storage origin
    storage_side = [s for s in front.seen if s[0] == "storage"]
    assert [path.split("?")[0] for _o, path, _a in storage_side] == [
        f"/sha256:{d}" for d in ([_bundle_digest(p)] + [p.sha256])]
    assert [auth for _o, _p, auth in storage_side] == [None, None]
    assert "s3cret" not in json.dumps([row for row in Vetted(loc).audit_entries()])


class _Collector:
    """A "registry" that answers every request 401 Basic and keeps the Authorization it gets:
    what a catalog signed by someone else could name to collect the organisation's password."""

    def __init__(self) -> None:
        import http.server

        self.seen: list[str | None] = []
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            def log_message(self, *_a) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                outer.seen.append(self.headers.get("Authorization"))
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="registry"')
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


def test_a_catalog_cannot_send_the_organisations_registry_password_to_a_registry_it_names(
        tmp_path, loc, signing_key, cli, oci_registry) -> None:
    """The credentials belong to the registry VETTED_OCI_REGISTRY names; a third party's
    catalog pointing at its own "registry" gets nothing (without the binding it got the
    password in clear, as HTTP Basic)."""
    collector = _Collector()
    try:
        cat = build(tmp_path / "evil", signing_key[0])
        doc = json.loads(cat.read_text())
        doc["models"][0]["sources"] = {"oci": {"registry": collector.url, "repository": "x/y",
                                               "manifest": "sha256:" + "0" * 64}}
        cat.write_text(json.dumps(doc))
        from vetted.authoring.publish import sign_file_or_folder

        sign_file_or_folder(cat, signing_key[0], cat.with_name("catalog.json.sig"))
        assert cli("catalog", "add", str(cat), "--key", str(signing_key[1])).returncode == 0
        secret = {"VETTED_OCI_USERNAME": "robot$org-reader", "VETTED_OCI_PASSWORD": "ORG-SECRET"}
        for extra in ({}, {"VETTED_OCI_REGISTRY": oci_registry.url}):
            r = cli("pull", "tiny", env={**secret, **extra})
            assert r.returncode == 1, r.stdout + r.stderr
            assert "asks for a user name and password" in r.stdout and "so it was not sent" in r.stdout
        assert collector.seen and collector.seen == [None] * len(collector.seen)
        assert_nothing_installed(loc, cli)
    finally:
        collector.server.shutdown()
        collector.server.server_close()


def _bundle_digest(p: Pushed) -> str:
    return hashlib.sha256((p.built.parent / "mirror" / p.bundle_name).read_bytes()).hexdigest()


# -- the parsers, on what a hostile registry could send ----------------------------------------


def test_manifest_and_challenge_parsing_is_strict() -> None:
    from vetted.fetch.oci import parse_challenge, parse_manifest

    layer = {"mediaType": "application/vnd.vetted.gguf.v1", "digest": "sha256:" + "a" * 64, "size": 5,
             "annotations": {"org.opencontainers.image.title": "m.gguf"}}
    ok = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "layers": [layer]}
    [parsed] = parse_manifest(json.dumps(ok).encode())
    assert (parsed.digest, parsed.size, parsed.title) == ("sha256:" + "a" * 64, 5, "m.gguf")
    bad = [
        ({**ok, "mediaType": "application/vnd.oci.image.index.v1+json"}, "is not an image manifest"),
        ({**ok, "schemaVersion": "2"}, "schemaVersion 2"),
        ({**ok, "layers": {"0": layer}}, "'layers' is not a list"),
        ({**ok, "layers": [{**layer, "size": True}]}, "layers.0.size is not a size"),
        ({**ok, "layers": [{**layer, "size": -1}]}, "layers.0.size is not a size"),
        ({**ok, "layers": [{**layer, "digest": "sha256:../../x"}]}, "layers.0.digest is not a digest"),
        ({**ok, "layers": [{**layer, "annotations": {"org.opencontainers.image.title": 1}}]}, "annotations"),
    ]
    for doc, found in bad:
        with pytest.raises(ValueError, match=re.escape(found)):
            parse_manifest(json.dumps(doc).encode())
    with pytest.raises(ValueError, match="not JSON"):
        parse_manifest(b"\xff{")
    assert parse_challenge('Bearer realm="https://auth.example/token",service="registry.example",'
                           'scope="repository:a/b:pull"') == (
        "bearer", {"realm": "https://auth.example/token", "service": "registry.example",
                   "scope": "repository:a/b:pull"})
    assert parse_challenge('Basic realm="Registry Realm"') == ("basic", {"realm": "Registry Realm"})
