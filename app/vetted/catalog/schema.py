"""`vetted.catalog/1`: the catalog document, validated strictly.

Unknown fields are errors (a typo must not silently drop a security setting), and every
error names the field path so a catalog author can fix it.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from vetted.errors import CatalogError, Fix, Remedy

if TYPE_CHECKING:
    from pathlib import Path

    from vetted.trust.identity import TrustSpec
from vetted.textsafe import is_unsafe

SCHEMA = "vetted.catalog/1"
MAX_CATALOG_BYTES = 16 * 1024 * 1024
_ID = r"^[a-z0-9][a-z0-9._-]{0,127}$"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def check_file_name(name: str) -> str:
    """A plain file name: no folders, no traversal, nothing a filesystem treats specially."""
    if (
        not name
        or name in (".", "..")
        or "/" in name
        or "\\" in name
        or ".." in name
        or name.startswith(".")
        or "\x00" in name
        or re.search(r"[:<>|\"?*\x00-\x1f]", name)
        or any(is_unsafe(ch) for ch in name)  # C1 controls, bidi overrides, zero-width characters
        or len(name) > 200
    ):
        raise ValueError(f"{name!r} is not a plain file name (no path separators, '..' or control characters)")
    return name


class FileEntry(Strict):
    name: str
    size: int = Field(gt=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")

    _name = field_validator("name")(check_file_name)


class HuggingFaceSource(Strict):
    repo: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")
    commit: str = Field(pattern=r"^[0-9a-f]{40}$")


# The OCI distribution spec's repository name grammar (path components, lower case).
_OCI_REPOSITORY = r"[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*"
_LOOPBACK_HTTP = r"^http://(127\.0\.0\.1|localhost|\[::1\])(:\d+)?(/|$)"


class OciSource(Strict):
    """An OCI registry holding the model as artifact layers of one manifest.

    The manifest is pinned by digest, never by tag: a tag can be moved by whoever can push
    to the registry, while the signed catalog decides which manifest (and so which layers)
    is meant.
    """

    registry: str  # base URL; requests go to REGISTRY/v2/REPOSITORY/...
    repository: str = Field(max_length=255)
    manifest: str

    @field_validator("registry")
    @classmethod
    def _registry_url(cls, url: str) -> str:
        if not (re.fullmatch(r"https://[^\s/?#@]+(/[^\s?#]*)?", url) or re.match(_LOOPBACK_HTTP, url)) \
                or re.search(r"[\s?#]", url):
            raise ValueError(f"registry {url!r} must be an https:// URL (plain http only on loopback)")
        return url

    @field_validator("repository")
    @classmethod
    def _repository_name(cls, name: str) -> str:
        if not re.fullmatch(_OCI_REPOSITORY, name):
            raise ValueError(f"repository {name!r} is not an OCI repository name "
                             "(lower-case path components of letters, digits and . _ __ -)")
        return name

    @field_validator("manifest")
    @classmethod
    def _pinned(cls, ref: str) -> str:
        if not re.fullmatch(r"sha256:[0-9a-f]{64}", ref):
            raise ValueError(f"manifest {ref!r} must be pinned by digest (sha256:<64 hex digits>), "
                             "not a tag: a tag can move")
        return ref


class Sources(Strict):
    huggingface: HuggingFaceSource | None = None
    oci: OciSource | None = None
    mirrors: list[str] = Field(default_factory=list)  # base URLs; a file is BASE/NAME
    local: list[str] = Field(default_factory=list)  # folders, relative to the catalog file

    @field_validator("mirrors")
    @classmethod
    def _https(cls, urls: list[str]) -> list[str]:
        for url in urls:
            if not re.match(r"^https://[^\s/]+", url) and not re.match(_LOOPBACK_HTTP, url):
                raise ValueError(f"mirror {url!r} must be an https:// URL (plain http only on loopback)")
        return urls

    @model_validator(mode="after")
    def _some(self) -> "Sources":
        if not (self.huggingface or self.oci or self.mirrors or self.local):
            raise ValueError("at least one source (huggingface, oci, mirrors or local) is required")
        return self


class TrustSpecModel(Strict):
    kind: Literal["sigstore", "certificate", "key"]
    identity: str | None = None
    issuer: str | None = None
    chain_pem: str | None = None
    public_key_pem: str | None = None

    @model_validator(mode="after")
    def _complete(self) -> "TrustSpecModel":
        need = {"sigstore": ("identity", "issuer"), "certificate": ("chain_pem", "identity"),
                "key": ("public_key_pem",)}
        for f in need[self.kind]:
            if not getattr(self, f):
                raise ValueError(f"a '{self.kind}' signer needs '{f}'")
        if self.kind == "certificate":  # typed: e-mail, URI, DNS SAN or a SAN-less subject DN
            from vetted.errors import InputError
            from vetted.trust.certs import CertIdentity

            try:
                CertIdentity.parse(str(self.identity))
            except InputError as exc:
                raise ValueError(f"'identity' {exc.found}") from None
        return self

    def spec(self, trusted_root: "Path | None" = None) -> "TrustSpec":
        """The trust spec; Sigstore identities use the catalog's trusted root if it has one."""
        from vetted.trust.identity import from_json

        return from_json(self.model_dump(exclude_none=True), trusted_root)


class SignatureRef(Strict):
    bundle: str  # file name of the OMS bundle, fetched from the same sources as the files
    signer: TrustSpecModel

    _name = field_validator("bundle")(check_file_name)


class AttestationRef(Strict):
    """A signed claim about the model's file, carried inline (a few KB), so cards show
    offline and before download; verified against `signer` whenever it is shown."""

    kind: Literal["provenance", "safety_card"]
    bundle: dict[str, Any]
    signer: TrustSpecModel


class Runtime(Strict):
    chat_template: str | None = None
    context_length: int | None = Field(default=None, gt=0)
    ram_bytes: int | None = Field(default=None, gt=0)
    recommended: dict[str, float | int | str] = Field(default_factory=dict)


class ModelEntry(Strict):
    id: str = Field(pattern=_ID)
    name: str = Field(min_length=1)
    publisher: str = Field(min_length=1)
    description: str = ""
    license: str = Field(min_length=1)
    family: str = ""
    parameters: int | None = Field(default=None, gt=0)
    quantization: str = ""
    files: list[FileEntry] = Field(min_length=1)
    sources: Sources
    signature: SignatureRef
    attestations: list[AttestationRef] = Field(default_factory=list)
    provenance: dict[str, Any] | None = None  # unsigned: shown, labelled unverified
    safety_card: dict[str, Any] | None = None  # unsigned: shown, labelled unverified
    runtime: Runtime = Field(default_factory=Runtime)

    @model_validator(mode="after")
    def _unique_files(self) -> "ModelEntry":
        names = [f.name for f in self.files]
        if len(set(names)) != len(names):
            raise ValueError("file names must be unique")
        if self.signature.bundle in names:
            raise ValueError("the signature bundle cannot also be a model file")
        return self

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)


class Catalog(Strict):
    schema_: Literal["vetted.catalog/1"] = Field(alias="schema")
    id: str = Field(pattern=_ID)
    name: str = Field(min_length=1)
    publisher: str = Field(min_length=1)
    version: int = Field(ge=1)
    issued: AwareDatetime
    expires: AwareDatetime
    models: list[ModelEntry]

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _consistent(self) -> "Catalog":
        if self.expires <= self.issued:
            raise ValueError("'expires' must be after 'issued'")
        ids = [m.id for m in self.models]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"duplicate model ids: {', '.join(dupes)}")
        return self

    def expired(self, at: datetime | None = None) -> bool:
        return (at or datetime.now(timezone.utc)) >= self.expires

    def model(self, model_id: str) -> ModelEntry:
        for m in self.models:
            if m.id == model_id:
                return m
        raise CatalogError(
            f"catalog {self.id} v{self.version}",
            f"has no model {model_id!r}",
            "see the models it offers", Remedy(Fix.LIST_CATALOG),
        )


def parse(raw: bytes, origin: str) -> Catalog:
    """Parses and validates catalog bytes; errors name the offending field."""
    import json

    if len(raw) > MAX_CATALOG_BYTES:
        raise CatalogError(f"catalog {origin}", f"{len(raw)} bytes exceeds the {MAX_CATALOG_BYTES}-byte cap")
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise CatalogError(f"catalog {origin}", f"not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise CatalogError(f"catalog {origin}", "the document is not a JSON object")
    if data.get("schema") != SCHEMA:
        raise CatalogError(
            f"catalog {origin}", f"schema is {data.get('schema')!r}, expected {SCHEMA!r}",
            "this Vetted reads only vetted.catalog/1",
        )
    try:
        # strict: "1" is not a version number, and a string is not a size
        return Catalog.model_validate_json(raw, strict=True)
    except ValidationError as exc:
        problems = []
        for err in exc.errors()[:5]:
            where = ".".join(str(p) for p in err["loc"]) or "(document)"
            problems.append(f"{where}: {err['msg']}")
        more = f" (and {exc.error_count() - 5} more)" if exc.error_count() > 5 else ""
        raise CatalogError(f"catalog {origin}", "; ".join(problems) + more, "fix the catalog and re-sign it") from None


def to_json(catalog: Catalog) -> dict[str, Any]:
    return catalog.model_dump(mode="json", by_alias=True, exclude_none=True)
