"""Opening the desk: load the configuration, open the database, run the app."""

from __future__ import annotations

import argparse

from db.core.config import load
from db.core.connect import open_db


def open_desk(args: argparse.Namespace) -> int:
    from tui.app import DeskApp
    from tui.settings import load as load_settings

    config = load(args.config)
    settings = load_settings(config)  # a config mistake stops here, before the screen changes
    open_db(
        config.database, access=config.database_access
    ).close()  # create or migrate before the app's workers start
    DeskApp(config, settings).run()
    return 0
