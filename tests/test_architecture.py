"""DESIGN.md invariant 10: the core never imports Qt."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "app" / "vetted"
QT = ("PySide6", "PyQt5", "PyQt6", "shiboken6", "qtpy")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text("utf-8"), str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_no_qt_import_outside_gui_statically() -> None:
    offenders = []
    for path in PKG.rglob("*.py"):
        if "gui" in path.relative_to(PKG).parts:
            continue
        bad = _imports(path) & set(QT)
        if bad:
            offenders.append(f"{path.relative_to(PKG)}: {sorted(bad)}")
    assert offenders == []


def test_importing_every_core_module_loads_no_qt() -> None:
    """Catches indirect imports too: load every core module, then look at sys.modules."""
    mods = sorted(
        "vetted." + ".".join(p.relative_to(PKG).with_suffix("").parts).removesuffix(".__init__")
        for p in PKG.rglob("*.py") if "gui" not in p.relative_to(PKG).parts
    )
    code = (
        "import importlib, sys\n"
        f"for m in {mods!r}:\n"
        "    importlib.import_module(m.rstrip('.'))\n"
        f"print(sorted(k for k in sys.modules if k.split('.')[0] in {QT!r}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    assert len(mods) > 20  # the walk really found the core


# Issue 9: the signature libraries are reached only through one adapter, so an upgrade
# (or a private API that changed) touches one file.
SIGNATURE_LIBS = ("sigstore", "model_signing", "sigstore_models", "google.protobuf", "in_toto_attestation")
BACKEND = Path("trust") / "backend.py"


def _module_names(path: Path) -> set[str]:
    """Every module a file imports, by full dotted name (also `importlib.import_module("x")`
    and `__import__("x")` with a literal name, so a lazy import is not a way around it)."""
    tree = ast.parse(path.read_text("utf-8"), str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if called in ("import_module", "__import__") and isinstance(node.args[0].value, str):
                names.add(node.args[0].value)
    return names


def _is_signature_lib(name: str) -> bool:
    return any(name == lib or name.startswith(lib + ".") for lib in SIGNATURE_LIBS)


def test_signature_libraries_are_imported_only_by_the_trust_backend() -> None:
    offenders = []
    for path in sorted(PKG.rglob("*.py")):
        if path.relative_to(PKG) == BACKEND:
            continue
        bad = sorted(n for n in _module_names(path) if _is_signature_lib(n))
        if bad:
            offenders.append(f"{path.relative_to(PKG)}: {bad}")
    assert offenders == []
    assert {n for n in _module_names(PKG / BACKEND) if _is_signature_lib(n)}  # the walk sees real imports


def test_signature_library_check_sees_every_import_form(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import sigstore.verify\n"
        "from google import protobuf\n"
        "from in_toto_attestation.v1 import statement_pb2\n"
        "import importlib\n"
        "importlib.import_module('model_signing._signing.sign_ec_key')\n"
        "__import__('sigstore_models')\n"
        "import googleapiclient, sigstorex\n"
    )
    found = sorted(n for n in _module_names(sample) if _is_signature_lib(n))
    assert found == ["google.protobuf", "in_toto_attestation.v1", "in_toto_attestation.v1.statement_pb2",
                     "model_signing._signing.sign_ec_key", "sigstore.verify", "sigstore_models"]
