"""`desk`: opens the agent's desk, or runs a subcommand for ops and scripts.

Each subcommand lives in its own module with `register(subparsers)`; errors reach the user as
one sentence on stderr and a non-zero exit status.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from importlib import import_module

from db.core.errors import DeskError

SUBCOMMANDS = (
    "tui.cli.stats",
    "tui.cli.serve",
    "tui.cli.now",
    "tui.cli.window",
    "tui.cli.discrepancies",
    "tui.cli.subscribers",
    "tui.cli.outbox",
    "tui.cli.backup",
    "tui.cli.publish",
    "tui.cli.search",
    "tui.cli.export",
    "tui.cli.ticket",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="desk",
        description="Valuit Desk: support tickets and maintenance windows in the terminal.",
        epilog="example: desk --config config.toml      (opens the desk)\n"
        "         desk stats --json               (counts for scripts)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--config",
        help="config file (default: $DESK_CONFIG, ./config.toml, "
        "then ~/.config/valuit-desk/config.toml)",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    try:
        if handler is None:
            from tui.open import open_desk

            return open_desk(args)
        return handler(args)
    except DeskError as exc:
        print(f"desk: {exc.message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`desk … | head`): stop quietly, as other tools do, and keep
        # Python's flush at exit from failing on the closed pipe too.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + signal.SIGPIPE


if __name__ == "__main__":
    sys.exit(main())
