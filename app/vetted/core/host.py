"""What the application object's mixins (`chat_ops`, `api_ops`) may use of `Vetted`.

Declared for the type checker only: at run time these are `Vetted`'s own members. Keeping
the list here makes each mixin's reach into the object explicit and checked by mypy.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import sqlite_utils

    from vetted.catalog.signed import LoadedCatalog
    from vetted.core.policy_gate import CatalogUse, PolicyGate
    from vetted.core.settings import Settings
    from vetted.net.limits import TransferLimits
    from vetted.paths import Locations


class Host:
    if TYPE_CHECKING:
        loc: Locations
        engine_factory: Callable[[], Any] | None

        @property
        def db(self) -> sqlite_utils.Database: ...

        def gate(self) -> PolicyGate: ...

        def settings(self) -> Settings: ...

        def catalog_uses(self) -> list[CatalogUse]: ...

        def _load_use(self, use: CatalogUse, limits: TransferLimits) -> LoadedCatalog: ...
