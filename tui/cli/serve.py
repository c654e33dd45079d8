"""`desk serve`: the same desk in a browser tab, through textual-serve, on 127.0.0.1 by default."""

from __future__ import annotations

import argparse
import shlex
import sys

from db.core.config import find, load
from db.core.errors import DeskError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="serve the desk to a browser",
        description="Serve the desk to a web browser with textual-serve. Each browser tab runs "
        "its own desk process. It listens on 127.0.0.1 unless told otherwise; put it behind a "
        "reverse proxy with authentication before exposing it.",
        epilog="example: desk serve --port 8000     (then open http://127.0.0.1:8000)",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    parser.add_argument("--public-url", help="the URL browsers reach it at, behind a proxy")
    parser.set_defaults(handler=run)


def command_for(config: str | None) -> str:
    """The command each browser session runs: this Python's `desk` on the same config file."""
    path = find(config).resolve()
    launcher = "import sys; from tui.cli import main; sys.exit(main())"
    return shlex.join([sys.executable, "-c", launcher, "--config", str(path)])


def run(args: argparse.Namespace) -> int:
    from textual_serve.server import Server

    load(args.config)  # a broken config fails here, in one line, not in every browser tab
    if not 0 < args.port < 65536:
        raise DeskError(f"{args.port} is not a TCP port")
    server = Server(
        command_for(args.config),
        host=args.host,
        port=args.port,
        title="Valuit Desk",
        public_url=args.public_url,
    )
    server.serve()
    return 0
