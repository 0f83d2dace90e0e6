"""The local OpenAI-compatible API server (`vetted serve`): a front end over `vetted.core.Vetted`.

Every peer ships a local API, and most ship it loose (no authentication, CORS `*`, no
`Host` check, so any web page can drive it through DNS rebinding). This one:
- listens on loopback only (127.0.0.1 and ::1) unless the organisation's policy lists
  another address and the person asks for it (`core/policy_gate.py check_serve`);
- refuses any request whose `Host` is not the loopback name or address and the port it
  listens on (DNS rebinding), any request from a web origin not on the allowlist, and
  sends CORS headers only to allowlisted origins (`guard.py`);
- needs `Authorization: Bearer <token>` on every endpoint (`core/api_access.py`);
- serves only installed, verified models, through the same policy gate, re-check and
  verified load as a chat, audited as "local API" (`core/local_api.py`).

Starlette (routing, requests) on uvicorn (HTTP/1.1 via h11): both small, widely used and
maintained by the encode team, pure Python (nothing to compile for the installers), and
uvicorn accepts pre-bound sockets, which is how both loopback families share one port.
This package never imports Qt and is not imported by the desktop app: the app starts
`vetted serve` as a separate process (`core/api_access.py ServerProcess`).
"""
