"""The two attestation predicates Vetted defines (documented in docs/predicates.md).

Both travel as in-toto Statement v1 whose subject is the GGUF's sha256, in a DSSE
envelope inside a Sigstore bundle, signed by whoever makes the claim.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

PROVENANCE_V1 = "https://vetted.dev/attestations/provenance/v1"
SAFETY_CARD_V1 = "https://vetted.dev/attestations/safety-card/v1"

Relation = Literal["original", "finetune", "quantized", "merge", "adapter", "distilled"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BaseModelRef(_Strict):
    name: str
    repo: str | None = None
    relation: Relation  # how *this* model relates to that base
    teachers: list[str] = Field(default_factory=list)  # for relation "distilled"


class Tool(_Strict):
    name: str
    version: str | None = None


class Source(_Strict):
    repo: str
    commit: str | None = None


class Provenance(_Strict):
    """Who made the model and from what."""

    publisher: str
    model_name: str
    base_models: list[BaseModelRef] = Field(default_factory=list)
    training_data: str | None = None
    converter: Tool | None = None
    quantizer: Tool | None = None
    quantization: str | None = None
    license: str
    source: Source | None = None
    architecture: str | None = None
    tokenizer: str | None = None  # tokenizer.ggml.pre as declared
    vocab_sha256: str | None = None  # sha256 over the vocabulary (see cards/consistency.py)
    parameters: int | None = None
    context_length: int | None = None


class Citation(_Strict):
    """Where a published figure comes from: the card's signer vouches that it was
    published, not that it is true, so every view labels it "cited, unverified"."""

    source: str  # "Cisco, Evaluating Security Risk in DeepSeek and Other Frontier Reasoning Models"
    url: str | None = None
    published: str  # ISO date of the publication


class Judge(_Strict):
    """Who decided, reply by reply, what counted: name and version, and its measured accuracy."""

    name: str
    accuracy: float | None = None  # on a held-out labelled set
    heldout_n: int | None = None


class Result(_Strict):
    benchmark: str  # e.g. "harmbench-standard", "HarmBench", "XSTest"
    benchmark_version: str | None = None
    metric: str  # e.g. "harmbench_attack_success_rate" (cards.suites.METRICS, or an alias)
    value: float = Field(ge=0.0, le=1.0)  # a rate
    direction: Literal["lower_is_better", "higher_is_better"]
    sample_size: int | None = Field(default=None, ge=1)
    ci95: tuple[float, float] | None = None
    notes: str | None = None
    citation: Citation | None = None  # set: a published figure the signer cites (cited, unverified)
    judge: Judge | None = None
    other: int | None = Field(default=None, ge=0)  # replies the judge found unusable (in the sample, not the rate)

    @field_validator("ci95")
    @classmethod
    def _interval(cls, v: tuple[float, float] | None) -> tuple[float, float] | None:
        if v is not None and not 0.0 <= v[0] <= v[1] <= 1.0:
            raise ValueError(f"ci95 {list(v)} is not an interval within [0, 1]")
        return v


class SafetyCard(_Strict):
    """How the model behaved, per benchmark, and who says so."""

    evaluator: str
    evaluated_at: str  # ISO date
    harness: Tool | None = None
    assurance: Literal["self-attested", "third-party", "reproduced"]
    results: list[Result] = Field(default_factory=list)
    not_evaluated: list[str] = Field(default_factory=list)  # benchmarks with no result, named
    flags: list[str] = Field(default_factory=list)  # e.g. "abliterated", "uncensored"


PREDICATES: dict[str, type[BaseModel]] = {PROVENANCE_V1: Provenance, SAFETY_CARD_V1: SafetyCard}
KINDS = {"provenance": PROVENANCE_V1, "safety_card": SAFETY_CARD_V1}
