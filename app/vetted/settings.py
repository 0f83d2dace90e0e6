"""Moved to `vetted.core.settings` (kept while the rest of the tree moves over)."""

from vetted.core.settings import *  # noqa: F401,F403
from vetted.core.settings import CatalogSubscription, Settings, SignerConflict, normalise_location  # noqa: F401
