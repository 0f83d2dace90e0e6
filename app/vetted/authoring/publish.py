"""Signing side, for catalog authors: keys, OMS model signatures, signed catalogs.

Key mode only for now (what an organisation can run offline); keyless signing needs an
OIDC flow and is done with `model_signing sign` directly, whose output Vetted verifies.
"""

from __future__ import annotations

import json
import os
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from vetted.catalog.schema import parse
from vetted.digest import sha256_file
from vetted.errors import InputError


def generate_key(out: Path) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    priv = out / "signing-key.pem"
    pub = out / "signing-key.pub.pem"
    fd = os.open(priv, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    pub.write_bytes(public_pem(priv))
    return priv, pub


def public_pem(private_key: Path) -> bytes:
    key = serialization.load_pem_private_key(private_key.read_bytes(), password=None)
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)


def sign_file_or_folder(path: Path, private_key: Path, out: Path) -> None:
    """An OMS signature (key mode) of a file or folder; a signature written inside the
    folder is not part of what it signs."""
    from vetted.trust.backend import sign_model

    ignore = [out.name] if path.is_dir() and out.parent.resolve() == path.resolve() else []
    sign_model(path, private_key, out, ignore)


def build_catalog(spec: dict[str, Any], spec_dir: Path, private_key: Path, out: Path) -> Path:
    """Spec: catalog fields plus `models`, each with `path` (a local GGUF) instead of `files`.

    Writes `out/mirror/<file>` (hard links when possible) and `out/mirror/<id>.model.sig`,
    then `out/catalog.json` and its detached signature `out/catalog.json.sig`.
    """
    mirror = out / "mirror"
    mirror.mkdir(parents=True, exist_ok=True)
    pub = public_pem(private_key).decode()
    now = datetime.now(timezone.utc).replace(microsecond=0)
    models = []
    for m in spec["models"]:
        m = dict(m)
        src = Path(m.pop("path"))
        src = src if src.is_absolute() else spec_dir / src
        if not src.is_file():
            raise InputError(f"model {m.get('id')}", f"{src} is not a file")
        name = m.pop("file_name", src.name)
        dest = mirror / name
        _link_or_copy(src, dest)
        sig_name = f"{m['id']}.model.sig"
        if m.get("signature_path"):  # the publisher's own signature (e.g. keyless), served as is
            shutil.copyfile(Path(m.pop("signature_path")), mirror / sig_name)
        else:
            sign_file_or_folder(dest, private_key, mirror / sig_name)
        m["files"] = [{"name": name, "size": dest.stat().st_size, "sha256": sha256_file(dest)}]
        m.setdefault("sources", {"local": ["mirror"]})
        m["signature"] = {"bundle": sig_name, "signer": m.pop("signer", {"kind": "key", "public_key_pem": pub})}
        m["attestations"] = [attestation_ref(kind, predicate, name, m["files"][0]["sha256"], private_key, pub)
                             for kind, predicate in (m.pop("attest", None) or {}).items()]
        models.append(m)
    doc = {
        "schema": "vetted.catalog/1",
        "id": spec["id"], "name": spec["name"], "publisher": spec["publisher"],
        "version": int(spec["version"]),
        "issued": spec.get("issued", now.isoformat()),
        "expires": spec.get("expires", (now + timedelta(days=int(spec.get("valid_days", 90)))).isoformat()),
        "models": models,
    }
    raw = json.dumps(doc, indent=2, ensure_ascii=False).encode()
    parse(raw, "the built catalog")  # never sign something Vetted itself would refuse
    catalog = out / "catalog.json"
    catalog.write_bytes(raw)
    sign_file_or_folder(catalog, private_key, out / "catalog.json.sig")
    return catalog


def attestation_ref(kind: str, predicate: dict[str, Any], subject: str, sha256: str, private_key: Path,
                    public_pem_text: str) -> dict[str, Any]:
    """Validates a provenance or safety-card predicate, signs it about one file, and returns
    the catalog's inline reference to it."""
    from vetted.cards.attest import sign_key, statement
    from vetted.cards.predicates import KINDS, PREDICATES

    if kind not in KINDS:
        raise InputError("attestation", f"unknown kind {kind!r}", "use provenance or safety_card")
    PREDICATES[KINDS[kind]].model_validate(predicate)  # never sign a claim Vetted would reject
    bundle = sign_key(statement(KINDS[kind], predicate, subject, sha256), private_key)
    return {"kind": kind, "bundle": bundle, "signer": {"kind": "key", "public_key_pem": public_pem_text}}


def _link_or_copy(src: Path, dest: Path) -> None:
    if dest.exists():
        if dest.stat().st_size == src.stat().st_size and sha256_file(dest) == sha256_file(src):
            return
        dest.unlink()
    try:
        os.link(src, dest)
    except OSError:
        shutil.copyfile(src, dest)
