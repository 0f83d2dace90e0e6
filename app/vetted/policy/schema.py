"""`vetted.policy/1`: an organisation's managed policy, validated strictly.

Unknown fields are errors (a misspelt rule must not silently vanish) and every error
names the field. A document holding only `schema` is valid and imposes nothing. Each
section is optional; later capabilities (the local API server, bundle import, new
spot-check suites) add sections of their own without touching these.

    {
      "schema": "vetted.policy/1",
      "catalogs": {"allowed": [{"location": "...", "signers": [TRUST, ...], "trusted_root": "/path"}],
                   "users_may_add": false},
      "models":   {"blocked_digests": ["<sha256>", ...], "require_publisher_signature": true},
      "safety":   {"require_signed_card": true, "max": {"harmbench_attack_success_rate": 0.1},
                   "require_spotcheck": true},
      "network":  {"mode": "offline" | "catalog_sources" | "any", "hf_endpoint": "https://..."},
      "settings": {"transfers.min_rate": 65536},
      "audit":    {"copy_to": "/var/log/vetted/audit.jsonl"},
      "imports":  {"allowed": true, "only_catalog_signers": true},
      "api":      {"allowed": true, "interfaces": ["10.0.0.5"], "cors_origins": ["https://tool.example.org"]}
    }

TRUST is a catalog signer object: {"kind": "key", "public_key_pem"}, {"kind":
"certificate", "chain_pem", "identity"}, or {"kind": "sigstore", "identity", "issuer"}.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from vetted.catalog.schema import TrustSpecModel
from vetted.net.limits import MAX_CONNECTIONS
from vetted.safety_metrics import ALIASES, METRICS as _METRICS

SCHEMA = "vetted.policy/1"
MAX_POLICY_BYTES = 4 * 1024 * 1024

# The metrics a threshold may name: one per spot-check suite (vetted/safety_metrics.py);
# an earlier or published name (harmful_compliance_rate, harmbench_asr, …) is read as its
# current one, so a policy written for an earlier version keeps its meaning.
METRICS = tuple(_METRICS)
# Settings an organisation may lock (the user's settings.json keys, dotted).
LOCKABLE = {"transfers.stall_timeout": float, "transfers.window": float, "transfers.min_rate": int,
            # e.g. 1 where a proxy or mirror counts connections per client
            "transfers.connections": int}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AllowedCatalog(_Strict):
    location: str = Field(min_length=1)
    signers: list[TrustSpecModel] = Field(min_length=1)  # several: key rotation (old, both, new)
    trusted_root: str | None = None  # a private Sigstore's trusted_root.json for keyless signers


class Catalogs(_Strict):
    allowed: list[AllowedCatalog] | None = None  # None: any catalog the user pins (unless users_may_add)
    users_may_add: bool = True


class Models(_Strict):
    blocked_digests: list[str] = Field(default_factory=list)
    require_publisher_signature: bool = False  # signed by someone other than the catalog's own signer

    @field_validator("blocked_digests")
    @classmethod
    def _digests(cls, values: list[str]) -> list[str]:
        for v in values:
            if not re.fullmatch(r"[0-9a-f]{64}", v):
                raise ValueError(f"{v!r} is not a sha256 digest (64 lowercase hex digits)")
        return values


class Safety(_Strict):
    require_signed_card: bool = False
    max: dict[str, float] = Field(default_factory=dict)
    require_spotcheck: bool = False

    @field_validator("max")
    @classmethod
    def _metrics(cls, values: dict[str, float]) -> dict[str, float]:
        out: dict[str, float] = {}
        for k, v in values.items():
            name = ALIASES.get(k, k)
            if name not in METRICS:
                raise ValueError(f"unknown metric {k!r} (one of: {', '.join(METRICS)})")
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"{k} must be a rate between 0 and 1, not {v}")
            if name in out:
                raise ValueError(f"{k} names the same metric as another entry ({name})")
            out[name] = v
        return out


class Network(_Strict):
    mode: Literal["offline", "catalog_sources", "any"] = "any"
    # https, or plain http only on loopback (a test Hub)
    hf_endpoint: str | None = Field(default=None,
                                    pattern=r"^(https://[^\s/]+|http://(127\.0\.0\.1|localhost|\[::1\])(:\d+)?)")


class AuditCopy(_Strict):
    copy_to: str | None = None


class Imports(_Strict):
    """Air-gapped bundles (`vetted import`). `allowed: false` forbids them;
    `only_catalog_signers` accepts only bundles whose catalog is signed by a signer of the
    policy's allowed catalogs (not one a person names). With `catalogs.allowed` set and
    `catalogs.users_may_add` false, that restriction holds anyway."""

    allowed: bool = True
    only_catalog_signers: bool = False


# scheme://host[:port], no path, no wildcard: the only shape a CORS origin may take, in a
# policy and in the person's own API settings (core/api_access.py)
WEB_ORIGIN = re.compile(r"https?://[A-Za-z0-9.\-]+(:\d{1,5})?|https?://\[[0-9A-Fa-f:.]+\](:\d{1,5})?")


class Api(_Strict):
    """The local OpenAI-compatible API server (`vetted serve`, vetted/api/). `allowed:
    false` forbids it outright. It binds to loopback only; `interfaces` lists the other
    addresses (IP literals) a person may ask it to listen on as well — none unless listed,
    because a listening model server on a network is exactly what was found exposed by the
    hundred thousand. `cors_origins` is the only list of web origins that ever get CORS
    headers (when set it replaces the person's own list)."""

    allowed: bool = True
    interfaces: list[str] | None = None
    cors_origins: list[str] | None = None

    @field_validator("interfaces")
    @classmethod
    def _interfaces(cls, values: list[str] | None) -> list[str] | None:
        import ipaddress

        for v in values or []:
            try:
                ip = ipaddress.ip_address(v)
            except ValueError:
                raise ValueError(f"{v!r} is not an IP address (name the interface's address)") from None
            if ip.is_unspecified:
                raise ValueError(f"{v!r} means every interface; list the addresses to listen on")
        return values

    @field_validator("cors_origins")
    @classmethod
    def _origins(cls, values: list[str] | None) -> list[str] | None:
        for v in values or []:
            if not WEB_ORIGIN.fullmatch(v):
                raise ValueError(f"{v!r} is not a web origin (scheme://host[:port], no path, no wildcard)")
        return values


class Policy(_Strict):
    schema_: Literal["vetted.policy/1"] = Field(alias="schema")
    catalogs: Catalogs = Field(default_factory=Catalogs)
    models: Models = Field(default_factory=Models)
    safety: Safety = Field(default_factory=Safety)
    network: Network = Field(default_factory=Network)
    settings: dict[str, Any] = Field(default_factory=dict)  # checked by _settings: one message per mistake
    audit: AuditCopy = Field(default_factory=AuditCopy)
    imports: Imports = Field(default_factory=Imports)
    api: Api = Field(default_factory=Api)

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("settings")
    @classmethod
    def _settings(cls, values: dict[str, Any]) -> dict[str, float | int]:
        """Each lock a finite positive number of its setting's kind (a NaN timeout would
        fail every request; an infinite one would never time out), whole where the setting
        counts something; worded for the administrator who wrote it."""
        out: dict[str, float | int] = {}
        for k, v in values.items():
            if k not in LOCKABLE:
                raise ValueError(f"{k!r} is not a setting that can be locked (one of: {', '.join(LOCKABLE)})")
            whole = LOCKABLE[k] is int
            if k == "transfers.connections":
                kind = f"a whole number from 1 to {MAX_CONNECTIONS}"
            else:
                kind = "a positive whole number" if whole else "a positive number"
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0 \
                    or (whole and v != int(v)) or (k == "transfers.connections" and v > MAX_CONNECTIONS):
                raise ValueError(f"{k} must be {kind}, not {json.dumps(v)}")
            out[k] = int(v) if whole else float(v)
        return out


class PolicyInvalid(ValueError):
    """The document is not a valid `vetted.policy/1` (the message names the field)."""


def parse(raw: bytes | str) -> Policy:
    if len(raw) > MAX_POLICY_BYTES:
        raise PolicyInvalid(f"{len(raw)} bytes exceeds the {MAX_POLICY_BYTES}-byte cap")
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise PolicyInvalid(f"not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise PolicyInvalid("the document is not a JSON object")
    if data.get("schema") != SCHEMA:
        raise PolicyInvalid(f"schema is {data.get('schema')!r}, expected {SCHEMA!r}")
    try:
        return Policy.model_validate_json(raw if isinstance(raw, (bytes, str)) else json.dumps(data), strict=True)
    except ValidationError as exc:
        problems = []
        for err in exc.errors()[:5]:
            where = ".".join(str(p) for p in err["loc"]) or "(document)"
            problems.append(f"{where}: {str(err['msg']).removeprefix('Value error, ')}")
        more = f" (and {exc.error_count() - 5} more)" if exc.error_count() > 5 else ""
        raise PolicyInvalid("; ".join(problems) + more) from None


def as_json(policy: Policy) -> dict[str, Any]:
    return policy.model_dump(mode="json", by_alias=True, exclude_none=True)
