"""Writing a text in the person's own editor ($VISUAL, else $EDITOR): the composer's ctrl+e and
`desk window report`.

No Textual here, so the `desk` command starts without it; the composer passes its app's
`suspend` as `aside`, which gives the editor the terminal.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import tempfile
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

from db.core.errors import DeskError


def edit(
    text: str,
    suffix: str,
    aside: Callable[[], AbstractContextManager[object]] = nullcontext,
) -> str:
    """`text` as the person left it in their editor, which opens a temporary file ending in
    `suffix` (for its syntax colours) while `aside()` is entered. DeskError saying why when that
    failed, in which case the caller keeps the text it had; whatever `aside()` raises passes."""
    chosen = (os.environ.get("VISUAL") or os.environ.get("EDITOR") or "").strip()
    if not chosen:
        raise DeskError("Set $VISUAL or $EDITOR to write in your own editor.")
    try:
        command = shlex.split(chosen)
    except ValueError as exc:
        raise DeskError(f"Cannot read the editor command {chosen!r}: {exc}.") from exc
    # mkstemp makes the file readable by its owner alone: it holds a customer's mail or a report.
    try:
        fd, name = tempfile.mkstemp(prefix="desk-", suffix=suffix)
    except OSError as exc:
        raise DeskError(f"Cannot write a temporary file for the editor: {exc.strerror}.") from exc
    path = Path(name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(text)
        try:
            with aside():
                code = subprocess.run([*command, name], check=False).returncode
        except OSError as exc:
            raise DeskError(
                f"Could not start {chosen!r}: {exc.strerror}; check $VISUAL and $EDITOR."
            ) from exc
        if code != 0:
            raise DeskError(f"{chosen!r} exited with status {code}, so its text was not taken.")
        return path.read_text(encoding="utf-8", errors="replace")
    finally:
        path.unlink(missing_ok=True)
