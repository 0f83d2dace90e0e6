"""`vetted serve` (the local OpenAI-compatible API, in the foreground) and `vetted api-token`.

Running `vetted serve` is the person's explicit choice to start the server; nothing else
starts it (the desktop app only through its switch, which runs this same command as a
separate process). `vetted api-token` prints the token alone on standard output, so
`export OPENAI_API_KEY=$(vetted api-token)` works.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from vetted.cli.common import EXIT_OK, EXIT_USAGE
from vetted.core.api_access import DEFAULT_PORT, web_origin


def add_parsers(sub: Any) -> None:
    s = sub.add_parser("serve", help=f"serve the local OpenAI-compatible API on loopback (port {DEFAULT_PORT})")
    s.add_argument("--port", type=int, help=f"port (default {DEFAULT_PORT}, or `port` in config/api.json; "
                                            "0 picks a free one)")
    s.add_argument("--host", action="append", metavar="ADDRESS",
                   help="also listen on this address (only if your organisation's policy lists it: api.interfaces)")
    s.add_argument("--queue", type=int, help="requests that may wait for the engine (default 16); more get 429")
    s.add_argument("--ctx", type=int, help="context length models are loaded with (default 4096)")
    s.add_argument("--cors-origin", action="append", metavar="ORIGIN",
                   help="a web origin (https://host[:port]) allowed to call the API from a browser "
                        "(never null or *)")
    s.add_argument("--exit-with-stdin", action="store_true", help=__import__("argparse").SUPPRESS)
    s.set_defaults(func=cmd_serve)

    t = sub.add_parser("api-token", help="print the local API's bearer token (made on first use)")
    t.add_argument("--rotate", action="store_true", help="replace it; the old token stops working at once")
    t.set_defaults(func=cmd_api_token)


def cmd_serve(app: Any, args: Any) -> int:
    try:
        from vetted.api.server import Options, serve
    except ImportError as exc:
        print(f"error: the local API needs the 'api' extra (pip install 'vetted[api]'): {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.port is not None and not 0 <= args.port <= 65535:
        print("error: --port must be from 0 to 65535", file=sys.stderr)
        return EXIT_USAGE
    for origin in args.cors_origin or []:
        if web_origin(origin) is None:
            print(f"error: --cors-origin {origin!r} is not a web origin (scheme://host[:port], no path); "
                  "null and * are never allowed", file=sys.stderr)
            return EXIT_USAGE
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("vetted serve: %(message)s"))
    logger = logging.getLogger("vetted.api")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    serve(app, Options(port=args.port, hosts=args.host, queue_size=args.queue, n_ctx=args.ctx,
                       cors_origins=args.cors_origin, exit_with_stdin=args.exit_with_stdin))
    return EXIT_OK


def cmd_api_token(app: Any, args: Any) -> int:
    print(app.api_token(rotate=args.rotate))
    return EXIT_OK
