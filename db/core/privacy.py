"""Customer mail on disk: the database created owner-only (or as configured), looser modes found.

`desk.db` holds every mail and attachment. It is created with `[database] mode` (0600 unless
configured) and, if `[database] group` is set, given to that group, whatever the umask. SQLite's
unix VFS creates `-wal`, `-shm` and `-journal` with the main file's permissions (and, run as
root, its owner), so they follow. An existing file is never changed: `warnings` names what is
looser than configured, with the command that fixes it.
"""

from __future__ import annotations

import grp
import os
import shlex
import stat
from dataclasses import dataclass
from pathlib import Path

from db.core.errors import DeskError

SIDE_FILES = ("-wal", "-shm")  # SQLite's WAL companions; they hold recent mail too


@dataclass(frozen=True)
class Access:
    """Who may open the database: a permission mode (e.g. 0o640) and a group name ("": the
    creating user's own group)."""

    mode: int = 0o600
    group: str = ""


OWNER_ONLY = Access()


def owner_only(path: str, flags: int) -> int:
    """An `opener` for `open()`: a file it creates is 0600 whatever the umask."""
    fd = os.open(path, flags, OWNER_ONLY.mode)
    try:
        os.fchmod(fd, OWNER_ONLY.mode)  # the umask may have taken bits away
    except OSError:
        os.close(fd)
        raise
    return fd


def group_id(name: str) -> int:
    """The id of group `name`; DeskError if this machine has no such group."""
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        raise DeskError(f"there is no group {name!r} on this machine") from None


def create(path: Path, access: Access) -> None:
    """Create the database file (empty) and its folder if missing, with `access`.

    A folder made here gets the same access plus search (x) where it grants any, and with a
    group the setgid bit, so the `-wal`/`-shm` any member's process creates belong to the group.
    An existing file or folder is left as it is. Raises DeskError if the group cannot be given.
    """
    if path.exists():  # the usual case; and a read-only folder or mount must not fail it
        return
    gid = group_id(access.group) if access.group else -1
    folder = path.parent
    if not folder.is_dir():
        folder.parent.mkdir(parents=True, exist_ok=True)
        try:
            folder.mkdir()
        except FileExistsError:
            pass  # another process made it first, with the same configuration
        else:
            searchable = access.mode | ((access.mode & 0o444) >> 2) | ((access.mode & 0o222) >> 1)
            _give(folder, gid, (searchable & 0o777) | (stat.S_ISGID if access.group else 0))
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, access.mode)
    except FileExistsError:
        return
    os.close(fd)
    try:
        _give(path, gid, access.mode)
    except DeskError:
        path.unlink()  # never leave a file that a later start would take as rightly made
        raise


def _give(path: Path, gid: int, mode: int) -> None:
    try:
        if gid != -1:
            os.chown(path, -1, gid)  # before chmod: a chown may clear the setgid bit
        os.chmod(path, mode)  # exact, whatever the umask
    except OSError as exc:
        raise DeskError(
            f"cannot give {path} mode {mode & 0o7777:04o}"
            + (f" and group {grp.getgrgid(gid).gr_name!r}" if gid != -1 else "")
            + f": {exc.strerror} (the user running the desk must own it and be in the group)"
        ) from exc


def warnings(path: Path, access: Access) -> list[str]:
    """One line for each of the database, `-wal` and `-shm` whose mode grants more than
    `access.mode`, naming the file, its mode and the fix; [] if none does or none exists.

    With a group, also a line if the folder would not give new `-wal`/`-shm` that group.
    """
    lines = []
    folder = path.parent
    if access.group and folder.is_dir():
        info = folder.stat()
        if not info.st_mode & stat.S_ISGID or info.st_gid != group_id(access.group):
            where = shlex.quote(str(folder))
            lines.append(
                f"{folder}: the -wal and -shm files another agent's desk creates here will not "
                f"belong to group {access.group!r}; fix: chgrp {access.group} {where} "
                f"&& chmod g+s {where}"
            )
    for file in (path, *(Path(f"{path}{suffix}") for suffix in SIDE_FILES)):
        try:
            mode = stat.S_IMODE(file.stat().st_mode)
        except FileNotFoundError:
            continue
        if mode & ~access.mode & 0o777:
            lines.append(
                f"{file} has mode {mode:04o}, looser than the configured {access.mode:04o} "
                f"([database] mode): it holds customer mail; fix: chmod {access.mode:03o} "
                f"{shlex.quote(str(file))}"
            )
    return lines
