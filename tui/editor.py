"""Writing a text in the agent's own editor ($VISUAL, else $EDITOR) while the desk steps aside."""

from __future__ import annotations

import os
import shlex
import subprocess
import tempfile
from pathlib import Path

from textual.app import App, SuspendNotSupported

from db.errors import DeskError


def edit(app: App, text: str) -> str:
    """`text` as the agent left it in their editor; DeskError saying why when that failed, in
    which case the caller keeps the text it had."""
    chosen = (os.environ.get("VISUAL") or os.environ.get("EDITOR") or "").strip()
    if not chosen:
        raise DeskError("Set $VISUAL or $EDITOR to write in your own editor.")
    try:
        command = shlex.split(chosen)
    except ValueError as exc:
        raise DeskError(f"Cannot read the editor command {chosen!r}: {exc}.") from exc
    # mkstemp makes the file readable by the agent alone: it holds a customer's mail.
    fd, name = tempfile.mkstemp(prefix="desk-reply-", suffix=".txt")
    path = Path(name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(text)
        try:
            with app.suspend():
                code = subprocess.run([*command, name], check=False).returncode
        except SuspendNotSupported as exc:
            raise DeskError("This terminal cannot hand over to an editor; write here.") from exc
        except OSError as exc:
            raise DeskError(
                f"Could not start {chosen!r}: {exc.strerror}; check $VISUAL and $EDITOR."
            ) from exc
        if code != 0:
            raise DeskError(f"{chosen!r} exited with status {code}; the text is as it was.")
        return path.read_text(encoding="utf-8", errors="replace")
    finally:
        path.unlink(missing_ok=True)
