"""Where an organisation's policy comes from: fixed machine-wide locations, read thinly.

- Linux (and any other POSIX system): `/etc/vetted/policy.json`.
- macOS: the forced managed preferences of the app's bundle id,
  `/Library/Managed Preferences/dev.vetted.Vetted.plist`, key `Policy` (the JSON document
  as a string), as an MDM profile delivers it.
- Windows: `HKLM\\SOFTWARE\\Policies\\Vetted`, string value `Policy` (the JSON document),
  as Group Policy delivers it; HKLM is writable only by administrators.

The locations depend on nothing a user controls (not `VETTED_HOME`, `XDG_*`, the user's
config folder). A file policy must be owned by root and writable by no one else, and so
must every folder above it: otherwise anyone who can write it could loosen it, so the
app fails closed. One more location exists, for tests and for people who want to tighten
their own app: `VETTED_POLICY_EXTRA=/path/policy.json`. It can only add restrictions
(policy/effective.py merges tighten-only), so it cannot weaken a machine's policy.
"""

from __future__ import annotations

import os
import stat
import sys
from dataclasses import dataclass
from pathlib import Path

from vetted.errors import Refused

BUNDLE_ID = "dev.vetted.Vetted"
LINUX_PATH = Path("/etc/vetted/policy.json")
MAC_PLIST = Path("/Library/Managed Preferences") / f"{BUNDLE_ID}.plist"
WINDOWS_KEY = r"SOFTWARE\Policies\Vetted"
WINDOWS_VALUE = "Policy"
EXTRA_ENV = "VETTED_POLICY_EXTRA"
CAP = 4 * 1024 * 1024


@dataclass(frozen=True)
class PolicySource:
    where: str              # shown in every refusal: which document a rule came from
    kind: str               # "machine" or "extra"
    text: bytes | None      # None: nothing at this location


class PolicyError(Refused):
    """The policy exists but cannot be trusted or understood: everything that downloads,
    imports or runs a model refuses until an administrator fixes it (fail closed)."""


def machine_source() -> PolicySource:
    if sys.platform == "win32":
        return windows_source()
    if sys.platform == "darwin":
        return mac_source(MAC_PLIST)
    return file_source(LINUX_PATH, "machine")


def extra_source() -> PolicySource | None:
    value = os.environ.get(EXTRA_ENV)
    return file_source(Path(value), "extra") if value else None


def file_source(path: Path, kind: str) -> PolicySource:
    """Reads a policy file after checking that only its owner (root, for the machine's) can
    change it or any folder above it."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return PolicySource(str(path), kind, None)
    except OSError as exc:
        raise _unusable(path, f"cannot be examined ({exc.strerror})") from None
    _check_writers(path, st, kind)
    real = Path(os.path.realpath(path))
    # Both chains of folders: the target's, and the link's own (whoever can write the folder
    # holding a symlink can delete it, and the app would be unmanaged), and every link on the
    # way must be root's too.
    folders = list(real.parents) + [f for f in Path(os.path.abspath(path)).parents if f not in real.parents]
    for folder in folders:
        _check_writers(folder, os.stat(folder), kind, is_dir=True)
    _check_links(Path(os.path.abspath(path)), kind)
    try:
        with open(real, "rb") as f:
            data = f.read(CAP + 1)
    except OSError as exc:
        raise _unusable(path, f"cannot be read ({exc.strerror})") from None
    if len(data) > CAP:
        raise _unusable(path, f"is larger than {CAP} bytes")
    return PolicySource(str(path), kind, data)


def _check_links(path: Path, kind: str, depth: int = 0) -> None:
    """Every symbolic link on the way to the policy (the file or any folder above it) must be
    the owner's (root's, for the machine's), and so must the folders of what it points to:
    whoever owns a link, or can write the folder holding it, could remove it and leave the
    app unmanaged."""
    if depth > 40:
        raise _unusable(path, "has too many levels of symbolic links")
    owners = {0} if kind == "machine" else {0, os.getuid()} if hasattr(os, "getuid") else set()
    walked = Path(path.anchor)
    for part in path.parts[1:]:
        walked = walked / part
        try:
            link = os.lstat(walked)
        except OSError:
            return
        if not stat.S_ISLNK(link.st_mode):
            continue
        if owners and link.st_uid not in owners:
            raise _unusable(path, f"goes through the symbolic link {walked}, owned by uid {link.st_uid}, not root")
        target = Path(os.path.normpath(walked.parent / os.readlink(walked)))
        for folder in target.parents:
            _check_writers(folder, os.stat(folder), kind, is_dir=True)
        _check_links(target, kind, depth + 1)


def _check_writers(path: Path, st: os.stat_result, kind: str, is_dir: bool = False) -> None:
    if not hasattr(os, "getuid"):
        return
    owners = {0} if kind == "machine" else {0, os.getuid()}
    what = "folder" if is_dir else "file"
    if st.st_uid not in owners:
        who = "root" if kind == "machine" else "root or you"
        raise _unusable(path, f"the {what} is owned by uid {st.st_uid}, not {who}", is_dir)
    writable = st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    sticky_tmp = is_dir and st.st_mode & stat.S_ISVTX  # /tmp-like folders: others cannot replace our files
    if writable and not sticky_tmp:
        by = "its group and others" if st.st_mode & stat.S_IWGRP and st.st_mode & stat.S_IWOTH else \
            ("its group" if st.st_mode & stat.S_IWGRP else "anyone")
        raise _unusable(path, f"the {what} is writable by {by} (mode {stat.S_IMODE(st.st_mode):o}), so "
                              "anyone could loosen the policy", is_dir)


def _unusable(path: Path, found: str, is_dir: bool = False) -> PolicyError:
    return PolicyError(f"organisation policy {path}", found,
                       "models cannot be downloaded, imported or run until an administrator fixes it"
                       + (" (make the folder writable only by root)" if is_dir else
                          " (owner root, mode 644 or stricter)" if "writable" in found or "owned" in found else ""))


def mac_source(plist: Path) -> PolicySource:
    import plistlib

    src = file_source(plist, "machine")
    if src.text is None:
        return src
    try:
        prefs = plistlib.loads(src.text)
    except Exception as exc:
        raise _unusable(plist, f"is not a property list ({exc})") from None
    value = prefs.get(WINDOWS_VALUE) if isinstance(prefs, dict) else None
    if value is None:
        return PolicySource(f"{plist} (key {WINDOWS_VALUE})", "machine", None)
    if not isinstance(value, str):
        raise _unusable(plist, f"its {WINDOWS_VALUE} key is not a string holding the JSON policy")
    return PolicySource(f"{plist} (key {WINDOWS_VALUE})", "machine", value.encode())


def windows_source(winreg_module: object | None = None) -> PolicySource:
    """HKLM only: a policy under HKCU would be the user's own to change."""
    where = f"HKLM\\{WINDOWS_KEY}\\{WINDOWS_VALUE}"
    if winreg_module is None:
        import winreg as winreg_module  # type: ignore[import-not-found,no-redef]
    reg: object = winreg_module
    try:
        key = reg.OpenKey(reg.HKEY_LOCAL_MACHINE, WINDOWS_KEY)  # type: ignore[attr-defined]
    except FileNotFoundError:
        return PolicySource(where, "machine", None)
    except OSError as exc:
        raise PolicyError(f"organisation policy {where}", f"cannot be opened ({exc})",
                          "models cannot be downloaded, imported or run until an administrator fixes it") from None
    try:
        value, kind = reg.QueryValueEx(key, WINDOWS_VALUE)  # type: ignore[attr-defined]
    except FileNotFoundError:
        return PolicySource(where, "machine", None)
    finally:
        reg.CloseKey(key)  # type: ignore[attr-defined]
    if kind not in (reg.REG_SZ, reg.REG_EXPAND_SZ) or not isinstance(value, str):  # type: ignore[attr-defined]
        raise PolicyError(f"organisation policy {where}", "is not a string value holding the JSON policy",
                          "models cannot be downloaded, imported or run until an administrator fixes it")
    return PolicySource(where, "machine", value.encode())
