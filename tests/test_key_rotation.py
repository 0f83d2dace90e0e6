"""An organisation rotates its catalog key, end to end: old → old and new → new.

The organisation's policy (through `VETTED_POLICY_EXTRA`) pins its catalog at one location —
served by a plain web server on 127.0.0.1, or a file on this machine — with the signers it
trusts; it publishes with the real `vetted-admin` and people use the real `vetted`. Loads of
an installed model go through the application object with the fake engine (the same gate
the CLI and GUI use).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from test_mirror import static_server
from tiny_gguf import write_gguf
from vetted.authoring.publish import generate_key
from vetted.policy import sources as policy_sources
from vetted.policy.effective import PolicyRefused


pytestmark = pytest.mark.usefixtures("no_machine_policy")  # conftest: policies come only from the tests


@dataclass
class Org:
    """The organisation's publishing side: one catalog location, keys OLD and NEW."""

    tmp: Path
    site: Path  # what the web server (or the file location) holds
    location: str  # what the policy pins
    mirror_url: str | None  # where the model files are served, for an http location
    old: tuple[Path, Path]
    new: tuple[Path, Path]
    cli: object
    monkeypatch: pytest.MonkeyPatch

    def model(self, model_id: str) -> dict:
        src = self.tmp / "src" / f"{model_id}.gguf"
        if not src.exists():  # written once: the published copy is a hard link to it
            src.parent.mkdir(exist_ok=True)
            write_gguf(src, chat_template="{% for m in messages %}{{ m.content }}{% endfor %}",
                       extra={"test.model": model_id})
        sources = {"local": ["mirror"]} | ({"mirrors": [self.mirror_url]} if self.mirror_url else {})
        return {"id": model_id, "name": model_id.upper(), "publisher": "Example Org", "license": "MIT",
                "path": str(src), "sources": sources}

    def publish(self, version: int, key: tuple[Path, Path], model_ids: list[str]) -> None:
        """`vetted-admin build-catalog` into the served folder, signed with `key`."""
        spec = self.tmp / f"spec-v{version}.json"
        spec.write_text(json.dumps({"id": "org.example.approved", "name": "Approved models",
                                    "publisher": "Example Org", "version": version,
                                    "models": [self.model(i) for i in model_ids]}))
        r = self.cli("build-catalog", str(spec), "--out", str(self.site), "--key", str(key[0]), tool="vetted-admin")
        assert r.returncode == 0, r.stderr

    def resign(self, key: tuple[Path, Path]) -> None:
        """The catalog as published, its detached signature made again with `key`."""
        r = self.cli("sign", str(self.site / "catalog.json"), "--key", str(key[0]), "--out",
                     str(self.site / "catalog.json.sig"), tool="vetted-admin")
        assert r.returncode == 0, r.stderr

    def saved(self) -> dict[str, bytes]:
        return {n: (self.site / n).read_bytes() for n in ("catalog.json", "catalog.json.sig")}

    def serve(self, saved: dict[str, bytes]) -> None:
        """Someone puts an earlier, genuinely signed issue back where the catalog lives."""
        for name, data in saved.items():
            (self.site / name).write_bytes(data)

    def allow(self, *keys: tuple[Path, Path]) -> dict[str, str]:
        """The policy deployed now: the catalog with exactly these signers."""
        name = "-".join(k[0].parent.name for k in keys)
        path = self.tmp / "policies" / f"{name}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"schema": "vetted.policy/1", "catalogs": {"allowed": [{
            "location": self.location,
            "signers": [{"kind": "key", "public_key_pem": k[1].read_text()} for k in keys]}],
            "users_may_add": False}}))
        os.chmod(path, 0o600)
        self.monkeypatch.setenv(policy_sources.EXTRA_ENV, str(path))  # for the in-process app
        return {policy_sources.EXTRA_ENV: str(path)}


@pytest.fixture(params=["http", "file"])
def org(request, tmp_path, cli, monkeypatch) -> Iterator[Org]:
    site = tmp_path / "site"
    old, new = generate_key(tmp_path / "old"), generate_key(tmp_path / "new")
    if request.param == "file":
        site.mkdir()
        yield Org(tmp_path, site, str(site / "catalog.json"), None, old, new, cli, monkeypatch)
        return
    with static_server(site) as (url, _):
        yield Org(tmp_path, site, f"{url}/catalog.json", f"{url}/mirror", old, new, cli, monkeypatch)


def fingerprint(key: tuple[Path, Path]) -> str:
    from vetted.trust.identity import PublicKey

    return PublicKey(key[1].read_bytes()).describe()


def audit_entries(cli) -> list[dict]:
    return json.loads(cli("audit", "--json").stdout)["entries"]


def runs(loc, model_id: str) -> bool:
    """Loads the installed model through the application object (fake engine) under the
    policy in force now; False when the policy refuses the load."""
    from fake_engine import FakeEngine
    from vetted.core import Vetted

    app = Vetted(loc, engine_factory=FakeEngine)
    conv = app.chats.create(model_id, "t")
    try:
        return app.chat_session().send(conv, "hi").message.status == "complete"
    except PolicyRefused:
        return False


def test_key_rotation_old_then_both_then_new(org: Org, cli, loc) -> None:
    old, new = org.old, org.new

    # 1. the policy pins OLD; the organisation publishes v1 with OLD
    env = org.allow(old)
    org.publish(1, old, ["m"])
    listed = cli("catalog", env=env)
    assert listed.returncode == 0 and f"v1, signed by {fingerprint(old)}" in listed.stdout, listed.stderr
    pulled = cli("pull", "m", env=env)
    assert pulled.returncode == 0, pulled.stdout + pulled.stderr
    assert runs(loc, "m")

    # 2. the policy lists OLD and NEW (deployed everywhere first); then v2 is signed with NEW
    env = org.allow(old, new)
    org.publish(2, new, ["m", "n"])
    listed = cli("catalog", env=env)
    assert listed.returncode == 0 and f"v2, signed by {fingerprint(new)}" in listed.stdout, listed.stdout
    assert cli("pull", "n", env=env).returncode == 0
    org.resign(old)  # the same v2, signed with OLD (a site still publishing with the old key)
    listed = cli("catalog", env=env)
    assert listed.returncode == 0 and f"v2, signed by {fingerprint(old)}" in listed.stdout, listed.stdout
    assert runs(loc, "m") and runs(loc, "n")

    # 3. the policy lists only NEW; v3 is signed with NEW
    env = org.allow(new)
    org.publish(3, new, ["m", "n"])
    listed = cli("catalog", env=env)
    assert listed.returncode == 0 and f"v3, signed by {fingerprint(new)}" in listed.stdout, listed.stdout
    v3 = org.saved()
    org.resign(old)  # the retired key is refused, and the refusal names the signer the policy wants
    retired = cli("catalog", env=env)
    assert retired.returncode == 1
    assert f"refused: signature of catalog {org.location}: Key mismatch" in retired.stdout, retired.stdout
    refusal = [e for e in audit_entries(cli) if e["action"] == "catalog.load"][-1]
    assert (refusal["result"], refusal["subject"], refusal["identity"]) == ("refused", org.location, fingerprint(new))
    org.serve(v3)

    # a model installed from the OLD-signed catalog no longer runs: its catalog signer is not pinned
    assert not runs(loc, "m")
    refused = cli("chat", "m", "--prompt", "hi", env=env)
    assert refused.returncode == 1
    assert (f"comes from catalog {org.location}, which the policy does not allow (or no longer allows with that "
            "signer)") in refused.stdout + refused.stderr, refused.stdout + refused.stderr
    assert runs(loc, "n")  # installed from the NEW-signed v2

    # pulling it again from the NEW-signed catalog makes it run again: the file is reused from
    # the store (re-hashed), its signature verified anew, and the NEW catalog signer recorded
    again = cli("pull", "m", env=env)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "installed: m" in again.stdout and "already installed" not in again.stdout
    assert runs(loc, "m")


def test_replaying_an_old_key_catalog_after_rotation_is_a_rollback(org: Org, cli, loc) -> None:
    """Stage 2 of a rotation: v2 signed with NEW was accepted; someone serves the v1 signed
    with OLD again. OLD is still pinned, and v1 is genuinely signed by it — but it is older
    than what this catalog's pinned signers already published: a rollback."""
    old, new = org.old, org.new
    env = org.allow(old)
    org.publish(1, old, ["m"])
    assert cli("catalog", env=env).returncode == 0
    v1 = org.saved()

    env = org.allow(old, new)
    org.publish(2, new, ["m", "n"])
    listed = cli("catalog", env=env)
    assert listed.returncode == 0 and "v2" in listed.stdout, listed.stdout

    org.serve(v1)
    replayed = cli("catalog", env=env)
    assert replayed.returncode == 1, replayed.stdout + replayed.stderr
    assert "v1 is older than v2" in replayed.stdout and "rollback" in replayed.stdout, replayed.stdout
