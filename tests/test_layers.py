"""The packages stay honest: db/ imports neither side, ingest/ and tui/ meet only in db/, db/'s
wings import one way, and no import runs in a circle (the contracts in pyproject.toml)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_import_contracts_hold():
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run(
        [str(lint)], capture_output=True, text=True, timeout=120, cwd=Path(__file__).parent.parent
    )
    assert 0 == result.returncode, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_sql_lives_in_db_only():
    root = Path(__file__).parent.parent
    offenders = [
        str(path.relative_to(root))
        for package in ("ingest", "tui")
        for path in (root / package).rglob("*.py")
        if any(word in path.read_text() for word in (".execute(", "SELECT ", "INSERT INTO"))
    ]
    assert [] == offenders
