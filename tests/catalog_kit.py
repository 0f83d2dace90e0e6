"""Builds small signed catalogs for tests, the way `vetted-admin build-catalog` does."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from vetted.authoring.publish import build_catalog, sign_file_or_folder


def make_model(folder: Path, name: str = "tiny.gguf", size: int = 200_000) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    p = folder / name
    p.write_bytes(b"GGUF" + os.urandom(size - 4))
    return p


def build(tmp: Path, key: Path, version: int = 1, models: list[dict[str, Any]] | None = None,
          verify_publisher_signatures: bool = True, **catalog_fields: Any) -> Path:
    if models is None:
        models = [{"id": "tiny", "name": "Tiny", "publisher": "Test Pub", "license": "MIT",
                   "path": str(make_model(tmp / "src"))}]
    spec = {"id": "org.test.catalog", "name": "Test catalog", "publisher": "Test Org",
            "version": version, "models": models, **catalog_fields}
    return build_catalog(spec, tmp, key, tmp / "out", verify_publisher_signatures=verify_publisher_signatures)


def rewrite_and_resign(catalog: Path, key: Path, change) -> None:
    """Edits a built catalog and signs it again with `key` (a legitimate new issue)."""
    doc = json.loads(catalog.read_bytes())
    change(doc)
    catalog.write_text(json.dumps(doc, indent=2))
    sign_file_or_folder(catalog, key, catalog.with_name("catalog.json.sig"))
