"""A throwaway organisation PKI for tests: root CA → intermediate → code-signing leaf.

`OrgPKI.issue` makes further leaves under the same intermediate with chosen validity,
extended key usages, SANs and subject, so tests can sign real models with an expired,
not-yet-valid, TLS-server or oddly named certificate (what an attacker inside the
organisation's PKI might hold).
"""

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


DAY = datetime.timedelta(days=1)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


@dataclass
class OrgPKI:
    root: Path
    intermediate: Path
    leaf_key: Path
    leaf_chain: Path  # leaf, then intermediate (what model_signing's signer wants)
    intermediate_key: Path | None = None

    @property
    def anchors(self) -> bytes:
        """What a verifier pins: the root and the intermediate, as PEM."""
        return self.root.read_bytes() + self.intermediate.read_bytes()

    def leaf(self) -> x509.Certificate:
        return x509.load_pem_x509_certificates(self.leaf_chain.read_bytes())[0]

    @classmethod
    def create(cls, out: Path, san_email: str = "release-signer@example.com",
               intermediate_window: tuple[datetime.datetime, datetime.datetime] | None = None) -> "OrgPKI":
        out.mkdir(parents=True, exist_ok=True)
        now = _now()
        # CAs from well before any backdated leaf (model_signing checks at the leaf's notBefore)
        start, end = now - 30 * DAY, now + 365 * DAY

        def ca(subject, key, issuer, issuer_key, path_len, window=(start, end)):
            return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
                    .public_key(key.public_key()).serial_number(x509.random_serial_number())
                    .not_valid_before(window[0]).not_valid_after(window[1])
                    .add_extension(x509.BasicConstraints(ca=True, path_length=path_len), critical=True)
                    .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                                   critical=True)
                    .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
                    .sign(issuer_key, hashes.SHA256()))

        root_key = ec.generate_private_key(ec.SECP384R1())
        root = ca(_name("Example Root CA"), root_key, _name("Example Root CA"), root_key, 1)
        int_key = ec.generate_private_key(ec.SECP384R1())
        inter = ca(_name("Example Signing CA"), int_key, root.subject, root_key, 0, intermediate_window or (start, end))
        pki = cls(out / "root.pem", out / "intermediate.pem", out / "leaf-key.pem", out / "leaf-chain.pem",
                  out / "intermediate-key.pem")
        pki.root.write_bytes(_pem(root))
        pki.intermediate.write_bytes(_pem(inter))
        pki.intermediate_key.write_bytes(_key_pem(int_key))
        leaf = pki.issue("leaf", sans=[x509.RFC822Name(san_email)], not_before=now - DAY, not_after=end)
        pki.leaf_key, pki.leaf_chain = leaf.leaf_key, leaf.leaf_chain
        return pki

    def issue(self, name: str, *, sans: list[x509.GeneralName] | None,
              not_before: datetime.datetime | None = None, not_after: datetime.datetime | None = None,
              eku: list[x509.ObjectIdentifier] | None = None, cn: str = "model release signer",
              digital_signature: bool = True) -> "OrgPKI":
        """A new leaf under this intermediate (default: code signing, valid from yesterday for a year);
        `sans=None` leaves out the SubjectAlternativeName extension. Returns this PKI with that leaf."""
        assert self.intermediate_key is not None
        from cryptography.hazmat.primitives.serialization import load_pem_private_key

        inter = x509.load_pem_x509_certificate(self.intermediate.read_bytes())
        int_key = load_pem_private_key(self.intermediate_key.read_bytes(), None)
        now = _now()
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(inter.subject)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(not_before or now - DAY).not_valid_after(not_after or now + 365 * DAY)
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                   .add_extension(x509.KeyUsage(digital_signature, False, False, False, False, False, False,
                                                False, False), critical=True)
                   .add_extension(x509.ExtendedKeyUsage(eku if eku is not None else [ExtendedKeyUsageOID.CODE_SIGNING]),
                                  critical=False)
                   .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(int_key.public_key()),
                                  critical=False))
        if sans is not None:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        cert = builder.sign(int_key, hashes.SHA256())
        out = self.root.parent
        key_path, chain_path = out / f"{name}-key.pem", out / f"{name}-chain.pem"
        key_path.write_bytes(_key_pem(key))
        chain_path.write_bytes(_pem(cert) + self.intermediate.read_bytes())
        return OrgPKI(self.root, self.intermediate, key_path, chain_path, self.intermediate_key)


def _key_pem(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def sign_with_certificate(model: Path, pki: OrgPKI, out: Path) -> None:
    import model_signing

    # model_signing wants the leaf alone as the signing certificate
    leaf_only = pki.leaf_chain.read_bytes().split(b"-----END CERTIFICATE-----")[0] + b"-----END CERTIFICATE-----\n"
    leaf_path = pki.leaf_chain.with_name(pki.leaf_chain.stem + ".leaf.pem")
    leaf_path.write_bytes(leaf_only)
    cfg = model_signing.signing.Config().use_certificate_signer(
        private_key=pki.leaf_key, signing_certificate=leaf_path,
        certificate_chain=[pki.intermediate])
    if model.is_dir() and out.parent.resolve() == model.resolve():
        cfg.set_hashing_config(model_signing.hashing.Config().set_ignored_paths(paths=[out.name]))
    cfg.sign(model, out)
