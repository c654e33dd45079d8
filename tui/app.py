"""The agent's desk: the Textual app, its database connection and the live-update watcher."""

from __future__ import annotations

import time
from pathlib import Path

from textual import work
from textual.app import App
from textual.worker import Worker, WorkerState, get_current_worker

from db.core import privacy
from db.core.config import Config
from db.tickets.live import Watcher
from tui import keys
from tui.commands import TicketCommands
from tui.data import Data
from tui.messages import DbChanged
from tui.screens.help import HelpScreen
from tui.screens.main import MainScreen
from tui.settings import Settings, load

POLL_SECONDS = 0.25  # one `PRAGMA data_version` per tick: new mail shows within a second


class DeskApp(App):
    TITLE = "Valuit Desk"
    CSS_PATH = "styles/desk.tcss"
    BINDINGS = keys.APP
    COMMANDS = App.COMMANDS | {TicketCommands}

    def __init__(self, config: Config, settings: Settings | None = None) -> None:
        super().__init__()
        self.config = config
        self.settings = settings or load(config)
        self.data = Data(config.database)
        self.save_folder = Path.home() / "Downloads"
        if not self.save_folder.is_dir():
            self.save_folder = Path.cwd()

    def on_mount(self) -> None:
        self.set_keymap(self.settings.keys)
        self.push_screen(MainScreen())
        self.watch_database()
        if self.settings.unnamed:
            self.notify(
                f'No agent name: set agent = "your name" under [desk] in {self.config.path}; '
                f'until then your changes and notes are signed "{self.settings.agent}".',
                title="Who are you?",
                severity="warning",
                timeout=30,
                markup=False,
            )
        for line in privacy.warnings(self.config.database, self.config.database_access):
            self.notify(line, title="Privacy on disk", severity="warning", timeout=30, markup=False)

    @work(thread=True, group="watch", exit_on_error=False)
    def watch_database(self) -> None:
        watcher = Watcher(self.config.database)
        worker = get_current_worker()
        try:
            while not worker.is_cancelled:
                change = watcher.changed()
                if change is not None:
                    self.post_message(DbChanged(change.tickets))
                time.sleep(POLL_SECONDS)
        finally:
            watcher.close()

    def on_db_changed(self, message: DbChanged) -> None:
        # Every screen on the stack keeps itself fresh, so going back shows the present.
        for screen in self.screen_stack:
            if hasattr(screen, "on_db_changed"):
                screen.post_message(DbChanged(message.tickets))

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        # Workers do not stop the app on error; the agent still has to hear about it.
        if event.state == WorkerState.ERROR:
            self.log.error(event.worker.error)
            self.notify(
                f"Could not read the database: {event.worker.error}",
                severity="error",
                markup=False,
            )

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def on_unmount(self) -> None:
        self.data.close()
