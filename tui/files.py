"""Writing an attachment to disk: under a safe name, owner-only (0600), never over a file."""

from __future__ import annotations

from pathlib import Path

from db.core.errors import DeskError
from db.core.privacy import owner_only
from db.mailin.names import safe_name


def save(folder: Path, stored_name: str, data: bytes) -> Path:
    """Write `data` into `folder` as `stored_name` (or `name (2).ext` if taken); return the path.

    The stored name passes the store's rule again (`db.mailin.names.safe_name`), so a name an
    older version stored cannot point the file elsewhere or at a device. The file is 0600:
    attachments are customer mail.
    """
    if not folder.is_dir():
        raise DeskError(f"{folder} is not a folder; name an existing folder")
    name = safe_name(stored_name)
    stem, suffix = Path(name).stem, Path(name).suffix
    for n in range(1, 1000):
        target = folder / (name if n == 1 else f"{stem} ({n}){suffix}")
        try:
            with open(target, "xb", opener=owner_only) as out:
                out.write(data)
            return target
        except FileExistsError:
            continue
        except OSError as exc:
            raise DeskError(f"cannot write {target}: {exc.strerror}") from exc
    raise DeskError(f"{folder} already holds too many copies of {name}")
