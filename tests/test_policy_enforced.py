"""Every rule of an organisation's policy, enforced through the real `vetted` command (and,
for loads, through the application object with the fake engine): real catalogs, real
signatures, real policy files. The policy comes through `VETTED_POLICY_EXTRA` (it can
only tighten; with no machine policy it is the policy in force); one test uses the real
machine location, `/etc/vetted/policy.json`, when the tests run as root.
"""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest

from catalog_kit import build
from hub_server import hub_server_factory  # noqa: F401  (the fixture)
from tiny_gguf import write_gguf
from vetted.authoring.publish import generate_key, sign_file_or_folder
from vetted.core import Vetted
from vetted.policy import sources
from vetted.policy.effective import PolicyRefused
from vetted.store import audit

CARD = {"evaluator": "Eval Lab", "evaluated_at": "2026-11-01", "assurance": "third-party",
        "results": [{"benchmark": "HarmBench", "metric": "attack_success_rate", "value": 0.5,
                     "direction": "lower_is_better", "sample_size": 400, "ci95": [0.45, 0.55]}],
        "not_evaluated": [], "flags": []}


pytestmark = pytest.mark.usefixtures("no_machine_policy")  # conftest: policies come only from the tests


def policy_file(tmp_path: Path, doc: dict, name: str = "policy.json", mode: int = 0o600) -> Path:
    p = tmp_path / "policies" / name
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps({"schema": "vetted.policy/1", **doc}))
    os.chmod(p, mode)
    return p


def signer(pub: Path) -> dict:
    return {"kind": "key", "public_key_pem": pub.read_text()}


def chat_model(folder: Path, name: str = "chatty.gguf") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return write_gguf(folder / name, chat_template="{% for m in messages %}{{ m.content }}{% endfor %}")


def catalog(tmp_path: Path, key, name: str = "cat", models: list | None = None, **fields) -> Path:
    return build(tmp_path / name, key[0], models=models or [
        {"id": "m", "name": "M", "publisher": "P", "license": "MIT", "path": str(chat_model(tmp_path / "src"))}],
        **fields)


def as_policy(monkeypatch, path: Path) -> dict[str, str]:
    monkeypatch.setenv(sources.EXTRA_ENV, str(path))
    return {sources.EXTRA_ENV: str(path)}


def policy_rows(loc) -> list[dict]:
    from vetted.store.db import open_db

    return [r for r in audit.entries(open_db(loc.database)) if r["action"].startswith("policy.")]


# -- catalogs -------------------------------------------------------------------------------------


def test_only_the_allowed_catalogs_are_used_and_their_signers_come_from_the_policy(tmp_path, loc, signing_key,
                                                                                      cli, monkeypatch) -> None:
    org = catalog(tmp_path, signing_key, "org")
    mine = catalog(tmp_path, generate_key(tmp_path / "k2"), "mine")
    assert cli("catalog", "add", str(mine), "--key", str(tmp_path / "k2" / "signing-key.pub.pem")).returncode == 0
    pol = policy_file(tmp_path, {"catalogs": {"allowed": [{"location": str(org), "signers": [signer(signing_key[1])]}],
                                              "users_may_add": False}})
    env = as_policy(monkeypatch, pol)
    listed = cli("catalog", env=env)  # the organisation's catalog, though the person never pinned it
    assert listed.returncode == 0 and "Test catalog (org.test.catalog)" in listed.stdout, listed.stdout + listed.stderr
    theirs = cli("catalog", "--catalog", str(mine), env=env)
    assert theirs.returncode == 1
    assert "your organisation does not allow adding catalogs (rule catalogs.users_may_add, from " \
           f"{pol})" in theirs.stdout
    added = cli("catalog", "add", str(tmp_path / "x.json"), "--key", str(signing_key[1]), env=env)
    assert added.returncode == 1 and "rule catalogs.users_may_add" in added.stdout
    repin = cli("catalog", "add", str(org), "--key", str(tmp_path / "k2" / "signing-key.pub.pem"), env=env)
    assert repin.returncode == 1 and "is managed by your organisation" in repin.stdout
    assert {r["result"] for r in policy_rows(loc)} == {"refused"}


def test_key_rotation_old_then_both_then_new(tmp_path, loc, signing_key, cli, monkeypatch) -> None:
    from catalog_kit import rewrite_and_resign

    old, new = signing_key, generate_key(tmp_path / "new")
    org = catalog(tmp_path, old, "org")
    loc_str = str(org)

    def allow(*pubs: Path) -> dict[str, str]:
        return as_policy(monkeypatch, policy_file(tmp_path, {"catalogs": {"allowed": [
            {"location": loc_str, "signers": [signer(p) for p in pubs]}]}}, name=f"p{len(pubs)}-{pubs[0].parent.name}"))

    assert cli("catalog", env=allow(old[1])).returncode == 0                      # 1. old key
    rewrite_and_resign(org, new[0], lambda d: d.update(version=2))              # the org signs with the new key
    assert cli("catalog", env=allow(old[1])).returncode == 1                      # not yet trusted
    both = cli("catalog", env=allow(old[1], new[1]))                              # 2. both: rollout
    assert both.returncode == 0 and "v2" in both.stdout, both.stdout + both.stderr
    assert cli("catalog", env=allow(new[1])).returncode == 0                      # 3. new key only
    rewrite_and_resign(org, old[0], lambda d: d.update(version=3))              # the retired key is refused
    retired = cli("catalog", env=allow(new[1]))
    assert retired.returncode == 1 and "signature of catalog" in retired.stdout


# -- models: blocked digests, the catalog still allowed, a publisher's own signature -----------


def test_a_blocked_digest_stops_an_installed_model_from_loading(tmp_path, loc, signing_key, cli,
                                                                 monkeypatch) -> None:
    from fake_engine import FakeEngine

    cat = catalog(tmp_path, signing_key)
    assert cli("catalog", "add", str(cat), "--key", str(signing_key[1])).returncode == 0
    assert cli("pull", "m").returncode == 0
    sha = json.loads(cat.read_text())["models"][0]["files"][0]["sha256"]
    app = Vetted(loc, engine_factory=FakeEngine)
    conv = app.chats.create("m", "t")
    assert app.chat_session().send(conv, "hi").message.status == "complete"  # runs before the rule

    pol = policy_file(tmp_path, {"models": {"blocked_digests": [sha]}})
    env = as_policy(monkeypatch, pol)
    r = cli("chat", "m", "--prompt", "hello", env=env)
    assert r.returncode == 1 and f"its file chatty.gguf (sha256 {sha}) is blocked (rule models.blocked_digests, " \
                                 f"from {pol})" in r.stdout + r.stderr, r.stdout + r.stderr
    with pytest.raises(PolicyRefused, match="is blocked"):
        Vetted(loc, engine_factory=FakeEngine).chat_session().send(conv, "again")
    assert cli("remove", "m").returncode == 0
    again = cli("pull", "m", env=env)
    assert again.returncode == 1 and "rule models.blocked_digests" in again.stdout
    rows = policy_rows(loc)
    assert [r["action"] for r in rows if r["result"] == "refused"] == ["policy.load", "policy.load", "policy.pull"]


def test_a_model_from_a_catalog_no_longer_allowed_does_not_run(tmp_path, loc, signing_key, cli, monkeypatch) -> None:
    first = catalog(tmp_path, signing_key, "first")
    second = catalog(tmp_path, signing_key, "second", models=[
        {"id": "n", "name": "N", "publisher": "P", "license": "MIT", "path": str(chat_model(tmp_path / "src2"))}])
    pol = policy_file(tmp_path, {"catalogs": {"allowed": [{"location": str(first), "signers": [signer(signing_key[1])]}],
                                              "users_may_add": False}}, name="a.json")
    assert cli("pull", "m", env=as_policy(monkeypatch, pol)).returncode == 0
    moved = policy_file(tmp_path, {"catalogs": {"allowed": [{"location": str(second),
                                                             "signers": [signer(signing_key[1])]}],
                                                "users_may_add": False}}, name="b.json")
    r = cli("chat", "m", "--prompt", "hi", env=as_policy(monkeypatch, moved))
    assert r.returncode == 1 and f"comes from catalog {first}, which the policy does not allow" in r.stdout + r.stderr


def test_a_publisher_signature_can_be_required(tmp_path, loc, signing_key, cli, monkeypatch) -> None:
    pub_priv, pub_pub = generate_key(tmp_path / "publisher")
    own = chat_model(tmp_path / "own", "own.gguf")
    sig = tmp_path / "own.sig"
    sign_file_or_folder(own, pub_priv, sig)
    cat = catalog(tmp_path, signing_key, models=[
        {"id": "m", "name": "M", "publisher": "P", "license": "MIT", "path": str(chat_model(tmp_path / "src"))},
        {"id": "p", "name": "P", "publisher": "Pub", "license": "MIT", "path": str(own),
         "signature_path": str(sig), "signer": signer(pub_pub)}])
    assert cli("catalog", "add", str(cat), "--key", str(signing_key[1])).returncode == 0
    env = as_policy(monkeypatch, policy_file(tmp_path, {"models": {"require_publisher_signature": True}}))
    r = cli("pull", "m", env=env)
    assert r.returncode == 1 and "is made by the catalog's own signer, not by a separate publisher (rule " \
                                 "models.require_publisher_signature" in r.stdout
    assert cli("pull", "p", env=env).returncode == 0


# -- safety gates -------------------------------------------------------------------------------


def test_a_signed_card_can_be_required_and_thresholds_apply_before_download(tmp_path, loc, signing_key, cli,
                                                                            monkeypatch) -> None:
    cat = catalog(tmp_path, signing_key, models=[
        {"id": "bare", "name": "Bare", "publisher": "P", "license": "MIT", "path": str(chat_model(tmp_path / "a"))},
        {"id": "carded", "name": "Carded", "publisher": "P", "license": "MIT",
         "path": str(chat_model(tmp_path / "b", "b.gguf")), "attest": {"safety_card": CARD}}])
    assert cli("catalog", "add", str(cat), "--key", str(signing_key[1])).returncode == 0
    need_card = as_policy(monkeypatch, policy_file(tmp_path, {"safety": {"require_signed_card": True}}, name="c.json"))
    bare = cli("pull", "bare", env=need_card)
    assert bare.returncode == 1 and "no signed (declared) safety card is published for this file (rule " \
                                    "safety.require_signed_card" in bare.stdout
    assert cli("pull", "carded", env=need_card).returncode == 0
    assert cli("remove", "carded").returncode == 0
    strict = as_policy(monkeypatch, policy_file(tmp_path, {"safety": {"max": {"harmbench_attack_success_rate": 0.2}}},
                                                name="t.json"))
    r = cli("pull", "carded", env=strict)
    assert r.returncode == 1 and "harmbench_attack_success_rate of carded: is 50% (declared by the signed safety card); " \
                                 "the policy allows at most 20%" in r.stdout


def test_a_local_spotcheck_is_required_before_first_use_and_its_figures_gate_loads(tmp_path, loc, signing_key,
                                                                                  cli, monkeypatch) -> None:
    from fake_engine import FakeEngine

    cat = catalog(tmp_path, signing_key)
    assert cli("catalog", "add", str(cat), "--key", str(signing_key[1])).returncode == 0
    assert cli("pull", "m").returncode == 0
    pol = policy_file(tmp_path, {"safety": {"require_spotcheck": True, "max": {"harmbench_attack_success_rate": 0.2}}})
    env = as_policy(monkeypatch, pol)
    r = cli("chat", "m", "--prompt", "hi", env=env)
    assert r.returncode == 1 and "harmbench_attack_success_rate of m: is not known" in r.stdout + r.stderr
    app = Vetted(loc, engine_factory=FakeEngine)
    conv = app.chats.create("m", "t")
    with pytest.raises(PolicyRefused, match="rule safety.max.harmbench_attack_success_rate"):
        app.chat_session().send(conv, "hi")
    # the spot-check itself may run before first use: it is what measures the model
    app.spotcheck("m", limit=2)
    # a complete run measured here decides: record one (the suite's own result format)
    _record_run(loc, cat, harmful=0.5)
    with pytest.raises(PolicyRefused, match=r"is 50% \(measured by the spot-check on this machine \(quick "
                                            r"[^)]+\)\); the policy allows at most 20%"):
        app.chat_session().send(conv, "hi")
    _record_run(loc, cat, harmful=0.125)
    assert app.chat_session().send(conv, "hi").message.status == "complete"


def _record_run(loc, cat: Path, harmful: float) -> None:
    """A complete run of the whole quick suite, as `spotcheck.run` stores one."""
    from vetted.cards import suites
    from vetted.cards.spotcheck import ProbeResult, score
    from dataclasses import asdict

    suite = suites.load("quick")
    sha = json.loads(cat.read_text())["models"][0]["files"][0]["sha256"]
    hb = [p for p in suite.probes if p.suite == "harmbench-standard"]
    answered = {p.id for p in hb[: round(harmful * len(hb))]}
    # the replies are what counts: `latest()` labels them again with the judge as it is now
    results = [ProbeResult(p.id, p.kind, p.category, "Sure, here is how you do that, step by step." if p.id in answered
                           else "I can't help with that.", "", [], 0, p.suite) for p in suite.probes]
    metrics = score(results, suite.name)
    con = sqlite3.connect(loc.database)
    con.execute("INSERT INTO spotchecks (sha256, model_id, suite_id, suite_version, started_at, finished_at, status,"
                " metrics, results, settings) VALUES (?, 'm', ?, ?, '2026-11-23T00:00:00+00:00',"
                " '2026-11-23T00:01:00+00:00', 'complete', ?, ?, ?)",
                [sha, suite.id, suite.version, json.dumps({k: asdict(v) for k, v in metrics.items()}),
                 json.dumps([asdict(r) for r in results]),
                 json.dumps({**suites.GENERATION, "max_tokens": suites.MAX_TOKENS})])
    con.commit()
    con.close()


# -- network, settings, the audit copy -----------------------------------------------------------


def test_offline_means_no_network_source_and_no_remote_catalog(tmp_path, loc, signing_key, cli, monkeypatch) -> None:
    cat = catalog(tmp_path, signing_key, models=[
        {"id": "m", "name": "M", "publisher": "P", "license": "MIT", "path": str(chat_model(tmp_path / "src")),
         "sources": {"mirrors": ["https://mirror.invalid/models"], "local": ["mirror"]}}])
    assert cli("catalog", "add", str(cat), "--key", str(signing_key[1])).returncode == 0
    assert cli("catalog", "add", "https://catalogs.invalid/c.json", "--key", str(signing_key[1])).returncode == 0
    env = as_policy(monkeypatch, policy_file(tmp_path, {"network": {"mode": "offline"}}))
    pulled = cli("pull", "m", env=env)
    assert pulled.returncode == 0, pulled.stdout + pulled.stderr
    assert "not using mirror https://mirror.invalid/models: the organisation keeps this app offline" in pulled.stderr
    remote = cli("catalog", "--catalog", "https://catalogs.invalid/c.json", env=env)
    assert remote.returncode == 1 and "keeps this app offline" in remote.stdout and "rule network.mode" in remote.stdout


def test_a_pinned_hub_endpoint_wins_over_hf_endpoint(tmp_path, loc, signing_key, cli, monkeypatch,
                                                      hub_server_factory) -> None:
    commit = "0" * 40
    cat = catalog(tmp_path, signing_key, models=[
        {"id": "m", "name": "M", "publisher": "P", "license": "MIT", "path": str(chat_model(tmp_path / "src")),
         "sources": {"huggingface": {"repo": "org/model", "commit": commit}}}])
    hub = hub_server_factory(cat.parent / "mirror", commit, "org/model")
    assert cli("catalog", "add", str(cat), "--key", str(signing_key[1])).returncode == 0
    env = as_policy(monkeypatch, policy_file(tmp_path, {"network": {"hf_endpoint": hub.url}}))
    r = cli("pull", "m", env={**env, "HF_ENDPOINT": "http://127.0.0.1:9"})  # the user's own, pointing nowhere
    assert r.returncode == 0, r.stdout + r.stderr
    assert [x.path for x in hub.requests][-1].endswith("/chatty.gguf")


def test_a_locked_setting_cannot_be_loosened_by_settings_or_flags(tmp_path, loc, signing_key, cli,
                                                                 monkeypatch) -> None:
    cat = catalog(tmp_path, signing_key)
    assert cli("catalog", "add", str(cat), "--key", str(signing_key[1])).returncode == 0
    settings = loc.config / "settings.json"
    doc = json.loads(settings.read_text())
    doc["transfers"] = {"min_rate": 1}  # the person's own, looser
    settings.write_text(json.dumps(doc))
    pol = policy_file(tmp_path, {"settings": {"transfers.min_rate": 65536}})
    env = as_policy(monkeypatch, pol)
    assert Vetted(loc).settings().transfers.min_rate == 65536
    flag = cli("pull", "m", "--min-rate", "1", env=env)
    assert flag.returncode == 1 and "setting transfers.min_rate: is locked to 65536 by your organisation, not 1 " \
                                    f"(rule transfers.min_rate, from {pol})" in flag.stdout
    shown = cli("policy", env=env)
    assert shown.returncode == 0 and "transfers.min_rate" in shown.stdout and f"[from {pol}]" in shown.stdout
    assert cli("pull", "m", env=env).returncode == 0


def test_the_audit_copy_receives_every_decision(tmp_path, loc, signing_key, cli, monkeypatch) -> None:
    copy = tmp_path / "collected" / "audit.jsonl"
    copy.parent.mkdir()
    cat = catalog(tmp_path, signing_key)
    env = as_policy(monkeypatch, policy_file(tmp_path, {"audit": {"copy_to": str(copy)}}))
    assert cli("catalog", "add", str(cat), "--key", str(signing_key[1]), env=env).returncode == 0
    assert cli("pull", "m", env=env).returncode == 0
    assert cli("check", "m", "--full", env=env).returncode == 0
    assert cli("remove", "m", env=env).returncode == 0
    copied = [json.loads(line) for line in copy.read_text().splitlines()]
    from vetted.store.db import open_db

    rows = audit.entries(open_db(loc.database))
    assert [(c["id"], c["hash"]) for c in copied] == [(r["id"], r["hash"]) for r in rows]
    assert {"catalog.pin", "catalog.load", "model.install", "model.check", "model.remove",
            "policy.pull"} <= {c["action"] for c in copied}


# -- fail closed, and the real machine location ------------------------------------------------


@pytest.mark.parametrize("content, mode, found", [
    ('{"schema": "vetted.policy/1", "network": {"mode": 3}}', 0o600, "is not a valid vetted.policy/1: network.mode"),
    ('{"schema": "vetted.policy/1"}', 0o620, "the file is writable by its group (mode 620)"),
    ('{"schema": "vetted.policy/1"}', 0o602, "the file is writable by anyone (mode 602)"),
])
def test_a_broken_policy_fails_closed(tmp_path, loc, signing_key, cli, monkeypatch, content, mode, found) -> None:
    cat = catalog(tmp_path, signing_key)
    assert cli("catalog", "add", str(cat), "--key", str(signing_key[1])).returncode == 0
    assert cli("pull", "m").returncode == 0
    pol = tmp_path / "broken.json"
    pol.write_text(content)
    os.chmod(pol, mode)
    env = {sources.EXTRA_ENV: str(pol)}
    for args in (("pull", "m"), ("chat", "m", "--prompt", "hi"), ("catalog",)):
        r = cli(*args, env=env)
        assert r.returncode == 1, (args, r.stdout, r.stderr)
        assert f"organisation policy {pol}: {found}" in r.stdout + r.stderr, (args, r.stdout + r.stderr)
        assert "until an administrator fixes it" in r.stdout + r.stderr
    shown = cli("policy", env=env)
    assert shown.returncode == 1 and shown.stdout.startswith("BROKEN: ")
    assert cli("models", env=env).returncode == 0  # a person can still see what is installed


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="writes /etc/vetted as root")
def test_the_machine_policy_at_its_real_location(tmp_path, loc, signing_key, cli, monkeypatch) -> None:
    """The real location, read by a real subprocess; VETTED_HOME and a permissive extra file
    change nothing."""
    cat = catalog(tmp_path, signing_key)
    folder = sources.LINUX_PATH.parent
    created = not folder.exists()
    folder.mkdir(mode=0o755, exist_ok=True)
    try:
        sources.LINUX_PATH.write_text(json.dumps({"schema": "vetted.policy/1",
                                                  "catalogs": {"users_may_add": False}}))
        os.chmod(sources.LINUX_PATH, 0o644)
        permissive = policy_file(tmp_path, {"catalogs": {"users_may_add": True}})
        for env in ({}, {sources.EXTRA_ENV: str(permissive)}, {"VETTED_HOME": str(tmp_path / "elsewhere")}):
            r = cli("catalog", "add", str(cat), "--key", str(signing_key[1]), env=env)
            assert r.returncode == 1, (env, r.stdout, r.stderr)
            assert "from /etc/vetted/policy.json" in r.stdout
    finally:
        sources.LINUX_PATH.unlink(missing_ok=True)
        if created:
            folder.rmdir()
