"""Where an IMAP source's secret comes from: an environment variable, a command, or the file.

`password_command` and `oauth2_token_command` work like mbsync's `PassCmd`: run through the shell,
their standard output (without the final newline) is the secret. A secret is never logged and
never put in an error message; a password written in the config file works, with one warning.
"""

from __future__ import annotations

import logging
import os
import subprocess
import threading
from dataclasses import dataclass

from db.core.config import Smtp, Source
from db.core.errors import DeskError

log = logging.getLogger("desk.imap")
COMMAND_TIMEOUT = 60  # a command may ask a keyring or a token endpoint; more is a hang
_warned: set[str] = set()
_warned_lock = threading.Lock()


class SecretError(DeskError):
    """The secret could not be obtained; the message says where it was looked for."""

    def __init__(self, message: str) -> None:
        super().__init__(message, title="Cannot get the password")


@dataclass(frozen=True)
class Secret:
    value: str = ""
    oauth2: bool = False  # an XOAUTH2 access token rather than a password

    def __repr__(self) -> str:  # a stray log of the object must not show the secret
        return f"Secret(oauth2={self.oauth2})"


def resolve(source: Source | Smtp) -> Secret:
    """The password or token for `source`, fetched afresh (tokens expire, keyrings change)."""
    if source.password_env:
        value = os.environ.get(source.password_env)
        if not value:
            raise SecretError(
                f"{source.name}: the environment variable {source.password_env} named by "
                "password_env is not set or empty; export it for desk-ingest"
            )
        return Secret(value)
    if source.password_command:
        return Secret(_run(source, "password_command", source.password_command))
    if source.oauth2_token_command:
        return Secret(_run(source, "oauth2_token_command", source.oauth2_token_command), True)
    with _warned_lock:
        if source.name not in _warned:
            _warned.add(source.name)
            log.warning(
                "%s: the password is written in the configuration file; prefer password_env "
                "or password_command, and keep the file readable only by desk-ingest",
                source.name,
            )
    return Secret(source.password)


def _run(source: Source | Smtp, key: str, command: str) -> str:
    try:
        done = subprocess.run(
            command,
            shell=True,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise SecretError(
            f"{source.name}: {key} did not finish within {COMMAND_TIMEOUT} s"
        ) from exc
    if done.returncode != 0:
        # stderr may explain (no keyring, expired refresh token); stdout may hold a secret.
        why = (done.stderr.strip().splitlines() or ["no message"])[-1][:200]
        raise SecretError(f"{source.name}: {key} failed with exit status {done.returncode}: {why}")
    value = done.stdout.rstrip("\r\n")
    if not value:
        raise SecretError(f"{source.name}: {key} printed nothing on its standard output")
    return value


def token_refused(username: str, where: str, why: str) -> str:
    """What to say when a server refuses the XOAUTH2 token: the token is at fault, not a
    password, so the sentence points at `oauth2_token_command` (never at the token itself)."""
    return (
        f"the OAuth access token for {username} was refused by {where} ({why}); check that "
        "oauth2_token_command prints a current access token for this account, one granted "
        "mail access"
    )
