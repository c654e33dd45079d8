"""`desk serve`: the same desk in a browser tab, through textual-serve, on 127.0.0.1 by default.

Agents log in with a password (`desk serve passwd AGENT`); see `tui.cli.serve_login`. The users'
status site is under /status, without a login (`tui.cli.serve_status`).
"""

from __future__ import annotations

import argparse
import getpass
import shlex
import sys

from db.core.config import find, load
from db.core.connect import open_db
from db.core.errors import DeskError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="serve the desk to a browser",
        description="Serve the desk to a web browser with textual-serve. Agents log in with a "
        "password set by `desk serve passwd AGENT`; each browser tab runs its own desk process "
        "as that agent. It listens on 127.0.0.1 unless told otherwise; for other machines, put "
        "it behind a TLS reverse proxy and pass --public-url.",
        epilog="example: desk serve passwd maria      (set maria's password)\n"
        "         desk serve --port 8000        (then open http://127.0.0.1:8000)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    parser.add_argument(
        "--public-url",
        help="the URL browsers reach it at, behind a proxy (e.g. https://desk.example.com); "
        "the only origin whose pages may connect",
    )
    parser.add_argument(
        "--session-hours",
        type=float,
        default=12.0,
        metavar="H",
        help="how long a login lasts; then its tabs close and it must log in again (default 12)",
    )
    parser.set_defaults(handler=run)
    actions = parser.add_subparsers(dest="serve_command", metavar="passwd")
    passwd = actions.add_parser(
        "passwd",
        help="set or remove an agent's password for desk serve",
        description="Set an agent's password in the serve-users file beside the config file "
        "(scrypt hashes, owner-only). Asks twice on a terminal; reads one line from stdin "
        "otherwise. Takes effect without a restart: the agent's open sessions and tabs end.",
        epilog="example: desk serve passwd maria\n"
        "         desk serve passwd --remove maria   (her sessions and open tabs end)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    passwd.add_argument("agent", help="the agent's name, as it appears in the audit trail")
    passwd.add_argument("--remove", action="store_true", help="remove the agent instead")
    passwd.set_defaults(handler=run_passwd)


def command_for(config: str | None) -> str:
    """The command each browser session runs: this Python's `desk` on the same config file."""
    path = find(config).resolve()
    launcher = "import sys; from tui.cli import main; sys.exit(main())"
    return shlex.join([sys.executable, "-c", launcher, "--config", str(path)])


def run(args: argparse.Namespace) -> int:
    # aiohttp and textual-serve: 0.17 s no other command needs
    from tui.cli import serve_login, serve_status, serve_unsubscribe

    config = load(args.config)  # a broken config fails here, in one line, not in every tab
    if not 0 < args.port < 65536:
        raise DeskError(f"{args.port} is not a TCP port")
    if not args.session_hours > 0:
        raise DeskError(f"--session-hours {args.session_hours:g}: give a number of hours above 0")
    users = serve_login.users_path(find(args.config).resolve())
    if not serve_login.read_users(users):
        raise DeskError(f"{users} names no agent: add one with `desk serve passwd AGENT`")
    status = serve_status.StatusSite(
        open_db(config.database, access=config.database_access), config.publish.url
    )
    server = serve_login.DeskServer(
        command_for(args.config),
        users,
        status,
        host=args.host,
        port=args.port,
        title="Valuit Desk",
        public_url=args.public_url,
        session_hours=args.session_hours,
        public_routes=serve_unsubscribe.routes(config),
    )
    try:
        server.serve()
    finally:
        status.close()
    return 0


def _ask_password() -> str:
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    password = getpass.getpass("Password: ")
    if password != getpass.getpass("Again: "):
        raise DeskError("the two passwords differ; nothing changed")
    return password


def run_passwd(args: argparse.Namespace) -> int:
    from tui.cli import serve_login

    agent = serve_login.check_agent_name(args.agent)
    path = serve_login.users_path(find(args.config).resolve())
    users = serve_login.read_users(path) if path.exists() else {}
    if args.remove:
        if users.pop(agent, None) is None:
            raise DeskError(f"{agent} has no password in {path}")
        serve_login.write_users(path, users)
        print(f"Removed {agent} from {path}.")
        return 0
    password = _ask_password()
    if len(password) < serve_login.MIN_PASSWORD:
        raise DeskError(f"a password needs at least {serve_login.MIN_PASSWORD} characters")
    users[agent] = serve_login.hash_password(password)
    serve_login.write_users(path, users)
    print(f"Set the password of {agent} in {path}.")
    return 0
