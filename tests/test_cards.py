"""Signed provenance and safety cards: labelled by how each claim is known, never hidden,
never promoted; the provenance is checked against what the GGUF itself says."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from catalog_kit import build, rewrite_and_resign
from tiny_gguf import write_gguf
from vetted.cards.consistency import check
from vetted.cards.predicates import Provenance
from vetted.cards.view import card
from vetted.catalog.signed import load
from vetted.authoring.publish import generate_key
from vetted.runtime.gguf_meta import read_gguf
from vetted.trust.identity import PublicKey

PROV = {"publisher": "Test Pub", "model_name": "tiny", "license": "MIT", "architecture": "llama",
        "base_models": [{"name": "Tiny Base", "relation": "finetune"}]}
CARD = {"evaluator": "Eval Lab", "evaluated_at": "2026-11-01", "assurance": "third-party",
        "results": [{"benchmark": "HarmBench", "metric": "attack_success_rate", "value": 0.05,
                     "direction": "lower_is_better", "sample_size": 400, "ci95": [0.03, 0.08]}],
        "not_evaluated": ["XSTest"], "flags": []}


def _catalog(tmp_path: Path, key, attest=None, **extra):
    model = tmp_path / "src" / "tiny.gguf"
    if not model.exists():
        model.parent.mkdir(parents=True, exist_ok=True)
        write_gguf(model)
    m = {"id": "tiny", "name": "Tiny", "publisher": "Test Pub", "license": "MIT", "path": str(model),
         "attest": attest if attest is not None else {"provenance": PROV, "safety_card": CARD}, **extra}
    return build(tmp_path, key[0], models=[m])


def _entry(tmp_path, key, db, cat):
    return load(str(cat), PublicKey(key[1].read_bytes()), db).catalog.model("tiny")


def test_signed_claims_show_as_declared_by_the_signer(tmp_path, signing_key, db) -> None:
    cat = _catalog(tmp_path, signing_key)
    c = card(_entry(tmp_path, signing_key, db, cat), db)
    who = PublicKey(signing_key[1].read_bytes()).describe()
    assert [p["label"] for p in c["provenance"]] == ["declared"] and c["provenance"][0]["by"] == who
    assert c["safety_card"][0]["label"] == "declared"
    assert c["safety_card"][0]["data"]["results"][0]["value"] == 0.05
    assert c["comparisons"][0]["verdict"] == "not checked locally"


def _mutate_attestation(cat: Path, key: Path, change) -> None:
    def edit(doc):
        change(doc["models"][0]["attestations"][0])
    rewrite_and_resign(cat, key, edit)


def test_tampered_claim_is_shown_unverified_not_hidden(tmp_path, signing_key, db) -> None:
    cat = _catalog(tmp_path, signing_key)

    def inflate(att):
        env = att["bundle"]["dsseEnvelope"]
        stmt = json.loads(base64.b64decode(env["payload"]))
        stmt["predicate"]["publisher"] = "A Famous Lab"
        env["payload"] = base64.b64encode(json.dumps(stmt).encode()).decode()

    _mutate_attestation(cat, signing_key[0], inflate)
    c = card(_entry(tmp_path, signing_key, db, cat), db)
    prov = c["provenance"][0]
    assert prov["label"] == "unverified" and "signature" in prov["why"].lower()
    assert prov["data"]["publisher"] == "A Famous Lab"  # shown as sent, labelled unverified


def test_claim_by_another_key_is_unverified(tmp_path, signing_key, db) -> None:
    cat = _catalog(tmp_path, signing_key)
    _, other_pub = generate_key(tmp_path / "evaluator")
    _mutate_attestation(cat, signing_key[0],
                        lambda att: att["signer"].update(public_key_pem=other_pub.read_text()))
    c = card(_entry(tmp_path, signing_key, db, cat), db)
    assert c["provenance"][0]["label"] == "unverified"
    assert c["safety_card"][0]["label"] == "declared"


def test_claim_about_another_file_is_unverified(tmp_path, signing_key, db) -> None:
    from vetted.authoring.publish import attestation_ref, public_pem

    cat = _catalog(tmp_path, signing_key, attest={})
    other = attestation_ref("provenance", PROV, "other.gguf", "b" * 64, signing_key[0],
                            public_pem(signing_key[0]).decode())
    rewrite_and_resign(cat, signing_key[0], lambda d: d["models"][0]["attestations"].append(other))
    c = card(_entry(tmp_path, signing_key, db, cat), db)
    assert c["provenance"][0]["label"] == "unverified" and "different file" in c["provenance"][0]["why"]


def test_unsigned_card_is_labelled_unverified(tmp_path, signing_key, db) -> None:
    cat = _catalog(tmp_path, signing_key, attest={}, safety_card={"evaluator": "someone", "results": []})
    c = card(_entry(tmp_path, signing_key, db, cat), db)
    assert c["safety_card"] == [{"label": "unverified", "by": None, "why": "not signed",
                                 "data": {"evaluator": "someone", "results": []}}]
    assert c["provenance"] == []


def test_admin_refuses_to_sign_a_malformed_claim(tmp_path, signing_key, cli) -> None:
    write_gguf(tmp_path / "m.gguf")
    (tmp_path / "bad.json").write_text(json.dumps({"evaluator": "x"}))
    r = cli("attest", "safety_card", "--model", str(tmp_path / "m.gguf"), "--predicate", str(tmp_path / "bad.json"),
            "--key", str(signing_key[0]), "--out", str(tmp_path / "ref.json"), tool="vetted-admin")
    assert r.returncode != 0 and not (tmp_path / "ref.json").exists()
    (tmp_path / "good.json").write_text(json.dumps(CARD))
    ok = cli("attest", "safety_card", "--model", str(tmp_path / "m.gguf"), "--predicate", str(tmp_path / "good.json"),
             "--key", str(signing_key[0]), "--out", str(tmp_path / "ref.json"), tool="vetted-admin")
    assert ok.returncode == 0, ok.stderr
    assert json.loads((tmp_path / "ref.json").read_text())["kind"] == "safety_card"


# -- consistency: generated GGUFs that lie in each way --------------------------------

LIAR = {"tokenizer.ggml.pre": "qwen2", "general.file_type": 15, "general.size_label": "1B",
        "general.license": "mit", "general.base_model.0.name": "Qwen2.5 0.5B"}


def _liar(tmp_path: Path) -> Path:
    return write_gguf(tmp_path / "liar.gguf", arch="qwen2", extra=LIAR)


@pytest.mark.parametrize("declared, expected", [
    ({"architecture": "llama"}, "declared architecture: llama; file's architecture: qwen2"),
    ({"tokenizer": "llama-bpe"}, "declared tokenizer: llama-bpe; file's tokenizer: qwen2"),
    ({"vocab_sha256": "0" * 64}, "declared vocabulary hash: 0000000000000000…"),
    ({"parameters": 1_000_000_000}, "declared parameter count: 1,000,000,000; file's parameter count: 16"),
    ({"quantization": "Q8_0"}, "declared quantisation: Q8_0; file's quantisation: Q4_K_M"),
    ({"context_length": 32768}, "declared context length: 32768; file's context length: 256"),
    ({"license": "Apache-2.0"}, "declared licence: Apache-2.0; file's licence: mit"),
    ({"base_models": [{"name": "Llama 3.2 1B", "relation": "finetune"}]},
     "declared base: Llama 3.2 1B; file's tokenizer: qwen2"),
    ({"base_models": [{"name": "Llama 3.2 1B", "relation": "finetune"}]},
     "declared base model: Llama 3.2 1B; file's base model: Qwen2.5 0.5B"),
])
def test_each_lie_is_flagged_with_both_values(tmp_path, declared, expected) -> None:
    info = read_gguf(_liar(tmp_path))
    base = {"publisher": "p", "model_name": "m", "license": "MIT"}
    base.update(declared)
    if "license" not in declared:
        base["license"] = "MIT"
    lines = [m.line() for m in check(Provenance.model_validate(base), info)]
    assert any(line.startswith(expected) for line in lines), lines


def test_truthful_provenance_has_no_mismatch(tmp_path) -> None:
    info = read_gguf(_liar(tmp_path))
    truthful = Provenance.model_validate({
        "publisher": "p", "model_name": "m", "license": "MIT", "architecture": "qwen2", "tokenizer": "qwen2",
        "vocab_sha256": info.vocab_sha256, "parameters": info.parameter_count, "quantization": "Q4_K_M",
        "context_length": 256, "base_models": [{"name": "Qwen2.5 0.5B", "relation": "finetune"}]})
    # the file's size label (1B) does not match its 16 parameters: that one is the file's own lie
    assert [m.field for m in check(truthful, info)] == ["size label"]
