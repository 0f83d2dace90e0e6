"""Where Vetted keeps things.

Everything goes through platformdirs, and one override (`VETTED_HOME`) moves all of it
under a single folder: tests, portable installs and CI use that so nothing leaks into the
real user profile.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs

APP_NAME = "Vetted"
APP_AUTHOR = "Vetted"


@dataclass(frozen=True)
class Locations:
    data: Path
    config: Path
    cache: Path
    site_config: Path  # machine-wide, where an organisation's managed policy lives

    @property
    def database(self) -> Path:
        return self.data / "vetted.sqlite3"

    @property
    def store(self) -> Path:
        """Content-addressed model store: only verified files ever land here."""
        return self.data / "models"

    @property
    def quarantine(self) -> Path:
        """Downloads in progress and files awaiting verification."""
        return self.data / "quarantine"

    @property
    def keys(self) -> Path:
        return self.data / "keys"

    def ensure(self) -> "Locations":
        """Creates the folders that are missing, owner-only (0700): they hold the database
        (chats, the audit log), the API token and the models. Folders that already exist —
        the person's own, or parents such as VETTED_HOME's — are left as they are."""
        for p in (self.data, self.config, self.cache, self.store, self.quarantine):
            _make_private(p)
        return self


def _make_private(path: Path) -> None:
    """Creates `path` owner-only (0700, whatever the umask) when it is missing; its missing
    parents get the ordinary mode (they may be shared folders such as ~/.local/share), and
    an existing folder is never changed."""
    if path.is_dir():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        path.mkdir(mode=0o700)
    except FileExistsError:
        if not path.is_dir():
            raise
        return  # made meanwhile by someone else: not ours to change
    if os.name == "posix":
        os.chmod(path, 0o700)  # mkdir's mode passed through the umask; this only narrows it


def locations() -> Locations:
    home = os.environ.get("VETTED_HOME")
    if home:
        root = Path(home).expanduser().resolve()
        return Locations(
            data=root / "data",
            config=root / "config",
            cache=root / "cache",
            site_config=root / "site-config",
        )
    return Locations(
        data=Path(platformdirs.user_data_dir(APP_NAME, APP_AUTHOR)),
        config=Path(platformdirs.user_config_dir(APP_NAME, APP_AUTHOR)),
        cache=Path(platformdirs.user_cache_dir(APP_NAME, APP_AUTHOR)),
        site_config=Path(platformdirs.site_config_dir(APP_NAME, APP_AUTHOR)),
    )


def resources_dir() -> Path:
    """The shipped resources (pinned trust roots, probe suites, templates).

    An installer build bundles them as `_resources` next to the package; otherwise the
    source tree's `resources/` (an editable install or a checkout) is used. No
    environment variable can point elsewhere: the trust root in here is pinned
    (`trust/roots.py`), and a private Sigstore comes only through an explicit
    `--trusted-root`.
    """
    bundled = Path(__file__).parent / "_resources"
    if bundled.is_dir():
        return bundled
    return Path(__file__).resolve().parents[2] / "resources"


def pinned_trusted_root() -> Path:
    """Where the Sigstore public-good trusted root ships (never fetched). Its sha256 is
    pinned in `vetted.trust.roots`; read it only through that module."""
    return resources_dir() / "trust" / "sigstore-public-good.trusted_root.json"


def normalise_location(location: str) -> str:
    """A catalog location as compared everywhere: URLs as given, paths absolute and resolved."""
    if location.startswith(("http://", "https://")):
        return location
    return str(Path(location.removeprefix("file://")).expanduser().resolve())
