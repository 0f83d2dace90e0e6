"""A local test Sigstore, written for Vetted's test suite: a CA playing Fulcio (leaf
certificates with an embedded SCT from a local CT log key), a Rekor key giving a signed
entry timestamp, a one-leaf inclusion proof with a signed checkpoint, and the matching
trusted_root.json. Everything happens in-process; nothing touches the network."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import struct
from dataclasses import dataclass
from pathlib import Path

import rfc8785
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

OIDC_ISSUER_V1 = ObjectIdentifier("1.3.6.1.4.1.57264.1.1")
OIDC_ISSUER_V2 = ObjectIdentifier("1.3.6.1.4.1.57264.1.8")
SCT_LIST = ObjectIdentifier("1.3.6.1.4.1.11129.2.4.2")
NOW = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def spki(key) -> bytes:
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def key_id(key) -> bytes:
    return hashlib.sha256(spki(key)).digest()


def _der(tag: int, data: bytes) -> bytes:
    """A DER TLV; lengths of 128 and up take the long form (0x80 | count, then big-endian)."""
    n = len(data)
    if n < 128:
        return bytes([tag, n]) + data
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(size)]) + size + data


def _der_octets(data: bytes) -> bytes:
    return _der(0x04, data)


def _der_utf8(text: str) -> bytes:
    return _der(0x0C, text.encode())


@dataclass
class Signed:
    bundle: Path
    artifact: Path


class LocalSigstore:
    def __init__(self, name: str = "local") -> None:
        self.name = name
        self.ca_key = ec.generate_private_key(ec.SECP384R1())
        self.ct_key = ec.generate_private_key(ec.SECP256R1())
        self.rekor_key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, f"{name}.test"),
                             x509.NameAttribute(NameOID.COMMON_NAME, f"{name} test fulcio")])
        self.ca = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
                   .public_key(self.ca_key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(NOW - dt.timedelta(days=1)).not_valid_after(NOW + dt.timedelta(days=30))
                   .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
                   .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), True)
                   .add_extension(x509.SubjectKeyIdentifier.from_public_key(self.ca_key.public_key()), False)
                   .sign(self.ca_key, hashes.SHA384()))

    # -- trust root
    def trusted_root(self, path: Path) -> Path:
        start = (NOW - dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")

        def log(key, url: str) -> dict:
            return {"baseUrl": url, "hashAlgorithm": "SHA2_256",
                    "publicKey": {"rawBytes": b64(spki(key.public_key())), "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                                  "validFor": {"start": start}},
                    "logId": {"keyId": b64(key_id(key.public_key()))}}

        root = {
            "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
            "tlogs": [log(self.rekor_key, f"https://rekor.{self.name}.test")],
            "certificateAuthorities": [{
                "subject": {"organization": f"{self.name}.test", "commonName": f"{self.name} test fulcio"},
                "uri": f"https://fulcio.{self.name}.test",
                "certChain": {"certificates": [{"rawBytes": b64(self.ca.public_bytes(serialization.Encoding.DER))}]},
                "validFor": {"start": start}}],
            "ctlogs": [log(self.ct_key, f"https://ct.{self.name}.test")],
            "timestampAuthorities": [],
        }
        path.write_text(json.dumps(root, indent=2))
        return path

    # -- "Fulcio": a short-lived leaf with the identity, the issuer and an embedded SCT
    def issue(self, identity: str, issuer: str, leaf_key) -> x509.Certificate:
        san = x509.RFC822Name(identity) if "@" in identity and "://" not in identity \
            else x509.UniformResourceIdentifier(identity)
        builder = (x509.CertificateBuilder().subject_name(x509.Name([]))
                   .issuer_name(self.ca.subject).public_key(leaf_key.public_key())
                   .serial_number(x509.random_serial_number())
                   .not_valid_before(NOW - dt.timedelta(minutes=5)).not_valid_after(NOW + dt.timedelta(minutes=10))
                   .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), True)
                   .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), False)
                   .add_extension(x509.SubjectKeyIdentifier.from_public_key(leaf_key.public_key()), False)
                   .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.ca_key.public_key()), False)
                   .add_extension(x509.SubjectAlternativeName([san]), True)
                   .add_extension(x509.UnrecognizedExtension(OIDC_ISSUER_V1, issuer.encode()), False)
                   .add_extension(x509.UnrecognizedExtension(OIDC_ISSUER_V2, _der_utf8(issuer)), False))
        # The SCT signs the certificate as it will be without the SCT extension (RFC 6962).
        precert = builder.sign(self.ca_key, hashes.SHA256())
        sct = self._sct(precert.tbs_certificate_bytes)
        sct_list = struct.pack("!H", len(sct) + 2) + struct.pack("!H", len(sct)) + sct
        final = builder.add_extension(x509.UnrecognizedExtension(SCT_LIST, _der_octets(sct_list)), False) \
            .sign(self.ca_key, hashes.SHA256())
        assert final.tbs_precertificate_bytes == precert.tbs_certificate_bytes
        return final

    def _sct(self, tbs: bytes) -> bytes:
        ts = int((NOW - dt.timedelta(minutes=4)).timestamp() * 1000)
        issuer_hash = key_id(self.ca_key.public_key())
        signed = struct.pack("!BBQH", 0, 0, ts, 1) + issuer_hash + len(tbs).to_bytes(3, "big") + tbs + b"\x00\x00"
        sig = self.ct_key.sign(signed, ec.ECDSA(hashes.SHA256()))
        return (b"\x00" + key_id(self.ct_key.public_key()) + struct.pack("!Q", ts) + b"\x00\x00"
                + b"\x04\x03" + struct.pack("!H", len(sig)) + sig)

    # -- "Rekor": an entry with a signed entry timestamp, inclusion proof and checkpoint
    def _log(self, body: bytes, kind: str) -> dict:
        log_id = key_id(self.rekor_key.public_key())
        integrated = int((NOW - dt.timedelta(minutes=3)).timestamp())
        index = 0
        set_payload = rfc8785.dumps({"body": b64(body), "integratedTime": integrated,
                                     "logID": log_id.hex(), "logIndex": index})
        set_sig = self.rekor_key.sign(set_payload, ec.ECDSA(hashes.SHA256()))
        root_hash = hashlib.sha256(b"\x00" + body).digest()  # a one-leaf tree: the root is the leaf
        host = f"rekor.{self.name}.test"
        note = f"{host} - 1\n1\n{b64(root_hash)}\n"  # origin, tree size, root hash
        note_sig = self.rekor_key.sign(note.encode(), ec.ECDSA(hashes.SHA256()))
        checkpoint = f"{note}\n\u2014 {host} {b64(log_id[:4] + note_sig)}\n"
        return {"logIndex": str(index), "logId": {"keyId": b64(log_id)},
                "kindVersion": {"kind": kind, "version": "0.0.1"}, "integratedTime": str(integrated),
                "inclusionPromise": {"signedEntryTimestamp": b64(set_sig)},
                "inclusionProof": {"logIndex": str(index), "rootHash": b64(root_hash), "treeSize": "1",
                                   "hashes": [], "checkpoint": {"envelope": checkpoint}},
                "canonicalizedBody": b64(body)}

    def _material(self, cert: x509.Certificate, entry: dict) -> dict:
        return {"certificate": {"rawBytes": b64(cert.public_bytes(serialization.Encoding.DER))},
                "tlogEntries": [entry]}

    # -- signing an artifact (hashedrekord)
    def sign(self, artifact: Path, identity: str, issuer: str, out: Path) -> Signed:
        leaf_key = ec.generate_private_key(ec.SECP256R1())
        cert = self.issue(identity, issuer, leaf_key)
        data = artifact.read_bytes()
        digest = hashlib.sha256(data).digest()
        signature = leaf_key.sign(data, ec.ECDSA(hashes.SHA256()))
        cert_pem = cert.public_bytes(serialization.Encoding.PEM)
        body = rfc8785.dumps({
            "apiVersion": "0.0.1", "kind": "hashedrekord",
            "spec": {"data": {"hash": {"algorithm": "sha256", "value": digest.hex()}},
                     "signature": {"content": b64(signature), "publicKey": {"content": b64(cert_pem)}}}})
        bundle = {
            "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
            "verificationMaterial": self._material(cert, self._log(body, "hashedrekord")),
            "messageSignature": {"messageDigest": {"algorithm": "SHA2_256", "digest": b64(digest)},
                                 "signature": b64(signature)},
        }
        out.write_text(json.dumps(bundle, indent=2))
        return Signed(out, artifact)

    # -- signing an in-toto statement (DSSE), e.g. an OpenSSF Model Signing manifest
    def sign_statement(self, statement: dict, identity: str, issuer: str, out: Path) -> Path:
        leaf_key = ec.generate_private_key(ec.SECP256R1())
        cert = self.issue(identity, issuer, leaf_key)
        payload = json.dumps(statement).encode()
        ptype = "application/vnd.in-toto+json"
        pae = f"DSSEv1 {len(ptype)} {ptype} {len(payload)} ".encode() + payload
        sig = leaf_key.sign(pae, ec.ECDSA(hashes.SHA256()))
        envelope = {"payload": b64(payload), "payloadType": ptype, "signatures": [{"sig": b64(sig)}]}
        body = rfc8785.dumps({
            "apiVersion": "0.0.1", "kind": "dsse",
            "spec": {"envelopeHash": {"algorithm": "sha256",
                                      "value": hashlib.sha256(rfc8785.dumps(envelope)).hexdigest()},
                     "payloadHash": {"algorithm": "sha256", "value": hashlib.sha256(payload).hexdigest()},
                     "signatures": [{"signature": b64(sig),
                                     "verifier": b64(cert.public_bytes(serialization.Encoding.PEM))}]}})
        bundle = {"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
                  "verificationMaterial": self._material(cert, self._log(body, "dsse")),
                  "dsseEnvelope": envelope}
        out.write_text(json.dumps(bundle, indent=2))
        return out


def oms_statement(model: Path) -> dict:
    """The in-toto statement `model_signing sign` would produce for a file or folder."""
    from google.protobuf import json_format
    from model_signing import hashing
    from model_signing._signing.signing import Payload

    manifest = hashing.Config().hash(model)
    return json_format.MessageToDict(Payload(manifest).statement.pb)
