"""Shared fixtures. Every test gets its own VETTED_HOME so nothing touches a real profile."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"  # real signatures, carried with their licence (see its README)
VENV_BIN = Path(sys.executable).parent

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture(autouse=True)
def vetted_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "vetted-home"
    monkeypatch.setenv("VETTED_HOME", str(home))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    return home


@pytest.fixture
def loc(vetted_home: Path):
    from vetted.paths import locations

    return locations().ensure()


@pytest.fixture
def db(loc):
    from vetted.store.db import open_db

    return open_db(loc.database)


def run_cli(*args: str, env: dict[str, str] | None = None, tool: str = "vetted",
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Runs the installed console script, as a user or a script would."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([str(VENV_BIN / tool), *args], capture_output=True, text=True,
                          env=full_env, timeout=timeout)


@pytest.fixture
def cli():
    return run_cli


@pytest.fixture
def signing_key(tmp_path: Path) -> tuple[Path, Path]:
    from vetted.authoring.publish import generate_key

    return generate_key(tmp_path / "keys")


@pytest.fixture
def no_machine_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    """For policy tests: this machine has no /etc/vetted/policy.json, and the policy comes
    only from what the test hands over (VETTED_POLICY_EXTRA)."""
    from vetted.policy import sources

    if sources.LINUX_PATH.exists():
        pytest.fail("/etc/vetted/policy.json exists on this machine; the tests need it absent")
    monkeypatch.delenv(sources.EXTRA_ENV, raising=False)


@pytest.fixture
def small_quick(monkeypatch: pytest.MonkeyPatch):
    """Makes the quick suite a whole suite of three probes (one HarmBench behaviour, one
    harmless look-alike, one coding request), so runs through a real model stay short; its
    version changes with the draw, as any changed draw does."""
    from vetted.cards import suites

    monkeypatch.setattr(suites, "QUICK_DRAW", {"harmbench-standard": (1, None), "vetted-overrefusal": (1, None),
                                               "vetted-code": (1, None)})
    return suites.load("quick")
