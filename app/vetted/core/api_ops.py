"""The local OpenAI-compatible API's side of the application object (vetted/api/,
`vetted serve`): its settings, token, the policy check for serving, the engine lane and
the server process a front end starts beside itself.

A mixin of `vetted.core.app.Vetted`, in its own module so the object's file stays readable.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from vetted.core.host import Host
from vetted.store import audit

if TYPE_CHECKING:
    from vetted.core.app import Vetted


class ApiOps(Host):
    # -- the local OpenAI-compatible API (vetted/api/, `vetted serve`) --------------------

    def api_settings(self) -> Any:
        """The API's settings (`core.api_access.ApiSettings`, config/api.json), with the
        organisation's CORS origin list in place of the person's when it sets one."""
        from vetted.core.api_access import ApiSettings

        s = ApiSettings.load(self.loc)
        s.cors_origins = self.gate().api_cors_origins(s.cors_origins)
        return s

    def api_token(self, rotate: bool = False) -> str:
        """The bearer token every API request needs (made on first use, owner-only);
        `rotate` replaces it and the old one stops working at once. Rotation is audited."""
        from vetted.core import api_access

        if not rotate:
            return api_access.read_or_create_token(self.loc)
        token = api_access.rotate_token(self.loc)
        audit.record(self.db, "api.token", "local API token", "info", "token replaced by the user")
        return token

    def api_check_serve(self, addresses: list[str]) -> None:
        """May the API server listen on these addresses? (policy `api.*`; audited)"""
        self.gate().check_serve(self.db, addresses)

    def local_api(self, queue_size: int = 16, n_ctx: int = 4096) -> Any:
        """The API server's engine side (`core.local_api.LocalApi`): one lane, a bounded
        queue, and the chat turn's policy gate, re-check and verified load."""
        from vetted.core.local_api import LocalApi

        return LocalApi(cast("Vetted", self), queue_size=queue_size, n_ctx=n_ctx)

    def api_server(self, port: int | None = None) -> Any:
        """The API server as a separate process beside a front end (`core.api_access.
        ServerProcess`: start() → URL, stop(), token()); never started implicitly."""
        from vetted.core.api_access import ServerProcess

        return ServerProcess(cast("Vetted", self), port)
