"""`vetted verify`: one call that answers "are these the bytes this party signed?"."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from vetted.digest import sha256_file
from vetted.errors import InputError
from vetted.trust import oms
from vetted.trust.artifact import verify_artifact_digest
from vetted.trust.identity import TrustSpec


@dataclass(frozen=True)
class Verdict:
    path: Path
    signer: str
    kind: str  # "model (OMS)" or "file"
    files: dict[str, str]

    def line(self) -> str:
        if self.kind == "file":
            digest = next(iter(self.files.values()))
            return f"verified: {self.path} (sha256 {digest}) signed by {self.signer}"
        n = len(self.files)
        return (
            f"verified: model {self.path} ({n} file{'s' if n != 1 else ''}, OpenSSF Model "
            f"Signing) signed by {self.signer}"
        )


def verify_path(
    path: Path, signature: Path, spec: TrustSpec, ignore_paths: list[str] | None = None
) -> Verdict:
    """Raises `Refused` (with the reason) unless `path` is exactly what was signed."""
    if not path.exists():
        raise InputError("model path", f"{path} does not exist")
    try:
        raw = signature.read_bytes()
    except OSError as exc:
        raise InputError("signature bundle", f"{signature}: {exc.strerror}") from None

    statement = oms.peek_statement(raw)
    if path.is_dir() or (statement is not None and oms.is_oms_statement(statement)):
        signed = oms.signed_manifest(raw, spec)
        base = path if path.is_dir() else path.parent
        ignore = oms.ignore_for(base, signature, ignore_paths or []) if path.is_dir() else []
        actual = oms.hash_on_disk(path, signed, ignore)
        oms.compare(signed, actual)
        return Verdict(path, signed.signer, "model (OMS)", actual)

    digest = sha256_file(path)
    signer = verify_artifact_digest(digest, raw, spec)
    return Verdict(path, signer, "file", {path.name: digest})
