"""An option list that moves with the desk's keys (j/k/g/G, remapped with the ticket list's)."""

from __future__ import annotations

from textual.widgets import OptionList

from tui import keys


class Picker(OptionList):
    BINDINGS = keys.MOVE
