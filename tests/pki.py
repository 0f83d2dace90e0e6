"""A throwaway organisation PKI for tests: root CA → intermediate → code-signing leaf."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Example Org"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _pem(obj) -> bytes:
    return obj.public_bytes(serialization.Encoding.PEM)


@dataclass
class OrgPKI:
    root: Path
    intermediate: Path
    leaf_key: Path
    leaf_chain: Path  # leaf, then intermediate (what model_signing's signer wants)

    @classmethod
    def create(cls, out: Path, san_email: str = "release-signer@example.com") -> "OrgPKI":
        out.mkdir(parents=True, exist_ok=True)
        now = datetime.datetime.now(datetime.timezone.utc)
        start, end = now - datetime.timedelta(days=1), now + datetime.timedelta(days=365)

        def ca(subject, key, issuer, issuer_key, path_len):
            return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
                    .public_key(key.public_key()).serial_number(x509.random_serial_number())
                    .not_valid_before(start).not_valid_after(end)
                    .add_extension(x509.BasicConstraints(ca=True, path_length=path_len), critical=True)
                    .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
                    .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
                    .sign(issuer_key, hashes.SHA256()))

        root_key = ec.generate_private_key(ec.SECP384R1())
        root = ca(_name("Example Root CA"), root_key, _name("Example Root CA"), root_key, 1)
        int_key = ec.generate_private_key(ec.SECP384R1())
        inter = ca(_name("Example Signing CA"), int_key, root.subject, root_key, 0)
        leaf_key = ec.generate_private_key(ec.SECP256R1())
        leaf = (x509.CertificateBuilder().subject_name(_name("model release signer")).issuer_name(inter.subject)
                .public_key(leaf_key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(start).not_valid_after(end)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
                .add_extension(x509.SubjectAlternativeName([x509.RFC822Name(san_email)]), critical=False)
                .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(int_key.public_key()), critical=False)
                .sign(int_key, hashes.SHA256()))
        pki = cls(out / "root.pem", out / "intermediate.pem", out / "leaf-key.pem", out / "leaf-chain.pem")
        pki.root.write_bytes(_pem(root))
        pki.intermediate.write_bytes(_pem(inter))
        pki.leaf_key.write_bytes(leaf_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                        serialization.NoEncryption()))
        pki.leaf_chain.write_bytes(_pem(leaf) + _pem(inter))
        return pki


def sign_with_certificate(model: Path, pki: OrgPKI, out: Path) -> None:
    import model_signing

    # model_signing wants the leaf alone as the signing certificate
    leaf_only = pki.leaf_chain.read_bytes().split(b"-----END CERTIFICATE-----")[0] + b"-----END CERTIFICATE-----\n"
    pki.leaf_chain.with_name("leaf.pem").write_bytes(leaf_only)
    cfg = model_signing.signing.Config().use_certificate_signer(
        private_key=pki.leaf_key, signing_certificate=pki.leaf_chain.with_name("leaf.pem"),
        certificate_chain=[pki.intermediate])
    if model.is_dir() and out.parent.resolve() == model.resolve():
        cfg.set_hashing_config(model_signing.hashing.Config().set_ignored_paths(paths=[out.name]))
    cfg.sign(model, out)
