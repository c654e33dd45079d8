"""The desk's part of config.toml: the agent's name, time zone, saved searches and key remaps.

```toml
[desk]
agent = "maria"                  # who "me" is and whom the audit trail names
                                 # ($DESK_USER, set by a `desk serve` login, overrides it)
timezone = "Europe/Berlin"       # default: the machine's zone
[[desk.section]]
name = "Mine"
query = "assignee:me status:open"
[keys]
assign = "A"                     # binding id = key(s), comma-separated
```
Mistakes are one line naming the file and the key, like the rest of the configuration.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import tzinfo
from zoneinfo import ZoneInfo

from db.core.config import Config, Reader
from db.core.migrations import FUNCTIONS
from tui.keys import ALL_IDS


@dataclass(frozen=True)
class Section:
    """A tab of the ticket list: a name and the query that fills it."""

    name: str
    query: str


# Who acts when neither a `desk serve` login nor `[desk] agent` names the agent: never the
# system account the desk runs as (root, a shared service user), which names no person.
UNNAMED = "agent"


@dataclass(frozen=True)
class Settings:
    agent: str
    zone: tzinfo | None
    sections: tuple[Section, ...]
    keys: dict[str, str] = field(default_factory=dict)
    unnamed: bool = False  # True when `agent` is UNNAMED: the desk says how to name oneself


def load(config: Config) -> Settings:
    desk = Reader(config.path, "desk", config.raw.get("desk", {}))
    # DESK_USER first: `desk serve` sets it to the agent who logged in, whatever the shared
    # config says; the ops commands (tui/cli/ops.py) read it too.
    agent = (os.environ.get("DESK_USER") or desk.get("agent", str, "")).strip()
    sections = [
        Section("All", ""),
        *(Section(f.capitalize(), f"fn:{f}") for f in FUNCTIONS),
        Section("SLA breached", "is:breached status:open*"),
    ]
    saved = desk.get("section", list, [])
    for index, table in enumerate(saved):
        r = Reader(config.path, f"desk.section[{index}]", table)
        r.unknown({"name", "query"})
        sections.append(
            Section(r.get("name", str, required=True), r.get("query", str, required=True))
        )
    keys = Reader(config.path, "keys", config.raw.get("keys", {}))
    keys.unknown(set(ALL_IDS))
    keymap = {name: keys.get(name, str) for name in keys.table}
    for name, value in keymap.items():
        if not value.strip():
            keys.fail(name, 'is empty; name a key such as "A" or "ctrl+a"')
    return Settings(
        agent=agent or UNNAMED,
        unnamed=not agent,
        zone=ZoneInfo(config.timezone) if config.timezone else None,
        sections=tuple(sections),
        keys=keymap,
    )
