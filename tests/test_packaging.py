"""The installers (issue 12): `make package` builds the .deb and the portable tarball, and
packaging/linux/smoke-test passes on what they install, with no virtualenv or source tree in
reach. The fast tests check the hooks a frozen app needs (the worker command, the name-based
`vetted-admin`, `--version`, the GUI's first-paint self-test) from the virtualenv."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest

from conftest import ROOT, run_cli

VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]["version"]


def test_worker_command_unfrozen_is_isolated_python() -> None:
    from vetted.runtime.engine import worker_command

    assert worker_command() == [sys.executable, "-I", "-u", "-m", "vetted.runtime.worker"]


def test_worker_command_frozen_is_the_executable_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    from vetted.runtime.engine import worker_command

    monkeypatch.setattr(sys, "frozen", True, raising=False)
    assert worker_command() == [sys.executable, "--run-engine-worker"]


def test_frozen_app_started_as_vetted_admin_is_the_authoring_tool(monkeypatch: pytest.MonkeyPatch,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    from vetted import launch

    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "argv", ["/usr/bin/vetted-admin", "--help"])
    with pytest.raises(SystemExit) as done:
        launch.main()
    assert done.value.code == 0 and capsys.readouterr().out.startswith("usage: vetted-admin")
    # unfrozen, the name means nothing (pip installs a separate vetted-admin script)
    monkeypatch.setattr(sys, "frozen", False)
    monkeypatch.setattr(sys, "argv", ["/somewhere/vetted-admin", "--version"])
    assert launch.main() == 0 and capsys.readouterr().out == f"vetted {VERSION}\n"


def test_frozen_version_is_the_one_baked_in(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from vetted import launch

    (tmp_path / launch.BUILD_INFO).write_text("9.8.7\n")
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path), raising=False)
    assert launch.version() == "9.8.7"


def test_version_and_hidden_worker_from_the_console_script(tmp_path: Path) -> None:
    out = run_cli("--version")
    assert out.returncode == 0 and out.stdout == f"vetted {VERSION}\n", out
    # the hidden worker entry speaks the engine protocol: ready, then exits when told
    worker = subprocess.run([str(Path(sys.executable).parent / "vetted"), "--run-engine-worker"],
                            input=b'{"op":"exit"}\n', capture_output=True, timeout=60)
    assert worker.returncode == 0 and worker.stdout.startswith(b'{"ev":"ready"'), worker


def test_gui_smoke_self_test_paints_and_exits(tmp_path: Path) -> None:
    done = run_cli(env={"VETTED_GUI_SMOKE": "1", "QT_QPA_PLATFORM": "offscreen"}, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert re.search(r"^gui-smoke: painted 'Vetted' \d+x\d+ on offscreen$", done.stdout, re.M), done.stdout


def _figures(text: str) -> dict[str, str]:
    return dict(m.groups() for m in re.finditer(r"^figure: (\S+) (\S+)$", text, re.M))


@pytest.mark.slow
@pytest.mark.timeout(1800)
@pytest.mark.skipif(not sys.platform.startswith("linux") or shutil.which("dpkg-deb") is None
                    or os.uname().machine != "x86_64", reason="the .deb is built on Debian/Ubuntu x86-64")
def test_make_package_then_smoke_test_of_what_users_install() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("VETTED_HOME", "MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
    started = time.monotonic()
    build = subprocess.run(["make", "package"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=1500)
    build_s = time.monotonic() - started
    assert build.returncode == 0, (build.stdout[-6000:], build.stderr[-6000:])
    deb = ROOT / "dist" / f"vetted_{VERSION}_amd64.deb"
    tarball = ROOT / "dist" / f"vetted-{VERSION}-linux-x86_64.tar.gz"
    assert f"built: dist/{deb.name}" in build.stdout and f"built: dist/{tarball.name}" in build.stdout
    assert deb.stat().st_size > 10_000_000 and tarball.stat().st_size > 10_000_000
    figures = _figures(build.stdout)
    assert "lintian_s" in figures  # lintian ran, and passed (the build fails otherwise)

    started = time.monotonic()
    smoke = subprocess.run([str(ROOT / "packaging" / "linux" / "smoke-test"), str(deb)], cwd=ROOT, env=env,
                           capture_output=True, text=True, timeout=600)
    smoke_s = time.monotonic() - started
    assert smoke.returncode == 0, (smoke.stdout[-6000:], smoke.stderr[-6000:])
    out = smoke.stdout
    for line in [f"ok: vetted --version: vetted {VERSION}",
                 "ok: vetted verify, key: verified: ",
                 "ok: vetted verify, Sigstore keyless: verified: ",
                 "ok: vetted verify, tampered copy refused (exit 1): refused: ",
                 "ok: desktop app: gui-smoke: painted 'Vetted'",
                 "ok: vetted pull: verified: SmolLM2-135M-Instruct.Q4_1.gguf",
                 "ok: vetted chat through the packaged llama.cpp answered: ",
                 "ok: vetted spotcheck: the bundled prompt wheel verified (HarmBench 200, Do-Not-Answer 939)",
                 "ok: vetted serve: 401 without the token, the verified model listed with it"]:
        assert line in out, out
    if os.geteuid() == 0 and "install/remove check is skipped" not in out:
        assert "ok: dpkg -r: app gone; user's data" in out and "ok: dpkg --purge" in out, out
    assert re.search(r"^smoke-test: \d+ passed, 0 failed$", out, re.M), out
    print(f"make package {build_s:.0f} s, smoke test {smoke_s:.0f} s, figures {figures}")
