"""The desk's clock and its one timestamp format (UTC, ISO 8601, sortable as text).

`DESK_NOW` (ISO 8601) fixes the clock, for snapshot tests and reproducible demos.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime


def now() -> datetime:
    fixed = os.environ.get("DESK_NOW")
    if fixed:
        return parse(fixed)
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    """Millisecond precision, 'Z' suffix: every stored time has this exact shape so text order is
    time order."""
    if moment.tzinfo is None:
        raise ValueError("naive datetimes are ambiguous; pass an aware one")
    utc = moment.astimezone(UTC)
    if utc.year < 1000:  # strftime writes these years without the leading zeros isoformat adds
        return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"
    # The same text for every other year, at half strftime's cost (every message stores two).
    return utc.isoformat(timespec="milliseconds").removesuffix("+00:00") + "Z"


def now_iso() -> str:
    return iso(now())


def parse(text: str) -> datetime:
    """Parse a stored or user-given ISO 8601 time; naive input is taken as UTC."""
    moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


@contextmanager
def fixed_at(moment: datetime | str) -> Iterator[None]:
    """The clock fixed at `moment` (a datetime, or ISO 8601 text) through `DESK_NOW` for the
    block, for this process and the processes it starts; what was there before comes back."""
    before = os.environ.get("DESK_NOW")
    os.environ["DESK_NOW"] = moment if isinstance(moment, str) else iso(moment)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("DESK_NOW", None)
        else:
            os.environ["DESK_NOW"] = before
