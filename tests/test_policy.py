"""The policy document, where it is read from, and how two documents combine.

Parsing and merging are shared; the OS readers are thin and are tested on the three
shapes of input they receive (a file, a macOS managed-preferences plist, a Windows
registry value). Everything here uses real files in a temporary folder.
"""

from __future__ import annotations

import json
import os
import plistlib
from pathlib import Path

import pytest

from vetted.policy import effective, sources
from vetted.policy.schema import PolicyInvalid, parse



def write(path: Path, doc: dict | str, mode: int = 0o600) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    os.chmod(path, mode)
    return path


def key_signer(pub: Path) -> dict:
    return {"kind": "key", "public_key_pem": pub.read_text()}


# -- the document ---------------------------------------------------------------------------


def test_a_document_holding_only_schema_is_valid_and_imposes_nothing() -> None:
    p = parse(b'{"schema": "vetted.policy/1"}')
    eff = effective.EffectivePolicy()
    effective._tighten(eff, p, "test")
    assert eff.rules() == [] and eff.allowed is None and eff.may_use_users_catalog()


@pytest.mark.parametrize("doc, field", [
    ({"schema": "vetted.policy/2"}, "schema is 'vetted.policy/2'"),
    ({"schema": "vetted.policy/1", "catalogs": {"users_may_ad": False}}, "catalogs.users_may_ad: Extra inputs"),
    ({"schema": "vetted.policy/1", "catalogs": {"users_may_add": "no"}}, "catalogs.users_may_add: Input should be"),
    ({"schema": "vetted.policy/1", "models": {"blocked_digests": ["abc"]}},
     "models.blocked_digests: 'abc' is not a sha256 digest"),
    ({"schema": "vetted.policy/1", "safety": {"max": {"harm": 0.1}}}, "unknown metric 'harm'"),
    ({"schema": "vetted.policy/1", "safety": {"max": {"harmful_compliance_rate": 2}}}, "between 0 and 1"),
    ({"schema": "vetted.policy/1", "network": {"mode": "sometimes"}}, "network.mode: Input should be"),
    ({"schema": "vetted.policy/1", "settings": {"theme": 1}}, "'theme' is not a setting that can be locked"),
    ({"schema": "vetted.policy/1", "settings": {"transfers.connections": 33}},
     "transfers.connections must be a whole number from 1 to 32, not 33"),
    ({"schema": "vetted.policy/1", "settings": {"transfers.connections": 2.5}},
     "transfers.connections must be a whole number from 1 to 32, not 2.5"),
    ({"schema": "vetted.policy/1", "settings": {"transfers.connections": "8"}},
     'settings: transfers.connections must be a whole number from 1 to 32, not "8"'),
    ({"schema": "vetted.policy/1", "settings": {"transfers.min_rate": 0}},
     "transfers.min_rate must be a positive whole number, not 0"),
    ({"schema": "vetted.policy/1", "settings": {"transfers.stall_timeout": float("nan")}},
     "transfers.stall_timeout must be a positive number, not NaN"),
    ({"schema": "vetted.policy/1", "settings": {"transfers.window": float("inf")}},
     "transfers.window must be a positive number, not Infinity"),
    ({"schema": "vetted.policy/1", "catalogs": {"allowed": [{"location": "x", "signers": []}]}},
     "catalogs.allowed.0.signers: List should have at least 1 item"),
])
def test_errors_name_the_field(doc: dict, field: str) -> None:
    with pytest.raises(PolicyInvalid, match=field.replace("(", r"\(").replace(")", r"\)")):
        parse(json.dumps(doc))


def test_admin_policy_check_validates_before_deploying(tmp_path, cli) -> None:
    good = write(tmp_path / "good.json", {"schema": "vetted.policy/1", "catalogs": {"users_may_add": False}})
    bad = write(tmp_path / "bad.json", {"schema": "vetted.policy/1", "network": {"mode": "sometimes"}})
    ok = cli("policy", "check", str(good), tool="vetted-admin")
    assert ok.returncode == 0 and ok.stdout.startswith("valid: "), ok.stdout + ok.stderr
    no = cli("policy", "check", str(bad), tool="vetted-admin")
    assert no.returncode == 1 and "network.mode" in no.stdout, no.stdout
    badkey = write(tmp_path / "badkey.json", {"schema": "vetted.policy/1", "catalogs": {"allowed": [
        {"location": "https://x.example/c.json", "signers": [{"kind": "key", "public_key_pem": "nope"}]}]}})
    r = cli("policy", "check", str(badkey), tool="vetted-admin")
    assert r.returncode == 1 and "catalogs.allowed.0.signers.0" in r.stdout, r.stdout


# -- where it is read from ----------------------------------------------------------------------


def test_the_machine_location_does_not_follow_the_users_environment(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("VETTED_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CONFIG_DIRS", str(tmp_path))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert sources.machine_source().where == "/etc/vetted/policy.json"


def test_a_policy_writable_by_others_fails_closed(monkeypatch, tmp_path) -> None:
    machine = write(tmp_path / "etc" / "policy.json", {"schema": "vetted.policy/1"}, mode=0o664)
    monkeypatch.setattr(sources, "LINUX_PATH", machine)
    eff = effective.load()
    assert eff.managed and eff.broken is not None
    assert f"organisation policy {machine}: the file is writable by its group (mode 664)" in eff.broken.line()
    with pytest.raises(sources.PolicyError, match="until an administrator fixes it"):
        eff.require_usable()


def test_a_writable_folder_above_the_policy_fails_closed(monkeypatch, tmp_path) -> None:
    folder = tmp_path / "etc"
    machine = write(folder / "policy.json", {"schema": "vetted.policy/1"})
    os.chmod(folder, 0o777)
    monkeypatch.setattr(sources, "LINUX_PATH", machine)
    eff = effective.load()
    assert eff.broken is not None and f"organisation policy {folder}: the folder is writable by its group and " \
                                      "others" in eff.broken.line()


def test_a_malformed_policy_fails_closed_naming_the_file_and_field(monkeypatch, tmp_path) -> None:
    machine = write(tmp_path / "etc" / "policy.json", {"schema": "vetted.policy/1", "models": {"blocked": []}})
    monkeypatch.setattr(sources, "LINUX_PATH", machine)
    eff = effective.load()
    assert eff.broken is not None
    assert f"organisation policy {machine}: is not a valid vetted.policy/1: models.blocked: Extra inputs" in \
        eff.broken.line()


def test_the_macos_managed_preferences_shape(monkeypatch, tmp_path) -> None:
    plist = tmp_path / "Managed Preferences" / f"{sources.BUNDLE_ID}.plist"
    plist.parent.mkdir(parents=True)
    plist.write_bytes(plistlib.dumps({"Policy": json.dumps({"schema": "vetted.policy/1",
                                                            "network": {"mode": "offline"}})}))
    os.chmod(plist, 0o644)
    src = sources.mac_source(plist)
    assert src.where.endswith("(key Policy)") and parse(src.text or b"").network.mode == "offline"
    plist.write_bytes(plistlib.dumps({"Policy": 7}))
    with pytest.raises(sources.PolicyError, match="its Policy key is not a string"):
        sources.mac_source(plist)


class FakeWinreg:
    """The three calls the Windows reader makes, over a dict standing for HKLM."""

    HKEY_LOCAL_MACHINE = "HKLM"
    REG_SZ, REG_EXPAND_SZ, REG_DWORD = 1, 2, 4

    def __init__(self, values: dict[str, tuple[object, int]] | None) -> None:
        self.values = values

    def OpenKey(self, root: str, path: str) -> str:  # noqa: N802
        if self.values is None:
            raise FileNotFoundError(path)
        assert (root, path) == ("HKLM", sources.WINDOWS_KEY)  # never HKCU: that is the user's own
        return path

    def QueryValueEx(self, key: str, name: str) -> tuple[object, int]:  # noqa: N802
        assert self.values is not None
        if name not in self.values:
            raise FileNotFoundError(name)
        return self.values[name]

    def CloseKey(self, key: str) -> None:  # noqa: N802
        pass


def test_the_windows_registry_shape() -> None:
    doc = json.dumps({"schema": "vetted.policy/1", "catalogs": {"users_may_add": False}})
    src = sources.windows_source(FakeWinreg({"Policy": (doc, FakeWinreg.REG_SZ)}))
    assert src.where == r"HKLM\SOFTWARE\Policies\Vetted\Policy" and not parse(src.text or b"").catalogs.users_may_add
    assert sources.windows_source(FakeWinreg(None)).text is None
    with pytest.raises(sources.PolicyError, match="is not a string value"):
        sources.windows_source(FakeWinreg({"Policy": (1, FakeWinreg.REG_DWORD)}))


# -- two documents: tighten only ----------------------------------------------------------------


def test_the_extra_document_can_only_tighten(monkeypatch, tmp_path, signing_key) -> None:
    from vetted.authoring.publish import generate_key

    other = generate_key(tmp_path / "other")[1]
    machine = write(tmp_path / "etc" / "policy.json", {
        "schema": "vetted.policy/1",
        "catalogs": {"users_may_add": False, "allowed": [
            {"location": "https://org.example/catalog.json",
             "signers": [key_signer(signing_key[1]), key_signer(other)]}]},
        "models": {"blocked_digests": ["a" * 64]},
        "safety": {"max": {"harmful_compliance_rate": 0.2}},
        "network": {"mode": "catalog_sources"},
        "settings": {"transfers.min_rate": 65536},
    })
    extra = write(tmp_path / "extra.json", {   # tries to loosen everything, and tightens a little
        "schema": "vetted.policy/1",
        "catalogs": {"users_may_add": True, "allowed": [
            {"location": "https://org.example/catalog.json", "signers": [key_signer(other)]},
            {"location": "https://elsewhere.example/catalog.json", "signers": [key_signer(other)]}]},
        "models": {"blocked_digests": ["b" * 64]},
        "safety": {"max": {"harmful_compliance_rate": 0.9, "over_refusal_rate": 0.3}},
        "network": {"mode": "any"},
        "settings": {"transfers.min_rate": 1},
    })
    monkeypatch.setattr(sources, "LINUX_PATH", machine)
    monkeypatch.setenv(sources.EXTRA_ENV, str(extra))
    eff = effective.load()
    assert eff.broken is None and eff.documents == [str(machine), str(extra)]
    assert not eff.may_use_users_catalog() and eff.users_may_add.source == str(machine)
    assert [c.location for c in eff.allowed] == ["https://org.example/catalog.json"]  # intersection
    assert len(eff.allowed[0].signers) == 1  # only the signer both accept
    assert set(eff.blocked) == {"a" * 64, "b" * 64}
    # the earlier metric name is read as its current one (a policy written for 0.1 keeps its meaning)
    assert eff.max["harmbench_attack_success_rate"].value == 0.2 and eff.max["over_refusal_rate"].value == 0.3
    assert eff.network.value == "catalog_sources" and eff.network.source == str(machine)
    assert eff.settings["transfers.min_rate"].value == 65536


def test_an_extra_document_alone_applies_and_a_broken_one_fails_closed(monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(sources, "LINUX_PATH", tmp_path / "absent.json")
    extra = write(tmp_path / "extra.json", {"schema": "vetted.policy/1", "network": {"mode": "offline"}})
    monkeypatch.setenv(sources.EXTRA_ENV, str(extra))
    assert effective.load().network.value == "offline"
    write(extra, "{not json", mode=0o600)
    eff = effective.load()
    assert eff.broken is not None and "is not a valid vetted.policy/1: not valid JSON" in eff.broken.line()


def test_an_extra_documents_catalogs_grant_nothing_the_machine_did_not(monkeypatch, tmp_path, signing_key,
                                                                       db) -> None:
    """Review finding: with no allowed list from the machine, a second document's catalogs
    were adopted as the organisation's: a person's own catalog got past `users_may_add: false`
    and the `catalog_sources` network rule. Now they are used only as a person's own would be."""
    from vetted.core.policy_gate import CatalogUse, PolicyGate
    from vetted.policy.effective import PolicyRefused

    mine = "http://127.0.0.1:8766/catalog.json"
    extra = write(tmp_path / "extra.json", {"schema": "vetted.policy/1", "catalogs": {"allowed": [
        {"location": mine, "signers": [key_signer(signing_key[1])]}]}})
    monkeypatch.setenv(sources.EXTRA_ENV, str(extra))
    machine = write(tmp_path / "etc" / "policy.json", {"schema": "vetted.policy/1",
                                                       "catalogs": {"users_may_add": False},
                                                       "network": {"mode": "catalog_sources"}})
    monkeypatch.setattr(sources, "LINUX_PATH", machine)
    gate = PolicyGate(effective.load())
    assert gate.catalogs([]) == []  # the person may not add catalogs: the extra one is not the organisation's
    assert gate.policy.allowed_catalog(mine) is None and gate.policy.catalog_signers() == []
    with pytest.raises(PolicyRefused, match=r"does not allow adding catalogs \(rule catalogs.users_may_add"):
        gate.check_pin(db, mine)
    with pytest.raises(PolicyRefused, match=r"rule catalogs.users_may_add"):
        gate.import_signers(db, "bundle", None, [])

    write(machine, {"schema": "vetted.policy/1", "network": {"mode": "catalog_sources"}})  # users may add
    gate = PolicyGate(effective.load())
    [use] = gate.catalogs([])
    assert use.location == mine and use.managed_by is None  # the person's own, not the organisation's
    with pytest.raises(PolicyRefused, match=r"only the organisation's own catalogs may be fetched over the network"):
        gate.check_fetch(db, use)
    assert gate.pull_network(type("Cat", (), {"location": mine})())[0] is not None  # its models: no network

    monkeypatch.setattr(sources, "LINUX_PATH", tmp_path / "absent.json")  # no machine policy: the extra one rules
    gate = PolicyGate(effective.load())
    assert gate.catalogs([]) == [CatalogUse(mine, list(gate.policy.allowed[0].signers), None, str(extra))]


def test_users_may_add_false_also_keeps_out_bundles_of_the_persons_own(monkeypatch, tmp_path, signing_key,
                                                                      db) -> None:
    """Review finding: `users_may_add: false` without an allowed list let `vetted import`
    bring in a catalog of the person's own."""
    from vetted.core.policy_gate import PolicyGate
    from vetted.policy.effective import PolicyRefused
    from vetted.trust.identity import PublicKey

    monkeypatch.setattr(sources, "LINUX_PATH", tmp_path / "absent.json")
    extra = write(tmp_path / "extra.json", {"schema": "vetted.policy/1", "catalogs": {"users_may_add": False}})
    monkeypatch.setenv(sources.EXTRA_ENV, str(extra))
    gate = PolicyGate(effective.load())
    with pytest.raises(PolicyRefused, match=r"only bundles signed by the organisation's catalog signers .* "
                                            r"\(rule catalogs.users_may_add, from "):
        gate.import_signers(db, "b.vbundle", PublicKey(signing_key[1].read_bytes()), [])


def test_a_symlinked_policy_in_a_folder_others_can_write_fails_closed(monkeypatch, tmp_path) -> None:
    """Review finding: only the link target's folders were checked; anyone who can write the
    folder holding the link could delete it and make the app unmanaged."""
    target = write(tmp_path / "safe" / "policy.json", {"schema": "vetted.policy/1"}, mode=0o644)
    exposed = tmp_path / "exposed"
    exposed.mkdir()
    os.chmod(exposed, 0o777)
    link = exposed / "policy.json"
    link.symlink_to(target)
    monkeypatch.setattr(sources, "LINUX_PATH", link)
    eff = effective.load()
    assert eff.broken is not None
    assert f"organisation policy {exposed}: the folder is writable by its group and others" in eff.broken.line()
    os.chmod(exposed, 0o755)  # the same link in a folder only root can write: fine
    assert effective.load().broken is None and effective.load().managed


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root to make a link another "
                    "user owns")
def test_a_policy_reached_through_another_users_symlinked_folder_fails_closed(monkeypatch, tmp_path) -> None:
    """Review finding: only the last path component was checked for links. A folder link a
    user owns, in a sticky world-writable folder, let that user remove it: unmanaged."""
    safe = tmp_path / "safe"
    write(safe / "policy.json", {"schema": "vetted.policy/1"}, mode=0o644)
    sticky = tmp_path / "sticky"
    sticky.mkdir()
    os.chmod(sticky, 0o1777)
    link = sticky / "etc-vetted"
    link.symlink_to(safe, target_is_directory=True)
    os.lchown(link, 1000, 1000)
    monkeypatch.setattr(sources, "LINUX_PATH", link / "policy.json")
    eff = effective.load()
    assert eff.broken is not None
    assert f"goes through the symbolic link {link}, owned by uid 1000, not root" in eff.broken.line()
    os.lchown(link, 0, 0)  # the same link, root's: fine
    assert effective.load().broken is None
