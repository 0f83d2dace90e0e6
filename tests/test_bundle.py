"""Air-gapped bundles: `vetted-admin bundle` writes one file, `vetted import` installs every
model it carries exactly as a pull would, or none.

Real files, the real CLI in subprocesses; each attack is a bundle an attacker (or a bad
copy) could hand over, and each must be refused with nothing installed, nothing left in
quarantine and the refusal in the audit log.
"""

from __future__ import annotations

import io
import json
import os
import socket
import tarfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from catalog_kit import build, make_model, rewrite_and_resign
from vetted.authoring.publish import generate_key, sign_file_or_folder
from vetted.policy import sources
from vetted.store import audit

MODELS = ("alpha", "beta")


pytestmark = pytest.mark.usefixtures("no_machine_policy")  # conftest: policies come only from the tests


@pytest.fixture
def org(tmp_path, signing_key):
    """The organisation's signed catalog of two models (distinct files) and its bundle."""
    models = [{"id": m, "name": m.title(), "publisher": "Org", "license": "MIT",
               "path": str(make_model(tmp_path / "src", name=f"{m}.gguf", size=300_000 + i))}
              for i, m in enumerate(MODELS)]
    cat = build(tmp_path / "org", signing_key[0], models=models)
    return cat


def make_bundle(cli, cat: Path, out: Path, *models: str) -> Path:
    """Through `vetted-admin bundle`, as an administrator makes one."""
    r = cli("bundle", "--catalog", str(cat), "--models", *(models or MODELS), "--out", str(out), tool="vetted-admin")
    assert r.returncode == 0, r.stderr
    assert f"wrote {out}" in r.stdout
    return out


def quick_bundle(cat: Path, out: Path, *models: str) -> Path:
    """The same writer in-process (the attack tests only need a good bundle to spoil)."""
    from vetted.authoring.bundle import write_bundle

    return write_bundle(cat, list(models or MODELS), out).path


def members(bundle: Path) -> dict[str, bytes]:
    with tarfile.open(bundle) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers()}


def write_tar(path: Path, items: list[tuple[str, bytes] | tarfile.TarInfo]) -> Path:
    """A tar built member by member (as an attacker would), in the given order."""
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for item in items:
            if isinstance(item, tarfile.TarInfo):
                tar.addfile(item)
            else:
                name, data = item
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return path


def rebuilt(bundle: Path, out: Path, change) -> Path:
    """The bundle's members, changed by `change(list of (name, bytes))`, written again."""
    items = list(members(bundle).items())
    change(items)
    return write_tar(out, items)


def nothing_installed(home: Path, cli) -> None:
    from vetted.store.db import open_db

    assert open_db(home / "data" / "vetted.sqlite3").execute("SELECT count(*) FROM installed_models").fetchone()[0] == 0
    store = home / "data" / "models"
    blobs = [p for p in store.rglob("*") if p.is_file() and "signatures" not in p.parts] if store.exists() else []
    assert blobs == []
    quarantine = home / "data" / "quarantine"
    parts = list(quarantine.glob("*.part")) if quarantine.exists() else []
    assert parts == []


def import_rows(home: Path) -> list[dict]:
    from vetted.store.db import open_db

    return [r for r in audit.entries(open_db(home / "data" / "vetted.sqlite3")) if r["action"] == "bundle.import"]


# -- the round trip ------------------------------------------------------------------------------


def test_a_bundle_round_trips_onto_a_fresh_data_dir_without_network(tmp_path, org, signing_key, cli, monkeypatch):
    bundle = make_bundle(cli, org, tmp_path / "org.vbundle")
    names = list(members(bundle))
    assert names[:3] == ["vetted-bundle.json", "catalog.json", "catalog.json.sig"]
    assert set(names[3:]) == {"models/alpha/alpha.gguf", "models/alpha/alpha.model.sig",
                              "models/beta/beta.gguf", "models/beta/beta.model.sig"}
    assert members(bundle)["catalog.json"] == org.read_bytes()  # the signed catalog, byte for byte

    # the far site: a fresh data dir, and no socket may connect anywhere
    from vetted.core import Vetted
    from vetted.paths import locations
    from vetted.trust.identity import PublicKey

    monkeypatch.setenv("VETTED_HOME", str(tmp_path / "far-site"))

    def no_network(*_a, **_k):
        raise AssertionError("the import tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    app = Vetted(locations().ensure())
    seen: list[tuple[str, int, int]] = []
    result = app.import_bundle(bundle, PublicKey(signing_key[1].read_bytes()),
                               progress=lambda name, done, total: seen.append((name, done, total)))
    assert sorted(m.model_id for m in result.installed) == ["alpha", "beta"] and result.already == []
    assert {name for name, _d, _t in seen} == {"alpha.gguf", "beta.gguf"}
    assert all(d == t for name, d, t in seen if (name, d, t) == seen[-1])
    for m in app.models():
        assert m.state == "verified" and m.source == "bundle org.vbundle"
        assert m.catalog_location == f"bundle:{bundle}"
        assert app.check(m.model_id, full=True).rehashed == [f"{m.model_id}.gguf"]
    rows = import_rows(tmp_path / "far-site")
    assert rows[-1]["result"] == "accepted" and "2 model(s) installed" in rows[-1]["reason"]
    monkeypatch.undo()


def test_import_through_the_cli_reports_each_model_and_a_second_import_changes_nothing(tmp_path, org, signing_key,
                                                                                     cli):
    bundle = make_bundle(cli, org, tmp_path / "org.vbundle", "beta")
    env = {"VETTED_HOME": str(tmp_path / "site")}
    r = cli("import", str(bundle), "--key", str(signing_key[1]), env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "verified: catalog org.test.catalog v1 signed by public key" in r.stdout
    assert "installed: beta" in r.stdout and "alpha" not in r.stdout
    again = cli("import", str(bundle), "--key", str(signing_key[1]), env=env)
    assert again.returncode == 0 and "already installed and verified: beta" in again.stdout
    # a pinned signer is enough: no TRUST options needed once the catalog's signer is pinned
    env2 = {"VETTED_HOME": str(tmp_path / "site2")}
    assert cli("catalog", "add", str(org), "--key", str(signing_key[1]), env=env2).returncode == 0
    pinned = cli("import", str(bundle), env=env2)
    assert pinned.returncode == 0 and "installed: beta" in pinned.stdout


def test_usage_errors_exit_2(tmp_path, org, signing_key, cli):
    env = {"VETTED_HOME": str(tmp_path / "site")}
    missing = cli("import", str(tmp_path / "nope.vbundle"), "--key", str(signing_key[1]), env=env)
    assert missing.returncode == 2 and "does not exist" in missing.stderr
    bundle = make_bundle(cli, org, tmp_path / "org.vbundle")
    no_signer = cli("import", str(bundle), env=env)
    assert no_signer.returncode == 2 and "no signer to check its catalog against" in no_signer.stderr
    half = cli("import", str(bundle), "--cert-chain", str(signing_key[1]), env=env)
    assert half.returncode == 2 and "--cert-chain needs --cert-identity" in half.stderr
    nothing_installed(tmp_path / "site", cli)


# -- attacks: each refused with nothing installed -------------------------------------------------


def _flip_last_model_byte(items):
    i = next(i for i, (n, _d) in enumerate(items) if n == "models/beta/beta.gguf")
    data = bytearray(items[i][1])
    data[len(data) // 2] ^= 0x01
    items[i] = (items[i][0], bytes(data))


def _other_signer(tmp_path):
    other = generate_key(tmp_path / "other-key")

    def change(items):
        i = next(i for i, (n, _d) in enumerate(items) if n == "catalog.json")
        cat = tmp_path / "foreign" / "catalog.json"
        cat.parent.mkdir()
        cat.write_bytes(items[i][1])
        sign_file_or_folder(cat, other[0], cat.with_name("catalog.json.sig"))
        j = next(j for j, (n, _d) in enumerate(items) if n == "catalog.json.sig")
        items[j] = ("catalog.json.sig", cat.with_name("catalog.json.sig").read_bytes())
    return change


def _edit_catalog(items):
    i = next(i for i, (n, _d) in enumerate(items) if n == "catalog.json")
    items[i] = ("catalog.json", items[i][1].replace(b'"Org"', b'"Evil"'))


def _traversal(name):
    def change(items):
        items.append((name, b"planted"))
    return change


def _replace_member(name, new_name):
    def change(items):
        i = next(i for i, (n, _d) in enumerate(items) if n == name)
        items[i] = (new_name, items[i][1])
    return change


def _duplicate(items):
    i = next(i for i, (n, _d) in enumerate(items) if n == "models/alpha/alpha.gguf")
    items.append(items[i])


def _unknown_model(items):
    i = next(i for i, (n, _d) in enumerate(items) if n == "vetted-bundle.json")
    index = json.loads(items[i][1])
    index["models"].append("gamma")
    items[i] = (items[i][0], json.dumps(index).encode())
    items.append(("models/gamma/gamma.gguf", b"GGUF" + b"\0" * 100))


def _bigger_file(items):
    i = next(i for i, (n, _d) in enumerate(items) if n == "models/beta/beta.gguf")
    items[i] = (items[i][0], items[i][1] + b"\0" * 4096)


def _drop_model_file(items):
    items[:] = [(n, d) for n, d in items if n != "models/beta/beta.gguf"]


ATTACKS = {
    "a changed byte in a model": (_flip_last_model_byte, "sha256"),
    "a catalog signed by someone else": (None, "signature of catalog"),
    "an edited catalog": (_edit_catalog, "the catalog was altered after signing"),
    "a ../ path": (_traversal("../escaped.txt"), "is not a name a bundle may hold"),
    "an absolute path": (_traversal("/tmp/vetted-bundle-escape.txt"), "is not a name a bundle may hold"),
    "a traversal inside models/": (_traversal("models/alpha/../../escaped.txt"), "is not a name a bundle may hold"),
    "a model file under another id": (_replace_member("models/beta/beta.gguf", "models/alpha/beta.gguf"), "lacks"),
    "a duplicate member": (_duplicate, "holds 'models/alpha/alpha.gguf' twice"),
    "a model the catalog does not list": (_unknown_model, "which its signed catalog"),
    "a file bigger than signed": (_bigger_file, "the signed catalog declares 300001"),
    "a missing model file": (_drop_model_file, "lacks models/beta/beta.gguf"),
    "a stray file": (_traversal("models/alpha/extra.bin"), "holds files no listed model needs"),
}


@pytest.mark.parametrize("attack", list(ATTACKS))
def test_hostile_bundles_are_refused_with_nothing_installed(tmp_path, org, signing_key, cli, attack):
    change, found = ATTACKS[attack]
    if change is None:
        change = _other_signer(tmp_path)
    good = quick_bundle(org, tmp_path / "org.vbundle")
    bad = rebuilt(good, tmp_path / "bad.vbundle", change)
    home = tmp_path / "site"
    r = cli("import", str(bad), "--key", str(signing_key[1]), env={"VETTED_HOME": str(home)})
    assert r.returncode == 1, r.stdout + r.stderr
    assert r.stdout.startswith("refused: ") and found in r.stdout, r.stdout
    nothing_installed(home, cli)
    assert not (tmp_path / "escaped.txt").exists() and not Path("/tmp/vetted-bundle-escape.txt").exists()
    from vetted.store.db import open_db

    rows = [r for r in audit.entries(open_db(home / "data" / "vetted.sqlite3"))
            if r["action"] in ("bundle.import", "catalog.load", "model.pull")]
    assert rows and rows[-1]["result"] == "refused"


def _link_member(kind: bytes):
    def make(tmp_path: Path, good: Path) -> Path:
        items: list = list(members(good).items())
        info = tarfile.TarInfo("models/alpha/alpha.gguf")
        info.type = kind
        info.linkname = "/etc/passwd"
        items = [i for i in items if i[0] != "models/alpha/alpha.gguf"] + [info]
        return write_tar(tmp_path / "bad.vbundle", items)
    return make


def _truncated(tmp_path: Path, good: Path) -> Path:
    data = good.read_bytes()
    bad = tmp_path / "bad.vbundle"
    bad.write_bytes(data[: len(data) - 200_000])  # cut inside the last model's bytes
    return bad


def _compressed(tmp_path: Path, good: Path) -> Path:
    import gzip

    bad = tmp_path / "bad.vbundle"
    bad.write_bytes(gzip.compress(good.read_bytes()))
    return bad


def _fifo(tmp_path: Path, good: Path) -> Path:
    bad = tmp_path / "bad.vbundle"
    os.mkfifo(bad)
    return bad


SHAPES = {
    "a symlink member": (_link_member(tarfile.SYMTYPE), "is not a plain file"),
    "a hard link member": (_link_member(tarfile.LNKTYPE), "is not a plain file"),
    "a truncated copy": (_truncated, "truncated"),
    "a compressed file": (_compressed, "is not a Vetted bundle (an uncompressed tar file)"),
}


@pytest.mark.parametrize("shape", list(SHAPES))
def test_malformed_bundles_are_refused_with_nothing_installed(tmp_path, org, signing_key, cli, shape):
    make, found = SHAPES[shape]
    bad = make(tmp_path, quick_bundle(org, tmp_path / "org.vbundle"))
    home = tmp_path / "site"
    r = cli("import", str(bad), "--key", str(signing_key[1]), env={"VETTED_HOME": str(home)})
    assert r.returncode == 1, r.stdout + r.stderr
    assert r.stdout.startswith("refused: ") and found in r.stdout, r.stdout
    nothing_installed(home, cli)
    assert import_rows(home)[-1]["result"] == "refused"


def test_a_fifo_is_not_read(tmp_path, org, signing_key, cli):
    bad = _fifo(tmp_path, tmp_path)
    r = cli("import", str(bad), "--key", str(signing_key[1]), env={"VETTED_HOME": str(tmp_path / "site")},
            timeout=30)
    assert r.returncode == 2 and "not a regular file" in r.stderr


def test_rollback_and_freeze(tmp_path, org, signing_key, cli):
    home = {"VETTED_HOME": str(tmp_path / "site")}
    v1 = make_bundle(cli, org, tmp_path / "v1.vbundle", "alpha")
    rewrite_and_resign(org, signing_key[0], lambda d: d.update(version=2))
    v2 = make_bundle(cli, org, tmp_path / "v2.vbundle", "alpha")
    assert cli("import", str(v2), "--key", str(signing_key[1]), env=home).returncode == 0
    old = cli("import", str(v1), "--key", str(signing_key[1]), env=home)
    assert old.returncode == 1 and "v1 is older than v2 already seen from this signer (rollback)" in old.stdout

    past = datetime.now(timezone.utc) - timedelta(days=2)
    rewrite_and_resign(org, signing_key[0], lambda d: d.update(
        version=3, issued=(past - timedelta(days=30)).isoformat(), expires=past.isoformat()))
    expired = make_bundle(cli, org, tmp_path / "v3.vbundle", "beta")
    r = cli("import", str(expired), "--key", str(signing_key[1]), env=home)
    assert r.returncode == 1 and "expired at" in r.stdout and "frozen" in r.stdout
    listed = json.loads(cli("models", "--json", env=home).stdout)
    assert [m["id"] for m in listed] == ["alpha"]  # installed before: still there, still usable


def test_all_or_nothing_when_the_second_model_is_bad(tmp_path, org, signing_key, cli):
    """The first model verifies and is staged; the second fails: neither is installed."""
    good = make_bundle(cli, org, tmp_path / "org.vbundle")
    bad = rebuilt(good, tmp_path / "bad.vbundle", _flip_last_model_byte)
    home = tmp_path / "site"
    r = cli("import", str(bad), "--key", str(signing_key[1]), env={"VETTED_HOME": str(home)})
    assert r.returncode == 1 and "alpha: copying into quarantine" in r.stderr
    nothing_installed(home, cli)


# -- the organisation's policy --------------------------------------------------------------------


def _policy(tmp_path: Path, doc: dict) -> dict[str, str]:
    p = tmp_path / "policies" / "policy.json"
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps({"schema": "vetted.policy/1", **doc}))
    os.chmod(p, 0o600)
    return {sources.EXTRA_ENV: str(p)}


def test_a_policy_can_forbid_imports(tmp_path, org, signing_key, cli):
    bundle = make_bundle(cli, org, tmp_path / "org.vbundle")
    env = {"VETTED_HOME": str(tmp_path / "site"), **_policy(tmp_path, {"imports": {"allowed": False}})}
    r = cli("import", str(bundle), "--key", str(signing_key[1]), env=env)
    assert r.returncode == 1 and "does not allow importing model bundles (rule imports.allowed" in r.stdout
    nothing_installed(tmp_path / "site", cli)


def test_a_policy_can_keep_imports_to_its_catalog_signers(tmp_path, org, signing_key, cli):
    key_pem = signing_key[1].read_text()
    policy = {"catalogs": {"allowed": [{"location": "https://models.example.org/catalog.json",
                                        "signers": [{"kind": "key", "public_key_pem": key_pem}]}]},
              "imports": {"only_catalog_signers": True}}
    env = {"VETTED_HOME": str(tmp_path / "site"), **_policy(tmp_path, policy)}
    # the organisation's signer: accepted with no TRUST option at all
    ours = make_bundle(cli, org, tmp_path / "org.vbundle", "alpha")
    r = cli("import", str(ours), env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    # a bundle signed by someone else is refused even when the person names that signer
    other = generate_key(tmp_path / "other")
    theirs_cat = build(tmp_path / "theirs", other[0], models=[
        {"id": "gamma", "name": "G", "publisher": "X", "license": "MIT",
         "path": str(make_model(tmp_path / "src2", name="gamma.gguf"))}])
    theirs = make_bundle(cli, theirs_cat, tmp_path / "theirs.vbundle", "gamma")
    r = cli("import", str(theirs), "--key", str(other[1]), env=env)
    assert r.returncode == 1 and "signature of catalog" in r.stdout
    assert [m["id"] for m in json.loads(cli("models", "--json", env=env).stdout)] == ["alpha"]


def test_a_model_imported_under_a_foreign_signer_stops_running_once_the_policy_limits_imports(
        tmp_path, org, signing_key, cli):
    """Imported before the policy came; the policy keeps imports to its catalogs' signers:
    the model no longer loads, naming the rule."""
    from vetted.core import Vetted
    from vetted.paths import locations
    from vetted.trust.identity import PublicKey

    bundle = make_bundle(cli, org, tmp_path / "org.vbundle", "alpha")
    app = Vetted(locations().ensure())
    app.import_bundle(bundle, PublicKey(signing_key[1].read_bytes()))
    other = generate_key(tmp_path / "org-key")
    env = _policy(tmp_path, {"catalogs": {"allowed": [{"location": "https://models.example.org/catalog.json",
                                                       "signers": [{"kind": "key",
                                                                    "public_key_pem": other[1].read_text()}]}]},
                             "imports": {"only_catalog_signers": True}})
    os.environ.update(env)
    try:
        from vetted.policy.effective import PolicyRefused

        managed = Vetted(locations())
        with pytest.raises(PolicyRefused, match=r"was imported from a bundle .* not signed by one of the "
                                                r"organisation's catalog signers \(rule imports.only_catalog_signers"):
            managed.gate().gate_load(managed.db, "alpha", "chat")
    finally:
        os.environ.pop(sources.EXTRA_ENV)
    Vetted(locations()).gate().gate_load(Vetted(locations()).db, "alpha", "chat")  # unmanaged again: it runs


def test_two_models_sharing_one_file_import_together(tmp_path, signing_key, cli):
    """Review finding: the second model re-staged the shared file's partial and the first
    model stayed installed when the import failed. Now the file is staged once, and both
    models install from it."""
    shared = make_model(tmp_path / "src", name="shared.gguf", size=250_000)
    models = [{"id": m, "name": m, "publisher": "Org", "license": "MIT", "path": str(shared)} for m in ("m1", "m2")]
    cat = build(tmp_path / "org", signing_key[0], models=models)
    bundle = quick_bundle(cat, tmp_path / "shared.vbundle", "m1", "m2")
    home = tmp_path / "site"
    r = cli("import", str(bundle), "--key", str(signing_key[1]), env={"VETTED_HOME": str(home)})
    assert r.returncode == 0, r.stdout + r.stderr
    assert "installed: m1" in r.stdout and "installed: m2" in r.stdout
    blobs = [p for p in (home / "data" / "models").rglob("*") if p.is_file() and "signatures" not in p.parts]
    assert len(blobs) == 1
    assert list((home / "data" / "quarantine").glob("*.part")) == []
    check = cli("check", "m2", "--full", env={"VETTED_HOME": str(home)})
    assert check.returncode == 0, check.stdout


def fail_second_install(monkeypatch) -> list[str]:
    """The second model's install fails as on a full disk; returns the ids install was called for."""
    from vetted.errors import StoreError
    from vetted.install import pull as pulling

    real, calls = pulling.install_staged, []

    def second_fails(*args, **kwargs):
        calls.append(args[3].id)
        if len(calls) == 2:
            raise StoreError("installing beta", "no space left on device")
        return real(*args, **kwargs)

    monkeypatch.setattr(pulling, "install_staged", second_fails)
    return calls


def test_a_failure_while_installing_rolls_back_what_the_import_installed(tmp_path, org, signing_key, loc,
                                                                        monkeypatch):
    """A disk that fills up (or a store someone tampers with) after the first model is in:
    the first is removed again, nothing is left in quarantine, and the refusal is audited."""
    from vetted.core import Vetted
    from vetted.errors import StoreError
    from vetted.trust.identity import PublicKey

    bundle = quick_bundle(org, tmp_path / "org.vbundle")
    calls = fail_second_install(monkeypatch)
    app = Vetted(loc)
    with pytest.raises(StoreError, match="no space left on device"):
        app.import_bundle(bundle, PublicKey(signing_key[1].read_bytes()))
    assert calls == ["alpha", "beta"]
    nothing_installed(loc.data.parent, None)
    rows = [r for r in audit.entries(app.db) if r["action"] in ("bundle.import", "model.remove")]
    assert [(r["action"], r["subject"], r["result"]) for r in rows[-2:]] == [
        ("model.remove", "alpha", "info"), ("bundle.import", str(bundle), "refused")]
    assert "rolled back" in rows[-2]["reason"] and "no space left on device" in rows[-1]["reason"]


def test_another_publisher_reusing_the_catalog_id_cannot_hold_back_an_import(tmp_path, org, signing_key, cli):
    """Review finding: with no TRUST option, the floors of every pinned catalog's signers
    were pooled, so a publisher pinned elsewhere at v999 under the same id blocked the
    organisation's bundles. Floors are per publisher (the signers pinned for one catalog)."""
    env = {"VETTED_HOME": str(tmp_path / "site")}
    evil_key = generate_key(tmp_path / "evil-key")
    evil = build(tmp_path / "evil", evil_key[0], version=999)  # same catalog id as the organisation's
    assert cli("catalog", "add", str(org), "--key", str(signing_key[1]), env=env).returncode == 0
    assert cli("catalog", "add", str(evil), "--key", str(evil_key[1]), env=env).returncode == 0
    assert cli("catalog", "list", "--catalog", str(evil), env=env).returncode == 0  # its v999 is on record
    r = cli("import", str(quick_bundle(org, tmp_path / "org.vbundle", "alpha")), env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "installed: alpha" in r.stdout


def test_a_failed_import_keeps_a_model_that_was_installed_before(tmp_path, org, signing_key, loc, monkeypatch):
    """Review finding: a model pulled from the catalog, then carried again by a bundle whose
    import failed, was purged by the rollback (record and store file)."""
    from vetted.core import Vetted
    from vetted.errors import StoreError
    from vetted.trust.identity import PublicKey

    app = Vetted(loc)
    app.pin_catalog(str(org), PublicKey(signing_key[1].read_bytes()))
    app.pull("alpha")
    before = app.models()[0]
    calls = fail_second_install(monkeypatch)
    with pytest.raises(StoreError):
        app.import_bundle(quick_bundle(org, tmp_path / "org.vbundle"), PublicKey(signing_key[1].read_bytes()))
    assert calls == ["alpha", "beta"]
    [after] = app.models()
    assert (after.model_id, after.catalog_location, after.files[0].sha256) == (
        "alpha", before.catalog_location, before.files[0].sha256)
    assert after.files[0].path.is_file()
    assert app.check("alpha", full=True).rehashed == ["alpha.gguf"]
