"""Writing an attachment to disk: only ever under its stored safe name, never over a file."""

from __future__ import annotations

from pathlib import Path

from db.core.errors import DeskError


def save(folder: Path, safe_name: str, data: bytes) -> Path:
    """Write `data` into `folder` as `safe_name` (or `name (2).ext` if taken); return the path.

    The name is the one the store sanitised, and only its last component is used, so nothing
    a mail says can point the file elsewhere.
    """
    if not folder.is_dir():
        raise DeskError(f"{folder} is not a folder; name an existing folder")
    name = Path(safe_name).name
    if name in ("", ".", ".."):
        name = "attachment"
    stem, suffix = Path(name).stem, Path(name).suffix
    for n in range(1, 1000):
        target = folder / (name if n == 1 else f"{stem} ({n}){suffix}")
        try:
            with open(target, "xb") as out:
                out.write(data)
            return target
        except FileExistsError:
            continue
        except OSError as exc:
            raise DeskError(f"cannot write {target}: {exc.strerror}") from exc
    raise DeskError(f"{folder} already holds too many copies of {name}")
